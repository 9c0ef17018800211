"""What the investigation puts in scope beyond one host's process trees, and what it keeps out.

Rules:
- attacker endpoints: the far end of an attacker process's connection, except addresses that are
  never the attacker's to block: the estate's infrastructure (DNS, Kerberos, LDAP), internal
  machines reached on Windows service ports (SMB, RPC and the dynamic port the RPC endpoint
  mapper hands out, WinRM, RDP: the estate's servers being used or attacked), and the front ends
  of shared internet services (a process that only looked up code hosting, CDN or vendor names
  reaches their shared addresses on web ports);
- the sources of logons and lateral movement that are not inventory assets are attacker
  endpoints only outside the organisation's networks: inside, they are machines of the estate
  (missing from the inventory) to find and isolate, reported as findings, never firewalled;
- an alert on a domain controller raised by the directory or authentication service itself (no
  process, or a critical system process such as lsass) records a request the DC served: the DC
  is the target, compromised only if attacker processes ran on it, and the machines that the
  alert's account logged on from are the sources;
- lateral movement: a host whose alerting process reached a host where attacker processes then
  ran is the source, and the alert's account the one used; every network or RDP logon of a
  compromised account from an inventory asset makes that asset a source too;
- DCSync (T1003.006) replicates the domain's secrets: krbtgt's key is taken with them;
- Kerberoasting (T1558.003): the service accounts whose tickets the alerts' accounts requested
  with RC4 on the alerting host (a DC's 4769 events, `ServiceName`) had their credentials
  obtained; the requester is the account used;
- accounts are people's only (`agents.entities.is_person`): never SYSTEM, ANONYMOUS LOGON, a
  machine account; krbtgt only as a secret taken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agents.entities import (
    AssetIndex,
    domain_name,
    identity_key,
    is_person,
    is_routable_peer,
    roasted_services,
    single_ip,
)
from agents.estate import (
    RPC_DYNAMIC_PORTS,
    RPC_ENDPOINT_MAPPER,
    WEB_PORTS,
    WINDOWS_SERVICE_PORTS,
    is_critical_process,
    is_shared_service,
)
from agents.knowledge import (
    LATERAL_PORTS,
    SHELLS,
    image_name,
    is_remote_execution,
    technique_tactic,
)
from agents.models import Finding
from agents.remediation.nodes import PERSISTENCE_FINDING
from agents.seam import truncate
from agents.telemetry import REMOTE_LOGON_TYPES, HostTelemetry
from tools.models import Alert, AssetKind, in_networks
from tools.results import NetworkConnection

MAX_LIST = 25
DCSYNC = "T1003.006"
HIJACKS = ("T1574.001", "T1574.002")  # DLL search-order hijacking, DLL side-loading
KERBEROS_TICKETS = "T1558"  # steal or forge Kerberos tickets (Kerberoasting is .003)
_NETBIOS_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$", re.I)


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
    # alerts whose process (by identity, not pid: pids are reused) is alerting but not the
    # attacker's (the victim's tool)
    bystander_alerts: set[str] = field(default_factory=set)
    # the same processes as "<host>:<pid>", lower case: reported, never counted as the attacker's
    bystander_processes: set[str] = field(default_factory=set)
    attacked: set[str] = field(default_factory=set)  # hosts where attacker processes ran
    served: set[str] = field(default_factory=set)  # DCs that only served attacker requests
    gaps: list[str] = field(default_factory=list)  # telemetry not read within the retry budget
    unread: set[str] = field(default_factory=set)  # hosts whose process records were not read
    operators: str | None = None  # why it is the declared operators' work (triage/operators.py)
    # named only by alerts whose process could not be judged (its host's records were not read)
    unconfirmed_identities: list[str] = field(default_factory=list)
    unconfirmed_processes: list[str] = field(default_factory=list)
    # proven hops "<source> -> <target> as <accounts>" (`agents/verdict_category.py`)
    movements: list[str] = field(default_factory=list)

    def add(self, bucket: list[str], value: str | None) -> None:
        if value and value.lower() not in {v.lower() for v in bucket} and len(bucket) < MAX_LIST:
            bucket.append(value)

    def note(self, summary: str) -> None:
        if all(f.summary != summary for f in self.findings):
            self.findings.append(Finding(summary=truncate(summary)))


def alert_tactics(alert: Alert) -> set[str]:
    """The tactics an alert declares and those its techniques belong to, as triage reads them."""
    return {
        t
        for a in alert.attacks
        for t in ((a.tactic or "").strip().lower(), technique_tactic(a.technique) or "")
        if t
    }


# --- endpoints -----------------------------------------------------------------------------


def add_peer(
    scope: Scope, index: AssetIndex, ip: str | None, domain: str | None, own: set[str]
) -> None:
    """An endpoint outside the inventory is attacker infrastructure; an inventory asset is a
    possible target, never blocked; a vendor's or shared service's name is never blocked."""
    address = single_ip(ip)
    known = index.asset_for_ip(address) if address else None
    if address and is_routable_peer(address) and address not in own and known is None:
        scope.add(scope.ips, address)
    name = domain_name(domain)
    if (
        name
        and index.asset_for(name) is None
        and not is_shared_service(name)
        and not _org_name(index, name)
    ):
        scope.add(scope.domains, name)


def add_source(scope: Scope, index: AssetIndex, ip: str | None, what: str) -> None:
    """Where a logon or a lateral movement came from, when no inventory asset has the address."""
    address = single_ip(ip)
    if address is None or not is_routable_peer(address):
        return
    if in_networks(address, index.internal_networks):
        scope.note(f"{what} came from {address}, an estate machine missing from the inventory")
        return
    add_peer(scope, index, address, None, set())


def add_connection(
    scope: Scope,
    index: AssetIndex,
    telemetry: HostTelemetry,
    conn: NetworkConnection,
    tradecraft: bool,
    own: set[str],
) -> None:
    """One connection of an attacker process; a process without tradecraft of its own (a
    descendant) names addresses, not domains."""
    owner = telemetry.table.at(conn.pid, conn.time, conn.process_guid, conn.image)
    if owner is not None:
        mine = telemetry.connections_of(owner)
    elif conn.pid is not None:
        mine = [c for c in telemetry.connections if c.pid == conn.pid]
    else:
        mine = [conn]
    address = single_ip(conn.dst_ip)
    if address is not None and (
        _estate_service(index, address, conn.dst_port, mine)
        or _shared_front_end(index, conn.dst_port, mine)
    ):
        address = None
    add_peer(scope, index, address, conn.domain if tradecraft else None, own)


def _estate_service(
    index: AssetIndex, address: str, port: int | None, mine: list[NetworkConnection]
) -> bool:
    if port is None or not in_networks(address, index.internal_networks):
        return False
    if port in WINDOWS_SERVICE_PORTS:
        return True
    mapped = any(c.dst_ip == address and c.dst_port == RPC_ENDPOINT_MAPPER for c in mine)
    return port in RPC_DYNAMIC_PORTS and mapped


def _shared_front_end(index: AssetIndex, port: int | None, mine: list[NetworkConnection]) -> bool:
    names = {n for c in mine if (n := domain_name(c.domain)) and not _org_name(index, n)}
    return port in WEB_PORTS and bool(names) and all(is_shared_service(n) for n in names)


def _org_name(index: AssetIndex, name: str) -> bool:
    return any(name == d or name.endswith("." + d) for d in index.org_domains)


# --- the alerts' own entities --------------------------------------------------------------


def serves_request(alert: Alert, index: AssetIndex) -> bool:
    """An alert a domain controller raised about a request it served: no process, or the
    directory and authentication service itself."""
    asset = index.asset_for(alert.entities.host)
    if asset is None or asset.kind is not AssetKind.DOMAIN_CONTROLLER:
        return False
    process = alert.entities.process
    return process is None or not process.name or is_critical_process(process.name)


def scope_alerts(scope: Scope, significant: list[Alert], index: AssetIndex) -> None:
    for alert in significant:
        e = alert.entities
        host = index.asset_id(e.host) if e.host else None
        if host and serves_request(alert, index):
            scope.served.add(host)
        elif host:
            scope.add(scope.assets, host)
        pid = e.process.pid if e.process is not None else None
        bystander = alert.uid in scope.bystander_alerts
        # the records that would tell the attacker's process from the victim's tool (a browser
        # that saved the payload, run by the host's owner) were not read: no guess
        unjudged = pid is not None and host is not None and host.lower() in scope.unread
        if e.user and is_person(e.user) and not bystander:
            bucket = scope.unconfirmed_identities if unjudged else scope.identities
            scope.add(bucket, index.identity_id(e.user))
        for secret in exposed_secrets(alert, index):
            scope.add(scope.identities, secret)
        tactics = alert_tactics(alert)
        source = index.asset_for_ip(single_ip(e.src_ip)) if e.src_ip else None
        if source is not None and "lateral-movement" in tactics:
            scope.add(scope.assets, source.id)
        elif e.src_ip and tactics & {"lateral-movement", "initial-access", "credential-access"}:
            add_source(scope, index, e.src_ip, f"the activity of {alert.title!r}")
        if tactics & {"command-and-control", "exfiltration"}:
            add_peer(scope, index, e.dst_ip, e.domain, set())


def scope_hijacks(scope: Scope, significant: list[Alert], index: AssetIndex) -> None:
    """A library that a search-order or side-loading alert (T1574.001/.002) shows an
    application or service loading is loaded again at every start of that program: it is a
    persistence artefact on that host. The same alert raised on the shell or the kernel that
    wrote the file marks a copy in transit, not the planted one."""
    for alert in significant:
        e = alert.entities
        path = (e.file.path or "").strip() if e.file else ""
        actor = image_name(e.process.name) if e.process else ""
        hijack = any(a.technique.strip().upper().startswith(HIJACKS) for a in alert.attacks)
        if not (hijack and e.host and path.lower().endswith(".dll") and actor):
            continue
        if actor in SHELLS or is_critical_process(actor):
            continue
        artefact = f"{index.asset_id(e.host)}:{path}"
        known = {x.lower() for f in scope.persistence for x in f.evidence}
        if artefact.lower() not in known and len(scope.persistence) < MAX_LIST:
            scope.persistence.append(Finding(summary=PERSISTENCE_FINDING, evidence=[artefact]))
            scope.note(f"{path} planted for {actor} to load on {index.asset_id(e.host)}")


def exposed_secrets(alert: Alert, index: AssetIndex) -> list[str]:
    """Accounts whose secret an alert's technique takes besides the actor's own: a domain
    controller that saw its directory replicated to a non-DC (DCSync) gave away krbtgt's key.
    Only the DC's own record counts, never a command line, which the attacker writes."""
    replicated = serves_request(alert, index) and any(
        a.technique.strip().upper().startswith(DCSYNC) for a in alert.attacks
    )
    if not replicated:
        return []
    user = alert.entities.user or ""
    domain = user.rsplit("\\", 1)[0] if "\\" in user else ""
    return [f"{domain}\\krbtgt" if _NETBIOS_DOMAIN.match(domain) else "krbtgt"]


def roasting_hosts(significant: list[Alert], index: AssetIndex) -> dict[str, set[str]]:
    """Hosts with a significant Kerberos-ticket alert (T1558), and the people's accounts (identity
    keys) those alerts name as requesters."""
    hosts: dict[str, set[str]] = {}
    for alert in significant:
        if not alert.entities.host or not any(
            a.technique.strip().upper().startswith(KERBEROS_TICKETS) for a in alert.attacks
        ):
            continue
        requesters = hosts.setdefault(index.asset_id(alert.entities.host), set())
        if alert.entities.user and is_person(alert.entities.user):
            requesters.add(identity_key(alert.entities.user))
    return hosts


def scope_roasting(
    scope: Scope,
    telemetries: dict[str, HostTelemetry],
    index: AssetIndex,
    significant: list[Alert],
) -> None:
    """Kerberoasting: RC4 service tickets requested on a host a Kerberos-ticket alert fired on,
    by the accounts the alerts name (any account when they name none): the services' accounts
    had their credentials obtained (labelling rule 1), as people's accounts only."""
    for host, requesters in sorted(roasting_hosts(significant, index).items()):
        telemetry = telemetries.get(host)
        if telemetry is None:
            continue
        roasted = roasted_services(telemetry.accounts, index, requesters or None)
        for account in roasted:
            scope.add(scope.identities, account)
        if roasted:
            by = ", ".join(sorted(requesters)) or "the alerting accounts"
            scope.note(
                f"RC4 service tickets for {', '.join(roasted[:5])} requested by {by} on {host}"
            )


# --- lateral movement ----------------------------------------------------------------------


def scope_movers(scope: Scope, alerts: list[Alert], index: AssetIndex) -> None:
    """A host whose alerting process reached a host where attacker processes ran is the source
    of the movement, and the alert's account is the one it used."""
    for alert in alerts:
        e = alert.entities
        target = index.asset_for_ip(single_ip(e.dst_ip)) if e.dst_ip else None
        source = index.asset_for(e.host) if e.host else None
        if target is None or source is None or target.id == source.id:
            continue
        if target.id not in scope.attacked:
            continue
        scope.add(scope.assets, source.id)
        if e.user and is_person(e.user):
            scope.add(scope.identities, index.identity_id(e.user))
        scope.note(f"lateral movement {source.id} -> {target.id} ({alert.title})")
        scope.movements.append(f"{source.id} -> {target.id} ({alert.title})")


def scope_logon_sources(
    scope: Scope, telemetries: dict[str, HostTelemetry], index: AssetIndex
) -> None:
    """Network and RDP logons of compromised accounts: from an inventory asset, that asset is
    compromised too; from elsewhere, the source is reported (inside) or blocked (outside)."""
    users = {identity_key(u) for u in scope.identities}
    for host, telemetry in telemetries.items():
        own = index.own_ips(host)
        infrastructure = telemetry.infrastructure()
        for logon in telemetry.logons:
            if not (logon.success and logon.logon_type in REMOTE_LOGON_TYPES and logon.user):
                continue
            if identity_key(logon.user) not in users:
                continue
            if not logon.src_ip or logon.src_ip in own or logon.src_ip in infrastructure:
                continue
            source = index.asset_for_ip(logon.src_ip)
            if source is None:
                add_source(scope, index, logon.src_ip, f"the logon of {logon.user} to {host}")
            elif source.id != host:
                scope.add(scope.assets, source.id)
                scope.note(f"remote logon to {host} from {source.id} as {logon.user}")


def _remote_execution_hosts(alerts: list[Alert], index: AssetIndex) -> set[str]:
    """Hosts whose alerts say code was started on them from elsewhere (service creation, remote
    services, WMI)."""
    return {
        index.asset_id(a.entities.host)
        for a in alerts
        if a.entities.host and any(is_remote_execution(x.technique) for x in a.attacks)
    }


def scope_remote_execution(
    scope: Scope,
    telemetries: dict[str, HostTelemetry],
    index: AssetIndex,
    significant: list[Alert],
) -> None:
    """The source of a remote execution: an inventory asset that logged on to the target, or
    connected to it on a remote execution port, is compromised too, and so is the account."""
    targets = _remote_execution_hosts(significant, index) & set(scope.assets)
    for target in sorted(targets):
        target_ips = index.own_ips(target)
        hops: dict[str, set[str]] = {}
        for telemetry in telemetries.values():
            for conn in telemetry.connections:
                if conn.dst_ip in target_ips and conn.dst_port in LATERAL_PORTS:
                    source = index.asset_for_ip(conn.src_ip)
                    if source is not None and source.id != target:
                        hops.setdefault(source.id, set())
        telemetry = telemetries.get(target)
        for logon in telemetry.logons if telemetry is not None else []:
            if not (logon.success and logon.logon_type in REMOTE_LOGON_TYPES and logon.src_ip):
                continue
            source = index.asset_for_ip(logon.src_ip)
            if source is None or source.id == target:
                continue
            accounts = hops.setdefault(source.id, set())
            if logon.user and is_person(logon.user):
                accounts.add(index.identity_id(logon.user))
        for source, accounts in sorted(hops.items()):
            scope.add(scope.assets, source)
            for account in sorted(accounts):
                scope.add(scope.identities, account)
            used = f" as {', '.join(sorted(accounts))}" if accounts else ""
            scope.movements.append(f"{source} -> {target}{used}")
            scope.findings.append(
                Finding(summary=truncate(f"lateral movement {source} -> {target}{used}"))
            )
