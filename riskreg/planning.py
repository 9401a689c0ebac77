"""`plan size`: units a stage needs, and the power and minimum detectable effect a size gives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from riskreg.errors import InvalidInput

KINDS = ("continuous", "binary", "count")


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
    margin: float = 0.0  # non-inferiority margin (continuous)
    n: int | None = None  # units per arm already planned or recruited


def plan(request: PlanRequest) -> dict[str, Any]:
    """Return the required size (when an effect is given) and, for a given n, power and MDE."""
    _check(request)
    from riskreg.stats import power as p

    result: dict[str, Any] = {
        "kind": request.kind,
        "request": {k: v for k, v in vars(request).items() if v is not None},
    }
    if request.mde is not None:
        result["size"] = _size(p, request).to_dict()
    if request.n is not None:
        n_c, n_p = request.n, max(2, round(request.n * request.ratio))
        if request.mde is not None:
            result["power_at_n"] = _power(p, request, n_c, n_p).to_dict()
        result["mde_at_n"] = _mde(p, request, n_c, n_p).to_dict()
    return result


def _check(r: PlanRequest) -> None:
    if r.kind not in KINDS:
        raise InvalidInput(f"kind: expected one of {', '.join(KINDS)}, got {r.kind!r}")
    if r.mde is None and r.n is None:
        raise InvalidInput("give --mde (the effect to detect) for a sample size, or --n for power and MDE")
    if r.kind == "continuous" and r.sd is None:
        raise InvalidInput("continuous: --sd (the outcome's standard deviation) is required")
    if r.kind in ("binary", "count") and r.baseline is None:
        raise InvalidInput(
            f"{r.kind}: --baseline ({'comparison proportion' if r.kind == 'binary' else 'comparison rate per unit of exposure'}) is required"
        )
    if r.kind == "binary" and r.mde is not None and not 0 < r.baseline + r.mde < 1:  # type: ignore[operator]
        raise InvalidInput(f"binary: baseline {r.baseline} + mde {r.mde} must stay between 0 and 1")


def _size(p: Any, r: PlanRequest) -> Any:
    try:
        if r.kind == "continuous":
            return p.size_continuous(r.mde, r.sd, r.alpha, r.power, r.ratio, r.margin)
        if r.kind == "binary":
            return p.size_binary(r.baseline, r.baseline + r.mde, r.alpha, r.power, r.ratio)
        return p.size_count(r.baseline, r.mde, r.exposure, r.alpha, r.power, r.ratio)
    except ValueError as exc:
        raise InvalidInput(_in_options(str(exc))) from None


def _power(p: Any, r: PlanRequest, n_c: int, n_p: int) -> Any:
    try:
        if r.kind == "continuous":
            return p.power_continuous(n_c, n_p, r.mde, r.sd, r.alpha, r.margin)
        if r.kind == "binary":
            return p.power_binary(n_c, n_p, r.baseline, r.baseline + r.mde, r.alpha)
        return p.power_count(n_c, n_p, r.baseline, r.mde, r.exposure, r.alpha)
    except ValueError as exc:
        raise InvalidInput(_in_options(str(exc))) from None


def _mde(p: Any, r: PlanRequest, n_c: int, n_p: int) -> Any:
    try:
        if r.kind == "continuous":
            return p.mde_continuous(n_c, n_p, r.sd, r.alpha, r.power, r.margin)
        if r.kind == "binary":
            # the direction the user asks about (a decrease for a negative --mde)
            return p.mde_binary(n_c, n_p, r.baseline, r.alpha, r.power, r.mde is not None and r.mde < 0)
        return p.mde_count(n_c, n_p, r.baseline, r.exposure, r.alpha, r.power)
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
    "n_comparison": "--n",
    "n_pilot": "--n times --ratio",
}


def _in_options(message: str) -> str:
    """Return a stats error with its leading parameter name given as the option the user typed."""
    name, _, rest = message.partition(" ")
    return f"{OPTION_OF[name]} {rest}" if name in OPTION_OF else message


def plan_text(result: dict[str, Any]) -> str:
    """Return a plan as a few readable lines."""
    lines = []
    if "size" in result:
        size = result["size"]
        n_c, n_p = size["n_required"]
        lines.append(
            f"units needed: {n_c} comparison + {n_p} pilot (exact {size['n_per_arm'][0]:.2f} + {size['n_per_arm'][1]:.2f})"
        )
        lines.append(
            f"  to detect {'a rate ratio of' if result['kind'] == 'count' else 'an effect of'} {size['effect']:g} with power {size['power']:.0%} at two-sided alpha {size['alpha']:g}"
        )
        lines.append(f"  method: {size['method']}")
    if "power_at_n" in result:
        lines.append(
            f"power with {result['request']['n']} units per arm: {result['power_at_n']['power']:.1%}"
        )
    if "mde_at_n" in result:
        mde = result["mde_at_n"]
        what = "smallest detectable rate ratio" if result["kind"] == "count" else "minimum detectable effect"
        lines.append(
            f"{what} with {result['request']['n']} units per arm (power {mde['power']:.0%}): {mde['effect']:.4g}"
        )
    return "\n".join(lines)
