"""AlertPollWorkflow: one bounded poll of one alert source, started by that source's Temporal
Schedule (`orchestrator/ingest/pollers/schedules.py`). The activity reads, hands to the sink and
advances the cursor; retries honour the vendor's Retry-After (`next_retry_delay`)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from orchestrator.ingest.pollers.models import PollInput, PollResult
    from orchestrator.workflows.calls import NON_RETRYABLE

POLL_ACTIVITY = "ingest.poll"


@workflow.defn(name="AlertPollWorkflow")
class AlertPollWorkflow:
    @workflow.run
    async def run(self, request: PollInput) -> PollResult:
        return await workflow.execute_activity(
            POLL_ACTIVITY,
            request,
            result_type=PollResult,
            start_to_close_timeout=timedelta(seconds=request.activity_timeout_s),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1),
                maximum_attempts=request.max_attempts,
                non_retryable_error_types=[*NON_RETRYABLE, "OutOfOrder"],
            ),
        )
