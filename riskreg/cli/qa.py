"""``riskreg review ...`` and ``riskreg check``: quality assurance of the register and the pilots."""

from __future__ import annotations

from typing import Any

import click

from riskreg.cli.output import counted, emit, json_option, table
from riskreg.vocab import REVIEW_OUTCOMES


@click.group("review")
def review_group() -> None:
    """See which risks are due for review and record reviews.

    \b
    Example:
      riskreg review due
      riskreg review record R-1 --outcome confirmed --note "controls checked on site"
    """


@review_group.command("due")
@click.option(
    "--within",
    "within_days",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Also list risks due within this many days.",
)
@json_option
@click.pass_obj
def review_due(app, within_days: int, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """List open risks due for review, most overdue first.

    \b
    Example:
      riskreg review due --within 30
    """
    from riskreg.listing import due_reviews  # SQLAlchemy Core: no ORM to import

    ctx = app.context()
    with app.database().connect() as connection:
        data = [d.to_dict() for d in due_reviews(connection, ctx, within_days)]

    def text(rows: list[dict[str, Any]]) -> str:
        if not rows:
            return "no reviews due"
        cells = [
            (
                r["id"],
                r["next_review"],
                _when_due(r["days_overdue"]),
                r["rating"],
                r["owner"],
                r["title"],
            )
            for r in rows
        ]
        return table(("ID", "DUE", "WHEN", "RATING", "OWNER", "TITLE"), cells)

    emit(data, as_json, text)


@review_group.command("record")
@click.argument("risk_id")
@click.option(
    "--outcome",
    required=True,
    type=click.Choice(REVIEW_OUTCOMES, case_sensitive=False),
    help="confirmed, rescored, escalated (raised in reports) or closed (closes the risk).",
)
@click.option("--note", required=True, help="What was checked and found.")
@json_option
@click.pass_obj
def review_record(app, risk_id: str, outcome: str, note: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Record a review of a risk (the reviewer cannot own it, nor have owned it since its last review).

    Names are compared as the same person's regardless of case, spacing, look-alike forms
    (full-width letters) and invisible characters.

    \b
    Example:
      riskreg --actor "QA reviewer" review record R-3 --outcome confirmed --note "Controls seen working"
    """
    from riskreg.register import risk_to_dict
    from riskreg.reviews import record_review, review_to_dict

    ctx = app.context()
    with app.database().write() as session:
        risk, review = record_review(session, ctx, risk_id, outcome.lower(), note)
        data = {**review_to_dict(review), "next_review": risk_to_dict(risk, ctx.config)["next_review"]}
    emit(
        data,
        as_json,
        lambda d: (
            f"recorded review of {d['risk']} by {d['reviewer']}: {d['outcome']}; next review {d['next_review'] or '-'}"
        ),
    )


def _when_due(days_overdue: int) -> str:
    if days_overdue > 0:
        return f"{counted(days_overdue, 'day')} overdue"
    return "today" if days_overdue == 0 else f"in {counted(-days_overdue, 'day')}"


def _findings_text(findings: list[dict[str, Any]]) -> str:
    if not findings:
        return "no findings"
    lines = []
    for f in findings:
        lines.append(f"{f['severity'].upper():7} {f['rule']:28} {f['subject']:9} {f['message']}")
        lines.append(f"{'':46}→ {f['advice']}")
    counts = {s: sum(1 for f in findings if f["severity"] == s) for s in ("error", "warning", "info")}
    lines.append(
        f"\n{counted(counts['error'], 'error')}, {counted(counts['warning'], 'warning')}, {counted(counts['info'], 'note')}"
    )
    return "\n".join(lines)


@click.command("check")
@json_option
@click.pass_obj
def check(app, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Examine the register and every pilot as a QA reviewer would; exit 1 if any finding is an error.

    Each finding names its rule, severity, subject, what is wrong and what to do.
    Severities can be changed per rule in riskreg.toml under [check.severity]. A governed key
    that riskreg.toml sets differently from the database is named in a note on stderr: the
    database's value is in force and the file's is ignored.

    \b
    Example:
      riskreg check
      riskreg check --json
    """
    from riskreg.qa import run_checks
    from riskreg.settings import overridden_file_values, overridden_note

    ctx = app.context()
    database = app.database()
    with database.read() as session:
        findings = [f.to_dict() for f in run_checks(session, ctx.config, ctx.today)]
        overridden = overridden_file_values(session, database.config_file)
    emit(findings, as_json, _findings_text)
    if overridden:
        # on stderr, so that --json stays one document: riskreg.toml's reader would be misled
        click.echo(f"Note: {overridden_note(database.config_file, overridden)}", err=True)
    if any(f["severity"] == "error" for f in findings):
        click.get_current_context().exit(1)


COMMANDS = (review_group, check)
