"""The incident workflow's outbox for humans: approval cards, reminders, escalations, outcomes.

Messages go out in order, one at a time, from a background task of the workflow, through the
`approvals.announce` activity retried without an attempt limit. An outage of Slack therefore
delays the messages (the workflow waits durably, in Temporal's history) but never the approval
timers, and each message is delivered once Slack is back; the notifier makes a retried delivery
exactly-once (it stores the message `ts` and reconciles a lost answer). Workflow code.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from orchestrator.models import ActivityProfile, HumanNotice
    from orchestrator.workflows.calls import NON_RETRYABLE, call_activity

PATCH = "human-outbox-v1"  # workflows recorded before the outbox notified from the activities


class HumanOutbox:
    def __init__(self, profile: ActivityProfile) -> None:
        self.profile = profile
        self.queue: list[HumanNotice] = []
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    def send(self, notice: HumanNotice) -> None:
        self.queue.append(notice)
        if self._task is None:
            self._task = asyncio.create_task(self._deliver())

    async def record(
        self, name: str, message: HumanNotice, *, via_outbox: bool, arg: object = None
    ) -> None:
        """Run the approvals activity `name` on the message's input (the store, the audit), or on
        `arg` when the activity needs more than the message carries, then queue the message;
        without `via_outbox` (histories recorded before the outbox) the activity itself posted
        it."""
        if arg is None:
            arg = message.request or message.notice or message.final
        await call_activity(self.profile, name, arg, type(None))
        if via_outbox:
            self.send(message)

    async def drain(self) -> None:
        """Wait (bounded by the profile) until every queued message has been delivered."""
        if not self.queue:
            return
        try:
            await workflow.wait_condition(
                lambda: not self.queue, timeout=timedelta(seconds=self.profile.notify_drain_s)
            )
        except TimeoutError:
            workflow.logger.warning("%d message(s) to humans undelivered", len(self.queue))

    async def _deliver(self) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self.queue))
            try:
                await workflow.execute_activity(
                    "approvals.announce",
                    self.queue[0],
                    start_to_close_timeout=timedelta(seconds=self.profile.start_to_close_s),
                    retry_policy=RetryPolicy(
                        initial_interval=timedelta(seconds=self.profile.initial_retry_s),
                        maximum_interval=timedelta(seconds=self.profile.outbox_retry_max_s),
                        maximum_attempts=0,  # until delivered: humans must hear of it
                        non_retryable_error_types=NON_RETRYABLE,
                    ),
                )
            except ActivityError as error:  # a permanent error (e.g. no such channel)
                self.dropped += 1
                workflow.logger.error("message to humans dropped: %s", error.cause or error)
            self.queue.pop(0)
