"""`garrison`: the command line. Each command is a thin composition root; bad input and a wrong
configuration end with one clear line and exit status 2, never a traceback.

The command modules are light: `garrison --help` and the store's listings import neither Temporal's
worker nor LangGraph nor the agents; each command imports what it runs (a test holds this).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from orchestrator.cli_alerts import alerts_app, rehearse
from orchestrator.cli_audit import audit_app
from orchestrator.cli_common import configure_logging, err, fail, open_store, out, settings_or_exit
from orchestrator.cli_console import console_app
from orchestrator.cli_intel import intel_app
from orchestrator.cli_playbook import playbook_app
from orchestrator.cli_server import api_token, server
from orchestrator.cli_shadow import shadow_app
from orchestrator.cli_simulate import simulate
from orchestrator.cli_tools import emulate, tools_app
from orchestrator.cli_train import train_app
from orchestrator.cli_worker import worker
from simulations.cli_corpus import corpus_app

if TYPE_CHECKING:
    from orchestrator.models import DecisionKind

app = typer.Typer(
    help="Garrison: a multi-agent SOC orchestrator on durable Temporal workflows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
incidents_app = typer.Typer(help="Incidents in the store.", no_args_is_help=True)
approvals_app = typer.Typer(help="Approval requests.", no_args_is_help=True)
app.add_typer(incidents_app, name="incidents")
app.add_typer(approvals_app, name="approvals")
app.add_typer(tools_app, name="tools")
app.add_typer(corpus_app, name="corpus")
app.add_typer(alerts_app, name="alerts")
app.add_typer(audit_app, name="audit")
app.add_typer(console_app, name="console")
app.add_typer(train_app, name="train")
app.add_typer(playbook_app, name="playbook")
app.add_typer(intel_app, name="intel")
app.add_typer(shadow_app, name="shadow")
app.command()(simulate)
app.command()(worker)
app.command()(emulate)
app.command()(server)
app.command("api-token")(api_token)
app.command()(rehearse)


@incidents_app.command("list")
def incidents_list(
    limit: int = 50, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """List incidents, newest first."""

    async def run() -> None:
        async with open_store(settings_or_exit()) as store:
            rows = await store.list_incidents(limit=limit)
        if as_json:
            print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
            return
        table = Table("id", "status", "verdict", "category", box=None)
        for column in table.columns:
            column.no_wrap = True
        table.add_column("title", overflow="ellipsis", no_wrap=True)
        for r in rows:
            verdict = r.verdict.value if r.verdict else "-"
            category = r.category.value if r.category else "-"
            table.add_row(r.id, r.status.value, verdict, category, Text(r.title))
        out.print(table)

    asyncio.run(run())


@incidents_app.command("show")
def incidents_show(incident_id: str) -> None:
    """Show one incident: triage, alerts, actions, approvals and its audit trail."""

    async def run() -> None:
        async with open_store(settings_or_exit()) as store:
            incident = await store.get_incident(incident_id)
            if incident is None:
                fail(f"no incident {incident_id}")
            alerts = await store.alerts_for(incident_id)
            actions = await store.actions_for(incident_id)
            approvals = await store.list_approvals(incident_id=incident_id)
            audit = await store.audit_entries(incident_id=incident_id)
        out.print_json(incident.model_dump_json())
        out.print(f"[bold]{len(alerts)} alert(s)[/bold]")
        for a in alerts:
            out.print(f"  [{a.severity.value}] {a.title} host={a.entities.host}", markup=False)
        out.print("[bold]actions[/bold]")
        for action in actions:
            out.print(
                f"  {action.kind.value} {action.target}: {action.status.value} {action.outcome}",
                markup=False,
            )
        out.print("[bold]approvals[/bold]")
        for approval in approvals:
            out.print(f"  {approval.id} risk={approval.risk} {approval.status}")
        out.print(f"[bold]audit[/bold]: {len(audit)} record(s)")
        for entry in audit:
            out.print(f"  #{entry.seq} {entry.type} {entry.actor} {entry.outcome}", markup=False)

    asyncio.run(run())


@incidents_app.command("replay")
def incidents_replay(
    paths: Annotated[list[Path], typer.Argument(help="Recorded incident folders.")],
    incident_id: Annotated[
        str | None,
        typer.Option("--id", help="Redeliver the alerts to this existing incident."),
    ] = None,
    new_uids: Annotated[
        bool,
        typer.Option("--new-uids", help="With --id: new alerts, not re-sends of the same ones."),
    ] = False,
) -> None:
    """Start recorded incidents on the running Garrison (`garrison server --incidents` or
    `garrison worker --incidents` serving the same recordings), as if their alerts arrived now,
    or with --id redeliver them to an existing incident. Approvals then go to the configured
    channel (Slack, the CLI, the API)."""
    from orchestrator.cli_replay import replay

    if new_uids and incident_id is None:
        fail("--new-uids needs --id: a new incident's alerts are all new")
    asyncio.run(replay(settings_or_exit(), paths, incident_id, new_uids))


@approvals_app.command("list")
def approvals_list(
    show_all: Annotated[bool, typer.Option("--all", help="Include decided requests.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List approval requests (pending ones unless --all)."""
    from orchestrator.store.records import ApprovalStatus

    async def run() -> None:
        async with open_store(settings_or_exit()) as store:
            rows = await store.list_approvals(None if show_all else ApprovalStatus.PENDING)
        if as_json:
            print(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
            return
        columns = ("id", "incident", "action", "risk", "approvers", "status", "deadline")
        table = Table(*columns, box=None)
        for column in table.columns:
            column.no_wrap = True
        for r in rows:
            table.add_row(
                r.id,
                r.incident_id,
                Text(f"{r.action.kind.value} {r.action.target}"),  # attacker-influenced: no markup
                str(r.risk),
                str(r.required_approvers),
                r.status.value,
                r.deadline.isoformat(timespec="seconds"),
            )
        out.print(table)

    asyncio.run(run())


def _decide(approval_id: str, user: str, decision: DecisionKind) -> None:
    from orchestrator.cli_common import approval_service

    async def run() -> int:
        async with approval_service(settings_or_exit()) as service:
            reply = await service.decide(approval_id, user, decision, channel="cli")
        if reply.accepted:
            out.print(f"{approval_id}: {reply.message}")
            return 0
        Console(stderr=True).print(f"refused: {reply.message}", markup=False)
        return 1

    raise typer.Exit(asyncio.run(run()))


@app.command()
def approve(approval_id: str, as_user: Annotated[str, typer.Option("--as")]) -> None:
    """Approve a pending request as USER (checked like any other channel)."""
    from orchestrator.models import DecisionKind

    _decide(approval_id, as_user, DecisionKind.APPROVE)


@app.command()
def deny(approval_id: str, as_user: Annotated[str, typer.Option("--as")]) -> None:
    """Deny a pending request as USER."""
    from orchestrator.models import DecisionKind

    _decide(approval_id, as_user, DecisionKind.DENY)


def main() -> None:
    configure_logging()
    try:
        app()
    except Exception as error:
        # A bad knowledge file met by a command that loads the agents without the settings: one
        # line. Looked up rather than imported, so that a light command never loads the agents.
        knowledge = sys.modules.get("agents.knowledge_base")
        if knowledge is not None and isinstance(error, knowledge.KnowledgeError):
            err.print(f"error: invalid knowledge: {error}", markup=False, highlight=False)
            raise SystemExit(2) from None
        # The embedded Temporal that would not start names its log: one line, not a traceback.
        embedded = sys.modules.get("orchestrator.temporal.embedded")
        if embedded is not None and isinstance(error, embedded.EmbeddedTemporalError):
            err.print(f"error: {error}", markup=False, highlight=False)
            raise SystemExit(1) from None
        raise


if __name__ == "__main__":
    main()


__all__ = ["Path", "app", "main"]
