"""``riskreg risk ...`` and ``riskreg control ...``: the two-sided risk register."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from riskreg.cli.output import emit, fields, json_option, table
from riskreg.vocab import CONTROL_STATUSES, MODES, SIDES, TREATMENTS

SCORE = click.IntRange(1, 5)
RATING_CHOICES = ("low", "medium", "high", "very-high", "very high")


def _choice(values: tuple[str, ...]) -> click.Choice:
    return click.Choice(values, case_sensitive=False)


def _risk_text(risk: dict[str, Any]) -> str:
    target = risk["target"]
    inherent = risk["inherent"]
    lines = fields(
        [
            ("id", f"{risk['id']} (version {risk['version']})"),
            ("title", risk["title"]),
            ("side", risk["side"]),
            ("mode", risk["mode"]),
            ("category", risk["category"]),
            ("owner", risk["owner"] or "(none)"),
            ("status", risk["status"]),
            ("treatment", risk["treatment"] or "(none)"),
            (
                "inherent",
                f"{inherent['likelihood']}×{inherent['impact']} = {inherent['score']} ({inherent['rating']})",
            ),
            ("current", f"{risk['likelihood']}×{risk['impact']} = {risk['score']} ({risk['rating']})"),
            (
                "target",
                f"{target['likelihood']}×{target['impact']} = {target['score']} ({target['rating']})"
                if target
                else "(none)",
            ),
            ("appetite", f"{risk['appetite']}" + (" — ABOVE APPETITE" if risk["above_appetite"] else "")),
            ("next review", risk["next_review"] or "-"),
            ("changed", f"{risk['updated_at']} by {risk['updated_by']}"),
            ("description", risk["description"] or ""),
        ]
    )
    for review in risk.get("reviews", [])[-3:]:
        lines += f"\nreviewed:    {review['reviewed_at'][:10]} by {review['reviewer']}: {review['outcome']} — {review['note']}"
    for ev in risk.get("evidence", []):
        lines += f"\nevidence:    {_evidence_text(ev)}"
    # the assurance framework's two gaps, in a block of their own (their labels are longer)
    gaps = [("gaps in control", risk["gaps_in_control"]), ("gaps in assurance", risk["gaps_in_assurance"])]
    lines += "\n\n" + fields([(label, text or "-") for label, text in gaps])
    controls = risk.get("controls")
    if controls:
        rows = [
            (
                c["id"],
                c["status"],
                "citizen" if c["citizen"] else "public",
                c["effectiveness"],
                _assurance_text(c),
                c["owner"],
                c["due"],
                c["description"],
            )
            for c in controls
        ]
        headers = ("ID", "STATUS", "RESOURCE", "EFFECTIVENESS", "ASSURANCE", "OWNER", "DUE", "DESCRIPTION")
        lines += "\n\ncontrols:\n" + table(headers, rows)
    actions = risk.get("actions")
    if actions:
        from riskreg.cli.actions import actions_table

        lines += "\n\nactions:\n" + actions_table(actions)
    return lines


def _assurance_text(control: dict[str, Any]) -> str:
    if not control["assurance"]:
        return "-"
    line = f"{control['assurance_line']} line: " if control["assurance_line"] else ""
    return line + control["assurance"]


def _evidence_text(ev: dict[str, Any]) -> str:
    low, high = ev["ci"]
    ci = f"CI {low:.3g} to {high:.3g}" if low is not None and high is not None else "CI not available"
    estimate = f"{ev['estimate']:.3g}" if ev["estimate"] is not None else "none"
    n = f"n {ev['n']['comparison']} comparison / {ev['n']['pilot']} pilot"
    return f"{ev['pilot']} {ev['metric']}: {ev['verdict']} (estimate {estimate}, {ci}, {n}; recommended {ev['recommendation']}) on {ev['at'][:10]}"


def _list_text(risks: list[dict[str, Any]]) -> str:
    if not risks:
        return "no risks match"
    rows = [
        (
            r["id"],
            r["side"],
            r["mode"],
            r["category"],
            f"{r['likelihood']}×{r['impact']}",
            r["score"],
            r["rating"] + (" !" if r["above_appetite"] else ""),
            r["status"],
            r["next_review"] or "-",
            r["title"],
        )
        for r in risks
    ]
    headers = ("ID", "SIDE", "MODE", "CATEGORY", "L×I", "SCORE", "RATING", "STATUS", "REVIEW", "TITLE")
    footer = f"\n{len(risks)} risk{'s' if len(risks) != 1 else ''}; ! = above appetite"
    return table(headers, rows) + footer


@click.group("risk")
def risk_group() -> None:
    """Register, list, re-score and close risks on both sides of co-production.

    \b
    Example:
      riskreg risk add "Volunteers miss safeguarding signs" --side citizen --mode delivery --likelihood 3 --impact 4
      riskreg risk list --above-appetite
    """


@risk_group.command("add")
@click.argument("title")
@click.option("--side", required=True, type=_choice(SIDES), help="Whose part the risk arises from.")
@click.option("--mode", required=True, type=_choice(MODES), help="Which of the four co's it belongs to.")
@click.option("--likelihood", required=True, type=SCORE, help="Likelihood 1–5 (inherent and current).")
@click.option("--impact", required=True, type=SCORE, help="Impact 1–5 (inherent and current).")
@click.option("--category", help="Category for appetite and grouping (default: general).")
@click.option("--owner", help="Who owns the risk.")
@click.option("--description", help="Longer description.")
@click.option(
    "--treatment",
    type=_choice(TREATMENTS),
    help="treat, tolerate, transfer, terminate, or test (by a pilot).",
)
@click.option("--target-likelihood", type=SCORE, help="Likelihood after planned treatment.")
@click.option("--target-impact", type=SCORE, help="Impact after planned treatment.")
@click.option("--review-days", type=click.IntRange(1, 3660), help="Review interval (default: by rating).")
@click.option(
    "--new-category",
    is_flag=True,
    help="Add --category to the register's category list if it is not on it (an audited change).",
)
@json_option
@click.pass_obj
def risk_add(app, as_json: bool, new_category: bool, **values: Any) -> None:  # type: ignore[no-untyped-def]
    """Register a new risk and print it.

    \b
    Example:
      riskreg risk add "Caseloads delay welfare calls" --side professional \\
          --mode delivery --likelihood 4 --impact 3 --owner "Team manager"
    """
    from riskreg.records import risk_to_dict

    ctx = app.context()
    if new_category:  # it may add a governed setting, which the ORM's settings code writes
        from riskreg.register import add_risk

        with app.database().write() as session:
            data = risk_to_dict(add_risk(session, ctx, values, new_category=True), ctx.config)
    else:
        from riskreg.riskcore import add_risk  # SQLAlchemy Core: no ORM to import

        with app.database().begin() as connection:
            data = risk_to_dict(add_risk(connection, ctx, values), ctx.config)
    emit(data, as_json, lambda d: f"added {d['id']}: {d['title']} ({d['side']}, {d['score']} {d['rating']})")


@risk_group.command("list")
@click.option("--side", type=_choice(SIDES))
@click.option("--mode", type=_choice(MODES))
@click.option("--category")
@click.option(
    "--status", type=_choice(("open", "closed")), help="Only open or only closed risks (default: both)."
)
@click.option("--rating", type=_choice(RATING_CHOICES), help="Only risks whose current rating is this.")
@click.option("--above-appetite", is_flag=True, help="Only open risks above their category's appetite.")
@click.option("--sort", type=_choice(("id", "score", "review")), default="id", show_default=True)
@json_option
@click.pass_obj
def risk_list(app, as_json: bool, sort: str, above_appetite: bool, **where: Any) -> None:  # type: ignore[no-untyped-def]
    """List risks, filtered and sorted.

    \b
    Example:
      riskreg risk list --side citizen --above-appetite --sort score
    """
    from riskreg.listing import RiskFilter, list_risks_json  # SQLAlchemy Core: no ORM to import

    database = app.database()
    with database.connect() as connection:
        document = list_risks_json(
            connection, database.config, RiskFilter(above_appetite=above_appetite, **where), sort
        )
    if as_json and not sys.stdout.isatty():
        click.echo(document)  # already compact JSON, built by the database
        return
    emit(json.loads(document), as_json, _list_text)


@risk_group.command("show")
@click.argument("risk_id")
@json_option
@click.pass_obj
def risk_show(app, risk_id: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Show one risk with its three tiers, gaps, controls (with their assurance) and actions.

    \b
    Example:
      riskreg risk show R-1
    """
    from riskreg.riskcore import show_risk  # SQLAlchemy Core: no ORM to import

    ctx = app.context()
    with app.database().connect() as connection:
        data = show_risk(connection, ctx, risk_id)
    emit(data, as_json, _risk_text)


def _expect_version() -> Any:
    return click.option(
        "--expect-version",
        type=click.IntRange(1),
        help="Refuse the change unless the risk is still at this version (from `risk show`).",
    )


def _reason(required: bool = True) -> Any:
    return click.option("--reason", required=required, help="Why, for the audit trail.")


@risk_group.command("update")
@click.argument("risk_id")
@click.option("--title")
@click.option("--description")
@click.option("--side", type=_choice(SIDES))
@click.option("--mode", type=_choice(MODES))
@click.option("--category")
@click.option("--owner")
@click.option("--treatment", type=_choice(TREATMENTS))
@click.option("--inherent-likelihood", type=SCORE, help="Correct the inherent (no controls) likelihood.")
@click.option("--inherent-impact", type=SCORE, help="Correct the inherent (no controls) impact.")
@click.option("--target-likelihood", type=SCORE)
@click.option("--target-impact", type=SCORE)
@click.option("--review-days", type=click.IntRange(1, 3660))
@click.option("--gaps-in-control", metavar="TEXT", help="What the controls do not yet cover ('' clears it).")
@click.option(
    "--gaps-in-assurance", metavar="TEXT", help="Where there is no evidence the controls work ('' clears it)."
)
@_reason()
@_expect_version()
@json_option
@click.pass_obj
def risk_update(
    app, risk_id: str, reason: str, expect_version: int | None, as_json: bool, **values: Any
) -> None:  # type: ignore[no-untyped-def]
    """Change a risk's descriptive fields and its gaps (use `rescore` for its current score).

    \b
    Example:
      riskreg risk update R-3 --owner "Head of Adult Services" --reason "New owner"
      riskreg risk update R-3 --gaps-in-assurance "No audit of visit logs yet" --reason "Board review"
    """
    from riskreg.register import risk_to_dict, update_risk

    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        raise click.UsageError("give at least one field to change, e.g. --owner")
    ctx = app.context()
    with app.database().write() as session:
        data = risk_to_dict(update_risk(session, ctx, risk_id, given, reason, expect_version), ctx.config)
    emit(data, as_json, lambda d: f"updated {d['id']} (version {d['version']})")


@risk_group.command("rescore")
@click.argument("risk_id")
@click.option("--likelihood", required=True, type=SCORE, help="Current likelihood 1–5.")
@click.option("--impact", required=True, type=SCORE, help="Current impact 1–5.")
@_reason()
@click.option(
    "--evidence",
    "pilot_id",
    metavar="P-N",
    help="The pilot whose current result justifies the new score (stored with it).",
)
@click.option(
    "--metric",
    metavar="NAME",
    help="With --evidence: the pilot metric whose result is stored (default: the primary metric).",
)
@_expect_version()
@json_option
@click.pass_obj
def risk_rescore(
    app,
    risk_id: str,
    likelihood: int,
    impact: int,
    reason: str,
    pilot_id: str | None,
    metric: str | None,
    expect_version: int | None,
    as_json: bool,
) -> None:  # type: ignore[no-untyped-def]
    """Set a risk's current likelihood and impact, optionally on a pilot's evidence.

    \b
    Example:
      riskreg risk rescore R-3 --likelihood 2 --impact 4 --reason "Peer checks in place"
      riskreg risk rescore R-2 --likelihood 2 --impact 5 --evidence P-1 \\
          --metric safeguarding_incidents \\
          --reason "Befriending pilot: no safeguarding harm at the extended stage"
    """
    from riskreg.register import rescore_risk, risk_to_dict

    if metric is not None and pilot_id is None:
        raise click.UsageError("--metric names a metric of the --evidence pilot; give --evidence P-N too")

    ctx = app.context()
    with app.database().write() as session:
        if pilot_id is None:
            risk = rescore_risk(session, ctx, risk_id, likelihood, impact, reason, expect_version)
            data = risk_to_dict(risk, ctx.config)
        else:
            from riskreg.evidence import evidence_to_dict, rescore_on_evidence

            risk, row = rescore_on_evidence(
                session, ctx, risk_id, likelihood, impact, reason, pilot_id, expect_version, metric
            )
            data = {**risk_to_dict(risk, ctx.config), "evidence": evidence_to_dict(row)}
    emit(
        data,
        as_json,
        lambda d: (
            f"re-scored {d['id']}: {d['likelihood']}×{d['impact']} = {d['score']} ({d['rating']}), version {d['version']}"
        ),
    )


@risk_group.command("close")
@click.argument("risk_id")
@_reason()
@_expect_version()
@json_option
@click.pass_obj
def risk_close(app, risk_id: str, reason: str, expect_version: int | None, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Close a risk (it stays in the register and its history).

    \b
    Example:
      riskreg risk close R-3 --reason "Service decommissioned"
    """
    from riskreg.register import close_risk, risk_to_dict

    ctx = app.context()
    with app.database().write() as session:
        data = risk_to_dict(close_risk(session, ctx, risk_id, reason, expect_version), ctx.config)
    emit(data, as_json, lambda d: f"closed {d['id']}")


def _history_text(events: list[dict[str, Any]]) -> str:
    lines = []
    for e in events:
        lines.append(
            f"{e['at']}  {e['actor']}  {e['action']} {e['entity_id']}"
            + (f" — {e['reason']}" if e["reason"] else "")
        )
        for name, (old, new) in e["changes"].items():
            lines.append(f"    {name}: {old if old is not None else '—'} → {new if new is not None else '—'}")
    return "\n".join(lines) or "no history"


@risk_group.command("history")
@click.argument("risk_id")
@json_option
@click.pass_obj
def risk_history(app, risk_id: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Show every recorded change to a risk and its controls, oldest first.

    \b
    Example:
      riskreg risk history R-3
    """
    from riskreg.register import changed_fields, event_to_dict, risk_history

    with app.database().read() as session:
        events = [{**event_to_dict(e), "changes": changed_fields(e)} for e in risk_history(session, risk_id)]
    emit(events, as_json, _history_text)


@risk_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check the file and report; change nothing.")
@click.option("--sheet", metavar="NAME", help="The sheet of an .xlsx workbook to read (default: the first).")
@click.option("--allow-repeat", is_flag=True, help="Import a file whose content was imported before.")
@click.option(
    "--allow-duplicates",
    is_flag=True,
    help="Import rows whose title, side and mode match an open risk or an earlier row.",
)
@click.option(
    "--new-category",
    is_flag=True,
    help="Add categories that are not on the governed list to it (config.set events), instead of refusing them.",
)
@json_option
@click.pass_obj
def risk_import(  # type: ignore[no-untyped-def]
    app,
    file: str,
    dry_run: bool,
    sheet: str | None,
    allow_repeat: bool,
    allow_duplicates: bool,
    new_category: bool,
    as_json: bool,
) -> None:
    """Add the risks of a CSV file or .xlsx workbook, all or none.

    Columns: title, side, mode, likelihood, impact (required); category, owner,
    description, treatment, target_likelihood, target_impact, review_days.
    A workbook's first sheet is read (or --sheet NAME), its first row the header.

    Risks are never deleted, so a file imported before is refused (--allow-repeat), and
    rows whose title, side and mode match an open risk or an earlier row are refused as
    likely duplicates (--allow-duplicates); --dry-run lists them.

    \b
    Example:
      riskreg risk import pilots/risks.csv --dry-run
      riskreg risk import register.xlsx --sheet Risks
    """
    from riskreg.riskcsv import import_risks

    ctx = app.context()
    with app.database().write(dry_run=dry_run) as session:
        result = import_risks(
            session,
            ctx,
            file,
            dry_run,
            sheet=sheet,
            allow_repeat=allow_repeat,
            allow_duplicates=allow_duplicates,
            new_category=new_category,
        )
    emit(result.to_dict(), as_json, _import_text)


def _import_text(result: dict[str, Any]) -> str:
    verb = "would import" if result["dry_run"] else "imported"
    lines = [
        f"{verb} {result['rows']} risks from {result['file']}"
        + (f": {result['ids'][0]}–{result['ids'][-1]}" if result["ids"] else "")
    ]
    for d in result["likely_duplicates"]:
        lines.append(
            f"  line {d['line']}: {d['title']!r} is likely a duplicate of {d['duplicate_of']} "
            "(same title, side and mode)"
        )
    return "\n".join(lines)


@risk_group.command("export")
@click.option("--csv", "as_csv", is_flag=True, help="CSV (the import format) instead of JSON.")
@click.option(
    "--xlsx",
    "xlsx_file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Write an .xlsx workbook (the import format, typed columns) to FILE instead.",
)
@click.pass_obj
def risk_export(app, as_csv: bool, xlsx_file: str | None) -> None:  # type: ignore[no-untyped-def]
    """Print every risk, as JSON (default) or as CSV that `risk import` reads back, or write a workbook.

    \b
    Example:
      riskreg risk export --csv > register.csv
      riskreg risk export --xlsx register.xlsx
    """
    from riskreg.register import risk_to_dict
    from riskreg.riskcsv import export_rows, to_csv, write_xlsx

    if as_csv and xlsx_file:
        raise click.UsageError("choose one of --csv and --xlsx")
    ctx = app.context()
    with app.database().read() as session:
        if xlsx_file:
            rows = export_rows(session, ctx)
            write_xlsx(rows, xlsx_file)
            click.echo(f"wrote {len(rows)} risks to {xlsx_file}")
            return
        if as_csv:
            click.echo(to_csv(export_rows(session, ctx)), nl=False)
            return
        from riskreg.register import all_risks

        data = [risk_to_dict(r, ctx.config, with_controls=True) for r in all_risks(session)]
    emit(data, True, str)


@click.group("control")
def control_group() -> None:
    """Add and update controls (measures) on risks, public or citizen-provided, with their assurance.

    \b
    Example:
      riskreg control add R-1 "Peer supervision every fortnight" --citizen --status planned
      riskreg control update C-1 --status in-place --reason "running since March"
      riskreg control update C-1 --effectiveness effective --assurance "Internal audit 2027/03" --line third
    """


_EFFECTIVENESS_HELP = "effective, partially effective, ineffective or not assessed (the default)."
_ASSURANCE_HELP = "Where assurance that the control works comes from (a report, an audit, minutes)."
_LINE_HELP = (
    "The line of that assurance: first (management), second (oversight functions), third (independent)."
)


@control_group.command("add")
@click.argument("risk_id")
@click.argument("text")
@click.option("--owner")
@click.option("--status", type=_choice(CONTROL_STATUSES), default="planned", show_default=True)
@click.option("--due", metavar="DATE", help="Due date, YYYY-MM-DD.")
@click.option(
    "--citizen",
    is_flag=True,
    help="The control rests on citizens' own resources (peer support, volunteer checks).",
)
@click.option("--effectiveness", metavar="E", default="not assessed", help=_EFFECTIVENESS_HELP)
@click.option("--assurance", metavar="TEXT", help=_ASSURANCE_HELP)
@click.option("--line", "assurance_line", metavar="LINE", help=_LINE_HELP)
@json_option
@click.pass_obj
def control_add(
    app,
    risk_id: str,
    text: str,
    owner: str | None,
    status: str,
    due: str | None,
    citizen: bool,
    effectiveness: str,
    assurance: str | None,
    assurance_line: str | None,
    as_json: bool,
) -> None:  # type: ignore[no-untyped-def]
    """Add a control to a risk, with how well it works and where assurance of that comes from.

    \b
    Example:
      riskreg control add R-3 "Peer check of every visit log" --citizen --status in-place
      riskreg control add R-3 "Safeguarding training" --status in-place \\
          --effectiveness "partially effective" --assurance "Training records" --line first
    """
    from riskreg.register import add_control, control_to_dict

    ctx = app.context()
    with app.database().write() as session:
        control = add_control(
            session, ctx, risk_id, text, owner, status, due, citizen, effectiveness, assurance, assurance_line
        )
        data = control_to_dict(control)
    emit(data, as_json, lambda d: f"added {d['id']} to {d['risk']} ({d['status']})")


@control_group.command("update")
@click.argument("control_id")
@click.option("--status", type=_choice(CONTROL_STATUSES))
@click.option("--owner")
@click.option("--due", metavar="DATE", help="Due date, YYYY-MM-DD.")
@click.option("--description")
@click.option("--effectiveness", metavar="E", help=_EFFECTIVENESS_HELP)
@click.option("--assurance", metavar="TEXT", help=_ASSURANCE_HELP + " '' clears it.")
@click.option("--line", "assurance_line", metavar="LINE", help=_LINE_HELP + " '' clears it.")
@_reason(required=False)
@json_option
@click.pass_obj
def control_update(app, control_id: str, reason: str | None, as_json: bool, **values: Any) -> None:  # type: ignore[no-untyped-def]
    """Change a control's status, owner, due date, description, effectiveness or assurance.

    \b
    Example:
      riskreg control update C-1 --status in-place --reason "Training delivered"
      riskreg control update C-1 --effectiveness ineffective --assurance "Spot check 2027-01" --line second
    """
    from riskreg.register import control_to_dict, update_control

    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        raise click.UsageError("give at least one field to change, e.g. --status in-place")
    ctx = app.context()
    with app.database().write() as session:
        data = control_to_dict(update_control(session, ctx, control_id, given, reason))
    emit(data, as_json, lambda d: f"updated {d['id']} ({d['status']}, {d['effectiveness']})")


COMMANDS = (risk_group, control_group)
