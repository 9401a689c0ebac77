"""``riskreg pilot ...``: staged pilots from registration to gate decisions."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from riskreg.cli.output import emit, fields, json_option, table
from riskreg.vocab import DECISIONS


@click.group("pilot")
def pilot_group() -> None:
    """Register pilot protocols, load their data and record gate decisions.

    \b
    Example:
      riskreg pilot register pilots/hospital-befriending.toml
      riskreg pilot data P-1 pilots/data/hospital-befriending-feasibility.csv --stage feasibility
      riskreg pilot analyse P-1
      riskreg pilot gate P-1 --decision continue --reason "retention amber; keep recruiting"
    """


def _pilot_text(p: dict[str, Any]) -> str:
    lines = fields(
        [
            ("id", f"{p['id']} ({p['key']}), version {p['version']}"),
            ("title", p["title"]),
            ("status", p["status"]),
            (
                "stage",
                f"{p['stage']} ({p['stage_index'] + 1} of {len(p['stages'])}: {' → '.join(p['stages'])})",
            ),
            ("modes", ", ".join(p["modes"])),
            ("owner", p["owner"] or ""),
            ("risks", ", ".join(p["risks"]) or "(none linked)"),
            ("protocol", f"sha256 {p['protocol_sha256']}, {p['amendments']} amendment(s)"),
        ]
    )
    if "protocol" in p:
        proto = p["protocol"]
        lines += f"\nhypothesis: {proto['hypothesis']}\n\nmetrics:\n" + table(
            ("NAME", "KIND", "ROLE", "BETTER", "TEST", "MARGIN"),
            [
                (m["name"], m["kind"], m["role"], m["better"], m["test"], m["margin"])
                for m in proto["metrics"]
            ],
        )
        lines += "\n\nstages:\n" + table(
            ("STAGE", "PLANNED N", "EVIDENCE", "CRITERIA"),
            [
                (
                    s["name"],
                    s["planned_n"],
                    s["evidence_level"],
                    "; ".join(
                        f"{c['name']} green ≥ {c['green']:g}, red < {c['red']:g}" for c in s["criteria"]
                    ),
                )
                for s in proto["stages"]
            ],
        )
        data = [
            (metric, arm, c["n"], c["missing"])
            for metric, arms in p["data"].items()
            for arm, c in arms.items()
        ]
        lines += "\n\ndata so far (cumulative):\n" + table(("METRIC", "ARM", "N", "MISSING"), data)
        if p["imports"]:
            lines += "\n\ndata files:\n" + table(
                ("AT", "BY", "KIND", "STAGE", "ROWS", "MISSING", "REPLACED", "FILE"),
                [
                    (
                        i["at"],
                        i["actor"],
                        i["kind"],
                        i["stage"],
                        i["rows"],
                        i["missing"],
                        i["replaced"],
                        i["file"],
                    )
                    for i in p["imports"]
                ],
            )
        if p["decisions"]:
            lines += "\n\ngate decisions:\n" + table(
                ("STAGE", "DECISION", "BY", "AT", "REASON"),
                [
                    (
                        d["stage"],
                        d["decision"] + (" (override)" if d["override"] else ""),
                        d["actor"],
                        d["at"],
                        d["reason"],
                    )
                    for d in p["decisions"]
                ],
            )
        for v in p["protocol_versions"][1:]:
            lines += f"\namendment {v['number'] - 1}: {v['at']} by {v['actor']}{' (after data arrived)' if v['after_data'] else ''}: {v['reason']}"
    return lines


@pilot_group.command("register")
@click.argument("protocol_file", type=click.Path(dir_okay=False))
@click.option(
    "--amend", is_flag=True, help="Record a changed protocol of a registered pilot as an amendment."
)
@click.option("--reason", help="Why the protocol changed (required with --amend).")
@json_option
@click.pass_obj
def pilot_register(app, protocol_file: str, amend: bool, reason: str | None, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Register a pilot protocol (TOML); its text and SHA-256 are frozen.

    \b
    Example:
      riskreg pilot register pilots/hospital-befriending.toml
      riskreg pilot register pilots/hospital-befriending.toml --amend \\
          --reason "Added loneliness as a secondary metric"
    """
    from riskreg.pilots import pilot_to_dict, register_pilot

    if reason and not amend:
        raise click.UsageError("--reason goes with --amend")
    ctx = app.context()
    with app.database().write() as session:
        result = register_pilot(session, ctx, protocol_file, amend, reason)
        data = {
            **pilot_to_dict(session, result.pilot),
            "amendment": result.amendment,
            "amended_after_data": result.after_data,
            "warnings": list(result.warnings),
        }

    def text(d: dict[str, Any]) -> str:
        warnings = "".join(f"\nwarning: {w}" for w in d["warnings"])
        if d["amendment"] is None:
            return f"registered {d['id']} ({d['key']}): {d['title']}; stage {d['stage']}{warnings}"
        late = " — made after data arrived; QA will flag it" if d["amended_after_data"] else ""
        return f"recorded amendment {d['amendment']} of {d['id']} ({d['key']}){late}{warnings}"

    emit(data, as_json, text)


@pilot_group.command("list")
@json_option
@click.pass_obj
def pilot_list(app, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """List pilots with their stage and status.

    \b
    Example:
      riskreg pilot list
    """
    from riskreg.pilots import list_pilots, pilot_to_dict

    with app.database().read() as session:
        data = [pilot_to_dict(session, p) for p in list_pilots(session)]

    def text(rows: list[dict[str, Any]]) -> str:
        if not rows:
            return "no pilots registered"
        return table(
            ("ID", "KEY", "STATUS", "STAGE", "RISKS", "TITLE"),
            [(p["id"], p["key"], p["status"], p["stage"], ", ".join(p["risks"]), p["title"]) for p in rows],
        )

    emit(data, as_json, text)


@pilot_group.command("show")
@click.argument("pilot_id")
@json_option
@click.pass_obj
def pilot_show(app, pilot_id: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Show a pilot: protocol summary, data so far, amendments and gate decisions.

    \b
    Example:
      riskreg pilot show P-1
    """
    from riskreg.pilots import get_pilot, pilot_to_dict

    with app.database().read() as session:
        data = pilot_to_dict(session, get_pilot(session, pilot_id), detail=True)
    emit(data, as_json, _pilot_text)


@pilot_group.command("link")
@click.argument("pilot_id")
@click.argument("risk_ids", nargs=-1, required=True)
@json_option
@click.pass_obj
def pilot_link(app, pilot_id: str, risk_ids: tuple[str, ...], as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Link risks to a pilot: the pilot is how those risks get tested.

    \b
    Example:
      riskreg pilot link P-1 R-2 R-7
    """
    from riskreg.pilots import get_pilot, link_risks, pilot_to_dict

    ctx = app.context()
    with app.database().write() as session:
        added = link_risks(session, ctx, pilot_id, list(risk_ids))
        data = {**pilot_to_dict(session, get_pilot(session, pilot_id)), "linked": added}
    emit(data, as_json, lambda d: f"linked {', '.join(d['linked'])} to {d['id']}")


def _progress_for(path: str):  # type: ignore[no-untyped-def]
    """Return (progress callback, bar) for a large file on a terminal, else (None, None)."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return None, None
    if size < 5_000_000 or not sys.stderr.isatty():
        return None, None
    bar = click.progressbar(length=size, label=f"importing {os.path.basename(path)}", file=sys.stderr)
    state = {"done": 0}

    def advance(position: int) -> None:
        bar.update(position - state["done"])
        state["done"] = position

    return advance, bar


def _parse_map(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """--map 'FILE NAME=NAME' (repeatable) as {file name: name}; the last '=' splits them."""
    mapping: dict[str, str] = {}
    for value in values:
        given, sep, target = value.rpartition("=")
        if not sep or not given.strip() or not target.strip():
            raise click.BadParameter(f"expected 'FILE NAME=NAME', got {value!r}")
        mapping[given.strip()] = target.strip()
    return mapping


def _ignored_text(d: dict[str, Any]) -> str:
    """The notice of a file's ignored columns (empty if none)."""
    if not d.get("ignored"):
        return ""
    names = ", ".join(repr(name) for name in d["ignored"])
    return f"\nignored column(s) {names}: not riskreg's and not mapped (--map to use them, --strict to refuse them)"


def _import_text(d: dict[str, Any]) -> str:
    verb = "checked (dry run, nothing written):" if d["dry_run"] else "imported"
    head = f"{verb} {d['observations']} observations from {d['rows']} rows ({d['form']} form) into {d['pilot']} stage {d['stage']}"
    if d["missing"]:
        head += f"; {d['missing']} missing values (counted, not zero)"
    if d["replaced"]:
        head += f"; replaced {d['replaced']} earlier observations"
    head += _ignored_text(d)
    for metric, left in d["left_out"].items():
        stages = ", ".join(f"'{stage}'" for stage in left["stages"])
        values = "value of a unit" if left["observations"] == 1 else "values of units"
        head += (
            f"\nleft out {left['observations']} {metric} {values} already counted in "
            f"stage{'s' if len(left['stages']) > 1 else ''} {stages} (--new-units-only)"
        )
    rows = [
        (metric, arm, c["n"], c["missing"])
        for metric, arms in d["metrics"].items()
        for arm, c in arms.items()
    ]
    return head + "\n" + table(("METRIC", "ARM", "N", "MISSING"), rows)


@pilot_group.command("data")
@click.argument("pilot_id")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--stage", required=True, help="The pilot's open stage the data belong to.")
@click.option("--dry-run", is_flag=True, help="Check the file and report; change nothing.")
@click.option("--replace", is_flag=True, help="Swap the stage's existing data for the metrics in this file.")
@click.option(
    "--append",
    is_flag=True,
    help="Add this file's units to the stage's existing data for its metrics (a monthly extract, say).",
)
@click.option(
    "--new-units-only",
    is_flag=True,
    help="Leave out (and report) the rows of units already counted for the metric in an earlier stage.",
)
@click.option("--sheet", metavar="NAME", help="The sheet of an .xlsx workbook to read (default: the first).")
@click.option(
    "--map",
    "mapping",
    multiple=True,
    metavar="'FILE NAME=NAME'",
    callback=_parse_map,
    help="Read the file's column FILE NAME as riskreg's column (or metric) NAME, or its arm label as arm NAME; repeatable.",
)
@click.option(
    "--strict", is_flag=True, help="Refuse columns that are neither riskreg's nor mapped (else ignored)."
)
@json_option
@click.pass_obj
def pilot_data(
    app,
    mapping: dict[str, str],
    strict: bool,
    pilot_id: str,
    file: str,
    stage: str,
    dry_run: bool,
    replace: bool,
    append: bool,
    new_units_only: bool,
    sheet: str | None,
    as_json: bool,
) -> None:  # type: ignore[no-untyped-def]
    """Import outcome data (CSV or .xlsx, long or wide form) for a stage, all rows or none.

    Long form: unit_id,arm,metric,value[,exposure][,site]. Wide form:
    unit_id,arm,<metric>...[,exposure][,site]. Empty or NA means missing.
    A workbook's first sheet is read (or --sheet NAME), its first row the header.

    A unit is counted once per metric: a row for a unit already counted for its metric
    in an earlier stage (with a value, or at all when this row's value is missing) is
    refused with its line, unless --new-units-only leaves such rows out and says how
    many. A unit whose earlier value was missing may get its value later.

    A stage takes one file per metric, unless --append adds a later file's units to it
    (a unit the stage already holds for a metric is then refused the same way) or
    --replace swaps the stage's data for the file's metrics.

    \b
    Example:
      riskreg pilot data P-1 pilots/data/hospital-befriending-feasibility.csv --stage feasibility
      riskreg pilot data P-1 pilots/data/hospital-befriending-extended.csv --stage extended \\
          --new-units-only --dry-run
      riskreg pilot data P-1 december-extract.csv --stage extended --append
    """
    from riskreg.ingest import import_outcomes

    ctx = app.context()
    progress, bar = _progress_for(file)
    try:
        with app.database().write(dry_run=dry_run) as session:
            summary = import_outcomes(
                session,
                ctx,
                pilot_id,
                file,
                stage,
                replace=replace,
                append=append,
                dry_run=dry_run,
                progress=progress,
                new_units_only=new_units_only,
                sheet=sheet,
                mapping=mapping,
                strict=strict,
            )
    finally:
        if bar is not None:
            bar.render_finish()
    emit(summary.to_dict(), as_json, _import_text)


@pilot_group.command("resources")
@click.argument("pilot_id")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check the file and report; change nothing.")
@click.option("--sheet", metavar="NAME", help="The sheet of an .xlsx workbook to read (default: the first).")
@click.option(
    "--map",
    "mapping",
    multiple=True,
    metavar="'FILE NAME=NAME'",
    callback=_parse_map,
    help="Read the file's column FILE NAME as riskreg's column (or metric) NAME, or its arm label as arm NAME; repeatable.",
)
@click.option(
    "--strict", is_flag=True, help="Refuse columns that are neither riskreg's nor mapped (else ignored)."
)
@click.option(
    "--replace",
    "replaces",
    metavar="EARLIER",
    help="Replace an earlier resources file that was wrong (its recorded name or import number): "
    "its lines go, the new file's come in, and the event records both.",
)
@json_option
@click.pass_obj
def pilot_resources(  # type: ignore[no-untyped-def]
    app,
    pilot_id: str,
    file: str,
    dry_run: bool,
    sheet: str | None,
    mapping: dict[str, str],
    strict: bool,
    replaces: str | None,
    as_json: bool,
) -> None:
    """Import resources (public and citizen inputs) from a CSV or .xlsx, all rows or none.

    Columns: stage,side,kind,hours,amount[,arm][,note]; side is public or citizen.
    Citizen hours without an amount are valued at citizen_hour_value (riskreg.toml).
    A file the pilot already holds (the same text, whatever its line ends or BOM) is
    refused: its costs would count twice. A file that was wrong is corrected with
    --replace EARLIER, naming the earlier file as recorded (or its import number).

    \b
    Example:
      riskreg pilot resources P-1 pilots/data/hospital-befriending-resources.csv
      riskreg pilot resources P-1 costs-corrected.csv --replace costs.csv
    """
    from riskreg.pilots import get_pilot
    from riskreg.resources import import_resources, resource_totals

    ctx = app.context()
    with app.database().write(dry_run=dry_run) as session:
        summary = import_resources(
            session,
            ctx,
            pilot_id,
            file,
            dry_run,
            sheet=sheet,
            mapping=mapping,
            strict=strict,
            replace=replaces,
        )
        totals = resource_totals(session, get_pilot(session, pilot_id), ctx.config.citizen_hour_value)
    data = {**summary.to_dict(), "totals": totals}

    def text(d: dict[str, Any]) -> str:
        verb = "checked (dry run, nothing written):" if d["dry_run"] else "imported"
        rows = [
            (side, f"{t['hours']:g}", f"{t['cash']:.2f}", f"{t['valued']:.2f}")
            for side, t in d["totals"]["total"].items()
        ]
        swapped = f", replacing {d['replaced']} ({d['replaced_rows']} rows)" if d["replaced"] else ""
        return (
            f"{verb} {d['rows']} resource rows into {d['pilot']}{swapped}{_ignored_text(d)}; totals so far:\n"
            + table(("SIDE", "HOURS", "CASH", "CITIZEN HOURS VALUED"), rows)
        )

    emit(data, as_json, text)


@pilot_group.command("analyse")
@click.argument("pilot_id")
@click.option("--stage", help="Analyse up to this stage (default: the pilot's current stage).")
@json_option
@click.pass_obj
def pilot_analyse(app, pilot_id: str, stage: str | None, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Compare the pilot arm with the comparison arm on every metric and recommend a gate decision.

    Data are cumulative up to the stage. The primary metric is judged at the stage's
    O'Brien-Fleming-type boundary; secondary metrics are Holm-adjusted; safety metrics are not.

    \b
    Example:
      riskreg pilot analyse P-1
      riskreg pilot analyse hospital-befriending --stage feasibility --json
    """
    from riskreg.analysis import analyse_pilot
    from riskreg.cli.analysis_text import analysis_text

    database = app.database()
    with database.read() as session:
        data = analyse_pilot(session, pilot_id, stage, database.config).to_dict()
    emit(data, as_json, analysis_text)


@pilot_group.command("gate")
@click.argument("pilot_id")
@click.option(
    "--decision",
    required=True,
    type=click.Choice(DECISIONS, case_sensitive=False),
    help="proceed opens the next stage (or completes the pilot); continue keeps collecting; stop ends the pilot; "
    "adapt opens the next stage on an amended protocol.",
)
@click.option("--reason", required=True, help="What was weighed, for the record.")
@click.option(
    "--override",
    is_flag=True,
    help="Decide other than the analysis recommends (flagged in QA and board reports with the recommendation).",
)
@json_option
@click.pass_obj
def pilot_gate(app, pilot_id: str, decision: str, reason: str, override: bool, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Record the gate decision at the end of the pilot's current stage.

    The stage is analysed first; the decision is stored with that analysis, and is one
    look at the primary. A decision other than the recommendation needs --override.

    \b
    Example:
      riskreg pilot gate P-1 --decision proceed --reason "Board 12 May: criteria green"
    """
    from riskreg.gates import decide
    from riskreg.pilots import decision_to_dict, protocol_of

    ctx = app.context()
    with app.database().write() as session:
        result = decide(session, ctx, pilot_id, decision.lower(), reason, override)
        data = {
            **decision_to_dict(result.decision, protocol_of(result.pilot)),
            "status": result.pilot.status,
            "now_stage": result.now_stage,
        }

    def text(d: dict[str, Any]) -> str:
        against = (
            f" against the recommendation '{d['recommendation']}' (override)"
            if d["override"]
            else f" (recommended: {d['recommendation']})"
        )
        return f"recorded '{d['decision']}'{against} for {d['pilot']} at stage {d['stage']}; now {d['status']}, stage {d['now_stage']}"

    emit(data, as_json, text)


COMMANDS = (pilot_group,)
