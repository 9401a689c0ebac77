"""``riskreg report ...``: self-contained HTML reports for boards and QA reviewers."""

from __future__ import annotations

from typing import Any

import click

from riskreg.cli.output import emit, json_option

output_option = click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Where to write the HTML (default: board.html, pilot-P-<n>.html or qa.html here).",
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
@as_of_option
@since_option("Measure the top risks' direction of travel from this date")
@json_option
@click.pass_obj
def report_board(app, output: str | None, as_of: str | None, since: str | None, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Write the board report: headline counts, heat maps, top risks, pilots, results, resources.

    Prints the path of the file written.

    \b
    Example:
      riskreg report board
      riskreg report board -o build/reports/board.html --as-of 2026-11-30 --since 2026-09-01
    """
    from riskreg.report import write_report

    written = write_report(app.database(), "board", output, as_of=as_of, since=since)
    emit(written.to_dict(), as_json, _written)


@report_group.command("pilot")
@click.argument("pilot_id")
@output_option
@as_of_option
@json_option
@click.pass_obj
def report_pilot(app, pilot_id: str, output: str | None, as_of: str | None, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Write a pilot report: protocol, results of every stage, charts, costs, risks and gate decisions.

    Prints the path of the file written.

    \b
    Example:
      riskreg report pilot P-1
      riskreg report pilot hospital-befriending -o build/reports/pilot-P-1.html --as-of 2026-11-30
    """
    from riskreg.report import write_report

    written = write_report(app.database(), "pilot", output, pilot=pilot_id, as_of=as_of)
    emit(written.to_dict(), as_json, _written)


@report_group.command("qa")
@output_option
@as_of_option
@since_option("Start the audit trail at this date")
@json_option
@click.pass_obj
def report_qa(app, output: str | None, as_of: str | None, since: str | None, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Write the QA report: findings by severity with their rules, and the audit trail of the period.

    Prints the path of the file written.

    \b
    Example:
      riskreg report qa
      riskreg report qa -o build/reports/qa.html --as-of 2026-11-30 --since 2026-09-01
    """
    from riskreg.report import write_report

    written = write_report(app.database(), "qa", output, as_of=as_of, since=since)
    emit(written.to_dict(), as_json, _written)


COMMANDS = (report_group,)
