"""A training session: recorded incidents replayed through the real pipeline one at a time, as if
live, with the trainee answering every approval request; scored and kept in the store.

The replay is the simulator's own (`simulations.runner.run_simulation`): the same ingestion,
workflow, agents, policy and `ApprovalService`. The trainee is in every approver group of the
session's directory; where a tier needs two approvers, the second is a simulated analyst who
follows the trainee's decision (the score is the trainee's alone). Incidents run one at a time so
the trainee sees one incident's requests together, in the order the workflow asks.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrator import composition
from orchestrator.settings import GarrisonSettings
from orchestrator.store.repository import Store
from orchestrator.store.training_sessions import TRAINING_SCHEMA, TrainingSessionSummary
from simulations.loader import LoadedIncident
from simulations.runner import SimulationOptions, run_simulation
from simulations.training.scoring import (
    IncidentTraining,
    SessionScore,
    score_incident,
    score_session,
)
from simulations.training.trainee import Presenter, Trainee

# A person thinks: an incident may wait this long for its trainee before it is given up.
INCIDENT_TIMEOUT_S = 4 * 3600.0
DEFAULT_COUNT = 5


class TrainingError(ValueError):
    """A session that cannot start: an unknown incident, nothing to train on."""


@dataclass(frozen=True)
class TrainingOptions:
    analyst: str
    count: int = DEFAULT_COUNT
    seed: int | None = None
    incidents: tuple[str, ...] = ()  # recorded ids; empty: `count` picked at random


def pick(loaded: list[LoadedIncident], options: TrainingOptions) -> list[LoadedIncident]:
    """The session's incidents: those named, in the order named, or `count` drawn at random."""
    by_id = {incident.spec.id: incident for incident in loaded}
    if options.incidents:
        unknown = [i for i in options.incidents if i not in by_id]
        if unknown:
            raise TrainingError("no recorded incident " + ", ".join(unknown) + " in the corpus")
        return [by_id[i] for i in options.incidents]
    if not loaded:
        raise TrainingError("no recorded incidents to train on")
    ordered = sorted(by_id)
    chosen = random.Random(options.seed).sample(ordered, min(options.count, len(ordered)))
    return [by_id[i] for i in chosen]


async def run_training(
    incidents: list[LoadedIncident],
    settings: GarrisonSettings,
    options: TrainingOptions,
    present: Presenter,
) -> dict[str, Any]:
    """Run the session, keep it in the store and return its `garrison.training/1` report."""
    session_id = uuid.uuid4().hex[:10]
    started = datetime.now(UTC)
    trainees: dict[str, Trainee] = {}

    def analyst_for(loaded: LoadedIncident, incident_id: str, store: Store) -> Trainee:
        trainee = Trainee(options.analyst, loaded.spec.id, loaded.spec.title, store, present)
        trainees[loaded.spec.id] = trainee
        return trainee

    card = await run_simulation(
        incidents,
        settings,
        SimulationOptions(
            concurrency=1,
            incident_timeout_s=INCIDENT_TIMEOUT_S,
            run_id=f"train{session_id}",
            analyst_for=analyst_for,
            trainees=(options.analyst,),
        ),
    )
    runs = {run.id: run for run in card.per_incident}
    scored: list[IncidentTraining] = []
    for loaded in incidents:
        trainee = trainees.get(loaded.spec.id)
        scored.append(
            score_incident(
                loaded.spec.title,
                loaded.spec.truth,
                runs[loaded.spec.id],
                [] if trainee is None else trainee.decisions,
            )
        )
    total = score_session(scored)
    finished = datetime.now(UTC)
    report: dict[str, Any] = {
        "schema": TRAINING_SCHEMA,
        "id": session_id,
        "analyst": options.analyst,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "score": total.model_dump(mode="json"),
        "incidents": [i.model_dump(mode="json") for i in scored],
    }
    summary = summary_of(session_id, options.analyst, started, finished, total)
    store = await composition.open_store(settings)
    try:
        await store.training_sessions.keep(summary, report)
    finally:
        await store.close()
    return report


def summary_of(
    session_id: str, analyst: str, started: datetime, finished: datetime, total: SessionScore
) -> TrainingSessionSummary:
    """A session's headline, as the store keeps it in columns."""
    return TrainingSessionSummary(
        id=session_id,
        analyst=analyst,
        started_at=started,
        finished_at=finished,
        **total.model_dump(
            include={
                "incidents",
                "decisions",
                "accuracy",
                "over_response",
                "missed",
                "containment_recall",
                "agents_recall",
                "median_think_s",
            }
        ),
    )
