"""Replay a workflow's history as a newly started worker would, and print it when it cannot be
replayed: a crash test then proves that the history the killed worker wrote is deterministic, and
a failure in CI carries the events needed to find why it was not."""

from __future__ import annotations

from google.protobuf.json_format import MessageToDict
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from orchestrator.backends import workflow_id
from orchestrator.temporal.converter import DATA_CONVERTER
from orchestrator.workflows.incident import IncidentWorkflow
from orchestrator.workflows.rollback import RollbackWorkflow


async def replay_failure(client: Client, incident_id: str) -> str | None:
    """None when the incident's history replays; else the failure and a listing of its events."""
    history = await client.get_workflow_handle(workflow_id(incident_id)).fetch_history()
    replayer = Replayer(
        workflows=[IncidentWorkflow, RollbackWorkflow], data_converter=DATA_CONVERTER
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    if result.replay_failure is None:
        return None
    return f"{result.replay_failure}\n{listing(history)}"


def listing(history: WorkflowHistory) -> str:
    """One line per event: id, time, type, and what names it (activity, signal, update, marker)."""
    lines = []
    for event in history.events:
        raw = MessageToDict(event)
        name = ""
        for key, value in raw.items():
            if not key.endswith("Attributes") or not isinstance(value, dict):
                continue
            if "activityType" in value:
                name = value["activityType"]["name"]
            elif "signalName" in value:
                name = value["signalName"]
            elif "acceptedRequest" in value:
                name = "update " + value["acceptedRequest"]["input"]["name"]
            elif "markerName" in value:
                name = value["markerName"]
            elif "scheduledEventId" in value:
                name = f"of {value['scheduledEventId']}"
        kind = raw.get("eventType", "").removeprefix("EVENT_TYPE_")
        lines.append(f"{event.event_id} {raw.get('eventTime', '')[11:23]} {kind} {name}".rstrip())
    return "\n".join(lines)
