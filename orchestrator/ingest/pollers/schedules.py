"""One Temporal Schedule per configured alert source, kept in step with settings.

`ensure_poll_schedules` creates a missing schedule, updates an existing one to the current
settings (so a restart never adds a duplicate: the schedule id is the source's), and deletes the
schedules of sources no longer configured. Overlap policy SKIP: a poll still running (or
retrying after a 429) when the next is due makes that one be skipped, never queued.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from orchestrator.ingest.pollers.models import PollInput, PollSource
from orchestrator.settings import PollSettings
from orchestrator.workflows.poll import AlertPollWorkflow

SCHEDULE_PREFIX = "garrison-poll-"


def schedule_id(source: PollSource) -> str:
    return f"{SCHEDULE_PREFIX}{source.value}"


def configured_sources(settings: PollSettings) -> dict[PollSource, int]:
    """Each source whose interval is set, with the interval in seconds."""
    intervals = {
        PollSource.FALCON: settings.falcon_interval_s,
        PollSource.GRAPH: settings.graph_interval_s,
    }
    return {source: every for source, every in intervals.items() if every is not None}


def poll_input(settings: PollSettings, source: PollSource) -> PollInput:
    return PollInput(
        source=source,
        page_size=settings.page_size,
        max_pages=settings.max_pages,
        max_requests=settings.max_requests,
        initial_lookback_s=settings.initial_lookback_s,
        settle_s=settings.settle_s,
        activity_timeout_s=settings.activity_timeout_s,
        max_attempts=settings.max_attempts,
    )


def build_schedule(
    settings: PollSettings, source: PollSource, every_s: int, queue: str
) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            AlertPollWorkflow.run,
            poll_input(settings, source),
            id=schedule_id(source),  # Temporal appends the scheduled time
            task_queue=queue,
            execution_timeout=timedelta(seconds=max(every_s * 10, settings.activity_timeout_s * 5)),
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every_s))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_poll_schedules(
    client: Client, settings: PollSettings, task_queue: str
) -> list[str]:
    """Create or update a schedule per configured source, delete the others'; returns the ids of
    the schedules now in place."""
    wanted = configured_sources(settings)
    for source, every_s in wanted.items():
        schedule = build_schedule(settings, source, every_s, task_queue)
        try:
            await client.create_schedule(schedule_id(source), schedule)
        except ScheduleAlreadyRunningError:

            def replace(_: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
                return ScheduleUpdate(schedule=new)

            await client.get_schedule_handle(schedule_id(source)).update(replace)
    stale = {schedule_id(s) for s in PollSource if s not in wanted}
    async for listed in await client.list_schedules():
        if listed.id.startswith(SCHEDULE_PREFIX) and listed.id not in _ids(wanted):
            stale.add(listed.id)
    for stale_id in sorted(stale):
        try:
            await client.get_schedule_handle(stale_id).delete()
        except RPCError as error:
            if error.status is not RPCStatusCode.NOT_FOUND:
                raise
    return sorted(_ids(wanted))


def _ids(wanted: dict[PollSource, int]) -> set[str]:
    return {schedule_id(source) for source in wanted}
