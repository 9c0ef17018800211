"""How workflows call activities: timeouts, heartbeats and retries from the workflow's activity
profile (settings per activity kind, never constants in workflow code), the kind of each activity,
and the error types that are never retried.

When `response.execute` fails for good, the workflow finishes the action's ledger entry with
`response.end` (`failed`, or `abandoned` when the workflow was cancelled) before the error goes on:
the activity's own last attempt may have died with its worker and recorded nothing. Workflow code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, CancelledError

with workflow.unsafe.imports_passed_through():
    from orchestrator.models import (
        ActivityKind,
        ActivityProfile,
        EndActionInput,
        ExecuteActionInput,
        KindTimeouts,
    )

_T = TypeVar("_T")

# Raised by activities (see orchestrator/activities/errors.py) for what a retry cannot fix.
NON_RETRYABLE = ("PermanentToolError", "AuthError", "NotFoundError", "ValidationError")

# What each activity waits on. An activity missing here runs with the profile's flat timeouts.
ACTIVITY_KINDS: Mapping[str, ActivityKind] = MappingProxyType(
    {
        "agents.triage": ActivityKind.AGENTS,
        "playbooks.step": ActivityKind.AGENTS,
        "response.execute": ActivityKind.VENDOR_ACTIONS,
        "response.rollback": ActivityKind.VENDOR_ACTIONS,
        "response.end": ActivityKind.STORE,
        "response.isolation_slot": ActivityKind.STORE,
        "tickets.open": ActivityKind.TICKETS,
        "tickets.comment": ActivityKind.TICKETS,
        "tickets.close": ActivityKind.TICKETS,
        "tickets.status": ActivityKind.STORE,
        "incidents.close": ActivityKind.TICKETS,
        "incidents.alerts_joined": ActivityKind.STORE,
        "audit.policy_decision": ActivityKind.STORE,
        "approvals.request": ActivityKind.STORE,
        "approvals.confirm": ActivityKind.STORE,
        "approvals.finalize": ActivityKind.STORE,
        "approvals.notify": ActivityKind.STORE,
        "approvals.announce": ActivityKind.STORE,
        "ingest.poll": ActivityKind.VENDOR_READS,  # AlertPollWorkflow: its own (GARRISON_POLL__*)
    }
)
LEDGER_END_PATCH = "ledger-terminal-v1"  # workflows recorded before failed actions were ended
_EXECUTE = "response.execute"


def timeouts_for(profile: ActivityProfile, name: str, *, agent: bool = False) -> KindTimeouts:
    """The timeouts and retry policy `name` runs with under `profile`."""
    return profile.timeouts(ACTIVITY_KINDS.get(name), agent=agent)


async def call_activity(
    profile: ActivityProfile,
    name: str,
    arg: object,
    result_type: type[_T],
    *,
    queue: str | None = None,
    agent: bool = False,
) -> _T:
    """Run the activity `name` on `queue` (the workflow's own by default) with its kind's
    timeouts; `agent` picks the longer flat timeout for a profile without kinds."""
    try:
        return await _execute(profile, name, arg, result_type, queue=queue, agent=agent)
    except (ActivityError, asyncio.CancelledError) as error:
        if name == _EXECUTE and isinstance(arg, ExecuteActionInput):
            await _end_action(profile, arg, error, queue)
        raise


async def _execute(
    profile: ActivityProfile,
    name: str,
    arg: object,
    result_type: type[_T],
    *,
    queue: str | None,
    agent: bool = False,
) -> _T:
    timeouts = timeouts_for(profile, name, agent=agent)
    return await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        task_queue=queue or workflow.info().task_queue,
        start_to_close_timeout=timedelta(seconds=timeouts.start_to_close_s),
        heartbeat_timeout=_seconds(timeouts.heartbeat_s),
        retry_policy=RetryPolicy(
            initial_interval=timedelta(seconds=timeouts.initial_retry_s),
            maximum_interval=_seconds(timeouts.max_retry_s),
            maximum_attempts=timeouts.max_attempts,
            non_retryable_error_types=NON_RETRYABLE,
        ),
    )


async def _end_action(
    profile: ActivityProfile,
    request: ExecuteActionInput,
    error: ActivityError | asyncio.CancelledError,
    queue: str | None,
) -> None:
    """Finish the action's ledger entry (if still pending) after `response.execute` failed for
    good or was cancelled; behind a patch, since it is a command old histories lack."""
    if not workflow.patched(LEDGER_END_PATCH):
        return
    cancelled = isinstance(error, asyncio.CancelledError) or isinstance(error.cause, CancelledError)
    reason = str(error.cause or error) if isinstance(error, ActivityError) else "cancelled"
    end = EndActionInput(
        incident_id=request.incident_id,
        action=request.action,
        status="abandoned" if cancelled else "failed",
        reason=reason[:4_000] or type(error).__name__,
    )
    # A cancelled workflow's task may still run activities once it has caught the cancellation.
    await _execute(profile, "response.end", end, type(None), queue=queue)


def _seconds(value: float | None) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)
