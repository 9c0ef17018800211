"""`garrison simulate`: replay recorded incidents through the real pipeline and score the run."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.cli_common import err, fail, out, recorded_incidents, settings_or_exit
from orchestrator.cli_simulate_options import CheckedOptions, check_options
from orchestrator.cli_simulate_print import print_breakdown, print_scorecard, print_vendor_effects

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from agents.model_client import AgentModels
    from orchestrator.settings import GarrisonSettings
    from simulations.loader import LoadedIncident
    from simulations.report_html import Breakdown
    from simulations.scorer import Scorecard


def simulate(
    paths: Annotated[list[Path], typer.Argument(help="Incident folders, or folders of them.")],
    report_json: Annotated[
        Path | None, typer.Option("--report-json", help="Write the scorecard as JSON here.")
    ] = None,
    analyst: Annotated[
        str | None,
        typer.Option(help="Override every incident's analyst: oracle|approve_all|deny_all|absent."),
    ] = None,
    fail_under: Annotated[
        list[str] | None,
        typer.Option("--fail-under", help="METRIC=VALUE: exit 1 when METRIC is below VALUE."),
    ] = None,
    fail_over: Annotated[
        list[str] | None,
        typer.Option("--fail-over", help="METRIC=VALUE: exit 1 when METRIC is above VALUE."),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=32)] = 4,
    backends: Annotated[
        str,
        typer.Option(help="memory (in-memory twins) or emulated (vendor adapters + emulators)."),
    ] = "memory",
    vendor: Annotated[
        list[str] | None,
        typer.Option(help="With --backends emulated: CAPABILITY=VENDOR, e.g. edr=defender."),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="With --backends emulated: CAPABILITY=SPEC, e.g. ticketing=down, edr=5xx:6 "
            "(docs/simulations.md, 'Faults'); repeatable."
        ),
    ] = None,
    report_html: Annotated[
        Path | None,
        typer.Option("--report-html", help="Write a self-contained HTML report here."),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="A saved --report-json: exit 1 when a metric, a verdict or the actions changed.",
        ),
    ] = None,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep/--no-keep",
            help="Keep the scorecard in the store (the console's simulation pages).",
        ),
    ] = True,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="PROVIDER:MODEL for every role (overrides GARRISON_MODEL), or replay:DIR to "
            "answer from a recording offline (a call it lacks fails the run, named).",
        ),
    ] = None,
    record_model: Annotated[
        Path | None,
        typer.Option("--record-model", help="Record every model call's request and response here."),
    ] = None,
    compare_rules: Annotated[
        bool,
        typer.Option(
            "--compare-rules",
            help="Also run the rules alone and report where the model changed verdicts, actions "
            "or metrics.",
        ),
    ] = False,
) -> None:
    """Replay recorded incidents end to end on the embedded Temporal and print the scorecard."""
    options = check_options(
        analyst, backends, vendor or [], fault or [], fail_under or [], fail_over or [], baseline
    )
    run = _prepare(paths, options, concurrency, model, record_model, compare_rules)
    scorecard, rules = _replay_all(run, compare_rules)
    report, groups = _report(run, scorecard, rules)
    if report_json is not None:
        _write_json(report_json, report)
    if keep:
        _keep_run(run, _label(paths, analyst, backends, vendor or [], fault or []), report)
    if report_html is not None:
        _write_html(report_html, scorecard, groups, run.incidents)
    raise typer.Exit(_exit_code(report, run))


@dataclass(frozen=True)
class _Run:
    """What the replays of one run share."""

    incidents: list[LoadedIncident]
    settings: GarrisonSettings
    options: CheckedOptions
    models: AgentModels | None  # None: GARRISON_MODEL is not set, the rules alone
    concurrency: int
    run_id: str


def _prepare(
    paths: list[Path],
    options: CheckedOptions,
    concurrency: int,
    model: str | None,
    record_model: Path | None,
    compare_rules: bool,
) -> _Run:
    """The incidents, the settings, the routing and the models, each checked (exit 2 naming what
    is wrong) before any incident runs."""
    incidents = recorded_incidents(paths)
    settings = settings_or_exit()
    _check_routing()
    run_id = uuid.uuid4().hex[:8]
    models = _models(settings, model, record_model)
    if compare_rules and models is None:
        fail("--compare-rules needs a model (--model or GARRISON_MODEL)")
    return _Run(incidents, settings, options, models, concurrency, run_id)


def _replay_all(run: _Run, compare_rules: bool) -> tuple[Scorecard, Scorecard | None]:
    """The run with its models and, with `--compare-rules`, the rules alone, under one progress
    bar; a configuration the runner refuses exits 2 with its message."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    # Loaded before the bar starts, so that its clock counts the replays, not seconds of imports.
    import simulations.runner  # noqa: F401
    from orchestrator.settings import ConfigError

    progress = Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=err,
    )
    with progress:
        task = progress.add_task("", total=len(run.incidents))
        try:
            scorecard = _replay(run, progress, task, with_model=True)
            rules = None
            if compare_rules:
                progress.reset(task, description="rules alone")
                rules = _replay(run, progress, task, with_model=False)
        except ConfigError as error:
            progress.stop()
            fail(str(error))
    return scorecard, rules


def _replay(run: _Run, progress: Progress, task: TaskID, *, with_model: bool) -> Scorecard:
    """One replay of the run's incidents: with its models, or the rules alone."""
    from orchestrator.runtime import settle_heap
    from simulations.runner import SimulationOptions, run_simulation

    # What is loaded now (modules, the recordings) lives as long as the run: out of the
    # collector's reach, full collections no longer walk it (2.1 s of a corpus run).
    settle_heap()
    options = SimulationOptions(
        analyst=run.options.analyst,
        concurrency=run.concurrency,
        emulated=run.options.emulated,
        faults=run.options.faults,
        model=run.models if with_model else None,
        # the rules-alone run of --compare-rules replays its own incidents
        run_id=run.run_id if with_model else uuid.uuid4().hex[:8],
    )
    notice = progress.console.print

    def advance(outcome: object) -> None:
        progress.update(task, advance=1, description=getattr(outcome, "recorded_id", ""))

    return asyncio.run(
        run_simulation(
            run.incidents,
            run.settings if with_model else _without_model(run.settings),
            options,
            progress=advance,
            notice=lambda text: notice(text, markup=False),
        )
    )


def _report(
    run: _Run, scorecard: Scorecard, rules: Scorecard | None
) -> tuple[dict[str, Any], Breakdown]:
    """The scorecard printed, and as the JSON report; the breakdown per category and per tactic
    (in the report too)."""
    from simulations.breakdown import breakdown, playbooks_by_category

    report = scorecard.model_dump(mode="json", by_alias=True)
    if run.models is not None:
        _report_model(report, scorecard, run.models, rules)
    print_scorecard(report)
    groups = breakdown(scorecard, [incident.spec for incident in run.incidents])
    print_breakdown(groups, playbooks_by_category(scorecard))
    report["breakdown"] = groups  # per category and per tactic, in the JSON too
    if run.options.emulated is not None:
        print_vendor_effects(scorecard)
    return report, groups


def _write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    out.print(f"report written to {path}")


def _keep_run(run: _Run, label: str, report: dict[str, Any]) -> None:
    asyncio.run(_keep(run.settings, run.run_id, label, report))
    out.print(f"run kept in the store as {run.run_id} (console: /console/simulations/{run.run_id})")


def _write_html(
    path: Path, scorecard: Scorecard, groups: Breakdown, incidents: list[LoadedIncident]
) -> None:
    from simulations.report_html import render_html

    specs = [incident.spec for incident in incidents]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(scorecard, groups, specs), encoding="utf-8")
    out.print(f"HTML report written to {path}")


def _exit_code(report: dict[str, Any], run: _Run) -> int:
    """1 when a gate failed, the baseline changed or a replayed model call had no recording, each
    named on stderr; else 0."""
    from simulations.baseline import compare

    broken = [g for g in run.options.gates if not g.holds(report)]
    for gate in broken:
        err.print(f"gate failed: {gate.describe(report)}", markup=False)
    saved = run.options.baseline
    differences = compare(report, saved) if saved is not None else []
    for difference in differences:
        err.print(f"baseline: {difference}", markup=False, highlight=False)
    models = run.models
    misses = models.tape.misses if models is not None and models.tape is not None else []
    for miss in sorted(set(misses)):
        err.print(f"model replay: no recording of {miss}", markup=False, highlight=False)
    return 1 if broken or differences or misses else 0


def _models(
    settings: GarrisonSettings, spec: str | None, record: Path | None
) -> AgentModels | None:
    """The agents' models for the run: `--model` over GARRISON_MODEL, recording into `record`."""
    from orchestrator.model_loading import load_models
    from orchestrator.settings import ConfigError

    try:
        models = load_models(settings, spec=spec, record_dir=record)
    except ConfigError as error:
        fail(str(error))
    if record is not None and (
        models is None or models.tape is None or models.tape.mode != "record"
    ):
        fail("--record-model needs a live model (--model PROVIDER:MODEL or GARRISON_MODEL)")
    return models


def _without_model(settings: GarrisonSettings) -> GarrisonSettings:
    """The same settings with no model for any role: the rules alone (`--compare-rules`)."""
    names = ("triage", "investigation", "remediation", "summaries", "record_dir")
    roles: dict[str, Any] = dict.fromkeys(names)
    return settings.model_copy(
        update={"model": None, "models": settings.models.model_copy(update=roles)}
    )


def _report_model(
    report: dict[str, Any], card: Scorecard, models: AgentModels, rules: Scorecard | None
) -> None:
    from simulations.model_runs import compare_with_rules, model_totals

    totals = model_totals(card)
    report["model"] = totals
    out.print("model: " + ", ".join(f"{k} {v}" for k, v in totals.items()), markup=False)
    if rules is None:
        return
    differences = compare_with_rules(report, rules.model_dump(mode="json", by_alias=True))
    report["compare_rules"] = differences
    out.print(f"compare-rules: {len(differences)} difference(s) from the rules alone")
    for line in differences:
        out.print(f"  {line}", markup=False, highlight=False)


async def _keep(
    settings: GarrisonSettings, run_id: str, label: str, report: dict[str, object]
) -> None:
    from orchestrator.cli_common import open_store

    async with open_store(settings) as store:
        await store.simulation_runs.keep(
            run_id, datetime.now(UTC), label, report, retain=settings.simulation_runs_keep
        )


def _label(
    paths: list[Path], analyst: str | None, backends: str, vendor: list[str], fault: list[str]
) -> str:
    """What was simulated, as the command line said it."""
    words = [str(p) for p in paths]
    words += [f"--analyst {analyst}"] if analyst else []
    words += [f"--backends {backends}"] if backends != "memory" else []
    words += [f"--vendor {v}" for v in vendor] + [f"--fault {f}" for f in fault]
    return " ".join(words)


def _check_routing() -> None:
    """The playbooks (entry points too) and the routing file, before any incident runs."""
    from orchestrator.settings import ConfigError, check_playbook_routing
    from playbooks.routing import routing_path

    try:
        check_playbook_routing(routing_path())
    except ConfigError as error:
        fail(str(error))
