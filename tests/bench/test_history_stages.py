"""`bench.history_stages` reads queue waits and runs of workflow tasks and activities from a
history: built here event by event, with the times and links Temporal writes."""

from __future__ import annotations

from temporalio.api.common.v1 import ActivityType
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import (
    ActivityTaskCompletedEventAttributes,
    ActivityTaskScheduledEventAttributes,
    ActivityTaskStartedEventAttributes,
    HistoryEvent,
    WorkflowTaskCompletedEventAttributes,
    WorkflowTaskScheduledEventAttributes,
    WorkflowTaskStartedEventAttributes,
)
from temporalio.client import WorkflowHistory

from bench.history_stages import stages


def _event(
    event_id: int, at_ms: int, kind: EventType.ValueType, **attributes: object
) -> HistoryEvent:
    event = HistoryEvent(event_id=event_id, event_type=kind)
    event.event_time.FromMilliseconds(at_ms)
    for name, values in attributes.items():
        getattr(event, name).MergeFrom(values)  # type: ignore[arg-type]
    return event


def test_queue_waits_and_runs_are_summed_by_stage() -> None:
    events = [
        _event(1, 1_000, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED),
        _event(2, 1_000, EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
               workflow_task_scheduled_event_attributes=WorkflowTaskScheduledEventAttributes()),
        _event(3, 1_030, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
               workflow_task_started_event_attributes=WorkflowTaskStartedEventAttributes(
                   scheduled_event_id=2)),
        _event(4, 1_050, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
               workflow_task_completed_event_attributes=WorkflowTaskCompletedEventAttributes(
                   scheduled_event_id=2)),
        _event(5, 1_050, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
               activity_task_scheduled_event_attributes=ActivityTaskScheduledEventAttributes(
                   activity_type=ActivityType(name="agents.triage"))),
        _event(6, 1_060, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
               activity_task_started_event_attributes=ActivityTaskStartedEventAttributes(
                   scheduled_event_id=5)),
        _event(7, 1_160, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
               activity_task_completed_event_attributes=ActivityTaskCompletedEventAttributes(
                   scheduled_event_id=5)),
        _event(8, 1_160, EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
               workflow_task_scheduled_event_attributes=WorkflowTaskScheduledEventAttributes()),
        _event(9, 1_170, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
               workflow_task_started_event_attributes=WorkflowTaskStartedEventAttributes(
                   scheduled_event_id=8)),
        _event(10, 1_200, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
               workflow_task_completed_event_attributes=WorkflowTaskCompletedEventAttributes(
                   scheduled_event_id=8)),
    ]  # fmt: skip
    found = stages(WorkflowHistory("incident-x", events))
    rounded = {name: round(seconds, 3) for name, seconds in found.items()}
    assert rounded == {
        "workflow task queue": 0.040,  # 30 ms + 10 ms
        "workflow task run": 0.050,  # 20 ms + 30 ms
        "agents.triage queue": 0.010,
        "agents.triage run": 0.100,
        "total": 0.200,
    }


def test_a_task_still_running_counts_its_queue_wait_only() -> None:
    events = [
        _event(1, 0, EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
               workflow_task_scheduled_event_attributes=WorkflowTaskScheduledEventAttributes()),
        _event(2, 25, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
               workflow_task_started_event_attributes=WorkflowTaskStartedEventAttributes(
                   scheduled_event_id=1)),
    ]  # fmt: skip
    found = stages(WorkflowHistory("incident-y", events))
    assert round(found["workflow task queue"], 3) == 0.025
    assert "workflow task run" not in found
