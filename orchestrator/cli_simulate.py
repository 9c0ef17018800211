"""`garrison simulate`: replay recorded incidents through the real pipeline and score the run."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orchestrator.cli_common import err, fail, out, recorded_incidents, settings_or_exit
from orchestrator.cli_simulate_print import (
    NUMERIC_METRICS,
    print_breakdown,
    print_scorecard,
    print_vendor_effects,
)

if TYPE_CHECKING:
    from agents.model_client import AgentModels
    from orchestrator.settings import GarrisonSettings
    from simulations.faults import Fault
    from simulations.scorer import Scorecard
    from tools.vendor_spec import Capability, VendorSpec


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
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from orchestrator.runtime import settle_heap
    from orchestrator.settings import ConfigError
    from simulations.baseline import compare, load_baseline
    from simulations.breakdown import breakdown, playbooks_by_category
    from simulations.runner import SimulationOptions, run_simulation
    from simulations.spec import AnalystPolicy

    policy = None
    if analyst is not None:
        try:
            policy = AnalystPolicy(analyst)
        except ValueError:
            fail(f"--analyst must be one of {', '.join(p.value for p in AnalystPolicy)}")
    emulated = _emulated(backends, vendor or [])
    faults = _faults(fault or [], emulated is not None)
    gates = _thresholds(fail_under or [], "--fail-under") + _thresholds(
        fail_over or [], "--fail-over"
    )
    saved = None
    if baseline is not None:
        try:
            saved = load_baseline(baseline)
        except ValueError as error:
            fail(str(error))
    incidents = recorded_incidents(paths)
    settings = settings_or_exit()
    _check_routing()
    run_id = uuid.uuid4().hex[:8]
    models = _models(settings, model, record_model)
    if compare_rules and models is None:
        fail("--compare-rules needs a model (--model or GARRISON_MODEL)")
    progress = Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=err,
    )
    with progress:
        task = progress.add_task("", total=len(incidents))

        def advance(outcome: object) -> None:
            progress.update(task, advance=1, description=getattr(outcome, "recorded_id", ""))

        def run(with_model: bool) -> Scorecard:
            # What is loaded now (modules, the recordings) lives as long as the run: out of the
            # collector's reach, full collections no longer walk it (2.1 s of a corpus run).
            settle_heap()
            options = SimulationOptions(
                analyst=policy,
                concurrency=concurrency,
                emulated=emulated,
                faults=faults,
                model=models if with_model else None,
                # the rules-alone run of --compare-rules replays its own incidents
                run_id=run_id if with_model else uuid.uuid4().hex[:8],
            )
            notice = progress.console.print
            return asyncio.run(
                run_simulation(
                    incidents,
                    settings if with_model else _without_model(settings),
                    options,
                    progress=advance,
                    notice=lambda text: notice(text, markup=False),
                )
            )

        try:
            scorecard = run(with_model=True)
            rules = None
            if compare_rules:
                progress.reset(task, description="rules alone")
                rules = run(with_model=False)
        except ConfigError as error:
            progress.stop()
            fail(str(error))
    report = scorecard.model_dump(mode="json", by_alias=True)
    if models is not None:
        _report_model(report, scorecard, models, rules)
    print_scorecard(report)
    specs = [incident.spec for incident in incidents]
    groups = breakdown(scorecard, specs)
    print_breakdown(groups, playbooks_by_category(scorecard))
    report["breakdown"] = groups  # per category and per tactic, in the JSON too
    if emulated is not None:
        print_vendor_effects(scorecard)
    if report_json is not None:
        report_json.parent.mkdir(parents=True, exist_ok=True)
        report_json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        out.print(f"report written to {report_json}")
    if keep:
        label = _label(paths, analyst, backends, vendor or [], fault or [])
        asyncio.run(_keep(settings, run_id, label, report))
        out.print(f"run kept in the store as {run_id} (console: /console/simulations/{run_id})")
    if report_html is not None:
        from simulations.report_html import render_html

        report_html.parent.mkdir(parents=True, exist_ok=True)
        report_html.write_text(render_html(scorecard, groups, specs), encoding="utf-8")
        out.print(f"HTML report written to {report_html}")
    broken = [g for g in gates if not g.holds(report)]
    for gate in broken:
        err.print(f"gate failed: {gate.describe(report)}", markup=False)
    differences = compare(report, saved) if saved is not None else []
    for difference in differences:
        err.print(f"baseline: {difference}", markup=False, highlight=False)
    misses = models.tape.misses if models is not None and models.tape is not None else []
    for miss in sorted(set(misses)):
        err.print(f"model replay: no recording of {miss}", markup=False, highlight=False)
    raise typer.Exit(1 if broken or differences or misses else 0)


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


def _emulated(backends: str, choices: list[str]) -> dict[Capability, VendorSpec] | None:
    """The vendors to emulate, one per capability (defaults from tools.vendors)."""
    if backends == "memory":
        if choices:
            fail("--vendor needs --backends emulated")
        return None
    if backends != "emulated":
        fail(f"--backends {backends!r}: memory or emulated")
    from tools.vendor_spec import Capability
    from tools.vendors import DEFAULT_EMULATED, UnknownVendor, vendor

    chosen = dict(DEFAULT_EMULATED)
    for choice in choices:
        capability, sep, name = choice.partition("=")
        try:
            chosen[Capability(capability)] = name if sep else ""
        except ValueError:
            fail(f"--vendor {choice!r}: CAPABILITY=VENDOR, capabilities are edr, firewall, ...")
    specs: dict[Capability, VendorSpec] = {}
    for capability, name in chosen.items():
        try:
            spec = vendor(name)
        except UnknownVendor as error:
            fail(f"--vendor: {error.args[0]}")
        if spec.capability is not capability:
            fail(f"--vendor: {name} is a {spec.capability.value} vendor, not {capability.value}")
        specs[capability] = spec
    return specs


def _faults(specs: list[str], emulated: bool) -> tuple[Fault, ...]:
    from simulations.faults import parse_fault

    if specs and not emulated:
        fail("--fault needs --backends emulated: faults are injected by the vendors' emulators")
    try:
        return tuple(parse_fault(spec) for spec in specs)
    except ValueError as error:
        fail(str(error))


class _Gate:
    def __init__(self, metric: str, value: float, below: bool) -> None:
        self.metric, self.value, self.below = metric, value, below

    def holds(self, report: dict[str, object]) -> bool:
        actual = report.get(self.metric)
        if not isinstance(actual, int | float):
            return False
        return actual >= self.value if self.below else actual <= self.value

    def describe(self, report: dict[str, object]) -> str:
        sign = ">=" if self.below else "<="
        return f"{self.metric} = {report.get(self.metric)}, wanted {sign} {self.value}"


def _thresholds(specs: list[str], option: str) -> list[_Gate]:
    gates = []
    for spec in specs:
        metric, sep, value = spec.partition("=")
        if not sep or metric not in NUMERIC_METRICS:
            known = ", ".join(NUMERIC_METRICS)
            fail(f"{option} {spec!r}: expected METRIC=VALUE with METRIC in {known}")
        try:
            gates.append(_Gate(metric, float(value), below=option == "--fail-under"))
        except ValueError:
            fail(f"{option} {spec!r}: {value!r} is not a number")
    return gates


def _check_routing() -> None:
    """The playbooks (entry points too) and the routing file, before any incident runs."""
    from orchestrator.settings import ConfigError, check_playbook_routing
    from playbooks.routing import routing_path

    try:
        check_playbook_routing(routing_path())
    except ConfigError as error:
        fail(str(error))
