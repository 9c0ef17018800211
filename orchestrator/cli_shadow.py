"""`garrison shadow`: a candidate version beside the current one, side effects off, and where
the two disagree before the candidate is promoted (docs/shadow.md).

`run` replays recorded incidents under both versions (each side in a process of its own) and
keeps both runs in the store; `report` prints the agreement table of a kept shadow run; `follow`
shadows a running deployment's incidents and `report --live` compares them.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from orchestrator.cli_common import err, fail, open_store, out, recorded_incidents, settings_or_exit

if TYPE_CHECKING:
    from orchestrator.settings import GarrisonSettings
    from simulations.shadow.compare import ShadowReport
    from simulations.shadow.records import Role
    from simulations.shadow.run import Candidate

shadow_app = typer.Typer(
    help="Shadow a candidate version (knowledge, settings, install) beside the current one.",
    no_args_is_help=True,
)
ROLES: tuple[Role, ...] = ("current", "candidate")
ANALYSTS = ("oracle", "approve_all", "deny_all", "absent")


@shadow_app.command("run")
def shadow_run(
    paths: Annotated[list[Path], typer.Argument(help="Incident folders, or folders of them.")],
    candidate_knowledge: Annotated[
        Path | None,
        typer.Option("--candidate-knowledge", help="The candidate's knowledge folder."),
    ] = None,
    candidate_setting: Annotated[
        list[str] | None,
        typer.Option(
            "--candidate-setting",
            help="GARRISON_NAME=VALUE for the candidate only (a policy, a routing file...).",
        ),
    ] = None,
    candidate_python: Annotated[
        Path | None,
        typer.Option(
            "--candidate-python",
            help="The interpreter of another Garrison install (a new playbook version).",
        ),
    ] = None,
    analyst: Annotated[
        str | None, typer.Option(help="Override every incident's analyst, on both sides.")
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=32)] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Replay recorded incidents under the current and the candidate versions, side effects off,
    keep both runs and print where they disagree."""
    from simulations.shadow.run import Candidate, ShadowError, check_candidate, parse_settings

    if analyst is not None and analyst not in ANALYSTS:
        fail(f"--analyst must be one of {', '.join(ANALYSTS)}")
    try:
        candidate = Candidate(
            knowledge_dir=candidate_knowledge.expanduser().resolve()
            if candidate_knowledge
            else None,
            python=candidate_python.expanduser().absolute() if candidate_python else None,
            settings=parse_settings(candidate_setting or []),
        )
        check_candidate(candidate)
    except (ValueError, ShadowError) as error:
        fail(str(error))
    incidents = recorded_incidents(paths)
    settings = settings_or_exit()
    shadow_id = uuid.uuid4().hex[:8]
    documents = _run_sides(shadow_id, paths, candidate, analyst, concurrency, len(incidents))
    asyncio.run(_keep(settings, shadow_id, paths, candidate, documents))
    report = _report(shadow_id, documents)
    _show(report, as_json)
    if not as_json:
        out.print(f"shadow run kept as {shadow_id}: garrison shadow report {shadow_id}")


def _run_sides(
    shadow_id: str,
    paths: list[Path],
    candidate: Candidate,
    analyst: str | None,
    concurrency: int,
    count: int,
) -> dict[Role, dict[str, Any]]:
    from simulations.shadow.run import ShadowError, run_side_process

    documents: dict[Role, dict[str, Any]] = {}
    for role in ROLES:  # one after the other: each side has the machine to itself
        started = time.perf_counter()
        with err.status(f"shadow {shadow_id}: replaying {count} incident(s) under the {role}"):
            try:
                documents[role] = run_side_process(
                    role,
                    shadow_id,
                    paths,
                    python=candidate.python if role == "candidate" else None,
                    overrides=candidate.overrides() if role == "candidate" else None,
                    analyst=analyst,
                    concurrency=concurrency,
                )
            except ShadowError as error:
                fail(str(error))
        err.print(f"{role}: {count} incident(s) in {time.perf_counter() - started:.0f} s")
    return documents


async def _keep(
    settings: GarrisonSettings,
    shadow_id: str,
    paths: list[Path],
    candidate: Candidate,
    documents: dict[Role, dict[str, Any]],
) -> None:
    from simulations.shadow.run import shadow_label, side_run_id

    async with open_store(settings) as store:
        for role in ROLES:
            report = documents[role]["scorecard"] | {"shadow": documents[role]["side"]}
            label = shadow_label(shadow_id, role, paths, candidate)
            await store.simulation_runs.keep(
                side_run_id(shadow_id, role), datetime.now(UTC), label, report
            )


@shadow_app.command("report")
def shadow_report(
    run: Annotated[
        str | None, typer.Argument(help="A shadow run's id; the newest one when omitted.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    live: Annotated[
        bool, typer.Option("--live", help="Compare live incidents with their shadows.")
    ] = False,
) -> None:
    """Where the candidate of a kept shadow run disagrees with the current version; with
    `--live`, where this database's shadows disagree with the deployment's incidents."""
    settings = settings_or_exit()
    if live:
        if run is not None:
            fail("--live compares every shadow of this database: give no RUN")
        _show(asyncio.run(_live_report(settings)), as_json)
        return
    shadow_id, documents = asyncio.run(_load(settings, run))
    _show(_report(shadow_id, documents), as_json)


async def _live_report(settings: GarrisonSettings) -> ShadowReport:
    from orchestrator.settings import ConfigError
    from simulations.shadow.live import live_report

    async with open_store(settings) as store:
        try:
            return await live_report(settings, store)
        except ConfigError as error:
            fail(str(error))


@shadow_app.command("follow")
def shadow_follow(
    incidents: Annotated[
        list[Path] | None,
        typer.Option(
            "--incidents",
            help="Read from the in-memory twins of these recorded incidents, not the vendors.",
        ),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
    interval: Annotated[float, typer.Option(min=1.0, help="Seconds between passes.")] = 60.0,
    limit: Annotated[int, typer.Option(min=1, help="Newest closed incidents per pass.")] = 100,
) -> None:
    """Follow a deployment as its candidate, side effects off: replay each of its closed
    incidents (GARRISON_SHADOW_LIVE_DATABASE_URL) under this process's settings, mirroring its
    analysts' decisions, into this process's own database."""
    from orchestrator.cli_worker import recorded_backends, vendor_backends
    from orchestrator.settings import ConfigError
    from simulations.shadow.live import follow_once, live_database_url

    settings = settings_or_exit()
    try:
        live_database_url(settings)
    except ConfigError as error:
        fail(str(error))

    async def passes() -> None:
        while True:
            backends = (
                recorded_backends(incidents, None, None) if incidents else vendor_backends(settings)
            )
            for done in await follow_once(settings, backends, limit=limit):
                verdict = done.result.verdict if done.result else done.error
                out.print(f"shadowed {done.incident_id}: {verdict}", markup=False)
            if once:
                return
            await asyncio.sleep(interval)

    try:
        asyncio.run(passes())
    except ConfigError as error:
        fail(str(error))


async def _load(
    settings: GarrisonSettings, run: str | None
) -> tuple[str, dict[Role, dict[str, Any]]]:
    from simulations.shadow.run import side_run_id

    async with open_store(settings) as store:
        if run is None:
            labels = [r.label for r in await store.simulation_runs.list(limit=1000)]
            shadows = (label.split()[1] for label in labels if label.startswith("shadow "))
            newest = next(shadows, None)
            if newest is None:
                fail("no shadow run kept in the store: run `garrison shadow run` first")
            run = newest
        documents: dict[Role, dict[str, Any]] = {}
        for role in ROLES:
            kept = await store.simulation_runs.get(side_run_id(run, role))
            if kept is None or not isinstance(kept.report.get("shadow"), dict):
                fail(f"no shadow run {run!r} in the store (its {role} side is missing)")
            documents[role] = {"side": kept.report["shadow"]}
    return run, documents


def _report(shadow_id: str, documents: dict[Role, dict[str, Any]]) -> ShadowReport:
    from pydantic import ValidationError

    from simulations.shadow.run import report_of

    try:
        return report_of(shadow_id, documents)
    except ValidationError as error:
        fail(f"shadow run {shadow_id}: unreadable side document: {error.errors()[0]['msg']}")


def _show(report: ShadowReport, as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(report.model_dump(mode="json", by_alias=True)))
        return
    for role, side in (("current", report.current), ("candidate", report.candidate)):
        words = [f"{k}={v}" for k, v in side.overrides.items()]
        if side.python != report.current.python:
            words.append(f"python {side.python}")
        extra = ", ".join(words)
        out.print(
            f"{role}: knowledge {side.knowledge_version}"
            + (f", {extra}" if extra else "")
            + f" ({side.elapsed_s:.0f} s)",
            markup=False,
            highlight=False,
        )
    _print_incidents(report)
    totals = Table("measure", "count", title=f"shadow {report.shadow_id}: agreement")
    for name, value in report.totals.model_dump().items():
        totals.add_row(name.replace("_", " "), str(value))
    out.print(totals)


def _print_incidents(report: ShadowReport) -> None:
    """One row per incident that disagrees (all incidents agree: one line says so)."""
    rows = [row for row in report.incidents if not row.agrees]
    if not rows:
        out.print(f"all {len(report.incidents)} incident(s) agree")
        return
    table = Table(
        "incident", "verdict", "category", "playbook", "proposals", "risk / decision", box=None
    )
    for row in rows:
        verdict = str(row.current_verdict)
        if not row.verdict_agrees:
            verdict = f"{row.current_verdict} -> {row.candidate_verdict}"
        category = str(row.current_category)
        if row.current_category != row.candidate_category:
            category = f"{row.current_category} -> {row.candidate_category}"
        playbook = str(row.current_playbook or "-")
        if row.current_playbook != row.candidate_playbook:
            playbook = f"{row.current_playbook or '-'} -> {row.candidate_playbook or '-'}"
        proposals = [f"+{a}" for a in row.proposals_added]
        proposals += [f"-{a}" for a in row.proposals_removed]
        changes = [f"{c.action} risk {c.current}->{c.candidate}" for c in row.risk_changes]
        changes += [f"{c.action} {c.current}->{c.candidate}" for c in row.decision_changes]
        changes += row.errors
        table.add_row(
            Text(row.id),
            Text(verdict),
            Text(category),
            Text(playbook),
            Text("\n".join(proposals) or "-"),
            Text("\n".join(changes) or "-"),
        )
    out.print(table)
