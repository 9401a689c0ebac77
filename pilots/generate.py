"""Generate the example pilot data in ``pilots/data/`` (synthetic, seeded, deterministic).

Run ``python pilots/generate.py`` from anywhere; it rewrites every file in ``pilots/data/``
and prints a summary by pilot, stage and arm. Standard library only. The numbers are made up
but plausible; these are the assumed effects (true values) the data are drawn from. A sample
differs from them by chance, so the seed was picked, from 100 consecutive ones, as one whose
sample tells the intended story; a different seed may not.

hospital-befriending (co-design and co-delivery), 1:1 randomised at discharge planning,
62 people per arm at feasibility and 160 more per arm at the extended stage (222 per arm in
all, allowing for loss to follow-up against planned_n = 200):
  * wellbeing (WEMWBS, 14-70, primary): comparison mean 44, pilot mean 45 (+1), sd 8,
    whole numbers. Non-inferiority (margin 3) should not be shown at feasibility, where the
    O'Brien-Fleming-type boundary is strict, and should be clearly shown at extended.
  * loneliness (UCLA-3, 3-9): comparison mean 6.0, pilot 5.6, sd 1.8, whole numbers.
  * readmitted_30d: comparison 18 %, pilot 14 %.
  * safeguarding_incidents: 0.02 concerns per person-week in both arms; follow-up is
    8 weeks, shorter for about 1 in 10 people (death, moves into residential care).
  * questionnaire not returned at 8 weeks (wellbeing and loneliness both missing): 8 % at
    feasibility, 4 % at extended; loneliness item missing alone 1 %; readmission unknown
    1 % (moved out of area). Missing values are written as empty or NA, about 3 % of rows.
  Intended story: feasibility criteria green (recruitment 62 per arm, retention about 0.92)
  but the primary is inconclusive at that look ("continue"); at extended every criterion
  is green, non-inferiority is shown and there is no harm ("proceed").

housing-repairs (co-assessment), repair jobs randomised 1:1 when raised, feasibility only:
  * 80 jobs per arm randomised; 16 pilot-arm jobs dropped before the inspection because no
    co-assessor could be arranged or the resident declined, so the pilot arm has 64.
  * repair_right_first_time (primary): comparison 72 %, pilot 78 %; the 4-week follow-up
    check (which records it) is done for 62 % of comparison and 46 % of pilot jobs.
  * days_to_complete: gamma-distributed, comparison mean 14 (sd 9), pilot mean 16 (joint
    visits take longer to arrange); 3 % missing (job still open).
  * complaints: 0.04 per household-month in the comparison arm, 0.10 in the pilot arm;
    exposure = months from the report to the 4-week check.
  Intended story: recruitment amber (64 in the smallest arm), retention red (0.535 here),
  complaints higher in the pilot arm, so the pilot must not proceed ("stop").

community-hubs (co-delivery), cluster-randomised: 14 community hubs, 7 per arm, 10
residents a hub at feasibility and 15 more at the main stage:
  * financial_wellbeing (0-100, primary): 52 in the comparison arm, +6 in the pilot arm;
    each hub's own level varies with sd 3 (ICC about 0.06), residents' with sd 12 about it;
    half of that spread is predicted by the score at referral (correlation 0.7).
  * financial_wellbeing_at_referral: recorded for about 95 % of residents.
  * claim_awarded: 45 % in the comparison arm, 55 % in the pilot arm.
  Intended story: at feasibility the hubs' results are too few to judge ("proceed" on
  recruitment alone); at main the cluster-level test shows superiority ("proceed"), and
  the design effect shows why an analysis of residents as if randomised one by one would
  have overstated the evidence.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

# Chosen from 100 consecutive seeds so that this sample tells the intended story (see above).
SEED = 20240607
DATA = Path(__file__).resolve().parent / "data"
ARMS = ("comparison", "pilot")


@dataclass
class Unit:
    """One randomised unit with its outcome values (None = missing) and count exposure."""

    unit_id: str
    arm: str
    site: str = ""
    values: dict[str, float | None] = field(default_factory=dict)
    exposure: float = 0.0


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method; fine for the small means used here."""
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def randomise(rng: random.Random, per_arm: int, first: int, prefix: str) -> list[Unit]:
    """Equal numbers per arm in random order, numbered from ``first``."""
    arms = [arm for arm in ARMS for _ in range(per_arm)]
    rng.shuffle(arms)
    return [Unit(f"{prefix}-{first + i:04d}", arm) for i, arm in enumerate(arms)]


def clip_round(value: float, low: int, high: int) -> int:
    return min(high, max(low, round(value)))


def missing_token(rng: random.Random) -> str:
    return rng.choice(("", "NA"))


# --- hospital befriending ----------------------------------------------------------------------

BEFRIENDING_SITES = ("riverside", "northgate", "valley")


def befriending_units(rng: random.Random, per_arm: int, first: int, lost: float) -> list[Unit]:
    """Draw one stage's units; ``lost`` is the share not returning the 8-week questionnaire."""
    units = randomise(rng, per_arm, first, "HB")
    for unit in units:
        pilot = unit.arm == "pilot"
        unit.site = rng.choice(BEFRIENDING_SITES)
        returned = rng.random() >= lost
        wellbeing = clip_round(rng.gauss(45.0 if pilot else 44.0, 8.0), 14, 70)
        loneliness = clip_round(rng.gauss(5.6 if pilot else 6.0, 1.8), 3, 9)
        readmitted = int(rng.random() < (0.14 if pilot else 0.18))
        unit.exposure = 8.0 if rng.random() >= 0.1 else round(rng.uniform(1.0, 7.9), 1)
        unit.values = {
            "wellbeing": wellbeing if returned else None,
            "readmitted_30d": readmitted if rng.random() >= 0.01 else None,
            "loneliness": loneliness if returned and rng.random() >= 0.01 else None,
            "safeguarding_incidents": poisson(rng, 0.02 * unit.exposure),
        }
    return units


def write_long(path: Path, units: Iterable[Unit], count_metric: str, rng: random.Random) -> None:
    """Long form ``unit_id,arm,metric,value,exposure[,site]``; exposure only on count rows."""
    units = list(units)
    sites = any(unit.site for unit in units)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("unit_id", "arm", "metric", "value", "exposure", *(("site",) if sites else ())))
        for unit in units:
            for metric, value in unit.values.items():
                shown = missing_token(rng) if value is None else fmt(value)
                exposure = fmt(unit.exposure) if metric == count_metric else ""
                row = (unit.unit_id, unit.arm, metric, shown, exposure)
                writer.writerow((*row, unit.site) if sites else row)


# --- housing repairs ---------------------------------------------------------------------------


def housing_units(rng: random.Random) -> list[Unit]:
    units = randomise(rng, 80, 1, "JOB")
    dropped = set(rng.sample([u.unit_id for u in units if u.arm == "pilot"], 16))
    units = [u for u in units if u.unit_id not in dropped]
    for unit in units:
        pilot = unit.arm == "pilot"
        checked = rng.random() < (0.46 if pilot else 0.62)
        right = int(rng.random() < (0.78 if pilot else 0.72))
        mean = 16.0 if pilot else 14.0
        shape = (14.0 / 9.0) ** 2  # the same spread in both arms: sd = mean / sqrt(shape)
        days = max(1, round(rng.gammavariate(shape, mean / shape)))
        unit.exposure = round((days + 28) / 30.4, 2)
        unit.values = {
            "repair_right_first_time": right if checked else None,
            "days_to_complete": days if rng.random() >= 0.03 else None,
            "complaints": poisson(rng, (0.10 if pilot else 0.04) * unit.exposure),
        }
    return units


def write_wide(path: Path, units: Iterable[Unit], metrics: tuple[str, ...], rng: random.Random) -> None:
    """Wide form ``unit_id;arm;<metric>...``, semicolon-separated, UTF-8 with a BOM.

    Binary values are written as yes/no to exercise that spelling.
    """
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=";", lineterminator="\n")
        writer.writerow(("unit_id", "arm", *metrics))
        for unit in units:
            cells = [unit.values[m] for m in metrics]
            shown = [
                missing_token(rng) if v is None else yes_no(v) if i == 0 else fmt(v)
                for i, v in enumerate(cells)
            ]
            writer.writerow((unit.unit_id, unit.arm, *shown))


def yes_no(value: float) -> str:
    return "yes" if value else "no"


# --- resources ---------------------------------------------------------------------------------

RESOURCE_HEADER = ("stage", "side", "kind", "hours", "amount", "arm", "note")


def befriending_resources(stages: dict[str, list[Unit]]) -> list[tuple]:
    """Public and citizen inputs per stage; volunteer hours carry no amount (valued later)."""
    rows: list[tuple] = []
    for stage, units in stages.items():
        n = sum(1 for u in units if u.arm == "pilot")
        volunteers = 18 if stage == "feasibility" else 30
        calls = 6 * 0.5 * n
        coordinator = 0.4 * 37 * (12 if stage == "feasibility" else 20)
        rows += [
            (stage, "public", "staff_time", calls, calls * 31.50, "comparison",
             "Welfare calls by social care assessors: 6 x 30 min per person at £31.50/h with on-costs"),
            (stage, "public", "staff_time", coordinator, coordinator * 28.40, "pilot",
             "Volunteer coordinator, 0.4 FTE at £28.40/h with on-costs"),
            (stage, "public", "training", 15, 1250.00, "pilot",
             f"Befriending and safeguarding training for {volunteers} volunteers (external trainer)"),
            (stage, "public", "expenses", None, n * 9.80, "pilot", "Volunteer mileage reimbursed at 45p a mile"),
            (stage, "citizen", "volunteer_time", 8 * 1.25 * n, None, "pilot",
             "Befriending visits and calls: 8 weeks x 75 min per person"),
            (stage, "citizen", "training", volunteers * 12, None, "pilot",
             "Volunteers' own time in training (12 h each)"),
            (stage, "citizen", "expenses", None, n * 2.90, "pilot",
             "Volunteers' unclaimed costs (phone, parking, refreshments), from the volunteer survey"),
        ]  # fmt: skip
    rows += [
        ("feasibility", "citizen", "volunteer_time", 9 * 3 * 2.5, None, None,
         "Co-design workshops: 9 people recently discharged or carers, 3 x 2.5 h"),
        ("feasibility", "public", "staff_time", 30, 30 * 31.50, None, "Facilitating the co-design workshops"),
    ]  # fmt: skip
    return rows


def housing_resources(units: list[Unit]) -> list[tuple]:
    n = {arm: sum(1 for u in units if u.arm == arm) for arm in ARMS}
    stage = "feasibility"
    return [
        (stage, "public", "staff_time", n["comparison"] * 1.5, n["comparison"] * 1.5 * 34.20, "comparison",
         "Surveyor inspections: 1.5 h per job at £34.20/h with on-costs"),
        (stage, "public", "staff_time", n["pilot"] * 1.75, n["pilot"] * 1.75 * 34.20, "pilot",
         "Joint surveyor and co-assessor inspections: 1.75 h per job"),
        (stage, "public", "staff_time", 90, 90 * 27.10, "pilot",
         "Tenant engagement officer recruiting and scheduling co-assessors"),
        (stage, "public", "training", 7, 1400.00, "pilot", "One-day co-assessor course for 12 residents"),
        (stage, "public", "expenses", None, n["pilot"] * 15.00, "pilot", "£15 thank-you voucher per inspection"),
        (stage, "citizen", "volunteer_time", n["pilot"] * 2.0, None, "pilot",
         "Co-assessors' inspection time including travel: 2 h per job"),
        (stage, "citizen", "training", 12 * 7, None, "pilot", "Co-assessors' own time on the course"),
        (stage, "citizen", "expenses", None, 64.50, "pilot", "Co-assessors' unreimbursed bus fares"),
    ]  # fmt: skip


def write_resources(path: Path, rows: list[tuple]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(RESOURCE_HEADER)
        for stage, side, kind, hours, amount, arm, note in rows:
            money = "" if amount is None else f"{amount:.2f}"
            writer.writerow((stage, side, kind, "" if hours is None else fmt(hours), money, arm or "", note))


# --- summary -----------------------------------------------------------------------------------


def write_workbook(source: Path, target: Path, sheet: str = "Complaints") -> None:
    """Write a CSV file's rows as a one-sheet workbook: numbers as numbers, missing values as empty cells."""
    import csv
    import datetime

    from openpyxl import Workbook

    def cell(text: str) -> object:
        if text in ("", "NA"):
            return None
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    book = Workbook()
    # fixed times, so that each run writes the same bytes
    book.properties.created = book.properties.modified = datetime.datetime(2025, 1, 1)
    book.active.title = sheet
    with source.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    book.active.append(rows[0])
    book.active.freeze_panes = "A2"
    for row in rows[1:]:
        book.active.append([cell(text) for text in row])
    book.save(target)


def fmt(value: float) -> str:
    """Numbers as written in the files: whole numbers without a decimal point."""
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def summarise(title: str, units: list[Unit], primary: str, count: str) -> None:
    print(f"{title}")
    recruited = {arm: sum(1 for u in units if u.arm == arm) for arm in ARMS}
    retained = sum(1 for u in units if u.values[primary] is not None)
    print(f"  units per arm {recruited}, retention {retained / len(units):.3f}")
    for metric in units[0].values:
        line = []
        for arm in ARMS:
            group = [u for u in units if u.arm == arm]
            values = [u.values[metric] for u in group if u.values[metric] is not None]
            if metric == count:
                exposure = sum(u.exposure for u in group)
                line.append(f"{arm} {sum(values)} events / {exposure:.1f} = {sum(values) / exposure:.4f}")
            else:
                line.append(f"{arm} n={len(values)} mean {sum(values) / len(values):.3f}")
        print(f"  {metric:24} " + "; ".join(line))


def befriending_stages(seed: int) -> dict[str, list[Unit]]:
    rng = random.Random(f"{seed}-hospital-befriending")
    feasibility = befriending_units(rng, 62, 1, lost=0.08)
    extended = befriending_units(rng, 160, len(feasibility) + 1, lost=0.04)
    return {"feasibility": feasibility, "extended": extended}


def housing_jobs(seed: int) -> list[Unit]:
    return housing_units(random.Random(f"{seed}-housing-repairs"))


HUBS = (
    "Northgate Library hub",
    "St Anne's Community Centre",
    "Riverside Family Hub",
    "Moorside Tenants' Hall",
    "Canal Street Youth and Community Centre",
    "Oakfield Children's Centre",
    "Harbour View Neighbourhood Hub",
    "Eastfield Methodist Church Hall",
    "Brook Lane Sports Pavilion",
    "Market Square Advice Point",
    "Hillcrest Estate Community Flat",
    "Victoria Park Bowls Club",
    "Westbrook Mosque Community Room",
    "Old Fire Station Arts Hub",
)


def hub_residents(seed: int) -> dict[str, list[dict[str, str]]]:
    """Rows of the community-hubs pilot by stage: hubs alternate between the arms."""
    rng = random.Random(f"{seed}-community-hubs")
    level = {hub: rng.gauss(0, 3) for hub in HUBS}
    stages: dict[str, list[dict[str, str]]] = {"feasibility": [], "main": []}
    for stage, (first, count) in {"feasibility": (0, 10), "main": (10, 15)}.items():
        for h, hub in enumerate(HUBS):
            arm = "pilot" if h % 2 else "comparison"
            for k in range(first, first + count):
                at_referral = rng.gauss(45, 12)
                outcome = 52 + (6 if arm == "pilot" else 0) + level[hub] + 0.7 * (at_referral - 45)
                outcome += rng.gauss(0, 12 * math.sqrt(1 - 0.7**2))
                awarded = rng.random() < (0.55 if arm == "pilot" else 0.45)
                stages[stage].append(
                    {
                        "resident": f"CH{h + 1:02d}-{k + 1:03d}",
                        "arm": arm,
                        "hub": hub,
                        "financial_wellbeing": str(clip_round(outcome, 0, 100)),
                        "financial_wellbeing_at_referral": ""
                        if rng.random() < 0.05
                        else str(clip_round(at_referral, 0, 100)),
                        "claim_awarded": "yes" if awarded else "no",
                    }
                )
    return stages


def write_hubs(seed: int) -> None:
    """Write the community-hubs stage files (wide form, the council's column names)."""
    for stage, rows in hub_residents(seed).items():
        with open(DATA / f"community-hubs-{stage}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


def main(seed: int = SEED) -> None:
    DATA.mkdir(exist_ok=True)
    tokens = random.Random(f"{seed}-missing")  # chooses "" or "NA" for each missing value
    stages = befriending_stages(seed)
    for stage, units in stages.items():
        write_long(DATA / f"hospital-befriending-{stage}.csv", units, "safeguarding_incidents", tokens)
    write_resources(DATA / "hospital-befriending-resources.csv", befriending_resources(stages))

    housing = housing_jobs(seed)
    wide = ("repair_right_first_time", "days_to_complete")
    write_wide(DATA / "housing-repairs-feasibility.csv", housing, wide, tokens)
    # The wide form has no exposure column, so the count metric goes in a long-form file.
    complaints = [Unit(u.unit_id, u.arm, values={"complaints": u.values["complaints"]}) for u in housing]
    for unit, source in zip(complaints, housing, strict=True):
        unit.exposure = source.exposure
    write_long(DATA / "housing-repairs-feasibility-complaints.csv", complaints, "complaints", tokens)
    # the same rows as an Excel workbook, which the demo imports (the CSV stays for the tests)
    write_workbook(
        DATA / "housing-repairs-feasibility-complaints.csv",
        DATA / "housing-repairs-feasibility-complaints.xlsx",
    )
    write_resources(DATA / "housing-repairs-resources.csv", housing_resources(housing))

    befriending = ("wellbeing", "safeguarding_incidents")
    summarise("hospital-befriending feasibility", stages["feasibility"], *befriending)
    summarise("hospital-befriending extended (stage file)", stages["extended"], *befriending)
    summarise(
        "hospital-befriending extended (cumulative)", stages["feasibility"] + stages["extended"], *befriending
    )
    summarise("housing-repairs feasibility", housing, "repair_right_first_time", "complaints")
    write_hubs(seed)


if __name__ == "__main__":
    main()
