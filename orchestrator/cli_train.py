"""`garrison train`: training mode. An analyst decides the approvals of recorded incidents replayed
as if live, then reads a debrief that scores each decision against the incident's truth and
against the agents. Sessions are kept in the store: `history` shows a team's progress."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from orchestrator.cli_common import (
    err,
    fail,
    open_store,
    out,
    recorded_incidents,
    settings_or_exit,
)

if TYPE_CHECKING:
    from orchestrator.models import DecisionKind
    from simulations.training.trainee import DecisionPrompt

train_app = typer.Typer(
    help="Training mode: decide recorded incidents' approvals as if live, then read the debrief.",
    invoke_without_command=True,
)
DEFAULT_CORPUS = Path("simulations/incidents")
CHOICES = {"a": "approve", "approve": "approve", "d": "deny", "deny": "deny", "s": "expire"}


@train_app.callback()
def train(
    ctx: typer.Context,
    analyst: Annotated[
        str | None, typer.Option("--analyst", help="Who is training (recorded with the scores).")
    ] = None,
    corpus: Annotated[
        list[Path] | None,
        typer.Option("--corpus", help="Incident folders (default simulations/incidents)."),
    ] = None,
    incident: Annotated[
        list[str] | None,
        typer.Option("--incident", help="A recorded incident id to train on (repeatable)."),
    ] = None,
    count: Annotated[int, typer.Option(min=1, max=50, help="Incidents drawn at random.")] = 5,
    seed: Annotated[int | None, typer.Option(help="Seed of the random draw.")] = None,
    report_json: Annotated[
        Path | None, typer.Option("--report-json", help="Also write the session report here.")
    ] = None,
) -> None:
    """Start a session (with no subcommand): each approval request is shown as live; answer
    a(pprove), d(eny) or s (let it expire)."""
    if ctx.invoked_subcommand is not None:
        return
    if not analyst:
        fail("--analyst NAME is required to start a training session")
    from simulations.training.session import TrainingError, TrainingOptions, pick, run_training

    incidents = recorded_incidents(corpus or [DEFAULT_CORPUS])
    options = TrainingOptions(
        analyst=analyst, count=count, seed=seed, incidents=tuple(incident or ())
    )
    try:
        chosen = pick(incidents, options)
    except TrainingError as error:
        fail(str(error))
    settings = settings_or_exit()
    out.print(f"Training session for {analyst}: {len(chosen)} incidents, one at a time.")
    report = asyncio.run(run_training(chosen, settings, options, _ask))
    _print_report(report)
    if report_json is not None:
        report_json.parent.mkdir(parents=True, exist_ok=True)
        report_json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        out.print(f"report written to {report_json}")


async def _ask(prompt: DecisionPrompt) -> DecisionKind | None:
    return await asyncio.to_thread(_ask_blocking, prompt)


def _ask_blocking(prompt: DecisionPrompt) -> DecisionKind | None:
    from orchestrator.models import DecisionKind

    _show(prompt)
    while True:
        answer = typer.prompt("approve, deny or let it expire? [a/d/s]", default="s")
        choice = CHOICES.get(answer.strip().lower())
        if choice == "approve":
            return DecisionKind.APPROVE
        if choice == "deny":
            return DecisionKind.DENY
        if choice == "expire":
            return None
        err.print("answer a, d or s", markup=False)


def _show(prompt: DecisionPrompt) -> None:
    """The request as the on-call analyst would see it; all alert text printed as plain text."""
    out.rule(Text(f"{prompt.title} ({prompt.recorded_id})"))
    alerts = Table("time", "severity", "alert", "host", "user", title="alerts")
    for a in prompt.alerts[:20]:
        alerts.add_row(
            a.time.isoformat(timespec="seconds"),
            a.severity,
            Text(a.title),
            Text(a.host or ""),
            Text(a.user or ""),
        )
    out.print(alerts)
    if len(prompt.alerts) > 20:
        out.print(f"... and {len(prompt.alerts) - 20} more alerts")
    for line in prompt.rationale[:15]:
        out.print(Text("triage: " + line))
    if prompt.proposal_rationale:
        out.print(Text("why this action: " + prompt.proposal_rationale))
    for line in prompt.evidence[:10]:
        out.print(Text("evidence: " + line))
    factors = ", ".join(f"{k} {v}" for k, v in sorted(prompt.risk_factors.items()))
    out.print(
        Text(
            f"PROPOSED {prompt.kind.value} {prompt.target}: risk {prompt.risk}"
            + (f" ({factors})" if factors else "")
            + f", {prompt.required_approvers} approver(s), deadline "
            + prompt.deadline.isoformat(timespec="seconds")
        )
    )


def _print_report(report: dict[str, Any]) -> None:
    score = report["score"]
    for incident in report["incidents"]:
        out.rule(Text(f"debrief: {incident['title']} ({incident['recorded_id']})"))
        for line in incident["debrief"]:
            out.print(Text(line))
    table = Table("metric", "value", title=f"session {report['id']} ({report['analyst']})")
    for key, value in score.items():
        table.add_row(key, "-" if value is None else str(value))
    out.print(table)


@train_app.command("history")
def history(
    analyst: Annotated[str | None, typer.Option("--analyst", help="One analyst only.")] = None,
) -> None:
    """Training sessions, newest first: the team's progress over time."""
    settings = settings_or_exit()

    async def run() -> None:
        async with open_store(settings) as store:
            sessions = await store.training_sessions.list(analyst)
        table = Table(
            "session",
            "analyst",
            "finished",
            "incidents",
            "decisions",
            "accuracy",
            "over-response",
            "missed",
            "contained",
            "agents' recall",
            "median think s",
        )
        for s in sessions:
            table.add_row(
                s.id,
                Text(s.analyst),
                s.finished_at.isoformat(timespec="minutes"),
                str(s.incidents),
                str(s.decisions),
                f"{s.accuracy:.2f}",
                str(s.over_response),
                str(s.missed),
                f"{s.containment_recall:.2f}",
                f"{s.agents_recall:.2f}",
                "-" if s.median_think_s is None else f"{s.median_think_s:.1f}",
            )
        out.print(table if sessions else "no training sessions yet")

    asyncio.run(run())


@train_app.command("show")
def show(session_id: str) -> None:
    """One session's scores and debrief."""
    settings = settings_or_exit()

    async def run() -> None:
        async with open_store(settings) as store:
            session = await store.training_sessions.get(session_id)
        if session is None:
            fail(f"no training session {session_id}")
        _print_report(session.report)

    asyncio.run(run())
