"""Investigation nodes: read each involved host's processes, connections and logons around the
alerts, follow the attacker's process trees, and name what is compromised.

Rules:
- attacker processes: the processes of significant alerts (not known-noisy, >= 2 points), and, on
  a malicious incident, any process in the window whose own record shows tradecraft; then all
  their descendants;
- compromised assets: hosts where attacker processes ran or significant alerts fired, and the
  source asset of a remote logon by a compromised account;
- compromised identities: non-system accounts running attacker processes or named by
  significant alerts;
- attacker endpoints: addresses and domains contacted by attacker processes that are not in the
  inventory, and sources of remote logons by compromised accounts that are not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.deps import AgentDeps
from agents.entities import AssetIndex, domain_name, identity_key, is_routable_peer, single_ip
from agents.investigation.state import InvestigationState
from agents.knowledge import image_name, is_system_account, is_vendor_domain
from agents.models import Finding, InvestigationInput, InvestigationReport
from agents.seam import truncate
from agents.telemetry import HostTelemetry, is_attacker_process, judge_process, read_host
from agents.triage.nodes import SIGNIFICANT_ALERT, assess_alert
from tools.models import Alert, Verdict

MAX_HOSTS = 10
MAX_TREE = 60
MAX_LIST = 25
STRONG_CORROBORATION = 8.0


@dataclass
class Scope:
    assets: list[str] = field(default_factory=list)
    identities: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    corroboration: float = 0.0

    def add(self, bucket: list[str], value: str | None) -> None:
        if value and value.lower() not in {v.lower() for v in bucket} and len(bucket) < MAX_LIST:
            bucket.append(value)


def make_nodes(deps: AgentDeps) -> dict[str, Any]:
    tools = deps.tools

    async def load_inventory(state: InvestigationState) -> dict[str, Any]:
        return {"environment": await tools.inventory.environment()}

    async def scope_hosts(state: InvestigationState) -> dict[str, Any]:
        request: InvestigationInput = state["input"]
        index = AssetIndex(state["environment"])
        scope = Scope()
        significant = [
            a
            for a in request.alerts
            if (x := assess_alert(a)).score >= SIGNIFICANT_ALERT and not x.noisy
        ]
        malicious = request.triage.verdict is Verdict.MALICIOUS
        alerts = request.alerts
        start = min((a.time for a in alerts), default=None)
        end = max((a.time for a in alerts), default=None)
        if start is not None and end is not None:
            for host in request.triage.entities.hosts[:MAX_HOSTS]:
                telemetry = await read_host(tools.edr, host, start, end)
                scope.findings += [Finding(summary=g) for g in telemetry.gaps]
                _scope_host(scope, telemetry, index, significant, malicious)
        _scope_alerts(scope, significant, index)
        return {"report": _report(request, scope, malicious)}

    return {"load_inventory": load_inventory, "scope_hosts": scope_hosts}


def _alert_pids(alerts: list[Alert], host: str, index: AssetIndex) -> set[int]:
    return {
        a.entities.process.pid
        for a in alerts
        if a.entities.host
        and index.asset_id(a.entities.host).lower() == host.lower()
        and a.entities.process is not None
        and a.entities.process.pid is not None
    }


def _descendants(telemetry: HostTelemetry, seeds: set[int]) -> set[int]:
    found = set(seeds)
    frontier = list(seeds)
    while frontier and len(found) < MAX_TREE:
        pid = frontier.pop()
        for child in telemetry.children(pid):
            if child.pid is not None and child.pid not in found:
                found.add(child.pid)
                frontier.append(child.pid)
    return found


def _scope_host(
    scope: Scope,
    telemetry: HostTelemetry,
    index: AssetIndex,
    significant: list[Alert],
    malicious: bool,
) -> None:
    host = telemetry.host
    networks = index.internal_networks
    seeds: set[int] = set()
    for pid in _alert_pids(significant, host, index):
        record = telemetry.process(pid)
        weight = sum(s.weight for s in judge_process(record, telemetry, networks)) if record else 0
        # an alerting process counts on a malicious incident unless it is plainly maintenance;
        # on a benign one only with tradecraft of its own
        if weight >= 2.0 or (malicious and weight >= 0):
            seeds.add(pid)
    if malicious:
        seeds |= {
            p.pid
            for p in telemetry.processes
            if p.pid is not None and is_attacker_process(p, telemetry, networks)
        }
    roots = {
        pid
        for pid in seeds
        if (r := telemetry.process(pid)) is not None and is_attacker_process(r, telemetry, networks)
    }
    attacker = seeds | _descendants(telemetry, roots)
    own_ips = set(index.assets[host].ips) if host in index.assets else set()
    for pid in sorted(attacker):
        scope.add(scope.processes, f"{host}:{pid}")
        record = telemetry.process(pid)
        if record is None:
            continue
        signals = judge_process(record, telemetry, networks)
        scope.corroboration += sum(s.weight for s in signals if s.weight > 0)
        if signals:
            scope.findings.append(
                Finding(
                    summary=truncate(f"attacker process {host}:{pid} {image_name(record.image)}"),
                    evidence=[truncate(s.text, 300) for s in signals[:5]],
                )
            )
        if record.user and not is_system_account(record.user):
            scope.add(scope.identities, index.identity_id(record.user))
        if record.sha256:
            scope.add(scope.hashes, record.sha256.lower())
        # a descendant without tradecraft of its own names addresses, not domains
        tradecraft = sum(s.weight for s in signals) >= 2.0
        for conn in telemetry.connections_of(pid):
            _scope_peer(scope, index, conn.dst_ip, conn.domain if tradecraft else None, own_ips)
    if attacker:
        scope.add(scope.assets, host)
    users = {identity_key(u) for u in scope.identities}
    for logon in telemetry.logons:
        if not (logon.success and logon.logon_type in (3, 10) and logon.user and logon.src_ip):
            continue
        if identity_key(logon.user) not in users or logon.src_ip in own_ips:
            continue
        source = index.asset_for_ip(logon.src_ip)
        if source is not None:
            scope.add(scope.assets, source.id)
            scope.findings.append(Finding(summary=f"remote logon to {host} from {source.id}"))
        else:
            _scope_peer(scope, index, logon.src_ip, None, own_ips)


def _scope_peer(
    scope: Scope, index: AssetIndex, ip: str | None, domain: str | None, own: set[str]
) -> None:
    """An endpoint outside the inventory is attacker infrastructure; an inventory asset is a
    possible target, reported as a finding, never blocked."""
    address = single_ip(ip)
    known = index.asset_for_ip(address) if address else None
    if address and is_routable_peer(address) and address not in own and known is None:
        scope.add(scope.ips, address)
    name = domain_name(domain)
    if (
        name
        and index.asset_for(name) is None
        and not is_vendor_domain(name)
        and not any(name.endswith("." + suffix) for suffix in index.org_domains)
    ):
        scope.add(scope.domains, name)


def _scope_alerts(scope: Scope, significant: list[Alert], index: AssetIndex) -> None:
    for alert in significant:
        e = alert.entities
        if e.host:
            scope.add(scope.assets, index.asset_id(e.host))
        if e.user and not is_system_account(e.user):
            scope.add(scope.identities, index.identity_id(e.user))
        tactics = {(a.tactic or "").lower() for a in alert.attacks}
        source = index.asset_for_ip(single_ip(e.src_ip)) if e.src_ip else None
        if source is not None and "lateral-movement" in tactics:
            scope.add(scope.assets, source.id)
        elif e.src_ip and tactics & {"lateral-movement", "initial-access", "credential-access"}:
            _scope_peer(scope, index, e.src_ip, None, set())
        if tactics & {"command-and-control", "exfiltration"}:
            _scope_peer(scope, index, e.dst_ip, e.domain, set())


def _report(request: InvestigationInput, scope: Scope, malicious: bool) -> InvestigationReport:
    triage = request.triage
    corroborated = scope.corroboration >= 2.0
    verdict = triage.verdict
    confidence = triage.confidence
    if not malicious and scope.corroboration >= STRONG_CORROBORATION:
        verdict = Verdict.MALICIOUS
        confidence = 0.6
        scope.findings.append(Finding(summary="alerting processes show attacker tradecraft"))
    elif malicious and corroborated:
        confidence = min(0.99, confidence + 0.05)
    elif malicious:
        confidence = max(0.5, confidence - 0.1)
    if verdict is Verdict.BENIGN:
        return InvestigationReport(
            verdict=verdict, confidence=confidence, corroborated=False, findings=scope.findings[:20]
        )
    return InvestigationReport(
        verdict=verdict,
        confidence=round(confidence, 3),
        corroborated=corroborated,
        findings=scope.findings[:40],
        compromised_assets=scope.assets,
        compromised_identities=scope.identities,
        attacker_ips=scope.ips,
        attacker_domains=scope.domains,
        malicious_sha256=scope.hashes,
        malicious_processes=scope.processes,
    )
