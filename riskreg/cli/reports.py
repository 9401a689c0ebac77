"""``riskreg report ...``: self-contained HTML reports for boards and QA reviewers."""

from __future__ import annotations

from typing import Any

import click

from riskreg.cli.output import emit, json_option

output_option = click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Where to write the report (default: board.html, pilot-P-<n>.html or qa.html here; .pdf with --pdf).",
)
pdf_option = click.option(
    "--pdf",
    is_flag=True,
    help="Write an A4 PDF instead of HTML, printed by a local headless Chromium or Chrome "
    "(found on PATH, or named by RISKREG_CHROMIUM).",
)
as_of_option = click.option(
    "--as-of",
    metavar="DATE",
    help="Report as of this date (YYYY-MM-DD): reviews are judged on it and it is the generation "
    "time shown, so two runs on the same data give the same file.",
)


def since_option(what: str) -> Any:
    """Return the --since option, described for one report."""
    return click.option("--since", metavar="DATE", help=f"{what} (default: 90 days before the report date).")


def _written(data: dict[str, Any]) -> str:
    return data["path"]


@click.group("report")
def report_group() -> None:
    """Write self-contained HTML reports: board, pilot and QA (print-ready, no scripts).

    \b
    Example:
      riskreg report board -o board.html --since 2026-09-01
      riskreg report pilot P-1
    """


@report_group.command("board")
@output_option
@pdf_option
@as_of_option
@since_option("Measure the top risks' direction of travel from this date")
@click.option(
    "--meeting",
    metavar="TEXT",
    help="The meeting the paper goes to (default: [report] meeting in riskreg.toml).",
)
@click.option(
    "--meeting-date",
    metavar="DATE",
    help="The meeting's date, YYYY-MM-DD (default: [report] meeting_date, else the report date).",
)
@click.option("--lead", metavar="NAME", help="The executive lead (default: [report] lead).")
@click.option(
    "--purpose",
    type=click.Choice(["decision", "assurance", "information"]),
    help="What the paper asks of the board (default: [report] purpose, else decision when anything is asked).",
)
@click.option(
    "--marking",
    metavar="TEXT",
    help='Protective marking for the running header, e.g. "OFFICIAL" (default: [report] marking).',
)
@json_option
@click.pass_obj
def report_board(  # type: ignore[no-untyped-def]
    app,
    output: str | None,
    pdf: bool,
    as_of: str | None,
    since: str | None,
    meeting: str | None,
    meeting_date: str | None,
    lead: str | None,
    purpose: str | None,
    marking: str | None,
    as_json: bool,
) -> None:
    """Write the board paper: cover, key messages, asks, assurance, top risks, pilots, resources.

    The cover's meeting, lead, purpose and marking come from the [report] table of
    riskreg.toml; an option overrides its key. The organisation and currency are the
    governed settings. Prints the path of the file written.

    \b
    Example:
      riskreg report board --pdf
      riskreg report board --meeting "Board meeting in public" --lead "Director of Adult Services"
      riskreg report board -o build/reports/board.html --as-of 2026-11-30 --since 2026-09-01
    """
    from riskreg.board_paper import read_report_settings, with_options, write_board_report

    database = app.database()
    settings = with_options(
        read_report_settings(database.config_file),
        meeting=meeting,
        meeting_date=meeting_date,
        lead=lead,
        purpose=purpose,
        marking=marking,
    )
    written = write_board_report(database, output, as_of=as_of, since=since, settings=settings, pdf=pdf)
    emit(written.to_dict(), as_json, _written)


@report_group.command("pilot")
@click.argument("pilot_id")
@output_option
@pdf_option
@as_of_option
@json_option
@click.pass_obj
def report_pilot(app, pilot_id: str, output: str | None, pdf: bool, as_of: str | None, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Write a pilot report: the bottom line, results of every stage, charts, costs, risks, decisions.

    Prints the path of the file written.

    \b
    Example:
      riskreg report pilot P-1
      riskreg report pilot P-1 --pdf
      riskreg report pilot hospital-befriending -o build/reports/pilot-P-1.html --as-of 2026-11-30
    """
    from riskreg.report import write_report

    written = write_report(app.database(), "pilot", output, pilot=pilot_id, as_of=as_of, pdf=pdf)
    emit(written.to_dict(), as_json, _written)


@report_group.command("qa")
@output_option
@pdf_option
@as_of_option
@since_option("Start the audit trail at this date")
@json_option
@click.pass_obj
def report_qa(
    app, output: str | None, pdf: bool, as_of: str | None, since: str | None, as_json: bool
) -> None:  # type: ignore[no-untyped-def]
    """Write the QA report: findings by severity with their rules, and the audit trail of the period.

    Prints the path of the file written.

    \b
    Example:
      riskreg report qa
      riskreg report qa -o build/reports/qa.html --as-of 2026-11-30 --since 2026-09-01
    """
    from riskreg.report import write_report

    written = write_report(app.database(), "qa", output, as_of=as_of, since=since, pdf=pdf)
    emit(written.to_dict(), as_json, _written)


COMMANDS = (report_group,)
