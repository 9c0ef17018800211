"""Small workflows for the liveness tests: each runs one activity through `call_activity`, as
IncidentWorkflow does, and reports how it ended."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from orchestrator.models import ActivityProfile, ExecuteActionInput, ExecuteActionResult
    from orchestrator.workflows.calls import call_activity


class ExecuteOnceInput(BaseModel):
    profile: ActivityProfile
    request: ExecuteActionInput


@workflow.defn(name="LivenessExecuteOnce")
class ExecuteOnce:
    """`response.execute` once; its failure, if any, as the workflow saw it."""

    @workflow.run
    async def run(self, params: ExecuteOnceInput) -> str:
        try:
            result = await call_activity(
                params.profile, "response.execute", params.request, ExecuteActionResult
            )
        except ActivityError as error:
            return f"failed: {type(error.cause).__name__}"
        return result.status.value


class FailureSeen(BaseModel):
    type: str
    message: str
    cause_type: str | None
    cause_message: str | None


@workflow.defn(name="LivenessFailureSeen")
class FailureSeenWorkflow:
    """Run `test.fail` (two attempts) and report the failure Temporal kept."""

    @workflow.run
    async def run(self, queue: str) -> FailureSeen:
        try:
            await workflow.execute_activity(
                "test.fail",
                start_to_close_timeout=timedelta(seconds=30),
                task_queue=queue,
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=100), maximum_attempts=2
                ),
            )
        except ActivityError as error:
            failure = error.cause
            cause = failure.cause if failure is not None else None
            return FailureSeen(
                type=_type(failure),
                message=_message(failure),
                cause_type=_type(cause) if cause is not None else None,
                cause_message=_message(cause) if cause is not None else None,
            )
        raise AssertionError("test.fail succeeded")


def _type(error: BaseException | None) -> str:
    if isinstance(error, ApplicationError):
        return error.type or "ApplicationError"
    return type(error).__name__


def _message(error: BaseException | None) -> str:
    return error.message if isinstance(error, ApplicationError) else str(error)
