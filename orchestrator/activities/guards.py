"""What the workflow asks the store before it counts a human decision or an isolation.

`approvals.confirm`: a decision reaches the workflow through Temporal, where anyone who can reach
the frontend can send one with any identity and groups. The workflow counts it only as
`ApprovalService` recorded it (the claim); one without a claim, or differing from it, is refused
and audited as forged.

`response.isolation_slot`: the global isolation breaker's deployment-wide count, one slot per
isolation requested (a retried activity keeps its slot).

`approval_problem`: what `response.execute` checks before it acts on an approval, whatever the
workflow says: the store's approval is approved, bound to this very action (its hash recomputed
here), and carried by enough distinct humans' recorded claims, none of them the requester.

`approvals_short`: what `response.execute` checks before it acts at all: the deployment's own
policy, scoring the action on facts the worker reads itself (the inventory, the ledger), asks for
no more approvers than the action carries. The verdict confidence is the one input the worker
cannot re-derive; it is taken as full, so the check is the lowest risk the action could have, and
a genuine workflow (whose risk is at least that) is never refused by it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio import activity

from orchestrator.activities.errors import activity_source
from orchestrator.activities.facts import target_facts
from orchestrator.identity import IdentityError, canonical_identity, same_identity
from orchestrator.models import (
    ConfirmDecisionInput,
    DecisionConfirmation,
    DecisionInput,
    DecisionKind,
    IsolationSlot,
    IsolationSlotInput,
)
from orchestrator.policy.evaluate import DecisionOutcome, evaluate, standing_denials
from orchestrator.policy.model import PolicyDocument
from orchestrator.policy.targets import target_listed
from orchestrator.store.records import ActionStatus, ApprovalStatus, AuditEvent, DecisionClaim
from orchestrator.store.repository import Store
from tools.actions import Action, ActionKind, TargetKind, action_hash, business_key
from tools.inventory.base import InventoryReader

FORGED = "approval.decision_forged"


class GuardActivities:
    def __init__(self, store: Store) -> None:
        self.store = store

    @activity.defn(name="approvals.confirm")
    async def confirm(self, request: ConfirmDecisionInput) -> DecisionConfirmation:
        sent = request.decision
        claim = await self.store.decisions.claim(sent.decision_id)
        problem = _mismatch(request.incident_id, sent, claim)
        if problem is not None:
            await self.store.append_audit(
                AuditEvent(
                    type=FORGED,
                    actor=_clip(sent.user),
                    incident_id=request.incident_id,
                    target=_clip(sent.approval_id),
                    outcome="refused",
                    source=activity_source(),
                    approval_ref=_clip(sent.approval_id),
                    detail={
                        "reason": problem,
                        "claimed_groups": _clip(",".join(sent.groups)),
                        "claimed_channel": _clip(sent.channel),
                        "decision": sent.decision.value,
                        "decision_id": _clip(sent.decision_id),
                    },
                )
            )
            return DecisionConfirmation(reason=problem)
        assert claim is not None
        return DecisionConfirmation(
            confirmed=DecisionInput(
                decision_id=claim.decision_id,
                approval_id=claim.approval_id,
                action_hash=claim.action_hash,
                user=claim.user,
                groups=list(claim.groups),
                decision=DecisionKind(claim.decision),
                channel=claim.channel,
            ),
            claimed_at=claim.at,
        )

    @activity.defn(name="response.isolation_slot")
    async def isolation_slot(self, request: IsolationSlotInput) -> IsolationSlot:
        position = await self.store.decisions.reserve_isolation(
            business_key(request.incident_id, request.action),
            request.scope,
            datetime.now(UTC),
            timedelta(seconds=request.window_s),
        )
        return IsolationSlot(position=position)


def policy_floor(policy: PolicyDocument, action: Action, approval_id: str | None) -> str | None:
    """What the worker's own policy forbids whatever the workflow decided: a standing deny rule
    (never-touch, a too-wide network, a kernel pid), or a protected target without an approval.
    A workflow started straight on Temporal with a lenient policy in its input stops here."""
    denials = standing_denials(policy, action)
    if denials:
        return "denied by this deployment's policy: " + "; ".join(denials)
    if approval_id is None and target_listed(action.target_kind, action.target, policy.protected):
        return "the target is protected by this deployment's policy and nobody approved"
    return None


async def approvals_short(
    policy: PolicyDocument,
    store: Store,
    inventory: InventoryReader,
    incident_id: str,
    action: Action,
    approvers_carried: int,
) -> str | None:
    """Why the deployment's policy wants more approvers for this action than it carries, or None.

    A workflow started straight on Temporal (or a rogue worker's workflow) can carry a lenient
    policy, a high threshold or no approval at all; this scores the action again under the
    worker's own policy, on the worker's own facts: the target's kind and criticality from the
    inventory, and the incident's isolations from the ledger (the per-incident cap)."""
    facts = await target_facts(action, inventory, {kind: set() for kind in TargetKind}, None)
    # Whether the target was extracted from the incident is the agents' check, on the evidence.
    facts = facts.model_copy(update={"known_entity": True})
    isolations = 0
    if action.kind is ActionKind.ISOLATE_HOST:
        key = business_key(incident_id, action)
        done = (ActionStatus.SUCCEEDED, ActionStatus.ROLLED_BACK)
        isolations = sum(
            1
            for record in await store.actions_for(incident_id)
            if record.kind is ActionKind.ISOLATE_HOST
            and record.business_key != key
            and record.status in done
        )
    decision = evaluate(policy, action, facts, confidence=1.0, isolations_so_far=isolations)
    if decision.outcome is DecisionOutcome.DENY:
        return "denied by this deployment's policy: " + "; ".join(decision.reasons)
    if decision.required_approvers <= approvers_carried:
        return None
    return (
        f"this deployment's policy (version {policy.version}) requires"
        f" {decision.required_approvers} approver(s) for this action, it carries"
        f" {approvers_carried}: " + "; ".join(decision.reasons)
    )


async def approval_problem(
    store: Store, incident_id: str, action: Action, approval_id: str, policy_version: str
) -> str | None:
    """Why the approval `approval_id` does not authorise this action now, or None."""
    approval = await store.get_approval(approval_id)
    if approval is None or approval.incident_id != incident_id:
        return f"no approval {approval_id} for this incident in the store"
    if approval.status is not ApprovalStatus.APPROVED:
        return f"approval {approval_id} is {approval.status.value}, not approved"
    expected = action_hash(incident_id, action, policy_version)
    if approval.action_hash != expected:
        return f"approval {approval_id} was given for another action (hash mismatch)"
    approvers: set[str] = set()
    for claim in await store.decisions.claims_for(approval_id):
        if claim.decision != "approve" or claim.action_hash != expected:
            continue
        if same_identity(claim.user, approval.requester):
            continue
        try:
            approvers.add(canonical_identity(claim.user))
        except IdentityError:
            continue
    if len(approvers) < approval.required_approvers:
        return (
            f"approval {approval_id} has {len(approvers)} recorded human approver(s),"
            f" {approval.required_approvers} required"
        )
    return None


def _mismatch(incident_id: str, sent: DecisionInput, claim: DecisionClaim | None) -> str | None:
    """Why `sent` is not the decision Garrison's approval service recorded, or None."""
    if claim is None:
        return "no such decision was recorded by Garrison's approval service"
    if claim.incident_id != incident_id or claim.approval_id != sent.approval_id:
        return "the decision was recorded for another approval"
    if claim.action_hash != sent.action_hash:
        return "the decision was recorded for another action"
    if not same_identity(claim.user, sent.user) or claim.decision != sent.decision.value:
        return "the decider or the decision differs from the recorded one"
    if sorted(claim.groups) != sorted(sent.groups):
        return "the groups differ from the ones the approval service resolved"
    return None


def _clip(text: str, limit: int = 256) -> str:
    return text if len(text) <= limit else text[:limit] + "…[cut]"
