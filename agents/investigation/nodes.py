"""Investigation nodes: read each involved host's processes, connections and logons around the
alerts, follow the attacker's process trees, and name what is compromised (`scope.py` holds the
rules on endpoints, alerts and lateral movement).

Rules:
- a process is its host, pid, start time and image (`agents.processes.ProcessKey`), never its pid
  alone: an alert, a connection or a write names the process that had its pid at its time;
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
  movement (`scope.py`), a remote service install's included (`agents/remote_services.py`), and
  the hosts an attacker process launched a remote exploit at (`exploits.py`);
- compromised identities: people's accounts running proven attacker processes, named by
  significant alerts, used for the lateral movement, run as or handed over by an attacker's
  command line (`runas /user:X`, `/user:X /rc4:...`; an account only named, `net user X`, is a
  finding, not a compromise), presented by a compromised account's NewCredentials or
  explicit-credentials logon (`credentials.py`), or whose secret a technique takes (krbtgt after
  DCSync, the services of RC4 tickets after Kerberoasting); a bare name takes the domain it was
  used in, and an account neither the inventory nor the directory holds is reported, not
  contained (`credentials.py`);
- attacker endpoints: addresses and domains contacted by proven attacker processes, less the
  estate's infrastructure, its Windows services and shared internet services (`scope.py`);
- persistence artefacts (`agents/persistence/artefacts.py`; replication rights granted on a
  directory object, `agents/directory_acl.py`), once the attacker's processes, accounts and
  hosts are known: autostart values and files written by an attacker process, scheduled tasks,
  services and WMI subscriptions registered for it (whoever wrote their records), web shells
  written by a web server, as `<asset id>:<artefact>`;
- injected processes: a process an attacker process injected into (remote thread, or a handle
  with the rights to write and run code in it) is an attacker process too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.attention import hosts_by_attention
from agents.degraded import gaps_of
from agents.deps import AgentDeps
from agents.directory_acl import replication_grants
from agents.entities import AssetIndex, identity_key
from agents.evidence import line_refs, record_ref, refer_findings
from agents.investigation.credentials import (
    confirm_in_directory,
    scope_presented_credentials,
    weakened_credential_protection,
)
from agents.investigation.exploits import scope_remote_exploits
from agents.investigation.hosts import HostProcesses, alerting_processes, by_start, scope_host
from agents.investigation.model_loop import consult_investigation_model
from agents.investigation.scope import (
    MAX_LIST,
    Scope,
    roasting_hosts,
    scope_alerts,
    scope_hijacks,
    scope_logon_sources,
    scope_movers,
    scope_remote_execution,
    scope_roasting,
    serves_request,
)
from agents.investigation.state import InvestigationState
from agents.models import Finding, InvestigationInput, InvestigationReport
from agents.persistence.artefacts import find_artefacts
from agents.persistence.attribution import Attacker, short_account
from agents.processes import ProcessKey
from agents.reads import RetryingEdr, retrying_edr
from agents.remediation.nodes import PERSISTENCE_FINDING, STOP_FINDING
from agents.remote_services import remote_installs
from agents.seam import client_of, truncate
from agents.telemetry import HostTelemetry, read_host
from agents.triage.maintenance import maintenance_reason
from agents.triage.operators import operator_work
from agents.triage.scoring import SIGNIFICANT_ALERT, assess_alert
from agents.verdict_category import (
    ProvenFindings,
    credential_theft,
    decide_category,
    decision_line,
)
from tools.models import Alert, Verdict

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
        malicious = request.triage.verdict is Verdict.MALICIOUS
        read = await _read_hosts(edr, request, index, scope, malicious)
        telemetries, significant = read.telemetries, read.significant
        scope_alerts(scope, significant, index)
        if malicious:
            _scope_attack(scope, telemetries, index, significant, request.alerts)
        for host, telemetry in telemetries.items():
            _scope_persistence(scope, telemetry, read.processes[host], index)
            alerting = set(alerting_processes(significant, telemetry, index))
            _scope_stoppable(scope, telemetry, read.processes[host], alerting)
        absent = await confirm_in_directory(scope, index, tools.identity) if malicious else []
        if not malicious:
            by_asset = {index.asset_id(h): t for h, t in telemetries.items()}
            protected = {p.strip().lower() for p in state["environment"].protected}
            scope.operators = operator_work(request.alerts, index, by_asset, protected)
            if scope.operators:
                scope.note(scope.operators)
        report = _report(request, scope, malicious, absent)
        report = _decide_category(request, report, scope, significant, telemetries, index)
        findings = refer_findings(report.findings, telemetries, request.alerts)
        report = report.model_copy(update={"findings": findings})
        return {"report": report, "hosts": list(telemetries)}

    async def consult_model(state: InvestigationState) -> dict[str, Any]:
        """The model's tool-using loop over the hosts the rules read (`model_loop.py`)."""
        if deps.investigator is None:
            return {}
        client = client_of(deps.investigator, "investigation")
        report = await consult_investigation_model(
            client, edr, tools.intel, state["input"], state["report"], state.get("hosts", [])
        )
        return {"report": report}

    return {
        "load_inventory": load_inventory,
        "scope_hosts": scope_hosts,
        "consult_model": consult_model,
    }


@dataclass
class _HostsRead:
    """What `_read_hosts` read and kept: each host's telemetry and processes, and the significant
    alerts once the platform's own maintenance is set aside."""

    telemetries: dict[str, HostTelemetry] = field(default_factory=dict)
    processes: dict[str, HostProcesses] = field(default_factory=dict)
    significant: list[Alert] = field(default_factory=list)


async def _read_hosts(
    edr: RetryingEdr, request: InvestigationInput, index: AssetIndex, scope: Scope, malicious: bool
) -> _HostsRead:
    """Read the involved hosts around the alerts, the hosts of the most significant alerts first
    (`attention.py`), noting what could not be read, and follow each host's processes."""
    alerts = request.alerts
    assessed = [assess_alert(a) for a in alerts]  # once each: the scan is not free
    significant = [
        a
        for a, x in zip(alerts, assessed, strict=True)
        if x.score >= SIGNIFICANT_ALERT and not x.noisy
    ]
    read = _HostsRead(significant=significant)
    start = min((a.time for a in alerts), default=None)
    end = max((a.time for a in alerts), default=None)
    if start is None or end is None:
        return read
    roasting = set(roasting_hosts(significant, index)) if malicious else set()
    attention = hosts_by_attention(alerts, assessed, index, request.triage.entities.hosts)
    scope.gaps += attention.gaps
    scope.findings += [Finding(summary=n) for n in attention.gaps + attention.notes]
    for host in attention.hosts:
        tickets = index.asset_id(host) in roasting
        telemetry = await read_host(edr, host, start, end, writes=malicious, accounts=tickets)
        read.telemetries[host] = telemetry
        scope.gaps += telemetry.gaps
        scope.findings += [Finding(summary=g) for g in telemetry.gaps]
        if telemetry.processes_unread:
            scope.unread.add(index.asset_id(host).lower())
    # alerts proven to be the platform's own maintenance stop counting
    read.significant = _without_maintenance(significant, read.telemetries, index, scope)
    for host, telemetry in read.telemetries.items():
        read.processes[host] = scope_host(scope, telemetry, index, read.significant, malicious)
    return read


def _scope_attack(
    scope: Scope,
    telemetries: dict[str, HostTelemetry],
    index: AssetIndex,
    significant: list[Alert],
    alerts: list[Alert],
) -> None:
    """A malicious incident's movement across the estate: hijacked and remote execution,
    Kerberoasting, movers, presented credentials, remote installs and exploits, logon sources."""
    scope_hijacks(scope, significant, index)
    scope_remote_execution(scope, telemetries, index, significant)
    scope_roasting(scope, telemetries, index, significant)
    scope_movers(scope, alerts, index)
    scope_presented_credentials(scope, telemetries, index)
    _scope_remote_installs(scope, telemetries, index)
    scope_remote_exploits(scope, telemetries, index, significant)
    scope_logon_sources(scope, telemetries, index)


def _scope_remote_installs(
    scope: Scope, telemetries: dict[str, HostTelemetry], index: AssetIndex
) -> None:
    """A service installed from another machine (`agents.remote_services`): the source host and
    the account used are compromised, and the hop is a proven movement."""
    for telemetry in telemetries.values():
        for install in remote_installs(telemetry, index):
            account = index.identity_id(install.account)
            scope.add(scope.assets, install.source)
            scope.add(scope.identities, account)
            scope.movements.append(f"{install.source} -> {install.target} as {account}")
            scope.note("lateral movement: " + install.summary())


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
        attacker = {p.lower() for p in scope.processes} - scope.bystander_processes
        served = {a.uid for a in significant if serves_request(a, index)}
        proven.credential_theft = credential_theft(
            significant, telemetries, attacker, served, index
        ) + weakened_credential_protection(telemetries, attacker)
        proven.persistence = [
            e for f in scope.persistence if f.summary == PERSISTENCE_FINDING for e in f.evidence
        ]
    decision = decide_category(request.triage, report.verdict, proven)
    finding = Finding(summary=decision_line(decision))
    return report.model_copy(
        update={
            "category": decision.decided,
            "category_reason": truncate(decision.reason, 300),
            "findings": [finding, *report.findings][:60],
        }
    )


def _scope_persistence(
    scope: Scope, telemetry: HostTelemetry, found: HostProcesses, index: AssetIndex
) -> None:
    """The host's persistence artefacts and injected processes, one finding each."""
    host = telemetry.host
    attackers = (found.attacker - found.bystanders) - set(found.injected)
    attacker = Attacker(
        # what a critical process wrote for the attacker (services.exe setting the ImagePath
        # that `sc config` asked for) is the attacker's artefact even though it is not
        writers=frozenset(attackers | found.used),
        processes=frozenset(attackers),
        accounts=frozenset(short_account(i) for i in scope.identities),
        sources=frozenset(ip for a in scope.assets if a != host for ip in index.own_ips(a)),
    )
    known = {e.lower() for f in scope.persistence for e in f.evidence}
    for artefact in [
        *find_artefacts(telemetry, attacker),
        *replication_grants(telemetry, attacker),
    ]:
        if artefact.target.lower() in known or len(scope.persistence) >= MAX_LIST:
            continue
        known.add(artefact.target.lower())
        scope.persistence.append(Finding(summary=PERSISTENCE_FINDING, evidence=[artefact.target]))
        scope.findings.append(
            Finding(
                summary=truncate(artefact.summary),
                evidence=[truncate(artefact.evidence)],
                refs=line_refs(f"{artefact.target} {artefact.evidence}", telemetry, []),
            )
        )


def _scope_stoppable(
    scope: Scope, telemetry: HostTelemetry, found: HostProcesses, alerting: set[ProcessKey]
) -> None:
    """The attacker processes whose kill the spec's rule expects along with the isolation: the
    implant (an alerting attacker process that talked to an attacker endpoint) and the processes
    it injected into. The one-shot tools it started are contained by the isolation."""
    if telemetry.processes_unread:
        return
    host = telemetry.host
    endpoints = set(scope.ips)
    for key in sorted((found.attacker - found.bystanders) | set(found.injected), key=by_start):
        how = found.injected.get(key)
        implant = key in alerting and any(
            c.dst_ip in endpoints for c in telemetry.connections_of_key(key)
        )
        if (how is None and not implant) or len(scope.persistence) >= MAX_LIST:
            continue
        label = key.label(host)
        scope.persistence.append(Finding(summary=STOP_FINDING, evidence=[label]))
        why = f"injected: {how}" if how else "talked to an attacker endpoint"
        record = telemetry.get(key)
        refs = [record_ref(host, record)] if record is not None else []
        scope.findings.append(Finding(summary=truncate(f"{label} {why}"), refs=refs))


def _report(
    request: InvestigationInput, scope: Scope, malicious: bool, absent: list[str]
) -> InvestigationReport:
    triage = request.triage
    corroborated = scope.corroboration >= 2.0
    verdict = triage.verdict
    confidence = triage.confidence
    # the declared operators' routine work (triage/operators.py) shows the tools of the trade
    if not malicious and scope.corroboration >= STRONG_CORROBORATION and not scope.operators:
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
        # named, but held by no directory: reported, never contained nor a stand-in
        unconfirmed_identities=[*unconfirmed, *absent][:MAX_LIST],
        unconfirmed_processes=scope.unconfirmed_processes,
    )
