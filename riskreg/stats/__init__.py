"""Pure statistics for staged pilot analysis: numbers in, frozen dataclasses out.

Modules: ``summaries`` (per-arm sufficient statistics), ``compare`` (Welch t; two
proportions by the Miettinen–Nurminen score test and its interval; rate ratios by the
central exact conditional test and its Clopper–Pearson interval, or quasi-Poisson when
the per-unit data are overdispersed), ``verdicts`` (superiority, non-inferiority,
equivalence, harm; Holm), ``sequential`` (Lan–DeMets O'Brien–Fleming boundaries at the
looks taken, conditional power, stage-wise inference after an early stop), ``power``
(sample size, achieved power, minimum detectable effect, group-sequential inflation) and
``srm`` (sample-ratio mismatch by the exact binomial test). Nothing here imports the
rest of riskreg.
"""
