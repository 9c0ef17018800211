"""Where a workflow's time went, read from its Temporal history: for workflow tasks and for each
activity type, the seconds waiting in the task queue (scheduled -> started) and running (started
-> completed, failed or timed out), summed over the history. Used by `bench.memory` to say which
stage makes opening one more incident slower when many are open."""

from __future__ import annotations

from collections import defaultdict

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

WORKFLOW_TASK = "workflow task"


def _seconds(event: HistoryEvent) -> float:
    return event.event_time.ToMicroseconds() / 1e6


def stages(history: WorkflowHistory) -> dict[str, float]:
    """`{"<stage> queue": s, "<stage> run": s}` for workflow tasks and every activity type, plus
    `"total"`: the first event to the last."""
    scheduled: dict[int, tuple[str, float]] = {}  # event id -> (stage, time)
    started: dict[int, float] = {}  # scheduled event id -> time
    totals: dict[str, float] = defaultdict(float)
    events = list(history.events)
    for event in events:
        at = _seconds(event)
        if event.HasField("workflow_task_scheduled_event_attributes"):
            scheduled[event.event_id] = (WORKFLOW_TASK, at)
        elif event.HasField("activity_task_scheduled_event_attributes"):
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = (name, at)
        elif event.HasField("workflow_task_started_event_attributes"):
            started[event.workflow_task_started_event_attributes.scheduled_event_id] = at
        elif event.HasField("activity_task_started_event_attributes"):
            started[event.activity_task_started_event_attributes.scheduled_event_id] = at
        else:
            ended = _ended_of(event)
            if ended is not None and ended in scheduled and ended in started:
                totals[f"{scheduled[ended][0]} run"] += at - started[ended]

    for event_id, at in started.items():
        if event_id in scheduled:
            stage, since = scheduled[event_id]
            totals[f"{stage} queue"] += at - since
    if events:
        totals["total"] = _seconds(events[-1]) - _seconds(events[0])
    return dict(totals)


def _ended_of(event: HistoryEvent) -> int | None:
    """The scheduled event id a task's end refers to; None for any other event."""
    for field in (
        "workflow_task_completed_event_attributes",
        "workflow_task_failed_event_attributes",
        "workflow_task_timed_out_event_attributes",
        "activity_task_completed_event_attributes",
        "activity_task_failed_event_attributes",
        "activity_task_timed_out_event_attributes",
    ):
        if event.HasField(field):
            return getattr(event, field).scheduled_event_id
    return None
