"""Response activities: execute one gated action effectively once, and roll actions back.

Activities are at-least-once, and no vendor here takes an idempotency key, so every execution is
check-then-act under the business key `<incident>:<kind>:<target>`: the ledger answers for work
already finished, the vendor's own state answers for work applied by a worker that died before
recording it, and "already in that state" counts as success. Verification reads the state back.
The ledger counts every change sent to the vendor before sending it, so a retry that finds the
state already there after an earlier attempt sent the change records Garrison's own change, not a
pre-existing state. An action that ends without success is `failed` in the ledger (on the last
attempt, or by `response.end` when the workflow saw it fail for good) or `abandoned` (the
workflow cancelled it): no entry stays `pending` once nobody will run it again. An entry is
finished and its execution audited in one transaction, so each execution is audited exactly once;
an entry finished without its audit entry (by a worker that died between the two, before they
were one write) has it written by the retry that finds the entry finished.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import NoReturn

from temporalio import activity
from temporalio.exceptions import ApplicationError

from orchestrator.activities.dispatch import apply, in_desired_state
from orchestrator.activities.errors import (
    activity_source,
    failure_text,
    is_final_attempt,
    vendor_call,
)
from orchestrator.activities.guards import approval_problem, approvals_short, policy_floor
from orchestrator.activities.policy_audit import audit_policy_decision
from orchestrator.backends import Backends
from orchestrator.models import (
    EndActionInput,
    ExecuteActionInput,
    ExecuteActionResult,
    ExecutionStatus,
    RollbackInput,
    RollbackResult,
)
from orchestrator.observability.metrics import ACTIONS
from orchestrator.policy.model import PolicyDocument
from orchestrator.store.records import ActionRecord, ActionStatus, AuditEvent
from orchestrator.store.repository import Store
from tools.actions import Action, business_key

_REFUSALS = ("PolicyDenied", "ApprovalNotVerified")  # `_refuse`'s error types


class ResponseActivities:
    def __init__(
        self, store: Store, backends: Backends, policy: PolicyDocument | None = None
    ) -> None:
        self.store = store
        self.backends = backends
        # The deployment's own policy: its standing deny rules and protected targets are
        # re-checked here, whatever policy the workflow's input carried.
        self.policy = policy

    @activity.defn(name="response.execute")
    async def execute(self, request: ExecuteActionInput) -> ExecuteActionResult:
        """`_execute`, counted in `garrison_actions` once it ends: its result, `refused` (the
        policy floor or an unverified approval), or `failed` when no retry will follow."""
        kind = request.action.kind.value
        try:
            result = await self._execute(request)
        except Exception as error:
            if isinstance(error, ApplicationError) and error.type in _REFUSALS:
                ACTIONS.labels(kind, "refused").inc()
            elif is_final_attempt(error):
                ACTIONS.labels(kind, "failed").inc()
            raise
        ACTIONS.labels(kind, result.status.value).inc()
        return result

    async def _execute(self, request: ExecuteActionInput) -> ExecuteActionResult:
        action = request.action
        key = business_key(request.incident_id, action)
        if request.policy is not None:  # the workflow's decision comes first in the audit log
            await audit_policy_decision(self.store, request.policy)
        if self.policy is not None:
            floor = policy_floor(self.policy, action, request.approval_id)
            if floor is not None:
                await self._refuse(request, key, "response.refused_by_policy", floor)
        carried = 0
        if request.approval_id is not None:
            carried = await self._verify_approval(request, key)
        if self.policy is not None:
            inventory = self.backends.response_tools(request.incident_id).inventory
            short = await approvals_short(
                self.policy, self.store, inventory, request.incident_id, action, carried
            )
            if short is not None:
                await self._refuse(request, key, "response.refused_by_policy", short)
        record = await self.store.ledger_begin(
            ActionRecord(
                business_key=key,
                incident_id=request.incident_id,
                action=action,
                risk=request.risk,
                decision="approved" if request.approval_id else "allowed",
                approval_id=request.approval_id,
                status=ActionStatus.PENDING,
                created_at=datetime.now(UTC),
            )
        )
        if record.status is ActionStatus.SUCCEEDED:
            # Finished by an earlier attempt, which may have died before auditing it.
            await self._audit_once(request, key, record)
            return _result(key, record)
        try:
            return await self._carry_out(request, key, record)
        except asyncio.CancelledError:
            details = activity.cancellation_details()
            if details is not None and (details.cancel_requested or details.not_found):
                await self._end(request, key, ActionStatus.ABANDONED, "the workflow cancelled it")
            raise
        except Exception as error:
            if is_final_attempt(error):
                await self._end(request, key, ActionStatus.FAILED, failure_text(error))
            raise

    @activity.defn(name="response.end")
    async def end(self, request: EndActionInput) -> None:
        """Finish the action's entry as failed or abandoned if it is still pending: the workflow
        saw `response.execute` fail for good (its last attempt may have died with its worker)."""
        key = business_key(request.incident_id, request.action)
        status = ActionStatus(request.status)
        await self._end(request, key, status, request.reason)

    async def _carry_out(
        self, request: ExecuteActionInput, key: str, record: ActionRecord
    ) -> ExecuteActionResult:
        action = request.action
        tools = self.backends.response_tools(request.incident_id)
        # An earlier attempt of this very entry sent the change: what is found is Garrison's own.
        sent_before = record.attempts > 0
        before = await vendor_call(in_desired_state(tools, action))
        if before:
            applied, detail = sent_before, EARLIER if sent_before else ALREADY
        else:
            await self.store.ledger_attempt(key)
            change = await vendor_call(apply(tools, action))
            applied = change.applied or sent_before
            detail = change.detail or "applied"
            if sent_before and not change.applied:
                detail = EARLIER
        after = await vendor_call(in_desired_state(tools, action))
        verified = after is not False
        inverse = action.inverse()
        status = ActionStatus.SUCCEEDED if verified else ActionStatus.FAILED
        await self.store.ledger_finish(
            key,
            status=status,
            outcome=detail,
            already_in_state=not applied,
            verified=after is True,
            inverse=inverse,
            audit_event=_execution_event(
                request, key, verified, detail, not applied, after is True
            ),
        )
        return ExecuteActionResult(
            business_key=key,
            status=_status(verified, applied),
            verified=after is True,
            inverse=inverse,
            detail=detail,
        )

    async def _audit_once(
        self, request: ExecuteActionInput, key: str, record: ActionRecord
    ) -> None:
        """The execution's audit entry, unless it is there: an entry finished by an attempt of
        earlier code (which audited in a transaction of its own) and killed before auditing it
        left the change unaudited (I6), and its retry finds the entry finished."""
        kind = f"response.{request.action.kind.value}.succeeded"
        entries = await self.store.audit_entries(incident_id=request.incident_id)
        if any(e.type == kind and e.target == request.action.target for e in entries):
            return
        event = _execution_event(
            request, key, True, record.outcome or "", record.already_in_state, record.verified
        )
        await self.store.append_audit(event)

    async def _end(
        self,
        request: ExecuteActionInput | EndActionInput,
        key: str,
        status: ActionStatus,
        reason: str,
    ) -> None:
        """Finish a pending entry as failed or abandoned, and audit it once (the entry that is
        no longer pending is not audited again)."""
        before = await self.store.ledger_get(key)
        if before is None or before.status is not ActionStatus.PENDING:
            return
        ended = await self.store.ledger_end(key, status, outcome=reason)
        if ended is None or ended.status is not status:
            return
        await self.store.append_audit(
            AuditEvent(
                type=f"response.{request.action.kind.value}.{status.value}",
                actor="garrison-worker",
                incident_id=request.incident_id,
                target=request.action.target,
                outcome=reason,
                source=activity_source(),
                approval_ref=before.approval_id,
                detail={"attempts": ended.attempts},
            )
        )

    async def _verify_approval(self, request: ExecuteActionInput, key: str) -> int:
        """Refuse (not retried, audited) unless the store's approval authorises this action;
        the approvers it required, when it does."""
        assert request.approval_id is not None
        problem = await approval_problem(
            self.store,
            request.incident_id,
            request.action,
            request.approval_id,
            request.policy_version,
        )
        if problem is not None:
            await self._refuse(request, key, "response.refused_unverified_approval", problem)
        approval = await self.store.get_approval(request.approval_id)
        assert approval is not None  # approval_problem found it
        return approval.required_approvers

    async def _refuse(
        self, request: ExecuteActionInput, key: str, kind: str, problem: str
    ) -> NoReturn:
        """Audit the refusal and fail the activity for good: no retry can change the answer."""
        await self.store.append_audit(
            AuditEvent(
                type=kind,
                actor="garrison-worker",
                incident_id=request.incident_id,
                target=request.action.target,
                outcome=problem,
                source=activity_source(),
                approval_ref=request.approval_id,
                policy_decision_id=f"{request.policy_version}:{key}",
            )
        )
        error_type = _REFUSALS[1] if kind.endswith("approval") else _REFUSALS[0]
        raise ApplicationError(problem, type=error_type, non_retryable=True)

    @activity.defn(name="response.rollback")
    async def rollback(self, request: RollbackInput) -> RollbackResult:
        """Run the recorded inverses of an incident's actions, newest first."""
        tools = self.backends.response_tools(request.incident_id)
        reverted: list[Action] = []
        failed: list[str] = []
        records = await self.store.actions_for(request.incident_id)
        for record in sorted(records, key=lambda r: r.created_at, reverse=True):
            inverse = record.inverse
            if record.status is not ActionStatus.SUCCEEDED or inverse is None:
                continue
            change = await vendor_call(apply(tools, inverse))
            state = await vendor_call(in_desired_state(tools, inverse))
            if state is False:
                failed.append(record.business_key)
                continue
            await self.store.ledger_finish(
                record.business_key,
                status=ActionStatus.ROLLED_BACK,
                outcome=f"rolled back by {request.requested_by}: {request.reason}",
                already_in_state=not change.applied,
                verified=state is True,
                inverse=inverse,
                audit_event=AuditEvent(
                    type=f"response.{inverse.kind.value}.succeeded",
                    actor=request.requested_by,
                    incident_id=request.incident_id,
                    target=inverse.target,
                    outcome="rollback",
                    source=activity_source(),
                    detail={"reason": request.reason},
                ),
            )
            reverted.append(inverse)
        return RollbackResult(reverted=reverted, failed=failed)


ALREADY = "already in that state (confirmed by state read)"
EARLIER = "applied by an earlier attempt of this action (confirmed by state read)"


def _execution_event(
    request: ExecuteActionInput,
    key: str,
    verified: bool,
    detail: str,
    already_in_state: bool,
    confirmed: bool,
) -> AuditEvent:
    action = request.action
    return AuditEvent(
        type=f"response.{action.kind.value}.{'succeeded' if verified else 'failed'}",
        actor="garrison-worker",
        incident_id=request.incident_id,
        target=action.target,
        outcome=detail,
        source=activity_source(),
        approval_ref=request.approval_id,
        policy_decision_id=f"{request.policy_version}:{key}",
        detail={
            "risk": request.risk,
            "approved_by": ",".join(request.approved_by),
            "already_in_state": already_in_state,
            "verified": confirmed,
        },
    )


def _status(verified: bool, applied: bool) -> ExecutionStatus:
    if not verified:
        return ExecutionStatus.FAILED
    return ExecutionStatus.EXECUTED if applied else ExecutionStatus.ALREADY_IN_STATE


def _result(key: str, record: ActionRecord) -> ExecuteActionResult:
    status = (
        ExecutionStatus.ALREADY_IN_STATE if record.already_in_state else ExecutionStatus.EXECUTED
    )
    return ExecuteActionResult(
        business_key=key,
        status=status,
        verified=record.verified,
        inverse=record.inverse,
        detail=record.outcome or "",
    )
