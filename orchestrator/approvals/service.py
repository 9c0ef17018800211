"""The one way a human decision reaches a workflow, whatever the channel (CLI, API, Slack, the
simulated analyst): put the decider's identity in its one spelling, resolve their groups
server-side from the approver directory, refuse what can be refused early, record the checked
decision in the store (the claim the workflow confirms before it counts anything), send a
validated Update (a deduplicated signal when no worker answers in time), and audit every
attempt, refused ones included.

A decision sent to the workflow any other way (straight to Temporal, with an invented identity
and self-chosen groups) has no claim in the store: the workflow refuses it and audits it as
forged."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.backends import workflow_id
from orchestrator.identity import IdentityError, canonical_identity, same_identity
from orchestrator.models import DecisionAck, DecisionInput, DecisionKind, RefusalCode
from orchestrator.store.records import ApprovalRecord, ApprovalStatus, AuditEvent, DecisionClaim
from orchestrator.store.repository import Store

# Refusals that are attempts by someone who may not decide: audited under their own types.
_AUDIT_TYPES = {
    RefusalCode.UNAUTHORISED: "approval.denied_unauthorized",
    RefusalCode.SELF_APPROVAL: "approval.denied_self_approval",
}


ENDED = "the incident's workflow has ended: nothing was applied"
MAX_APPROVAL_ID = 128  # ids are `apr-<16 hex>`; anything longer is nobody's


def _clip(text: str, limit: int = 128) -> str:
    """A caller's text, short enough for the audit log, marked when cut."""
    return text if len(text) <= limit else text[:limit] + "…[cut]"


@dataclass(frozen=True)
class DecisionReply:
    accepted: bool
    message: str
    ack: DecisionAck | None = None
    code: RefusalCode | None = None


@dataclass(frozen=True)
class _Attempt:
    """A decision on a stored approval by a canonical identity: what every step after the load
    refuses, claims and audits under. `approval_id` is the caller's, as the audit log had it."""

    approval_id: str
    approval: ApprovalRecord
    user: str
    channel: str


@dataclass(frozen=True)
class _Refusal:
    code: RefusalCode
    reason: str


def _update_refusal(failed: WorkflowUpdateFailedError) -> _Refusal:
    """The workflow's validator refused the Update: its reason, and its code when it named one."""
    cause = failed.cause
    reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
    code = RefusalCode.REFUSED
    if isinstance(cause, ApplicationError) and cause.type:
        code = RefusalCode.__members__.get(cause.type, code)
    return _Refusal(code, reason)


class ApprovalService:
    def __init__(
        self,
        client: Client | None,
        store: Store,
        directory: ApproverDirectory,
        agent_identity: str,
        update_timeout: timedelta = timedelta(seconds=10),
        *,
        unreachable: str = "Temporal is unreachable: nothing was decided",
    ) -> None:
        """`client` None: Temporal could not be reached (`unreachable` says why); decisions are
        still checked and audited, and refused as unavailable."""
        self.client = client
        self.unreachable = unreachable
        self.store = store
        self.directory = directory
        self.agent_identity = agent_identity
        self.update_timeout = update_timeout

    async def decide(
        self,
        approval_id: str,
        user: str,
        decision: DecisionKind,
        channel: str,
        *,
        groups: set[str] | None = None,
        shown_hash: str | None = None,
    ) -> DecisionReply:
        """Decide as `user`. `groups` are the groups a channel resolved itself (Slack adds user
        group membership); by default the directory's. `shown_hash` is the action hash the
        decider was shown (Slack's button, the API's body): a different one is refused."""
        # In order: load (the id, the identity, the stored approval), authorise (pending, not
        # self-approved, bound to the hash shown, an approver), claim, send. A refusal is audited
        # and ends the attempt: before the claim nothing but its audit entry is written, and
        # nothing reaches Temporal before the claim.
        attempt = await self._load(approval_id, user, channel)
        if isinstance(attempt, DecisionReply):
            return attempt
        authorised = self._authorise(attempt, groups, shown_hash)
        if isinstance(authorised, _Refusal):
            return await self._refuse_attempt(attempt, authorised)
        request = await self._record_claim(attempt, decision, authorised)
        return await self._send(attempt, request)

    async def _load(self, approval_id: str, user: str, channel: str) -> _Attempt | DecisionReply:
        """The approval and the decider's canonical identity, or the refusal of an id too long to
        be one, of an identity that names nobody, or of an approval the store does not hold."""
        if len(approval_id) > MAX_APPROVAL_ID:
            return await self._refuse(
                _clip(approval_id),
                None,
                _clip(user),
                channel,
                RefusalCode.UNKNOWN,
                f"unknown approval (an id longer than {MAX_APPROVAL_ID} characters)",
            )
        try:
            user = canonical_identity(user)
        except IdentityError as error:
            return await self._refuse(
                approval_id, None, _clip(user), channel, RefusalCode.UNAUTHORISED, str(error)
            )
        approval = await self.store.get_approval(approval_id)
        if approval is None:
            return await self._refuse(
                approval_id, None, user, channel, RefusalCode.UNKNOWN, "unknown approval"
            )
        return _Attempt(approval_id, approval, user, channel)

    def _authorise(
        self, attempt: _Attempt, groups: set[str] | None, shown_hash: str | None
    ) -> list[str] | _Refusal:
        """The decider's groups, sorted, or the first check that fails, in this order: still
        pending, not the requester's (or the agent's) own, bound to the action the decider was
        shown, an approver in some group. Writes nothing: `decide` audits the refusal."""
        approval, user = attempt.approval, attempt.user
        if approval.status is not ApprovalStatus.PENDING:
            return _Refusal(RefusalCode.DECIDED, f"already decided: {approval.status.value}")
        if same_identity(user, self.agent_identity) or same_identity(user, approval.requester):
            return _Refusal(
                RefusalCode.SELF_APPROVAL, f"{user} requested this action and cannot decide it"
            )
        if shown_hash is not None and shown_hash != approval.action_hash:
            return _Refusal(
                RefusalCode.CHANGED, "the action changed since it was shown: hash mismatch"
            )
        resolved = self.directory.groups_of(user) if groups is None else groups
        if not resolved:
            return _Refusal(RefusalCode.UNAUTHORISED, f"{user} is not an authorised approver")
        return sorted(resolved)

    async def _record_claim(
        self, attempt: _Attempt, decision: DecisionKind, groups: list[str]
    ) -> DecisionInput:
        """The checked decision as the Update will carry it, claimed in the store first: the
        workflow counts it only with this claim's identity and groups."""
        approval = attempt.approval
        request = DecisionInput(
            decision_id=str(uuid.uuid4()),
            approval_id=attempt.approval_id,
            action_hash=approval.action_hash,
            user=attempt.user,
            groups=groups,
            decision=decision,
            channel=attempt.channel,
        )
        await self.store.decisions.record_claim(
            DecisionClaim(
                decision_id=request.decision_id,
                approval_id=attempt.approval_id,
                incident_id=approval.incident_id,
                action_hash=approval.action_hash,
                user=attempt.user,
                groups=request.groups,
                decision=decision.value,
                channel=attempt.channel,
                at=datetime.now(UTC),
            )
        )
        return request

    async def _send(self, attempt: _Attempt, request: DecisionInput) -> DecisionReply:
        """The claimed decision as a validated Update, or as a signal when no worker answers."""
        if self.client is None:
            return await self._refuse_attempt(
                attempt, _Refusal(RefusalCode.UNAVAILABLE, self.unreachable)
            )
        handle = self.client.get_workflow_handle(workflow_id(attempt.approval.incident_id))
        try:
            ack = await handle.execute_update(
                "decide", request, result_type=DecisionAck, rpc_timeout=self.update_timeout
            )
        except WorkflowUpdateFailedError as failed:
            return await self._refuse_attempt(attempt, _update_refusal(failed))
        except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as error:
            if isinstance(error, RPCError) and error.status is RPCStatusCode.NOT_FOUND:
                return await self._refuse_attempt(attempt, _Refusal(RefusalCode.DECIDED, ENDED))
            # No worker answered in time (the SDK raises its own timeout error, not an RPCError):
            # the workflow dedupes the signal on decision_id and applies the same checks when it
            # next runs.
            return await self._signal(attempt, handle, request)
        await self._audit_received(attempt, ack.status)
        return DecisionReply(True, ack.status, ack)

    async def _signal(
        self, attempt: _Attempt, handle: WorkflowHandle[Any, Any], request: DecisionInput
    ) -> DecisionReply:
        try:
            await handle.signal("decide_signal", request)
        except RPCError as failed:
            if failed.status is RPCStatusCode.NOT_FOUND:
                return await self._refuse_attempt(attempt, _Refusal(RefusalCode.DECIDED, ENDED))
            status = failed.status.name if failed.status else "error"
            return await self._refuse_attempt(
                attempt,
                _Refusal(
                    RefusalCode.UNAVAILABLE,
                    f"Temporal did not take the decision ({status}): nothing was decided",
                ),
            )
        await self._audit_received(attempt, "queued")
        return DecisionReply(True, "queued: the workflow will apply it when a worker runs")

    async def _refuse_attempt(self, attempt: _Attempt, refusal: _Refusal) -> DecisionReply:
        return await self._refuse(
            attempt.approval_id,
            attempt.approval.incident_id,
            attempt.user,
            attempt.channel,
            refusal.code,
            refusal.reason,
        )

    async def _audit_received(self, attempt: _Attempt, outcome: str) -> None:
        await self._audit(
            "approval.decision_received",
            attempt.approval_id,
            attempt.approval.incident_id,
            attempt.user,
            attempt.channel,
            outcome,
        )

    async def _refuse(
        self,
        approval_id: str,
        incident_id: str | None,
        user: str,
        channel: str,
        code: RefusalCode,
        reason: str,
    ) -> DecisionReply:
        kind = _AUDIT_TYPES.get(code, "approval.decision_refused")
        await self._audit(kind, approval_id, incident_id, user, channel, reason)
        return DecisionReply(False, reason, code=code)

    async def _audit(
        self,
        kind: str,
        approval_id: str,
        incident_id: str | None,
        user: str,
        channel: str,
        outcome: str,
    ) -> None:
        await self.store.append_audit(
            AuditEvent(
                type=kind,
                actor=user,
                incident_id=incident_id,
                target=approval_id,
                outcome=outcome,
                source=f"channel:{channel}",
                approval_ref=approval_id,
            )
        )
