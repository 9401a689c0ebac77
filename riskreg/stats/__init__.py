"""Pure statistics for staged pilot analysis: numbers in, frozen dataclasses out.

Modules: ``summaries`` (per-arm sufficient statistics), ``compare`` (Welch t, two
proportions with Fisher/Newcombe, Poisson rate ratio), ``verdicts`` (superiority,
non-inferiority, equivalence, harm; Holm), ``sequential`` (Lan–DeMets O'Brien–Fleming
boundaries), ``power`` (sample size, achieved power, minimum detectable effect) and
``srm`` (sample-ratio mismatch). Nothing here imports the rest of riskreg.
"""
