"""`evaluate`: the policy decision for one proposed action, a pure deterministic function of the
policy, the action, the facts about its target, the verdict confidence, the isolations already
made in the incident and (for the global breaker) the isolations requested deployment-wide within
the breaker's window. It runs inside workflow code: no I/O, no clock, no randomness, no logging.

deny rules (unknown target, never-touch, own infrastructure, too-wide network, a critical
system process to kill, an identity action on a principal that is nobody's account) -> deny
else protected, degraded evidence, an `always_approve` kind on its asset kind (a patch on a
     server or a domain controller), risk above the thresholds, isolation cap
     -> needs approval (1 or 2 approvers)
     global isolation breaker tripped -> needs approval by 2
else -> allow
"""

from __future__ import annotations

import ipaddress
import math
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.policy.model import PolicyDocument, TargetFacts, TierName
from orchestrator.policy.targets import parse_network, target_listed
from tools.accounts import Account, AccountKind
from tools.actions import Action, ActionKind, TargetKind


class DecisionOutcome(StrEnum):
    ALLOW = "allow"
    NEEDS_APPROVAL = "needs_approval"
    DENY = "deny"


class RiskFactor(BaseModel):
    """One term of the risk score, shown on the approval card."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    points: int


class PolicyDecision(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    outcome: DecisionOutcome
    risk: int = Field(ge=0, le=100)
    factors: list[RiskFactor]
    required_approvers: int = Field(ge=0, le=2)
    tier: str | None = Field(default=None, description="a key of the policy's `tiers`")
    reasons: list[str]
    policy_version: str
    # What could not be read when the decision was made on degraded evidence (the card says so).
    evidence_gaps: list[str] = Field(default_factory=list)


def evaluate(
    policy: PolicyDocument,
    action: Action,
    facts: TargetFacts,
    confidence: float,
    isolations_so_far: int = 0,
    isolations_in_window: int | None = None,
) -> PolicyDecision:
    factors = risk_factors(policy, action, facts, confidence)
    risk = max(0, min(100, sum(f.points for f in factors)))
    denials = deny_reasons(policy, action, facts)
    if denials:
        return _decision(policy, DecisionOutcome.DENY, risk, factors, None, denials, facts)

    reasons: list[str] = []
    if facts.protected or target_listed(action.target_kind, action.target, policy.protected):
        reasons.append("target is protected: approval required whatever the risk")
    if facts.degraded:
        reasons.append("evidence degraded: approval required whatever the risk")
    if facts.asset_kind is not None and facts.asset_kind in policy.always_approve.get(
        action.kind, []
    ):
        reasons.append(
            f"{action.kind.value} on a {facts.asset_kind.value}: approval required whatever"
            " the risk"
        )
    if risk > policy.two_approver_above:
        reasons.append(f"risk {risk} > {policy.two_approver_above}: two approvers required")
    elif risk > policy.threshold:
        reasons.append(f"risk {risk} > threshold {policy.threshold}: approval required")
    cap = policy.deny.max_isolations_per_incident
    if action.kind is ActionKind.ISOLATE_HOST and isolations_so_far >= cap:
        reasons.append(
            f"{isolations_so_far} isolation(s) already in this incident (cap {cap}):"
            " approval required"
        )
    tripped = breaker_tripped(policy, action, isolations_in_window)
    if tripped:
        reasons.append(
            f"global isolation breaker: {isolations_in_window} isolations requested within"
            f" {policy.breaker.window_s} s (limit {policy.breaker.max_isolations}):"
            " two approvers required"
        )
    if not reasons:
        reasons.append(f"risk {risk} <= threshold {policy.threshold}")
        return _decision(policy, DecisionOutcome.ALLOW, risk, factors, None, reasons, facts)
    two = tripped or risk > policy.two_approver_above
    tier = TierName.CRITICAL if two else TierName.STANDARD
    return _decision(policy, DecisionOutcome.NEEDS_APPROVAL, risk, factors, tier, reasons, facts)


def breaker_tripped(
    policy: PolicyDocument, action: Action, isolations_in_window: int | None
) -> bool:
    """Whether this isolation is beyond the global breaker's limit (`isolations_in_window`
    counts this one too; None: not counted, as in workflows started before the breaker)."""
    limit = policy.breaker.max_isolations
    return (
        action.kind is ActionKind.ISOLATE_HOST
        and limit is not None
        and isolations_in_window is not None
        and isolations_in_window > limit
    )


def deny_reasons(policy: PolicyDocument, action: Action, facts: TargetFacts) -> list[str]:
    """Why the action may never run, approved or not; empty when no deny rule applies."""
    reasons: list[str] = []
    if facts.target_kind is not action.target_kind:
        reasons.append(
            f"facts describe a {facts.target_kind.value} target, the action a"
            f" {action.target_kind.value}"
        )
    if not facts.known_entity:
        reasons.append("target not extracted from the incident")
    if facts.own_infrastructure:
        reasons.append("target is part of Garrison's own infrastructure")
    reasons.extend(standing_denials(policy, action, facts.process_image))
    return reasons


def standing_denials(
    policy: PolicyDocument, action: Action, process_image: str | None = None
) -> list[str]:
    """The deny rules that need no facts about the incident, only the action and the policy:
    what `response.execute` re-checks with the worker's own policy before any vendor call."""
    reasons: list[str] = []
    if target_listed(action.target_kind, action.target, policy.deny.never_touch):
        reasons.append("target is on the never-touch list")
    if _own_infrastructure(policy, action):
        reasons.append("target is part of Garrison's own infrastructure")
    if action.target_kind is TargetKind.IP:
        reasons.extend(_network_denials(policy, action.target))
    if action.kind is ActionKind.KILL_PROCESS:
        reasons.extend(_process_denials(policy, action.target, process_image))
    if action.target_kind is TargetKind.IDENTITY:
        reasons.extend(_identity_denials(action))
    return reasons


def _own_infrastructure(policy: PolicyDocument, action: Action) -> bool:
    own = policy.deny.own_infrastructure
    match action.target_kind:
        case TargetKind.DOMAIN:
            return target_listed(TargetKind.DOMAIN, action.target, own.domains)
        case TargetKind.IDENTITY:
            return target_listed(TargetKind.IDENTITY, action.target, own.identities)
        case TargetKind.IP:
            return target_listed(TargetKind.IP, action.target, own.addresses)
        case _:  # a host, or a process, file or artefact on one
            return target_listed(action.target_kind, action.target, [*own.hosts, *own.addresses])


# Identity actions that lock an account out: never on an account the estate itself runs on.
_LOCKOUTS = frozenset({ActionKind.DISABLE_ACCOUNT, ActionKind.REVOKE_SESSIONS})


def _identity_denials(action: Action) -> list[str]:
    """The floor under every score and approval: the operating system's own principals (SYSTEM,
    LOCAL/NETWORK SERVICE, ANONYMOUS LOGON, DWM-n, NT SERVICE\\*, "-") are nobody's account, so no
    identity action touches them; a machine account (`NAME$`) or krbtgt is contained by isolating
    its host or resetting its key, never by disabling it (that breaks the host or the domain)."""
    account = Account.parse(action.target)
    if account is None:
        return []  # not an account name at all: the other rules (extracted targets) decide
    kind = account.kind
    if kind is AccountKind.BUILTIN:
        return [f"{action.target} is a built-in principal of the operating system, not a person"]
    if kind is AccountKind.MACHINE and action.kind in _LOCKOUTS:
        return [f"{action.target} is a machine account: isolate its host or reset its secret"]
    if kind is AccountKind.KEY and action.kind in _LOCKOUTS:
        return [f"{action.target} holds the domain's ticket key: reset it, never disable it"]
    return []


def _process_denials(policy: PolicyDocument, target: str, image: str | None) -> list[str]:
    """A critical system process dies with its host (a blue screen, a logoff of every session):
    whatever ran inside it is contained by isolating the host, never by killing it."""
    pid = target.rpartition(":")[2].strip()
    if pid.isdigit() and int(pid) in policy.deny.critical_pids:
        return [f"pid {int(pid)} is the kernel's own: never killed"]
    name = (image or "").replace("/", "\\").rsplit("\\", 1)[-1].strip().lower()
    if name and name in {p.strip().lower() for p in policy.deny.critical_processes}:
        return [f"{name} is a critical system process: never killed"]
    return []


def _network_denials(policy: PolicyDocument, target: str) -> list[str]:
    network = parse_network(target)
    if network is None:
        return ["target is not an IP address or network"]
    minimum = (
        policy.deny.min_cidr_prefix_v4
        if isinstance(network, ipaddress.IPv4Network)
        else policy.deny.min_cidr_prefix_v6
    )
    reasons: list[str] = []
    if network.prefixlen < minimum:
        reasons.append(f"network /{network.prefixlen} is wider than the minimum prefix /{minimum}")
    address = network.network_address
    if address.is_unspecified or address.is_loopback or address.is_multicast:
        reasons.append(f"{network} is not a unicast host address")
    return reasons


def risk_factors(
    policy: PolicyDocument, action: Action, facts: TargetFacts, confidence: float
) -> list[RiskFactor]:
    """The terms of the risk score, each named for the approval card; zero terms are left out."""
    weights = policy.weights
    factors = [RiskFactor(name=f"action {action.kind.value}", points=weights.base[action.kind])]
    if facts.criticality is not None:
        points = weights.criticality[facts.criticality]
        factors.append(RiskFactor(name=f"criticality {facts.criticality.value}", points=points))
    if facts.asset_kind is not None:
        points = weights.asset_kind.get(facts.asset_kind, 0)
        factors.append(RiskFactor(name=f"asset kind {facts.asset_kind.value}", points=points))
    if facts.privileged_identity:
        factors.append(RiskFactor(name="privileged identity", points=weights.privileged_identity))
    radius = _blast_radius(action, facts)
    doublings = (radius - 1).bit_length() if radius > 1 else 0
    factors.append(
        RiskFactor(
            name=f"blast radius {radius}", points=weights.blast_radius_per_doubling * doublings
        )
    )
    unsure = 1.0 - _clamp_confidence(confidence)
    factors.append(
        RiskFactor(
            name=f"verdict confidence {1.0 - unsure:.2f}",
            points=round(weights.low_confidence * unsure),
        )
    )
    return [f for f in factors if f.points or f is factors[0]]


def _blast_radius(action: Action, facts: TargetFacts) -> int:
    """Hosts or accounts affected. For a network the policy counts it itself, from the target:
    IPv4 addresses, or IPv6 /64 subnets (one subnet is one site's LAN, not 2**64 hosts)."""
    if action.target_kind is TargetKind.IP:
        network = parse_network(action.target)
        if network is not None:
            if isinstance(network, ipaddress.IPv6Network):
                return 2 ** max(0, 64 - network.prefixlen)
            return network.num_addresses
    return max(1, facts.blast_radius)


def _clamp_confidence(confidence: float) -> float:
    # NaN or garbage counts as no confidence at all: the safe side.
    if math.isnan(confidence):
        return 0.0
    return max(0.0, min(1.0, confidence))


def _decision(
    policy: PolicyDocument,
    outcome: DecisionOutcome,
    risk: int,
    factors: list[RiskFactor],
    tier: TierName | None,
    reasons: list[str],
    facts: TargetFacts,
) -> PolicyDecision:
    approvers = {None: 0, TierName.STANDARD: 1, TierName.CRITICAL: 2}[tier]
    return PolicyDecision(
        outcome=outcome,
        risk=risk,
        factors=factors,
        required_approvers=approvers,
        tier=None if tier is None else tier.value,
        reasons=reasons,
        policy_version=policy.version,
        evidence_gaps=list(facts.evidence_gaps) if facts.degraded else [],
    )
