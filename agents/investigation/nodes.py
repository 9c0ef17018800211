"""Investigation nodes: read each involved host's processes, connections and logons around the
alerts, follow the attacker's process trees, and name what is compromised (`scope.py` holds the
rules on endpoints, alerts and lateral movement).

Rules:
- attacker processes: the processes of significant alerts (not known-noisy, >= 2 points), and, on
  a malicious incident, any process in the window whose own record shows tradecraft; then all
  their descendants, and their ancestors back to the initial payload (ancestors that show
  tradecraft or run from a user-writable folder); never a critical system process (lsass,
  services, csrss...), which the attacker read or used but does not own;
- an alerting process with a record but no tradecraft and no kinship with a proven attacker
  process (a browser that saved the download) is kept as alerting, but names no account and no
  endpoint: it is the victim's tool, not the attacker's; a program started from a drop folder
  (Desktop, Downloads) is nobody's everyday tool and keeps no such excuse;
- compromised assets: hosts where attacker processes ran or significant alerts fired (except a
  domain controller that only served the attacker's requests), and the sources of lateral
  movement (`scope.py`);
- compromised identities: non-system accounts running proven attacker processes, named by
  significant alerts, used for the lateral movement, or whose secret a technique takes (krbtgt
  after DCSync);
- attacker endpoints: addresses and domains contacted by proven attacker processes, less the
  estate's infrastructure, its Windows services and shared internet services (`scope.py`);
- persistence artefacts: autostart registry values (Run keys, services' ImagePath, Winlogon,
  logon scripts) and files in autostart folders (Startup, Tasks) written by an attacker process,
  as `<asset id>:<value path or file path>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agents.degraded import gaps_of
from agents.deps import AgentDeps
from agents.entities import AssetIndex, identity_key
from agents.estate import KERNEL_PIDS, in_drop_folder, is_critical_process
from agents.investigation.scope import (
    MAX_LIST,
    Scope,
    add_connection,
    scope_alerts,
    scope_hijacks,
    scope_logon_sources,
    scope_movers,
    scope_remote_execution,
    serves_request,
)
from agents.investigation.state import InvestigationState
from agents.knowledge import (
    image_name,
    in_user_writable_dir,
    is_autostart_file,
    is_autostart_key,
    is_system_account,
)
from agents.models import Finding, InvestigationInput, InvestigationReport
from agents.reads import retrying_edr
from agents.remediation.nodes import PERSISTENCE_FINDING
from agents.seam import truncate
from agents.telemetry import HostTelemetry, is_attacker_process, judge_process, read_host
from agents.triage.maintenance import maintenance_reason
from agents.triage.nodes import SIGNIFICANT_ALERT, assess_alert
from agents.verdict_category import (
    ProvenFindings,
    credential_theft,
    decide_category,
    decision_line,
)
from tools.models import Alert, Verdict
from tools.results import ProcessEvent

MAX_HOSTS = 10
MAX_TREE = 60
STRONG_CORROBORATION = 8.0


def make_nodes(deps: AgentDeps) -> dict[str, Any]:
    tools = deps.tools
    edr = retrying_edr(tools.edr, deps.reads)  # one retry budget per graph run

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
                telemetry = await read_host(edr, host, start, end, writes=malicious)
                telemetries[host] = telemetry
                scope.gaps += telemetry.gaps
                scope.findings += [Finding(summary=g) for g in telemetry.gaps]
                if telemetry.processes_unread:
                    scope.unread.add(index.asset_id(host).lower())
            # alerts proven to be the platform's own maintenance stop counting
            significant = _without_maintenance(significant, telemetries, index, scope)
            for telemetry in telemetries.values():
                _scope_host(scope, telemetry, index, significant, malicious)
        scope_alerts(scope, significant, index)
        if malicious:
            scope_hijacks(scope, significant, index)
            scope_remote_execution(scope, telemetries, index, significant)
            scope_movers(scope, alerts, index)
            scope_logon_sources(scope, telemetries, index)
        report = _report(request, scope, malicious)
        return {"report": _decide_category(request, report, scope, significant, telemetries, index)}

    return {"load_inventory": load_inventory, "scope_hosts": scope_hosts}


def _without_maintenance(
    alerts: list[Alert],
    telemetries: dict[str, HostTelemetry],
    index: AssetIndex,
    scope: Scope,
) -> list[Alert]:
    by_host = {index.asset_id(h).lower(): t for h, t in telemetries.items()}
    kept: list[Alert] = []
    for alert in alerts:
        host = index.asset_id(alert.entities.host).lower() if alert.entities.host else ""
        why = maintenance_reason(alert, by_host.get(host))
        if why is None:
            kept.append(alert)
        else:
            scope.note("not counted, platform maintenance: " + why)
    return kept


def _decide_category(
    request: InvestigationInput,
    report: InvestigationReport,
    scope: Scope,
    significant: list[Alert],
    telemetries: dict[str, HostTelemetry],
    index: AssetIndex,
) -> InvestigationReport:
    """The category from the proven findings, triage's as the prior (`verdict_category.py`)."""
    proven = ProvenFindings(movements=list(scope.movements))
    if report.verdict is Verdict.MALICIOUS:
        attacker = {p.lower() for p in scope.processes} - scope.bystanders
        served = {a.uid for a in significant if serves_request(a, index)}
        proven.credential_theft = credential_theft(
            significant, telemetries, attacker, served, index
        )
        proven.persistence = [e for f in scope.persistence for e in f.evidence]
    decision = decide_category(request.triage, report.verdict, proven)
    finding = Finding(summary=decision_line(decision))
    return report.model_copy(
        update={
            "category": decision.decided,
            "category_reason": truncate(decision.reason, 300),
            "findings": [finding, *report.findings][:60],
        }
    )


def _alert_pids(alerts: list[Alert], host: str, index: AssetIndex) -> dict[int, str]:
    """The processes the alerts on a host name: pid -> the image name the alert gives."""
    return {
        a.entities.process.pid: a.entities.process.name or ""
        for a in alerts
        if a.entities.host
        and index.asset_id(a.entities.host).lower() == host.lower()
        and a.entities.process is not None
        and a.entities.process.pid is not None
    }


def _record_of(telemetry: HostTelemetry, pid: int, name: str | None) -> ProcessEvent | None:
    """The record of the process an alert names. Windows reuses pids: a record of another image
    under the same pid (a taskhostw started after the alerting powershell exited) is not it."""
    record = telemetry.process(pid)
    if record is None or not name or not name.lower().endswith(".exe"):
        return record
    return record if image_name(record.image or record.name) == name.lower() else None


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


@dataclass
class HostProcesses:
    """One host's processes as the investigation reads them."""

    attacker: set[int]  # alerting, proven and related processes
    bystanders: set[int]  # alerting, with a record, but the victim's tool
    used: set[int]  # critical system processes an alert says acted for the attacker


def _classify(
    telemetry: HostTelemetry, index: AssetIndex, significant: list[Alert], malicious: bool
) -> HostProcesses:
    networks = index.internal_networks
    seeds: set[int] = set()
    # a critical system process (lsass read, services.exe asked) is what the attacker used or
    # attacked, never the attacker's own process: isolation contains what ran inside it
    critical = {p.pid for p in telemetry.processes if is_critical_process(p.image)} | KERNEL_PIDS
    used: set[int] = set()
    alerting = _alert_pids(significant, telemetry.host, index)
    for pid, name in alerting.items():
        if is_critical_process(name) or pid in critical:
            critical.add(pid)
            used.add(pid)
            continue
        record = _record_of(telemetry, pid, name)
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
    seeds -= critical
    roots = {
        pid
        for pid in seeds
        if (r := telemetry.process(pid)) is not None and is_attacker_process(r, telemetry, networks)
    }
    roots |= _ancestors_to_payload(telemetry, roots, networks)
    proven = (roots | _descendants(telemetry, roots)) - critical
    # an alerting process without a record cannot be judged: it keeps the benefit of the alert;
    # one with a record but no tradecraft is the victim's tool (the browser that saved the
    # download), unless it was itself started from a drop folder: nobody's tool lives there
    bystanders = {
        pid
        for pid in seeds - proven
        if (r := _record_of(telemetry, pid, alerting.get(pid))) is not None
        and not in_drop_folder(r.image)
    }
    return HostProcesses(attacker=seeds | proven, bystanders=bystanders, used=used)


def _scope_host(
    scope: Scope,
    telemetry: HostTelemetry,
    index: AssetIndex,
    significant: list[Alert],
    malicious: bool,
) -> None:
    host = telemetry.host
    networks = index.internal_networks
    found = _classify(telemetry, index, significant, malicious)
    scope.bystanders |= {f"{host}:{pid}".lower() for pid in found.bystanders}
    if found.attacker - found.bystanders:
        scope.attacked.add(host)
    own_ips = index.own_ips(host)
    infrastructure = telemetry.infrastructure()
    for pid in sorted(found.attacker):
        if telemetry.processes_unread:
            # an alerting pid whose record could not be read: reported, never killed on a guess
            scope.add(scope.unconfirmed_processes, f"{host}:{pid}")
            continue
        scope.add(scope.processes, f"{host}:{pid}")
        if pid in found.bystanders:
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
        tradecraft = sum(s.weight for s in signals) >= 2.0
        for conn in telemetry.connections_of(pid):
            if conn.dst_ip not in infrastructure:
                add_connection(scope, index, telemetry, conn, tradecraft, own_ips)
    if found.attacker:
        scope.add(scope.assets, host)
    # what a critical process wrote for the attacker (services.exe setting the ImagePath that
    # `sc config` asked for) is the attacker's artefact even though the process is not
    _scope_persistence(scope, telemetry, (found.attacker - found.bystanders) | found.used)


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
    gaps = gaps_of(scope.gaps)
    if verdict is Verdict.BENIGN:
        return InvestigationReport(
            verdict=verdict,
            confidence=confidence,
            corroborated=False,
            findings=scope.findings[:20],
            degraded=bool(gaps),
            evidence_gaps=gaps,
        )
    compromised = {a.lower() for a in scope.assets}
    confirmed = {identity_key(i) for i in scope.identities}
    unconfirmed = [i for i in scope.unconfirmed_identities if identity_key(i) not in confirmed]
    if unconfirmed:
        scope.findings.insert(
            0,
            Finding(
                summary=truncate(
                    "not contained without their process records (unread): accounts "
                    + ", ".join(unconfirmed[:5])
                ),
                evidence=["the alerts name them, the records that would confirm it were not read"],
            ),
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
        served_assets=[h for h in sorted(scope.served) if h.lower() not in compromised],
        degraded=bool(gaps),
        evidence_gaps=gaps,
        unconfirmed_identities=unconfirmed,
        unconfirmed_processes=scope.unconfirmed_processes,
    )
