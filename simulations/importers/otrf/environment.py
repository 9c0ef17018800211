"""The incident's environment (assets, identities, protected hosts) from the whole recording.

`HostFacts` gathers in one streaming pass what the recording says about hosts and users: their
addresses, which hosts act as domain controllers, who holds privileges, who works interactively.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from simulations.importers.otrf.auditd import SOURCE as AUDIT_SOURCE
from simulations.importers.otrf.entities import basename, is_system_account, user_of
from simulations.importers.otrf.events import Event, first
from tools.accounts import Account, command_accounts, netbios_of, same_account
from tools.event_mappers import account_event, to_logon_event, to_process_event
from tools.models import (
    Alert,
    Asset,
    AssetKind,
    Criticality,
    Environment,
    Identity,
    IdentityKind,
)

INTERNAL_NETWORKS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
DC_EVENTS = {4768, 4769}  # Kerberos KDC events: only domain controllers log them
NEW_CREDENTIALS = 9  # LogonType of a session presenting other credentials outbound
SERVER_NAME = re.compile(r"SRV|SERVER|SQL|ADFS|EXCH|WEC|WEB|APP|FS\d", re.IGNORECASE)
DC_NAME = re.compile(r"^DC|DC\d*$", re.IGNORECASE)
CRITICALITY = {
    AssetKind.DOMAIN_CONTROLLER: Criticality.CRITICAL,
    AssetKind.SERVER: Criticality.HIGH,
}


@dataclass
class HostFacts:
    """What the full recording says about its hosts and users (one streaming pass)."""

    ips: dict[str, Counter[str]] = field(default_factory=dict)
    dc_hosts: set[str] = field(default_factory=set)
    hostnames: dict[str, str] = field(default_factory=dict)
    privileged: set[str] = field(default_factory=set)
    interactive: dict[str, Counter[str]] = field(default_factory=dict)
    linux: set[str] = field(default_factory=set)  # hosts whose events are Linux audit records

    def observe(self, event: Event) -> None:
        host = event.get("host")
        if not isinstance(host, str):
            return
        if event.get("event_source") == AUDIT_SOURCE:
            self.linux.add(host)
        if isinstance(event.get("hostname"), str):
            self.hostnames.setdefault(host, str(event["hostname"]))
        source, event_id = event.get("event_source"), event.get("EventID")
        if source == "security" and event_id in DC_EVENTS:
            self.dc_hosts.add(host)
        if source == "sysmon" and event_id == 3:
            local = first(
                event, "SourceIp" if event.get("Initiated") == "true" else "DestinationIp"
            )
            if local and _usable_ip(local):
                self.ips.setdefault(host, Counter())[local] += 1
        if source == "security" and event_id == 4672:
            user = user_of(event)
            if user and not is_system_account(user):
                self.privileged.add(user)
        parent = basename(first(event, "ParentImage")) or ""
        if source == "sysmon" and event_id == 1 and parent.lower() == "explorer.exe":
            user = user_of(event)
            if user and not is_system_account(user):
                self.interactive.setdefault(host, Counter())[user] += 1


def build_environment(facts: HostFacts, alerts: list[Alert], telemetry: list[Event]) -> Environment:
    """Assets for every host the recording shows (an organisation's inventory knows its machines,
    not only those in the incident's trimmed telemetry: the source of a lateral movement, say);
    identities for the alerts' and interactive users."""
    seen = {str(e["host"]) for e in telemetry if isinstance(e.get("host"), str)}
    hosts = sorted(seen | set(facts.hostnames))
    assets = [_asset(host, facts) for host in hosts]
    users = {a.entities.user for a in alerts if a.entities.user}
    users |= {u for counter in facts.interactive.values() for u in counter if counter[u] > 0}
    identities = [
        Identity(
            id=user,
            kind=IdentityKind.ADMIN if user in facts.privileged else IdentityKind.USER,
            privileged=user in facts.privileged,
        )
        for user in sorted(users)
        if not is_system_account(user)
    ]
    identities += [
        Identity(id=account, kind=IdentityKind.SERVICE)
        for account in _named_accounts(telemetry)
        if not any(same_account(account, i.id) for i in identities)
    ]
    identities += [
        Identity(id=account, kind=IdentityKind.USER)
        for account in _credential_accounts(telemetry, _estate_domains(users, facts, hosts))
        if not any(same_account(account, i.id) for i in identities)
    ]
    # Every Active Directory domain has its krbtgt account (what a DCSync steals, and what is
    # reset after one); a prefix naming one of the hosts is a local machine, not a domain.
    machines = {host.lower() for host in hosts}
    domains = {u.split("\\", 1)[0] for u in users if "\\" in u}
    identities += [
        Identity(id=f"{domain}\\krbtgt", kind=IdentityKind.SERVICE, privileged=True)
        for domain in sorted(domains)
        if domain.lower() not in machines
        and f"{domain}\\krbtgt".lower() not in {i.id.lower() for i in identities}
    ]
    return Environment(
        assets=assets,
        identities=identities,
        internal_networks=INTERNAL_NETWORKS,
        protected=[a.id for a in assets if a.kind is AssetKind.DOMAIN_CONTROLLER],
    )


def _named_accounts(telemetry: Iterable[Event]) -> list[str]:
    """People's accounts the incident's events name as the account of a service ticket or the
    account an account change acted on (`tools/account_fields.yaml`): the directory knows them
    as it knows the alerts' users, so containing a roasted service account has a target."""
    named: list[str] = []
    for event in telemetry:
        typed = account_event(event)
        for spelling in [*typed.services, *typed.targets] if typed else []:
            account = Account.parse(spelling)
            if account is not None and account.is_person and account.domain:
                named.append(account.canonical)
    return sorted(set(named))


def _estate_domains(users: set[str], facts: HostFacts, hosts: list[str]) -> set[str]:
    """The NetBIOS names of the recording's domains: its users' (less the hosts' own names,
    which hold local accounts) and its hostnames' DNS domains."""
    machines = {host.lower() for host in hosts}
    found = {
        netbios
        for u in users
        if (netbios := netbios_of(u.split("\\", 1)[0] if "\\" in u else None))
    }
    found |= {
        n for h in facts.hostnames.values() if "." in h and (n := netbios_of(h.split(".", 1)[1]))
    }
    return found - machines


def _credential_accounts(telemetry: Iterable[Event], domains: set[str]) -> list[str]:
    """People's accounts of the estate's domains whose credentials the incident's events show
    presented or handed over: a NewCredentials logon's outbound account, an explicit-credentials
    logon's target, an account a command line hands a password or hash for (a bare name takes
    the acting account's domain, else the host's). The directory knows them as it knows the
    alerts' users, so containing an account whose hash was passed has a target."""
    named: list[str] = []
    for event in telemetry:
        logon = to_logon_event(event)
        if logon is not None and logon.success and logon.subject:
            presented = logon.outbound_user if logon.logon_type == NEW_CREDENTIALS else None
            presented = logon.user if logon.logon_type is None else presented
            account = Account.parse(presented)
            if account is not None and account.is_person and account.netbios in domains:
                named.append(account.canonical)
        process = to_process_event(event)
        if process is None:
            continue
        actor = Account.parse(process.user)
        hostname = first(event, "hostname", "Hostname") or ""
        context = [actor.netbios if actor is not None else None]
        context.append(netbios_of(hostname.split(".", 1)[1]) if "." in hostname else None)
        for found in command_accounts(process.cmd_line):
            account = found.account
            if not found.used or not account.is_person:
                continue
            netbios = account.netbios or next((d for d in context if d in domains), None)
            if netbios in domains:
                named.append(f"{netbios}\\{account.name}")
    return sorted(set(named))


def _asset(host: str, facts: HostFacts) -> Asset:
    kind = asset_kind(host, facts)
    owner = facts.interactive.get(host, Counter()).most_common(1)
    return Asset(
        id=host,
        hostname=facts.hostnames.get(host),
        kind=kind,
        criticality=CRITICALITY.get(kind, Criticality.MEDIUM),
        ips=[ip for ip, _ in sorted(facts.ips.get(host, Counter()).items())][:4],
        os="linux" if host in facts.linux else "windows",
        owner=owner[0][0] if owner else None,
    )


def asset_kind(host: str, facts: HostFacts) -> AssetKind:
    if host in facts.dc_hosts or DC_NAME.search(host):
        return AssetKind.DOMAIN_CONTROLLER
    if SERVER_NAME.search(host):
        return AssetKind.SERVER
    return AssetKind.WORKSTATION


def _usable_ip(value: str) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return address.version == 4 and not (address.is_loopback or address.is_link_local)
