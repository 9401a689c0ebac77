"""The terminal text of ``pilot analyse``: an analysis dict (``Analysis.to_dict()``) as aligned plain text."""

from __future__ import annotations

from typing import Any

from riskreg.cli.output import table
from riskreg.wording import level_text


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}"


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return "<0.0001" if value < 0.0001 else f"{value:.4f}"


def analysis_text(analysis: dict[str, Any]) -> str:
    """Return a plain-text terminal report of an analysis dict (``Analysis.to_dict()``)."""
    arms = analysis.get("arms") or (list(analysis["metrics"][0]["n"]) if analysis["metrics"] else [])
    out: list[str] = []
    title = f"{analysis['pilot']}"
    if analysis.get("title"):
        title += f" ({analysis.get('key', '')}): {analysis['title']}"
    out.append(title)
    included = analysis.get("stages_included") or [analysis["stage"]]
    bnd = analysis.get("boundaries", {})
    out.append(
        f"stage: {analysis['stage']} (cumulative data: {', '.join(included)}); "
        f"information fraction t = {_num(analysis.get('information_fraction'), 3)}; "
        f"primary boundary |z| = {_num(bnd.get('boundary'), 4)}; alpha = {_num(analysis.get('alpha'))}"
    )
    out.append("")
    headers = ["METRIC", "ROLE", "TEST", *(f"N {a}" for a in arms), *(f"{a}" for a in arms)]
    headers += ["ESTIMATE", "CI", "P", "P ADJ", "BOUNDARY", "VERDICT"]
    rows = []
    for m in analysis["metrics"]:
        low, high = m["ci"]
        ci = f"[{_num(low)}, {_num(high)}]" if low is not None or high is not None else "-"
        level = m.get("ci_level")
        if level is not None and low is not None:
            ci += f" {level_text(level)}"
        n_text = [
            f"{m['n'].get(a, 0)}" + (f" (+{m['missing'][a]} NA)" if m.get("missing", {}).get(a) else "")
            for a in arms
        ]
        rows.append(
            [
                m["name"],
                m["role"],
                m["test"] + (f" ±{m['margin']:g}" if m.get("margin") is not None else ""),
                *n_text,
                *(_num(m["summary"].get(a)) for a in arms),
                ("RR " if m["kind"] == "count" else "Δ ") + _num(m["estimate"]),
                ci,
                _p(m["p_value"]),
                _p(m["p_adjusted"]),
                _num(m["boundary"], 3),
                m["verdict"],
            ]
        )
    out.append(table(headers, rows))
    out.append("summaries: mean (continuous), proportion (binary), rate per unit of exposure (count)")
    for m in analysis["metrics"]:
        out.append(f"  {m['name']}: {m['method']}")
        if m.get("warnings"):
            out.append(f"    warnings: {', '.join(m['warnings'])}")
    out.append("")

    srm = analysis.get("srm", {})
    if srm.get("p_value") is None and "not applicable" in str(srm.get("method", "")):
        out.append(f"sample ratio: {srm['method']}")
    else:
        counted = srm.get("clusters") or srm.get("units", {})  # a cluster design allocates clusters
        out.append(
            ("sample ratio (clusters): " if srm.get("clusters") else "sample ratio: ")
            + ", ".join(f"{a} {n}" for a, n in counted.items())
            + f"; {_srm_test(srm)} p = {_p(srm.get('p_value'))}; "
            + ("ok" if srm.get("ok", True) else f"MISMATCH (p < {srm.get('threshold', 0.01):g})")
        )
    if analysis.get("criteria"):
        out.append("")
        out.append("progression criteria:")
        out.append(
            table(
                ["CRITERION", "VALUE", "GREEN AT", "RED BELOW", "STATUS"],
                [
                    [c["name"], _num(c["value"], 3), _num(c["green"]), _num(c["red"]), c["status"]]
                    for c in analysis["criteria"]
                ],
            )
        )
    costs = analysis.get("costs") or {}
    if costs:
        out.append("")
        out.append(f"costs (cumulative; citizen hours valued at {costs.get('hour_value')} per hour):")
        cost_rows = []
        for key, c in costs.items():
            if key in ("incremental", "hour_value", "note") or not isinstance(c, dict):
                continue
            cost_rows.append(
                [
                    key,
                    _money_text(c.get("public")),
                    _money_text(c.get("citizen")),
                    _money_text(c.get("total")),
                    _num(c.get("units")),
                    _money_text(c.get("per_unit")),
                    _money_text(c.get("per_unit_public")),
                ]
            )
        out.append(
            table(["", "PUBLIC", "CITIZEN", "TOTAL", "UNITS", "PER UNIT", "PER UNIT (PUBLIC)"], cost_rows)
        )
        inc = costs.get("incremental") or {}
        if inc:
            out.append(
                f"incremental cost per unit: {_money_text(inc.get('per_unit_with_citizen'))} with citizen inputs, "
                f"{_money_text(inc.get('per_unit_public_only'))} public only"
            )
            out.append(
                f"per unit of effect ({inc.get('effect_basis')} = {_num(inc.get('effect'))}): "
                f"{_money_text(inc.get('per_unit_of_effect_with_citizen'))} with citizen inputs, "
                f"{_money_text(inc.get('per_unit_of_effect_public_only'))} public only"
            )
    out += _stratified_text(analysis.get("stratified") or {})
    out += _adjusted_text(analysis.get("adjusted") or {})
    out += _design_text(analysis.get("design") or {})
    out += _chance_text(analysis.get("metrics") or [])
    out.append("")
    out.append(f"recommendation: {analysis['recommendation'].upper()}")
    for reason in analysis.get("reasons", []):
        out.append(f"  - {reason}")
    for warning in analysis.get("warnings", []):
        out.append(f"  ! {warning}")
    return "\n".join(out)


def _money_text(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _srm_test(srm: dict[str, Any]) -> str:
    """Return the sample-ratio test's short name: exact binomial for two arms (older analyses: chi-squared)."""
    return "exact binomial" if "binomial" in str(srm.get("method", "")) else "chi-squared"


def _stratified_text(stratified: dict[str, Any]) -> list[str]:
    """Return the site-stratified results: each metric's combined estimate, heterogeneity and sites."""
    if not stratified:
        return []
    out = [
        "",
        "stratified by site (95% intervals, not adjusted for looks; the recommendation reads the pooled results):",
    ]
    rows = []
    for name, s in stratified.items():
        spread = s.get("heterogeneity")
        if s.get("estimate") is None:
            rows.append([name, "-", "-", "-", "-", s.get("note", "")])
            continue
        low, high = s["ci"]
        rows.append(
            [
                name,
                _num(s["estimate"]),
                f"[{_num(low)}, {_num(high)}]",
                _p(s.get("p_value")),
                "-"
                if spread is None
                else f"Q {_num(spread['q'], 3)} ({spread['df']} df), I² {spread['i_squared']:.0%}",
                ", ".join(f"{site['site']}: {_num(site['estimate'])}" for site in s["sites"]),
            ]
        )
    out.append(table(["METRIC", "ESTIMATE", "CI", "P", "HETEROGENEITY", "BY SITE"], rows))
    return out


def _design_text(design: dict[str, Any]) -> list[str]:
    """Return a cluster design's lines: its layout, clusters, and each metric's clustering."""
    if not design:
        return []
    clusters = ", ".join(f"{n} {arm}" for arm, n in design["clusters"].items())
    if design["layout"] == "stepped-wedge":
        every = max(design["clusters"].values())  # each cluster is in both arms, at different stages
        head = f"stepped wedge by {design['cluster_column']}: {every} clusters, the stages are the periods"
        head += " (Hussey-Hughes model; the recommendation reads it)"
    else:
        head = f"cluster-randomised by {design['cluster_column']}: {clusters} clusters; {design['weighting']} weights"
        head += " (cluster-level t test; the recommendation reads it)"
    out = ["", head + ":"]
    rows = []
    for name, d in design["metrics"].items():
        if design["layout"] == "stepped-wedge":
            model = d.get("model") or {}
            rows.append([name, _num(model.get("icc"), 3), "-", "-", str(d.get("periods", "-"))])
        elif "rate_cv" in d:  # counts: the between-cluster variation of rates, not an ICC
            rows.append([name, f"k {_num(d.get('rate_cv'), 3)}", "-", "-", "-"])
        else:
            rows.append(
                [
                    name,
                    _num(d.get("icc"), 3),
                    _num(d.get("design_effect"), 3),
                    _num(d.get("effective_n"), 4),
                    "-",
                ]
            )
    out.append(table(["METRIC", "ICC", "DESIGN EFFECT", "EFFECTIVE N", "PERIODS"], rows))
    planned = design.get("planned") or {}
    if planned.get("icc") is not None:
        out.append(
            f"planned: ICC {planned['icc']:g}, {planned.get('cluster_size'):g} units per cluster"
            + (f", {planned['clusters_per_arm']} clusters per arm" if planned.get("clusters_per_arm") else "")
        )
    return out


def _chance_text(metrics: list[dict[str, Any]]) -> list[str]:
    """Return each metric's board probabilities in words, with the prior they rest on."""
    said = [(m["name"], m["chance"]) for m in metrics if m.get("chance")]
    if not said:
        return []
    out = [
        "",
        "probabilities (normal approximation; not adjusted for looks, and no verdict: the gate rests on the test):",
    ]
    for name, chance in said:
        prior = chance.get("prior")
        basis = (
            "flat prior"
            if prior is None
            else f"prior N({_num(prior['mean'])}, {_num(prior['sd'])}²), {chance['prior_source']}"
        )
        out.append(f"  {name}: {chance['words']} ({basis})")
    return out


def _adjusted_text(adjusted: dict[str, Any]) -> list[str]:
    """Return the baseline-adjusted results beside the unadjusted ones on the same units."""
    if not adjusted:
        return []
    out = [
        "",
        "adjusted for a baseline, as the protocol pre-specifies (ANCOVA; two-stage for clusters): the results above "
        "for these metrics are adjusted, and the recommendation reads them (here at 95%, not adjusted for looks):",
    ]
    rows = []
    for name, a in adjusted.items():
        units = a.get("units", {})
        if a.get("estimate") is None:
            rows.append([name, a["covariate"], "-", "-", "-", "-", "-", a.get("note", "")])
            continue
        low, high = a["ci"]
        gaps = a.get("missing_baseline") or {}
        rows.append(
            [
                name,
                a["covariate"],
                f"{units.get('comparison', 0)} / {units.get('pilot', 0)}"
                + (f" ({sum(gaps.values())} without)" if any(gaps.values()) else ""),
                _num(a["estimate"]),
                f"[{_num(low)}, {_num(high)}]",
                _p(a.get("p_value")),
                _num(a["unadjusted_estimate"]),
                f"{a['variance_reduction']:.0%}",
            ]
        )
    out.append(table(["METRIC", "BASELINE", "N", "ADJUSTED", "CI", "P", "UNADJUSTED", "VARIANCE CUT"], rows))
    return out
