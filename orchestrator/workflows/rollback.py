"""RollbackWorkflow: run an incident's recorded inverses, newest first, as compensation (an
analyst's request, a false-positive verdict, or a containment TTL expiry)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from orchestrator.models import RollbackInput, RollbackResult
    from orchestrator.workflows.calls import NON_RETRYABLE


@workflow.defn(name="RollbackWorkflow")
class RollbackWorkflow:
    @workflow.run
    async def run(self, request: RollbackInput) -> RollbackResult:
        return await workflow.execute_activity(
            "response.rollback",
            request,
            result_type=RollbackResult,
            task_queue=request.actions_queue or workflow.info().task_queue,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(maximum_attempts=8, non_retryable_error_types=NON_RETRYABLE),
        )
