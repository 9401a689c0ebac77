"""``riskreg action ...``: the steps planned to treat risks, with owners and due dates."""

from __future__ import annotations

from typing import Any

import click

from riskreg.cli.output import emit, fields, json_option, table


def _action_text(action: dict[str, Any]) -> str:
    due = action["due"] + (f" ({action['days_overdue']} days overdue)" if action["overdue"] else "")
    return fields(
        [
            ("id", f"{action['id']} (version {action['version']})"),
            ("risk", action["risk"]),
            ("title", action["title"]),
            ("owner", action["owner"]),
            ("due", due),
            ("status", action["status"]),
            ("added", f"{action['created_at']} by {action['created_by']}"),
            ("changed", f"{action['updated_at']} by {action['updated_by']}"),
        ]
    )


def actions_table(actions: list[dict[str, Any]]) -> str:
    """Return actions as an aligned table (also used by `risk show`)."""
    rows = [
        (a["id"], a["risk"], a["status"] + (" !" if a["overdue"] else ""), a["due"], a["owner"], a["title"])
        for a in actions
    ]
    return table(("ID", "RISK", "STATUS", "DUE", "OWNER", "TITLE"), rows)


def _list_text(actions: list[dict[str, Any]]) -> str:
    if not actions:
        return "no actions match"
    return actions_table(actions) + f"\n{len(actions)} action{'s' if len(actions) != 1 else ''}; ! = overdue"


@click.group("action")
def action_group() -> None:
    """Plan and follow the actions that treat risks: who does what by when.

    \b
    Example:
      riskreg action add R-1 "Train befrienders in safeguarding" --owner "Volunteer lead" --due 2027-03-31
      riskreg action list --overdue
      riskreg action update A-1 --status done
    """


@action_group.command("add")
@click.argument("risk_id")
@click.argument("title")
@click.option("--owner", required=True, help="Who will do it.")
@click.option("--due", required=True, metavar="DATE", help="Due date, YYYY-MM-DD.")
@json_option
@click.pass_obj
def action_add(app, risk_id: str, title: str, owner: str, due: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Plan an action on an open risk and print it.

    \b
    Example:
      riskreg action add R-3 "Peer supervision circle for befrienders" \\
          --owner "Volunteer coordinator" --due 2027-02-28
    """
    from riskreg.actions import action_to_dict, add_action

    ctx = app.context()
    with app.database().write() as session:
        data = action_to_dict(add_action(session, ctx, risk_id, title, owner, due), ctx.today)
    emit(
        data,
        as_json,
        lambda d: f"added {d['id']} to {d['risk']}: {d['title']} (due {d['due']}, {d['owner']})",
    )


@action_group.command("update")
@click.argument("action_id")
@click.option("--status", metavar="STATUS", help="open, done or cancelled.")
@click.option("--due", metavar="DATE", help="New due date, YYYY-MM-DD.")
@click.option("--owner", help="New owner.")
@click.option("--title", help="New title.")
@click.option(
    "--reason",
    help="Why, for the audit trail: needed for everything but marking the action done.",
)
@click.option(
    "--expect-version",
    type=click.IntRange(1),
    help="Refuse the change unless the action is still at this version (from `action show`).",
)
@json_option
@click.pass_obj
def action_update(
    app, action_id: str, reason: str | None, expect_version: int | None, as_json: bool, **values: Any
) -> None:  # type: ignore[no-untyped-def]
    """Mark an action done, cancel or reopen it, or re-plan it (due date, owner, title).

    Marking it done needs no reason; anything else needs --reason.

    \b
    Example:
      riskreg action update A-1 --status done
      riskreg action update A-2 --due 2027-04-30 --reason "Trainer unavailable in March"
    """
    from riskreg.actions import action_to_dict, update_action

    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        raise click.UsageError("give at least one field to change, e.g. --status done")
    ctx = app.context()
    with app.database().write() as session:
        action = update_action(session, ctx, action_id, given, reason, expect_version)
        data = action_to_dict(action, ctx.today)
    emit(
        data, as_json, lambda d: f"updated {d['id']} ({d['status']}, due {d['due']}), version {d['version']}"
    )


@action_group.command("list")
@click.option("--overdue", is_flag=True, help="Only open actions past their due date.")
@click.option("--risk", "risk_id", metavar="R-N", help="Only the actions of this risk.")
@click.option("--status", metavar="STATUS", help="Only actions with this status: open, done or cancelled.")
@json_option
@click.pass_obj
def action_list(app, overdue: bool, risk_id: str | None, status: str | None, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """List actions, soonest due first.

    \b
    Example:
      riskreg action list --overdue
      riskreg action list --risk R-3 --json
    """
    from riskreg.actions import action_to_dict, list_actions

    ctx = app.context()
    with app.database().read() as session:
        data = [
            action_to_dict(a, ctx.today)
            for a in list_actions(session, ctx.today, overdue=overdue, risk_ref=risk_id, status=status)
        ]
    emit(data, as_json, _list_text)


@action_group.command("show")
@click.argument("action_id")
@json_option
@click.pass_obj
def action_show(app, action_id: str, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """Show one action.

    \b
    Example:
      riskreg action show A-1
    """
    from riskreg.actions import action_to_dict, get_action

    ctx = app.context()
    with app.database().read() as session:
        data = action_to_dict(get_action(session, action_id), ctx.today)
    emit(data, as_json, _action_text)


COMMANDS = (action_group,)
