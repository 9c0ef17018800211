"""How workflows call activities: timeouts and retries from the workflow's activity profile (a
setting, never a constant in workflow code), and the error types that are never retried."""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from orchestrator.models import ActivityProfile

_T = TypeVar("_T")

# Raised by activities (see orchestrator/activities/errors.py) for what a retry cannot fix.
NON_RETRYABLE = ["PermanentToolError", "AuthError", "NotFoundError", "ValidationError"]


async def call_activity(
    profile: ActivityProfile,
    name: str,
    arg: object,
    result_type: type[_T],
    *,
    queue: str | None = None,
    agent: bool = False,
) -> _T:
    """Run the activity `name` on `queue` (the workflow's own by default); `agent` activities run
    whole LangGraph graphs and get the longer timeout."""
    timeout = profile.agent_start_to_close_s if agent else profile.start_to_close_s
    return await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        task_queue=queue or workflow.info().task_queue,
        start_to_close_timeout=timedelta(seconds=timeout),
        heartbeat_timeout=timedelta(seconds=profile.heartbeat_s) if profile.heartbeat_s else None,
        retry_policy=RetryPolicy(
            initial_interval=timedelta(seconds=profile.initial_retry_s),
            maximum_attempts=profile.max_attempts,
            non_retryable_error_types=NON_RETRYABLE,
        ),
    )
