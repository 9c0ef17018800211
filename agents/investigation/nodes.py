"""Investigation nodes: read each involved host's processes, connections and logons around the
alerts, follow the attacker's process trees, and name what is compromised.

Rules:
- attacker processes: the processes of significant alerts (not known-noisy, >= 2 points), and, on
  a malicious incident, any process in the window whose own record shows tradecraft; then all
  their descendants, and their ancestors back to the initial payload (ancestors that show
  tradecraft or run from a user-writable folder);
- an alerting process with a record but no tradecraft and no kinship with a proven attacker
  process (a browser that saved the download) is kept as alerting, but names no account and no
  endpoint: it is the victim's tool, not the attacker's;
- compromised assets: hosts where attacker processes ran or significant alerts fired, and the
  source of a lateral movement: an inventory asset that logged on to, or connected on a remote
  execution port (SMB, RPC, WinRM, RDP) to, a host where code was started remotely (a service
  creation or remote execution technique in its alerts), or that a compromised account logged on
  from;
- compromised identities: non-system accounts running proven attacker processes, named by
  significant alerts, or used for the lateral movement;
- attacker endpoints: addresses and domains contacted by proven attacker processes that are not
  in the inventory and are not the estate's infrastructure (addresses the host reaches for DNS,
  Kerberos, LDAP or time), and sources of remote logons by compromised accounts that are not;
- persistence artefacts: autostart registry values (Run keys, services' ImagePath, Winlogon) and
  files in autostart folders (Startup, Tasks) written by an attacker process, as
  `<asset id>:<value path or file path>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.deps import AgentDeps
from agents.entities import AssetIndex, domain_name, identity_key, is_routable_peer, single_ip
from agents.investigation.state import InvestigationState
from agents.knowledge import (
    LATERAL_PORTS,
    image_name,
    in_user_writable_dir,
    is_autostart_file,
    is_autostart_key,
    is_remote_execution,
    is_system_account,
    is_vendor_domain,
)
from agents.models import Finding, InvestigationInput, InvestigationReport
from agents.remediation.nodes import PERSISTENCE_FINDING
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
    persistence: list[Finding] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    corroboration: float = 0.0
    bystanders: set[str] = field(default_factory=set)  # "<host>:<pid>" alerting, not attacker

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
        telemetries: dict[str, HostTelemetry] = {}
        if start is not None and end is not None:
            for host in request.triage.entities.hosts[:MAX_HOSTS]:
                telemetry = await read_host(tools.edr, host, start, end, writes=malicious)
                telemetries[host] = telemetry
                scope.findings += [Finding(summary=g) for g in telemetry.gaps]
                _scope_host(scope, telemetry, index, significant, malicious)
        _scope_alerts(scope, significant, index)
        if malicious:
            _scope_lateral(scope, telemetries, index, significant)
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


def _ancestors_to_payload(
    telemetry: HostTelemetry, roots: set[int], networks: list[str]
) -> set[int]:
    """Parents of attacker processes back to the initial payload: the walk continues while the
    parent shows tradecraft or runs from a user-writable folder, and stops at the first ordinary
    process (explorer, services, a shell host), which is the system's, not the attacker's."""
    found: set[int] = set()
    for pid in roots:
        for parent in telemetry.ancestors(pid):
            if parent.pid is None:
                break
            if not (
                is_attacker_process(parent, telemetry, networks)
                or in_user_writable_dir(parent.image)
            ):
                break
            found.add(parent.pid)
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
    roots |= _ancestors_to_payload(telemetry, roots, networks)
    proven = roots | _descendants(telemetry, roots)
    # an alerting process without a record cannot be judged: it keeps the benefit of the alert
    bystanders = {pid for pid in seeds - proven if telemetry.process(pid) is not None}
    scope.bystanders |= {f"{host}:{pid}".lower() for pid in bystanders}
    attacker = seeds | proven
    own_ips = set(index.assets[host].ips) if host in index.assets else set()
    infrastructure = telemetry.infrastructure()
    for pid in sorted(attacker):
        scope.add(scope.processes, f"{host}:{pid}")
        if pid in bystanders:
            continue
        record = telemetry.process(pid)
        signals = judge_process(record, telemetry, networks) if record is not None else []
        scope.corroboration += sum(s.weight for s in signals if s.weight > 0)
        if record is not None and signals:
            scope.findings.append(
                Finding(
                    summary=truncate(f"attacker process {host}:{pid} {image_name(record.image)}"),
                    evidence=[truncate(s.text, 300) for s in signals[:5]],
                )
            )
        if record is not None and record.user and not is_system_account(record.user):
            scope.add(scope.identities, index.identity_id(record.user))
        if record is not None and record.sha256:
            scope.add(scope.hashes, record.sha256.lower())
        # a descendant without tradecraft of its own names addresses, not domains
        tradecraft = sum(s.weight for s in signals) >= 2.0
        for conn in telemetry.connections_of(pid):
            if conn.dst_ip in infrastructure:
                continue
            _scope_peer(scope, index, conn.dst_ip, conn.domain if tradecraft else None, own_ips)
    if attacker:
        scope.add(scope.assets, host)
    _scope_persistence(scope, telemetry, attacker - bystanders)
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
        elif logon.src_ip not in infrastructure:
            _scope_peer(scope, index, logon.src_ip, None, own_ips)


def _scope_persistence(scope: Scope, telemetry: HostTelemetry, writers: set[int]) -> None:
    """Autostart values and files written by attacker processes, one finding per artefact."""
    host = telemetry.host
    known = {e.lower() for f in scope.persistence for e in f.evidence}
    for write in telemetry.registry:
        if write.pid not in writers or not is_autostart_key(write.key):
            continue
        if (write.operation or "SetValue").lower() not in ("setvalue", "createkey"):
            continue
        artefact = f"{host}:{write.key}"
        if artefact.lower() not in known and len(scope.persistence) < MAX_LIST:
            known.add(artefact.lower())
            scope.persistence.append(Finding(summary=PERSISTENCE_FINDING, evidence=[artefact]))
            scope.findings.append(
                Finding(
                    summary=truncate(f"autostart value {write.key} written on {host}"),
                    evidence=[f"by {image_name(write.image)} ({write.pid})"],
                )
            )
    for created in telemetry.files:
        if created.pid not in writers or not is_autostart_file(created.path):
            continue
        artefact = f"{host}:{created.path}"
        if artefact.lower() not in known and len(scope.persistence) < MAX_LIST:
            known.add(artefact.lower())
            scope.persistence.append(Finding(summary=PERSISTENCE_FINDING, evidence=[artefact]))
            scope.findings.append(
                Finding(
                    summary=truncate(f"file {created.path} created in an autostart folder"),
                    evidence=[f"on {host} by {image_name(created.image)} ({created.pid})"],
                )
            )


def _remote_execution_hosts(alerts: list[Alert], index: AssetIndex) -> set[str]:
    """Hosts whose alerts say code was started on them from elsewhere (service creation, remote
    services, WMI)."""
    return {
        index.asset_id(a.entities.host)
        for a in alerts
        if a.entities.host and any(is_remote_execution(x.technique) for x in a.attacks)
    }


def _scope_lateral(
    scope: Scope,
    telemetries: dict[str, HostTelemetry],
    index: AssetIndex,
    significant: list[Alert],
) -> None:
    """The source of a remote execution: an inventory asset that logged on to the target, or
    connected to it on a remote execution port, is compromised too, and so is the account."""
    targets = _remote_execution_hosts(significant, index) & set(scope.assets)
    for target in sorted(targets):
        asset = index.assets.get(target)
        target_ips = set(asset.ips) if asset is not None else set()
        hops: dict[str, set[str]] = {}
        for telemetry in telemetries.values():
            for conn in telemetry.connections:
                if conn.dst_ip in target_ips and conn.dst_port in LATERAL_PORTS:
                    source = index.asset_for_ip(conn.src_ip)
                    if source is not None and source.id != target:
                        hops.setdefault(source.id, set())
        telemetry = telemetries.get(target)
        for logon in telemetry.logons if telemetry is not None else []:
            if not (logon.success and logon.logon_type in (3, 10) and logon.src_ip):
                continue
            source = index.asset_for_ip(logon.src_ip)
            if source is None or source.id == target:
                continue
            accounts = hops.setdefault(source.id, set())
            if logon.user and not is_system_account(logon.user):
                accounts.add(index.identity_id(logon.user))
        for source, accounts in sorted(hops.items()):
            scope.add(scope.assets, source)
            for account in sorted(accounts):
                scope.add(scope.identities, account)
            used = f" as {', '.join(sorted(accounts))}" if accounts else ""
            scope.findings.append(
                Finding(summary=truncate(f"lateral movement {source} -> {target}{used}"))
            )


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
        host = index.asset_id(e.host) if e.host else None
        if host:
            scope.add(scope.assets, host)
        pid = e.process.pid if e.process is not None else None
        bystander = f"{host}:{pid}".lower() in scope.bystanders
        if e.user and not is_system_account(e.user) and not bystander:
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
        findings=[*scope.persistence, *scope.findings][:60],
        compromised_assets=scope.assets,
        compromised_identities=scope.identities,
        attacker_ips=scope.ips,
        attacker_domains=scope.domains,
        malicious_sha256=scope.hashes,
        malicious_processes=scope.processes,
    )
