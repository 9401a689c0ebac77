"""`plan size`: units a stage needs, and the power and minimum detectable effect a size gives.

Also the planned power of a registered protocol (``protocol_power``, ``power_warning``):
does the last stage's planned n give the protocol's stated power for its primary metric?
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from riskreg.errors import InvalidInput

if TYPE_CHECKING:
    from riskreg.protocol import Protocol

KINDS = ("continuous", "binary", "count")
TESTS = ("superiority", "non-inferiority")
BETTER = ("higher", "lower")
# Most looks `plan size` accepts: beyond any staged pilot, and the boundaries stay quick.
MAX_LOOKS = 20


@dataclass(frozen=True)
class PlanRequest:
    """What the user assumes: the effect to detect and the outcome's spread or baseline."""

    kind: str
    mde: float | None = None  # difference (continuous, binary) or rate ratio (count)
    sd: float | None = None
    baseline: float | None = None  # proportion (binary) or rate per unit of exposure (count)
    exposure: float = 1.0  # exposure per unit (count)
    alpha: float = 0.05
    power: float = 0.8
    ratio: float = 1.0  # pilot units per comparison unit
    # non-inferiority margin: a difference (continuous, binary) or a rate ratio > 1 (count); 0 = none
    margin: float = 0.0
    n: int | None = None  # units per arm already planned or recruited
    test: str | None = None  # superiority or non-inferiority; None: non-inferiority when margin > 0
    better: str = "higher"  # the direction that is a gain (non-inferiority)
    looks: int | None = None  # equally spaced looks (group-sequential); None and no fractions: 1
    fractions: tuple[float, ...] | None = None  # information fractions of the looks, the last 1
    rho: float | None = None  # correlation of a continuous outcome with its baseline (ANCOVA)
    icc: float | None = None  # cluster designs: the intra-cluster correlation assumed
    cluster_size: float | None = None  # units per cluster (per cluster-period, stepped wedge)
    size_cv: float = 0.0  # coefficient of variation of the cluster sizes
    clusters: int | None = None  # clusters per arm already planned: their power and MDE
    layout: str = "parallel"  # or "stepped-wedge"
    steps: int | None = None  # stepped wedge: switching steps (periods = steps + 1)
    clusters_per_step: int | None = None  # stepped wedge: clusters switching at each step


def plan(request: PlanRequest) -> dict[str, Any]:
    """Return the required size (when an effect is given) and, for a given n, power and MDE.

    With several looks the size is the fixed design's times the group-sequential inflation
    factor: ``n_fixed``, ``inflation_factor`` and ``n`` (units per arm, comparison and pilot).
    """
    _check_design(request)
    _check(request)
    if request.layout == "stepped-wedge":
        return _stepped_wedge(request)
    from riskreg.stats import power as p

    raw = request
    if request.rho is not None:  # ANCOVA on the baseline: the residual SD is sd·√(1 − ρ²)
        request = replace(request, sd=request.sd * math.sqrt(1 - request.rho**2))  # type: ignore[operator]
    test = _test(request)
    fractions = _fractions(request)
    result: dict[str, Any] = {
        "kind": request.kind,
        "request": {k: v for k, v in vars(raw).items() if v is not None},
        "test": test,
        "looks": _looks(p, fractions, request.alpha),
    }
    effect = _effect(request, test)
    if effect is not None:
        size = _size(p, request, effect)
        factor = _call(p.inflation_factor, fractions, request.alpha, request.power)
        result["size"] = size.to_dict()
        result["n_fixed"] = list(size.n_required)
        result["inflation_factor"] = factor
        result["n"] = [math.ceil(n * factor - 1e-9) for n in size.n_per_arm]
    if request.n is not None:
        n_c, n_p = request.n, max(2, round(request.n * request.ratio))
        if effect is not None:
            at_n = _power(p, request, effect, n_c, n_p)
            result["power_at_n"] = at_n.to_dict()
            result["power_at_n_sequential"] = _call(p.sequential_power, fractions, request.alpha, at_n.power)
        result["mde_at_n"] = _mde(p, request, n_c, n_p).to_dict()
    if raw.rho is not None:
        result["baseline_adjustment"] = _baseline_gain(p, raw, request, effect)
    if raw.icc is not None:
        result["clusters"] = _cluster_plan(p, request, result, effect, fractions)
    return result


def _baseline_gain(p: Any, raw: PlanRequest, adjusted: PlanRequest, effect: float | None) -> dict[str, Any]:
    """Say what the baseline buys: the variance factor 1 − ρ², and the size without adjusting."""
    gain: dict[str, Any] = {
        "rho": raw.rho,
        "variance_factor": 1 - raw.rho**2,  # type: ignore[operator]
        "sd_adjusted": adjusted.sd,
        "method": "ANCOVA on the baseline: Var × (1 − ρ²) (Borm, Fransen & Lemmens 2007)",
    }
    if effect is not None:
        gain["n_without_baseline"] = list(_size(p, raw, effect).n_required)
    return gain


CLUSTER_METHOD = (
    "design effect 1 + ((CV² + 1)·m − 1)·ICC (Eldridge, Ashby & Kerry 2006); clusters per arm for the "
    "t test on the cluster summaries on k₁ + k₀ − 2 df, noncentral t solved exactly (about one more "
    "cluster per arm than ⌈n·DE/m⌉ when clusters are few; Hayes & Moulton 2017, §7.3)"
)


def _cluster_variances(r: PlanRequest, effect: float) -> tuple[float, float]:
    """Return the variances of a cluster summary in each arm (comparison, pilot) under the effect."""
    from riskreg.stats import cluster_power as cp

    if r.kind == "continuous":
        v = _call(cp.summary_variance, r.sd**2, r.cluster_size, r.icc, r.size_cv)  # type: ignore[operator]
        return (v, v)
    return _call(cp.binary_variances, r.baseline, r.baseline + effect, r.cluster_size, r.icc, r.size_cv)  # type: ignore[operator]


def _distance(r: PlanRequest, effect: float) -> float:
    """Return what the test must detect: |effect| (two-sided), or benefit + margin (non-inferiority)."""
    if r.margin > 0:
        return (effect if r.better == "higher" else -effect) + r.margin
    return abs(effect)


def _cluster_plan(
    p: Any, r: PlanRequest, result: dict[str, Any], effect: float | None, fractions: tuple[float, ...]
) -> dict[str, Any]:
    """Return the design effect, the clusters per arm the t test on cluster summaries needs, and
    with ``clusters`` their power and minimum detectable effect."""
    from riskreg.stats import cluster_power as cp
    from riskreg.stats.clusters import design_effect
    from riskreg.stats.designs import clusters_needed

    m = r.cluster_size
    de = _call(design_effect, m, r.icc, r.size_cv)
    plan: dict[str, Any] = {
        "icc": r.icc,
        "cluster_size": m,
        "size_cv": r.size_cv,
        "design_effect": de,
        "method": CLUSTER_METHOD,
    }
    individual = result.get("n")
    if individual is not None and effect is not None:
        # the design-effect rule on the individual size, for reference
        plan["clusters_by_design_effect"] = [
            _call(clusters_needed, n, m, r.icc, r.size_cv) for n in individual
        ]
        variances = _cluster_variances(r, effect)
        exact = _call(cp.clusters_for_power, _distance(r, effect), variances, r.alpha, r.power, r.ratio)
        factor = result["inflation_factor"]
        k_c = math.ceil(exact * factor - 1e-9)
        k_p = max(2, math.ceil(exact * r.ratio * factor - 1e-9))
        plan["clusters_exact"] = exact * factor
        plan["clusters_per_arm"] = [k_c, k_p]
        plan["units_per_arm"] = [math.ceil(k * m - 1e-9) for k in (k_c, k_p)]  # type: ignore[operator]
        plan["df"] = k_c + k_p - 2
    if r.clusters is not None:
        k_c, k_p = r.clusters, max(2, round(r.clusters * r.ratio))
        given: dict[str, Any] = {
            "clusters_per_arm": [k_c, k_p],
            "units_per_arm": [k_c * m, k_p * m],  # type: ignore[operator]
            "effective_n_per_arm": [k_c * m / de, k_p * m / de],  # type: ignore[operator]
            "df": k_c + k_p - 2,
        }
        if effect is not None:
            found = _call(
                cp.t_power, _distance(r, effect), _cluster_variances(r, effect), (k_c, k_p), r.alpha
            )
            given["power"] = found.power
            given["power_sequential"] = _call(p.sequential_power, fractions, r.alpha, found.power)
        given["mde"] = _cluster_mde(r, (k_c, k_p))
        plan["given"] = given
    return plan


def _cluster_mde(r: PlanRequest, clusters: tuple[int, int]) -> float:
    """Return the effect the given clusters detect with the target power (the true difference at which
    non-inferiority is shown, with a margin)."""
    from riskreg.stats import cluster_power as cp

    if r.kind == "continuous":
        v = _call(cp.summary_variance, r.sd**2, r.cluster_size, r.icc, r.size_cv)  # type: ignore[operator]
        distance = _call(cp.t_distance, r.power, (v, v), clusters, r.alpha)
        benefit = distance - r.margin if r.margin > 0 else distance
        return benefit if r.better == "higher" or r.margin == 0 else -benefit
    down = r.better == "lower" if r.margin > 0 else r.mde is not None and r.mde < 0
    return _call(
        cp.binary_mde,
        r.baseline,
        clusters,
        r.cluster_size,
        r.icc,
        r.size_cv,
        r.alpha,
        r.power,
        down,
        r.margin,
    )


def _check_design(r: PlanRequest) -> None:
    """Check the cluster, stepped-wedge and baseline options together: one message for each misuse."""
    if r.rho is not None:
        if r.kind != "continuous":
            raise InvalidInput("--rho applies to a continuous outcome (its correlation with the baseline)")
        if not 0 <= r.rho < 1:
            raise InvalidInput(f"--rho must be at least 0 and below 1, got {r.rho:g}")
    if (r.icc is None) != (r.cluster_size is None):
        raise InvalidInput("a cluster design needs both --icc and --cluster-size")
    if r.icc is not None and not 0 <= r.icc < 1:
        raise InvalidInput(f"--icc must be at least 0 and below 1, got {r.icc:g}")
    if r.cluster_size is not None and r.cluster_size < 1:
        raise InvalidInput(f"--cluster-size must be at least 1, got {r.cluster_size:g}")
    if r.size_cv < 0:
        raise InvalidInput(f"--size-cv must be at least 0, got {r.size_cv:g}")
    if r.size_cv and r.icc is None:
        raise InvalidInput("--size-cv needs a cluster design (--icc and --cluster-size)")
    if r.icc is not None and r.kind == "count" and r.layout != "stepped-wedge":
        raise InvalidInput(
            "cluster designs (--icc, --cluster-size) plan continuous and binary outcomes, not counts"
        )
    if r.clusters is not None:
        if r.icc is None:
            raise InvalidInput("--clusters needs --icc and --cluster-size")
        if r.n is not None:
            raise InvalidInput("give --clusters (clusters per arm) or --n (units per arm), not both")
    if r.layout not in ("parallel", "stepped-wedge"):
        raise InvalidInput(f"--layout: expected parallel or stepped-wedge, got {r.layout!r}")
    stepped = r.layout == "stepped-wedge"
    if not stepped and (r.steps is not None or r.clusters_per_step is not None):
        raise InvalidInput(
            "--steps and --clusters-per-step describe a stepped wedge: add --layout stepped-wedge"
        )
    if stepped:
        _check_stepped(r)


def _check_stepped(r: PlanRequest) -> None:
    if r.steps is None or r.clusters_per_step is None or r.icc is None:
        raise InvalidInput(
            "--layout stepped-wedge needs --steps, --clusters-per-step, --icc and --cluster-size"
        )
    if r.kind == "count":
        raise InvalidInput(
            "--layout stepped-wedge plans continuous and binary outcomes (the Hussey-Hughes model)"
        )
    if r.mde is None:
        raise InvalidInput("--layout stepped-wedge gives the power for an effect: add --mde")
    for given, name in (
        (r.n, "--n"),
        (r.clusters, "--clusters"),
        (r.rho, "--rho"),
        (r.size_cv or None, "--size-cv"),
        (r.looks, "--looks"),
        (r.fractions, "--fractions"),
    ):
        if given is not None:
            raise InvalidInput(f"{name} does not apply to --layout stepped-wedge")
    if r.margin > 0 or r.ratio != 1.0 or r.test == "non-inferiority":
        raise InvalidInput("--layout stepped-wedge plans a superiority test with every cluster switching")
    if r.steps == 1:
        raise InvalidInput(
            "--steps must be at least 2: with one step every cluster switches at once, and the pilot "
            "effect cannot be told from the period's"
        )
    if not 2 <= r.steps <= MAX_LOOKS or not 1 <= r.clusters_per_step <= 1000:
        raise InvalidInput("--steps must be 2 to 20 and --clusters-per-step 1 to 1000")
    if r.cluster_size is not None and r.cluster_size != int(r.cluster_size):
        raise InvalidInput(
            f"--cluster-size must be a whole number of units per period, got {r.cluster_size:g}"
        )


def _stepped_wedge(r: PlanRequest) -> dict[str, Any]:
    """Return the power of a stepped wedge of ``steps`` steps (Hussey & Hughes 2007's closed form)."""
    from riskreg.stats.stepped import schedule_matrix, stepped_wedge_power

    switches = [step for step in range(1, r.steps + 1) for _ in range(r.clusters_per_step)]  # type: ignore[operator]
    periods = r.steps + 1  # type: ignore[operator]
    sd = r.sd if r.kind == "continuous" else math.sqrt(r.baseline * (1 - r.baseline))  # type: ignore[operator]
    found = _call(
        stepped_wedge_power,
        schedule_matrix(switches, periods),
        r.mde,
        sd,
        r.icc,
        int(r.cluster_size),
        r.alpha,  # type: ignore[arg-type]
    )
    needed = _clusters_per_step_needed(r, sd, periods)
    return {
        "kind": r.kind,
        "request": {k: v for k, v in vars(r).items() if v is not None},
        "test": "superiority",
        "stepped_wedge": {
            "target_power": r.power,
            "clusters_per_step_needed": needed,
            "clusters": len(switches),
            "periods": periods,
            "steps": r.steps,
            "clusters_per_step": r.clusters_per_step,
            "cell_size": int(r.cluster_size),  # type: ignore[arg-type]
            "units": len(switches) * periods * int(r.cluster_size),  # type: ignore[arg-type]
            "effect": r.mde,
            "sd": sd,
            "icc": r.icc,
            "se": found.se,
            "power": found.power,
            "design_effect": found.design_effect,
            "method": "Hussey & Hughes (2007) closed-form Var(θ̂), period fixed effects and a random cluster "
            "intercept, Wald z test (a t test on clusters − 2 df, safer with few clusters, has less power); "
            "one baseline period, then the clusters switch in equal groups"
            + (
                "; binary outcomes on the risk-difference scale with sd √(p(1 − p)) at the baseline"
                if r.kind == "binary"
                else ""
            ),
        },
    }


def _clusters_per_step_needed(r: PlanRequest, sd: float, periods: int) -> int | None:
    """Return the fewest clusters per step that give the target power with these steps, or None
    if even 1000 per step do not."""
    from riskreg.stats.stepped import schedule_matrix, stepped_wedge_power

    def power(per_step: int) -> float:
        switches = [step for step in range(1, periods) for _ in range(per_step)]
        schedule = schedule_matrix(switches, periods)
        return _call(stepped_wedge_power, schedule, r.mde, sd, r.icc, int(r.cluster_size), r.alpha).power  # type: ignore[arg-type]

    low, high = 1, 1000
    if power(high) < r.power:
        return None
    while low < high:  # the power grows with the clusters per step
        middle = (low + high) // 2
        if power(middle) >= r.power:
            high = middle
        else:
            low = middle + 1
    return low


def _test(r: PlanRequest) -> str:
    """Return the test asked for: as given, or non-inferiority exactly when a margin is given."""
    if r.test is not None:
        return r.test
    return "non-inferiority" if r.margin > 0 else "superiority"


def _effect(r: PlanRequest, test: str) -> float | None:
    """Return the true effect to plan for: --mde, or no difference for non-inferiority without one."""
    if r.mde is not None or test != "non-inferiority":
        return r.mde
    return 1.0 if r.kind == "count" else 0.0


def _fractions(r: PlanRequest) -> tuple[float, ...]:
    """Return the looks' information fractions: as given, or ``looks`` equal steps (one look by default)."""
    if r.fractions is not None:
        return tuple(r.fractions)
    k = r.looks or 1
    return tuple((i + 1) / k for i in range(k))


def _looks(p: Any, fractions: tuple[float, ...], alpha: float) -> dict[str, Any]:
    """Return the looks and their two-sided critical values (a single look: the fixed design's)."""
    from riskreg.stats.sequential import lan_demets_boundaries

    bounds = _call(lan_demets_boundaries, fractions, alpha)
    return {
        "count": len(fractions),
        "fractions": list(fractions),
        "z": list(bounds.z),
        "method": p.METHOD_SEQUENTIAL,
    }


def _call(function: Any, *args: Any) -> Any:
    """Call a stats function, turning its ValueError into the user's InvalidInput."""
    try:
        return function(*args)
    except ValueError as exc:
        raise InvalidInput(_in_options(str(exc))) from None


def _check(r: PlanRequest) -> None:
    if r.kind not in KINDS:
        raise InvalidInput(f"kind: expected one of {', '.join(KINDS)}, got {r.kind!r}")
    if r.test is not None and r.test not in TESTS:
        raise InvalidInput(f"--test: expected one of {', '.join(TESTS)}, got {r.test!r}")
    if r.better not in BETTER:
        raise InvalidInput(f"--better: expected higher or lower, got {r.better!r}")
    test = _test(r)
    if test == "non-inferiority" and not r.margin > 0:
        raise InvalidInput(f"non-inferiority: --margin is required ({_MARGIN_TEXT[r.kind]})")
    if test == "superiority" and r.margin > 0:
        raise InvalidInput("--margin applies only to --test non-inferiority")
    if r.mde is None and r.n is None and r.clusters is None and test == "superiority":
        raise InvalidInput("give --mde (the effect to detect) for a sample size, or --n for power and MDE")
    if r.kind == "continuous" and r.sd is None:
        raise InvalidInput("continuous: --sd (the outcome's standard deviation) is required")
    if r.kind in ("binary", "count") and r.baseline is None:
        raise InvalidInput(
            f"{r.kind}: --baseline ({'comparison proportion' if r.kind == 'binary' else 'comparison rate per unit of exposure'}) is required"
        )
    if r.kind == "binary" and r.mde is not None and not 0 < r.baseline + r.mde < 1:  # type: ignore[operator]
        raise InvalidInput(f"binary: baseline {r.baseline} + mde {r.mde} must stay between 0 and 1")
    _check_looks(r)


_MARGIN_TEXT = {
    "continuous": "the loss tolerated, in the outcome's units",
    "binary": "the loss tolerated, as a difference in proportions",
    "count": "the worse rate ratio tolerated, above 1",
}


def _check_looks(r: PlanRequest) -> None:
    if r.looks is not None and not 1 <= r.looks <= MAX_LOOKS:
        raise InvalidInput(f"--looks must be between 1 and {MAX_LOOKS}, got {r.looks}")
    if r.fractions is None:
        return
    fractions = list(r.fractions)
    shown = ",".join(f"{t:g}" for t in fractions)
    if not 1 <= len(fractions) <= MAX_LOOKS:
        raise InvalidInput(f"--fractions: give 1 to {MAX_LOOKS} information fractions, got {len(fractions)}")
    if r.looks is not None and r.looks != len(fractions):
        raise InvalidInput(f"--looks {r.looks} does not match the {len(fractions)} --fractions {shown}")
    increasing = all(0 < a < b for a, b in itertools.pairwise(fractions))
    if not (increasing and fractions[0] > 0 and fractions[-1] == 1):
        raise InvalidInput(f"--fractions must increase from above 0 to exactly 1, got {shown}")


def _size(p: Any, r: PlanRequest, effect: float) -> Any:
    try:
        if r.kind == "continuous":
            return p.size_continuous(effect, r.sd, r.alpha, r.power, r.ratio, r.margin, r.better)
        if r.kind == "binary":
            return p.size_binary(
                r.baseline, r.baseline + effect, r.alpha, r.power, r.ratio, r.margin, r.better
            )
        return p.size_count(r.baseline, effect, r.exposure, r.alpha, r.power, r.ratio, r.margin, r.better)
    except ValueError as exc:
        raise InvalidInput(_in_options(str(exc))) from None


def _power(p: Any, r: PlanRequest, effect: float, n_c: int, n_p: int) -> Any:
    try:
        if r.kind == "continuous":
            return p.power_continuous(n_c, n_p, effect, r.sd, r.alpha, r.margin, r.better)
        if r.kind == "binary":
            return p.power_binary(n_c, n_p, r.baseline, r.baseline + effect, r.alpha, r.margin, r.better)
        return p.power_count(n_c, n_p, r.baseline, effect, r.exposure, r.alpha, r.margin, r.better)
    except ValueError as exc:
        raise InvalidInput(_in_options(str(exc))) from None


def _mde(p: Any, r: PlanRequest, n_c: int, n_p: int) -> Any:
    try:
        if r.kind == "continuous":
            return p.mde_continuous(n_c, n_p, r.sd, r.alpha, r.power, r.margin, r.better)
        if r.kind == "binary":
            # the direction the user asks about (a decrease for a negative --mde), or for
            # non-inferiority the direction that is better
            down = r.better == "lower" if r.margin > 0 else r.mde is not None and r.mde < 0
            return p.mde_binary(n_c, n_p, r.baseline, r.alpha, r.power, down, r.margin)
        return p.mde_count(n_c, n_p, r.baseline, r.exposure, r.alpha, r.power, r.margin, r.better)
    except ValueError as exc:
        raise InvalidInput(_in_options(str(exc))) from None


# the stats functions' parameter names, as the options of `plan size` that feed them
OPTION_OF = {
    "delta": "--mde",
    "rate_ratio": "--mde",
    "p_comparison": "--baseline",
    "p_pilot": "--baseline plus --mde",
    "rate_comparison": "--baseline",
    "exposure_per_unit": "--exposure",
    "sd": "--sd",
    "margin": "--margin",
    "better": "--better",
    "fractions": "--fractions",
    "n_comparison": "--n",
    "n_pilot": "--n times --ratio",
}


def _in_options(message: str) -> str:
    """Return a stats error with its leading parameter name given as the option the user typed."""
    name, _, rest = message.partition(" ")
    return f"{OPTION_OF[name]} {rest}" if name in OPTION_OF else message


def plan_text(result: dict[str, Any]) -> str:
    """Return a plan as a few readable lines."""
    if "stepped_wedge" in result:
        return _stepped_text(result["stepped_wedge"])
    return "\n".join(part for part in [_plan_lines(result), *_design_lines(result)] if part)


def _stepped_text(sw: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"stepped wedge: {sw['clusters']} clusters over {sw['periods']} periods ({sw['steps']} steps of "
            f"{sw['clusters_per_step']}), {sw['cell_size']} units per cluster per period ({sw['units']:,} units)",
            f"power to detect an effect of {sw['effect']:g}: {sw['power']:.1%} (SE {sw['se']:.4g}; "
            f"ICC {sw['icc']:g}, sd {sw['sd']:.4g})",
            f"design effect against the same units randomised one by one: {sw['design_effect']:.3f}",
            (
                f"clusters per step for power {sw['target_power']:.0%} with {sw['steps']} steps: "
                f"{sw['clusters_per_step_needed']} ({sw['clusters_per_step_needed'] * sw['steps']} clusters)"
                if sw["clusters_per_step_needed"] is not None
                else f"power {sw['target_power']:.0%} needs more than 1000 clusters per step with {sw['steps']} steps"
            ),
            f"  method: {sw['method']}",
        ]
    )


def _design_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    gain = result.get("baseline_adjustment")
    if gain is not None:
        text = f"baseline correlation ρ = {gain['rho']:g}: variance × {gain['variance_factor']:.3f} (sd {gain['sd_adjusted']:.4g})"
        if "n_without_baseline" in gain:
            n_c, n_p = gain["n_without_baseline"]
            text += f"; without adjusting, {n_c} comparison + {n_p} pilot"
        lines.append(text)
    clusters = result.get("clusters")
    if clusters is not None:
        lines.extend(_cluster_lines(result, clusters))
    return lines


def _cluster_lines(result: dict[str, Any], clusters: dict[str, Any]) -> list[str]:
    """Return a cluster design's lines: its design effect, the clusters needed, and given clusters' power."""
    m = clusters["cluster_size"]
    lines = [
        f"clusters: design effect {clusters['design_effect']:.3f} (ICC {clusters['icc']:g}, "
        f"{m:g} units per cluster, size CV {clusters['size_cv']:g})"
    ]
    if "clusters_per_arm" in clusters:
        k_c, k_p = clusters["clusters_per_arm"]
        u_c, u_p = clusters["units_per_arm"]
        d_c, d_p = clusters["clusters_by_design_effect"]
        lines.append(
            f"  clusters needed: {k_c} comparison + {k_p} pilot ({u_c} + {u_p} units), for the t test on "
            f"the cluster summaries on {clusters['df']} df (⌈n·DE/m⌉ gives {d_c} + {d_p})"
        )
    given = clusters.get("given")
    if given is not None:
        k_c, k_p = given["clusters_per_arm"]
        e_c, e_p = given["effective_n_per_arm"]
        lines.append(
            f"  {k_c} + {k_p} clusters of {m:g} carry the information of {e_c:.1f} + {e_p:.1f} units "
            f"randomised one by one; the t test on their summaries has {given['df']} df"
        )
        looks = result.get("looks", {"count": 1})
        if "power" in given:
            text = f"  power with {k_c} + {k_p} clusters: {given['power']:.1%}"
            if looks["count"] > 1:
                text += f" (with {looks['count']} looks: {given['power_sequential']:.1%})"
            lines.append(text)
        what = (
            "true difference at which non-inferiority is shown"
            if result.get("test") == "non-inferiority"
            else "minimum detectable effect"
        )
        power = result["request"]["power"]
        lines.append(f"  {what} with {k_c} + {k_p} clusters (power {power:.0%}): {given['mde']:.4g}")
    lines.append(f"  method: {clusters['method']}")
    return lines


def _plan_lines(result: dict[str, Any]) -> str:
    """Return the individually randomised plan's lines."""
    lines = []
    ni = result.get("test") == "non-inferiority"
    count = result["kind"] == "count"
    looks = result.get("looks", {"count": 1})
    if "size" in result:
        size = result["size"]
        n_c, n_p = size["n_required"]
        lines.append(
            f"units needed: {n_c} comparison + {n_p} pilot (exact {size['n_per_arm'][0]:.2f} + {size['n_per_arm'][1]:.2f})"
        )
        if ni:
            assumptions = size["assumptions"]
            lines.append(
                f"  to show non-inferiority (margin {assumptions['margin']:g}{' as a rate ratio' if count else ''}, "
                f"{assumptions['better']} is better) with power {size['power']:.0%} if the true "
                f"{'rate ratio' if count else 'difference'} is {size['effect']:g}, "
                f"one-sided alpha {size['alpha'] / 2:g} (two-sided {size['alpha']:g})"
            )
        else:
            lines.append(
                f"  to detect {'a rate ratio of' if count else 'an effect of'} {size['effect']:g} with power {size['power']:.0%} at two-sided alpha {size['alpha']:g}"
            )
        lines.append(f"  method: {size['method']}")
        if looks["count"] > 1:
            n_c, n_p = result["n"]
            lines.append(
                f"with {looks['count']} looks at information {', '.join(f'{t:.3g}' for t in looks['fractions'])}: "
                f"{n_c} comparison + {n_p} pilot (inflation factor {result['inflation_factor']:.4f})"
            )
            lines.append(
                f"  boundaries |z| >= {', '.join(f'{z:.4f}' for z in looks['z'])}; {looks['method']}"
            )
    if "power_at_n" in result:
        lines.append(
            f"power with {result['request']['n']} units per arm: {result['power_at_n']['power']:.1%}"
        )
        if looks["count"] > 1:
            lines.append(f"  with {looks['count']} looks: {result['power_at_n_sequential']:.1%}")
    if "mde_at_n" in result:
        mde = result["mde_at_n"]
        if ni:
            what = f"true {'rate ratio' if count else 'difference'} at which non-inferiority is shown"
        else:
            what = "smallest detectable rate ratio" if count else "minimum detectable effect"
        lines.append(
            f"{what} with {result['request']['n']} units per arm (power {mde['power']:.0%}): {mde['effect']:.4g}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- a protocol's planned power


def _arm_sizes(n: int, allocation: tuple[float, float]) -> tuple[int, int]:
    """Return (comparison, pilot) units when the smaller arm has n (planned_n is per arm, smallest arm)."""
    a_c, a_p = allocation
    small = min(a_c, a_p)
    return (round(n * a_c / small), round(n * a_p / small))


def protocol_power(protocol: Protocol, exposure_per_unit: float | None = None) -> dict[str, Any] | None:
    """Return the power the planned final n gives the primary metric under the protocol's own assumptions.

    The last stage's ``planned_n`` units per arm (the smaller arm when the allocation is
    unequal), analysed at every stage's planned n against the two-sided Lan–DeMets
    O'Brien–Fleming boundaries, as ``pilot analyse`` does.  Only a non-inferiority
    primary metric states everything a power needs: its margin, its sd (continuous) or
    baseline (binary, count), and a true difference of 0 (rate ratio 1).  None when the
    protocol does not say enough: superiority or equivalence (no effect is assumed), a
    missing sd or baseline, or a count metric without ``exposure_per_unit`` (protocols
    give a rate per unit of exposure, not the exposure each unit has).

    The result has the power at the planned n (``power``; ``power_fixed`` for a single
    analysis at the end), the stated target, and the units per arm ``plan size`` suggests
    for the target with the same looks (``n_suggested``).
    """
    metric, design = protocol.primary, protocol.design
    final = protocol.stages[-1].planned_n
    n_c, n_p = _arm_sizes(final, design.allocation)
    exposure = exposure_per_unit
    # What the protocol states, checked before scipy loads: a protocol that cannot be
    # powered (the usual superiority primary) costs `pilot register` no scipy import.
    stated = {
        "continuous": metric.sd is not None and min(n_c, n_p) >= 2,
        "binary": metric.baseline is not None,
        "count": metric.baseline is not None and exposure is not None,
    }[metric.kind]
    if metric.test != "non-inferiority" or metric.margin is None or not stated or design.stepped:
        return None  # a stepped wedge's power is its schedule's: `plan size --layout stepped-wedge`
    from riskreg.stats import power as p

    inflation = 1.0  # a cluster design's units carry 1/DE of their number in information
    if design.clustered:
        from riskreg.stats.clusters import design_effect

        inflation = design_effect(design.cluster_size, design.icc)  # type: ignore[arg-type]
    planned_n = (n_c, n_p)
    n_c, n_p = (max(2, math.floor(n / inflation + 1e-9)) for n in planned_n)

    fractions = [stage.planned_n / final for stage in protocol.stages]
    fractions[-1] = 1.0  # exactly, whatever the division gave
    ratio = n_p / n_c
    alpha, target, margin, better = design.alpha, design.power, metric.margin, metric.better
    assumptions: dict[str, Any] = {"margin": margin, "better": better}
    b = metric.baseline
    try:
        if metric.kind == "continuous":
            fixed = p.power_continuous(n_c, n_p, 0.0, metric.sd, alpha, margin, better)
            size = p.size_continuous(0.0, metric.sd, alpha, target, ratio, margin, better)
            assumptions |= {"sd": metric.sd, "difference": 0.0}
        elif metric.kind == "binary":
            fixed = p.power_binary(n_c, n_p, b, b, alpha, margin, better)
            size = p.size_binary(b, b, alpha, target, ratio, margin, better)
            assumptions |= {"baseline": b, "difference": 0.0}
        else:
            fixed = p.power_count(n_c, n_p, b, 1.0, exposure, alpha, margin, better)
            size = p.size_count(b, 1.0, exposure, alpha, target, ratio, margin, better)
            assumptions |= {"baseline": b, "exposure_per_unit": exposure, "rate_ratio": 1.0}
        achieved = p.sequential_power(fractions, alpha, fixed.power)
        factor = p.inflation_factor(fractions, alpha, target)
    except ValueError:
        return None  # a protocol the planning formulas cannot take (e.g. a power of 1)
    suggested = [math.ceil(n * factor * inflation - 1e-9) for n in size.n_per_arm]
    if design.clustered:
        assumptions |= {"design_effect": inflation, "icc": design.icc, "cluster_size": design.cluster_size}
    return {
        "metric": metric.name,
        "kind": metric.kind,
        "test": metric.test,
        "assumptions": assumptions,
        "stages": [stage.name for stage in protocol.stages],
        "fractions": fractions,
        "n_per_arm": list(planned_n),
        "alpha": alpha,
        "target": target,
        "power": achieved,
        "power_fixed": fixed.power,
        "inflation_factor": factor,
        "n_suggested": suggested,
        "method": fixed.method,
    }


def power_warning(protocol: Protocol, exposure_per_unit: float | None = None) -> str | None:
    """Return a one-line warning when the planned final n gives less than the protocol's stated power.

    None when the power reaches the target or cannot be computed (see ``protocol_power``).
    """
    result = protocol_power(protocol, exposure_per_unit)
    if result is None or result["power"] >= result["target"]:
        return None
    a = result["assumptions"]
    n_c, n_p = result["n_per_arm"]
    s_c, s_p = result["n_suggested"]
    planned = f"{n_c} per arm" if n_c == n_p else f"{n_c} comparison + {n_p} pilot"
    suggested = f"{s_c} per arm" if s_c == s_p else f"{s_c} comparison + {s_p} pilot"
    if result["kind"] == "continuous":
        given = f"margin {a['margin']:g} and sd {a['sd']:g}"
    elif result["kind"] == "binary":
        given = f"margin {a['margin']:g} and baseline {a['baseline']:g}"
    else:
        given = f"rate-ratio margin {a['margin']:g}, baseline rate {a['baseline']:g} and exposure {a['exposure_per_unit']:g} per unit"
    looks = len(result["fractions"])
    at = f" with {looks} looks" if looks > 1 else ""
    return (
        f"the planned final n of {planned} gives {_percent(result['power'])} power{at} "
        f"(below the stated {_percent(result['target'])}) to show non-inferiority of {result['metric']} "
        f"with {given}; plan size suggests {suggested}"
    )


def _percent(value: float) -> str:
    """Return a power as a whole percentage, rounded down so a shortfall never shows as the target."""
    # the 1e-9 absorbs binary fractions: 0.29 * 100 is 28.999999999999996
    return f"{math.floor(value * 100 + 1e-9)}%"
