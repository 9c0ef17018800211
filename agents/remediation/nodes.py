"""Remediation nodes: the labelling rules of the recorded-incident spec, applied to the entities
that triage extracted and investigation confirmed, then (with a model) a guarded selection.

Per category, for each compromised entity:
- credential access: isolate_host + disable_account (+ block_ip/block_domain on contacted attacker
  infrastructure); krbtgt, disabled by design, gets reset_credentials instead;
- lateral movement: isolate_host on source and target + disable_account (+ block_ip on sources
  outside the organisation's networks);
- command and control, exfiltration: block_ip/block_domain + isolate_host;
- execution, defense evasion, persistence, impact: isolate_host, plus kill_process where the
  process is known, as the spec's labelling rule says ("isolate, plus kill where the artefact is
  known"): the implant (an alerting attacker process that talked to an attacker endpoint) and
  the processes an attacker process injected into (`STOP_FINDING`); isolation cuts the host
  off, the kill stops what runs inside it before the host is released. The other alerting
  processes (the one-shot `auditpol`, `reg`, `whoami` an implant started) are contained by the
  isolation: they are proposed for a kill only as a fallback, when the isolation of their host
  was denied, expired or failed (`fallback_kills`);
- any contained category: remove_persistence where the artefact is known (a service or a
  hijacked DLL planted during a lateral movement re-opens the door as surely as a Run key);
- initial access: isolate_host + block_ip on the source;
- discovery only, or benign: nothing.
Without compromised hosts (accounts) from the investigation, the alerts' hosts (accounts) stand
in, less the domain controllers that only served the attacker's requests and the accounts and
processes the investigation could not judge because their records were not read (it names them
`unconfirmed`: nothing is proposed on them, by the rules or by a model). Only kinds in
`allowed_kinds`; only targets the extractor or the investigation produced. On degraded evidence
every proposal's evidence starts with the line saying what could not be read.
"""

from __future__ import annotations

from typing import Any

from agents.degraded import degraded_line, gaps_of
from agents.deps import AgentDeps
from agents.entities import host_key, identity_key, single_ip
from agents.estate import is_reset_only_account
from agents.models import (
    InvestigationReport,
    ProposedAction,
    RejectedChoice,
    RemediationPlan,
    TriageResult,
)
from agents.remediation.patching import patch_proposals
from agents.remediation.prompts import REMEDIATION_INSTRUCTIONS, ModelSelection
from agents.remediation.state import RemediationInput, RemediationState
from agents.seam import ask_structured, truncate
from agents.verdict_category import decided_category
from tools.actions import Action, ActionKind, TargetKind, parse_action
from tools.models import Category, Verdict

PERSISTENCE_FINDING = "persistence artefact"
STOP_FINDING = "attacker process to stop"  # evidence: `<asset id>:<pid>` (implant, injected)
MAX_PROPOSALS = 30

CONTAIN_HOSTS = frozenset(Category) - {Category.DISCOVERY, Category.BENIGN_ACTIVITY}
DISABLE_ACCOUNTS = frozenset({Category.CREDENTIAL_ACCESS, Category.LATERAL_MOVEMENT})
BLOCK_ENDPOINTS = frozenset(
    {
        Category.CREDENTIAL_ACCESS,
        Category.LATERAL_MOVEMENT,
        Category.COMMAND_AND_CONTROL,
        Category.EXFILTRATION,
        Category.INITIAL_ACCESS,
    }
)
KILL_PROCESSES = frozenset(
    {
        Category.EXECUTION,
        Category.DEFENSE_EVASION,
        Category.PERSISTENCE,
        Category.IMPACT,
    }
)


def _evidence(triage: TriageResult, report: InvestigationReport) -> list[str]:
    lines = [f"triage: {triage.verdict.value} {triage.category.value} ({triage.confidence:.2f})"]
    if triage.degraded or report.degraded:
        lines.insert(0, degraded_line(gaps_of(triage.evidence_gaps, report.evidence_gaps)))
    lines += [truncate(f.summary, 200) for f in report.findings[:3]]
    return lines


def _unconfirmed(report: InvestigationReport) -> tuple[set[str], set[str]]:
    """Accounts (identity keys) and processes the investigation could not judge."""
    return (
        {identity_key(u) for u in report.unconfirmed_identities},
        {p.lower() for p in report.unconfirmed_processes},
    )


def persistence_artefacts(report: InvestigationReport) -> list[str]:
    return [e for f in report.findings if f.summary == PERSISTENCE_FINDING for e in f.evidence]


def kill_candidates(triage: TriageResult, report: InvestigationReport) -> list[str]:
    """Attacker processes that an alert named: `<asset id>:<pid>`."""
    alerting = {p.lower() for p in triage.entities.processes}
    return [p for p in report.malicious_processes if p.lower() in alerting]


def known_processes(report: InvestigationReport) -> list[str]:
    """The implants and injected processes the investigation named, `<asset id>:<pid>`."""
    stop = {e.lower() for f in report.findings if f.summary == STOP_FINDING for e in f.evidence}
    return [p for p in report.malicious_processes if p.lower() in stop]


def fallback_kills(
    triage: TriageResult, report: InvestigationReport, uncontained: list[str]
) -> list[ProposedAction]:
    """kill_process on the alerting attacker processes of hosts whose isolation did not happen."""
    if report.verdict is Verdict.BENIGN or decided_category(triage, report) not in KILL_PROCESSES:
        return []
    hosts = {host_key(h) for h in uncontained}
    evidence = _evidence(triage, report)
    return [
        ProposedAction(
            action=parse_action(ActionKind.KILL_PROCESS.value, process),
            rationale=f"isolation of {process.split(':', 1)[0]} did not happen: stop the process",
            evidence=evidence,
        )
        for process in kill_candidates(triage, report)
        if host_key(process.split(":", 1)[0]) in hosts
    ][:MAX_PROPOSALS]


def _account_actions(
    triage: TriageResult, report: InvestigationReport
) -> list[tuple[ActionKind, str, str]]:
    """Disable the accounts used or whose secrets were taken; reset krbtgt, which is disabled by
    design. The accounts the alerts name stand in when no process tied the theft to an account,
    as the alerting hosts stand in for hosts; never one that only alerts on processes whose
    records could not be read name (the host's owner browsing is not its thief)."""
    category = decided_category(triage, report).value
    wanted: list[tuple[ActionKind, str, str]] = []
    unconfirmed, _ = _unconfirmed(report)
    stand_ins = [u for u in triage.entities.users if identity_key(u) not in unconfirmed]
    for user in report.compromised_identities or stand_ins:
        if is_reset_only_account(user):
            why = f"{category}: the key of {user} was taken; the account is disabled by design"
            wanted.append((ActionKind.RESET_CREDENTIALS, user, why))
        else:
            why = f"{category}: credentials of {user} used or taken"
            wanted.append((ActionKind.DISABLE_ACCOUNT, user, why))
    return wanted


def contained_hosts(request: RemediationInput) -> list[str]:
    """The hosts the plan contains: the compromised ones, else the alerting ones less the domain
    controllers that only served the attacker's requests; none for a benign or discovery-only
    incident."""
    triage, report = request.triage, request.report
    category = decided_category(triage, report)  # the evidence's, triage's as the prior
    if report.verdict is Verdict.BENIGN or category not in CONTAIN_HOSTS:
        return []
    served = {host_key(h) for h in report.served_assets}
    return report.compromised_assets or [
        h for h in triage.entities.hosts if host_key(h) not in served
    ]


def deterministic_plan(request: RemediationInput) -> list[ProposedAction]:
    triage, report = request.triage, request.report
    verdict = report.verdict
    category = decided_category(triage, report)  # the evidence's, triage's as the prior
    if verdict is Verdict.BENIGN or category not in CONTAIN_HOSTS:
        return []
    evidence = _evidence(triage, report)
    wanted: list[tuple[ActionKind, str, str]] = []
    hosts = contained_hosts(request)
    for host in hosts:
        wanted.append((ActionKind.ISOLATE_HOST, host, f"{category.value}: contain {host}"))
    if category in DISABLE_ACCOUNTS:
        wanted += _account_actions(triage, report)
    if category in BLOCK_ENDPOINTS:
        for ip in report.attacker_ips:
            wanted.append((ActionKind.BLOCK_IP, ip, f"attacker endpoint {ip}"))
        for domain in report.attacker_domains:
            wanted.append((ActionKind.BLOCK_DOMAIN, domain, f"attacker domain {domain}"))
    if category in KILL_PROCESSES:
        isolating = (
            {host_key(h) for h in hosts}
            if ActionKind.ISOLATE_HOST in request.allowed_kinds
            else set()
        )
        for process in known_processes(report):
            wanted.append((ActionKind.KILL_PROCESS, process, "implant or injected process"))
        for process in kill_candidates(triage, report):
            if host_key(process.split(":", 1)[0]) not in isolating:
                wanted.append((ActionKind.KILL_PROCESS, process, "alerting attacker process"))
    # an artefact left in place re-opens the door when the host is released, whatever stage
    # the incident was caught at (a service planted during a lateral movement, a hijack DLL)
    for artefact in persistence_artefacts(report):
        wanted.append((ActionKind.REMOVE_PERSISTENCE, artefact, "attacker persistence"))
    proposals: list[ProposedAction] = []
    seen: set[tuple[ActionKind, str]] = set()
    for kind, target, why in wanted:
        if kind not in request.allowed_kinds or (kind, target.lower()) in seen:
            continue
        seen.add((kind, target.lower()))
        proposals.append(
            ProposedAction(
                action=parse_action(kind.value, target), rationale=why, evidence=evidence
            )
        )
    return proposals[:MAX_PROPOSALS]


def target_pool(request: RemediationInput) -> dict[TargetKind, dict[str, str]]:
    """Every target an action may name, by kind: normalised key -> the extracted spelling."""
    e, r = request.triage.entities, request.report
    users_unread, processes_unread = _unconfirmed(r)
    pool: dict[TargetKind, dict[str, str]] = {kind: {} for kind in TargetKind}
    for host in [*e.hosts, *r.compromised_assets]:
        pool[TargetKind.ASSET].setdefault(host_key(host), host)
    for user in [*e.users, *r.compromised_identities]:
        if identity_key(user) not in users_unread:
            pool[TargetKind.IDENTITY].setdefault(identity_key(user), user)
    for ip in [*e.ips, *r.attacker_ips]:
        if (address := single_ip(ip)) is not None:
            pool[TargetKind.IP].setdefault(address, address)
    for domain in [*e.domains, *r.attacker_domains]:
        pool[TargetKind.DOMAIN].setdefault(domain.lower().rstrip("."), domain)
    for process in [*e.processes, *r.malicious_processes]:
        if process.lower() not in processes_unread:
            pool[TargetKind.PROCESS].setdefault(process.lower(), process)
    for file in e.files:
        pool[TargetKind.FILE].setdefault(file.lower(), file)
    for artefact in persistence_artefacts(r):
        pool[TargetKind.ARTEFACT].setdefault(artefact.lower(), artefact)
    return pool


def _pool_key(kind: TargetKind, target: str) -> str | None:
    match kind:
        case TargetKind.ASSET:
            return host_key(target)
        case TargetKind.IDENTITY:
            return identity_key(target)
        case TargetKind.IP:
            return single_ip(target)
        case TargetKind.DOMAIN:
            return target.strip().lower().rstrip(".")
        case _:
            return target.strip().lower()


def admit(request: RemediationInput, kind: str, target: str) -> Action | None:
    """A model's choice as a typed action on the extracted spelling of its target, or None."""
    try:
        action_kind = ActionKind(kind.strip().lower())
    except ValueError:
        return None
    if action_kind not in request.allowed_kinds:
        return None
    try:
        probe = parse_action(action_kind.value, "x")
    except ValueError:
        return None
    key = _pool_key(probe.target_kind, target)
    canonical = target_pool(request)[probe.target_kind].get(key or "")
    if (
        canonical is None
        or canonical != canonical.strip()
        or _pool_key(probe.target_kind, canonical) != key
    ):
        return None
    return parse_action(action_kind.value, canonical)


def make_nodes(deps: AgentDeps) -> dict[str, Any]:
    async def plan_actions(state: RemediationState) -> dict[str, Any]:
        request = state["input"]
        proposals = deterministic_plan(request)
        hosts = contained_hosts(request)
        if ActionKind.PATCH in request.allowed_kinds and request.alerts and hosts:
            evidence = _evidence(request.triage, request.report)
            patches = await patch_proposals(deps, request.alerts, hosts, evidence)
            proposals = (proposals + patches)[:MAX_PROPOSALS]
        return {"candidates": proposals, "plan": RemediationPlan(proposals=proposals)}

    async def consult_model(state: RemediationState) -> dict[str, Any]:
        """The model may add actions among allowed kinds on extracted targets; it cannot remove
        the deterministic ones (hostile text must not talk containment away)."""
        if deps.model is None:
            return {}
        request = state["input"]
        if request.report.verdict is Verdict.BENIGN:
            return {}
        pool = target_pool(request)
        data = {
            "category": decided_category(request.triage, request.report).value,
            "allowed_kinds": sorted(k.value for k in request.allowed_kinds),
            "candidates": [
                {"kind": p.action.kind.value, "target": p.action.target}
                for p in state["candidates"]
            ],
            "targets": {k.value: sorted(v.values())[:25] for k, v in pool.items() if v},
        }
        answer = await ask_structured(deps.model, ModelSelection, REMEDIATION_INSTRUCTIONS, data)
        if answer is None:
            return {}
        proposals = list(state["candidates"])
        have = {(p.action.kind, p.action.target.lower()) for p in proposals}
        rejected: list[RejectedChoice] = []
        for choice in answer.actions:
            action = admit(request, choice.kind, choice.target)
            if action is None:
                rejected.append(
                    RejectedChoice(
                        kind=choice.kind[:64],
                        target=choice.target[:512],
                        reason="model suggestion outside the allowed kinds or extracted entities",
                    )
                )
                continue
            if (action.kind, action.target.lower()) in have:
                continue
            have.add((action.kind, action.target.lower()))
            proposals.append(
                ProposedAction(
                    action=action,
                    rationale="suggested by the model among allowed actions on extracted entities",
                    evidence=_evidence(request.triage, request.report),
                    from_model=True,
                )
            )
        return {"plan": RemediationPlan(proposals=proposals[:MAX_PROPOSALS], rejected=rejected)}

    return {"plan_actions": plan_actions, "consult_model": consult_model}
