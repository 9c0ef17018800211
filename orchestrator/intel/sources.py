"""Where an export's `IncidentEvidence` comes from.

`from_store`: a finished incident of the store (triaged malicious; closed or still responding),
its alerts, the action ledger (a succeeded entry is done, a pending one proposed) and the
approval requests not executed (proposed). `from_recording`: a recorded incident of the corpus,
with its truth standing in for what the pipeline decides (verdict, category, techniques) and its
expected actions as the proposed response. The corpus test exports every recording this way:
running the whole pipeline over 105 incidents to get the same verdicts would cost minutes for
nothing the export reads that the recording does not already hold (the alerts are the same, and
the truth is what the pipeline is scored against).
"""

from __future__ import annotations

from orchestrator.intel.export import ActionState, IncidentEvidence
from orchestrator.store.records import ActionStatus
from orchestrator.store.repository import Store
from simulations.spec import RecordedIncident


class NoSuchIncident(Exception):
    pass


async def from_store(store: Store, incident_id: str) -> IncidentEvidence:
    incident = await store.get_incident(incident_id)
    if incident is None:
        raise NoSuchIncident(f"no incident {incident_id}")
    actions: dict[tuple[str, str], ActionState] = {}
    for approval in await store.list_approvals(incident_id=incident_id):
        key = (approval.action.kind.value, approval.action.target)
        actions[key] = ActionState(
            kind=approval.action.kind, target=approval.action.target, executed=False
        )
    for record in await store.actions_for(incident_id):
        if record.status in (ActionStatus.SUCCEEDED, ActionStatus.PENDING):
            key = (record.action.kind.value, record.action.target)
            actions[key] = ActionState(
                kind=record.action.kind,
                target=record.action.target,
                executed=record.status is ActionStatus.SUCCEEDED,
            )
    return IncidentEvidence(
        incident_id=incident.id,
        verdict=incident.verdict,
        category=incident.category,
        severity=incident.severity,
        opened_at=incident.opened_at,
        closed_at=incident.closed_at,
        alerts=await store.alerts_for(incident_id),
        actions=list(actions.values()),
    )


def from_recording(recorded: RecordedIncident) -> IncidentEvidence:
    truth = recorded.truth
    times = [a.time for a in recorded.alerts]
    return IncidentEvidence(
        incident_id=recorded.id,
        verdict=truth.verdict,
        category=truth.category,
        opened_at=min(times),
        closed_at=max(times),
        alerts=list(recorded.alerts),
        actions=[
            ActionState(kind=a.kind, target=a.target, executed=False)
            for a in truth.expected_actions
        ],
        techniques=list(truth.techniques),
    )
