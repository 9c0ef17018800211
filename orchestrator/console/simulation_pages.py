"""The console's simulation pages: the runs kept in the store (`garrison simulate` keeps each
run's scorecard), one run's scorecard with its per-incident rows and breakdown tables, and its
diff against a committed baseline (`ConsoleConfig.baselines_dir`) or another kept run.

Read-only pages (GET, no form posts): each depends on a signed-in session (`auth.Signed`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from orchestrator.console.auth import Signed, config_of
from orchestrator.console.rendering import page
from orchestrator.console.scorecards import (
    baseline_names,
    breakdown_tables,
    differences,
    incident_rows,
    load_named_baseline,
    metric_changes,
)
from orchestrator.console.sessions import Session

router = APIRouter(prefix="/console")
RUN_ID = r"^[A-Za-z0-9_-]{1,64}$"
RunId = Annotated[str, Path(pattern=RUN_ID, max_length=64)]
Against = Annotated[str, Query(max_length=140)]


@router.get("/simulations", include_in_schema=False)
async def simulations(request: Request, session: Signed) -> Response:
    runs = await request.app.state.deps.store.simulation_runs.list()
    return page(request, "simulations.html", session, runs=runs)


@router.get("/simulations/{run_id}", include_in_schema=False)
async def simulation(request: Request, run_id: RunId, session: Signed) -> Response:
    run = await request.app.state.deps.store.simulation_runs.get(run_id)
    if run is None:
        return _missing(request, session, run_id)
    others = await request.app.state.deps.store.simulation_runs.list()
    return page(
        request,
        "simulation.html",
        session,
        run=run,
        rows=incident_rows(run.report),
        breakdowns=breakdown_tables(run.report),
        baselines=baseline_names(config_of(request).baselines_dir),
        others=[r for r in others if r.id != run.id],
    )


@router.get("/simulations/{run_id}/diff", include_in_schema=False)
async def simulation_diff(
    request: Request, run_id: RunId, session: Signed, against: Against = ""
) -> Response:
    """`against`: `baseline:<file name>` or `run:<kept run id>`."""
    runs = request.app.state.deps.store.simulation_runs
    run = await runs.get(run_id)
    if run is None:
        return _missing(request, session, run_id)
    kind, _, name = against.partition(":")
    baseline: dict[str, Any] | None = None
    problem = None
    if kind == "baseline":
        try:
            baseline = load_named_baseline(config_of(request).baselines_dir, name)
        except ValueError as error:
            problem = str(error)
    elif kind == "run":
        other = await runs.get(name) if name else None
        baseline = other.report if other is not None else None
        problem = None if other is not None else f"there is no kept run {name!r}"
    else:
        problem = "choose a baseline or a kept run to compare with"
    return page(
        request,
        "simulation_diff.html",
        session,
        status_code=200 if baseline is not None else 404,
        run=run,
        against=against,
        problem=problem,
        metrics=metric_changes(run.report, baseline) if baseline is not None else [],
        lines=differences(run.report, baseline) if baseline is not None else [],
    )


def _missing(request: Request, session: Session, run_id: str) -> Response:
    return page(request, "not_found.html", session, status_code=404, what=f"No kept run {run_id}.")
