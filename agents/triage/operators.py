"""Routine work of the estate's declared operators: an incident that is the inventory's own admin
and service accounts doing their job from the estate's servers.

Administration (PsExec or PowerShell remoting from a jump host under a named admin account),
authenticated vulnerability scans (a scanner's service account logging on to every host and
querying its services) and backups (a backup agent's service account taking a VSS snapshot and
reading files through it) fire lateral-movement, execution and credential-access rules by design.
An analyst closes them on what the inventory says about who acted and from where.

The incident is operators' work only when every one of these holds (`estate.yaml` says which
inventory kinds are operators and which assets they work from):
- at least one account acts (an alert names a person or service account), and every account the
  alerts name, apart from the machine's own principals, is an inventory identity of an operator
  kind (`operator_identity_kinds`: admin, service);
- every alert is on an inventory asset of an operator-host kind (`operator_asset_kinds`: servers
  and workstations, never a domain controller or a protected asset) and of no higher severity
  than high;
- every place those accounts act from is an operator host (`operator_source_kinds`: servers): an
  alert on a host is either on such a server, or the host's telemetry shows the account's network
  logon from one; and no network logon of those accounts on the alert hosts, and no alert's
  source address, comes from anywhere else;
- telemetry shows none of the attacker's hands: no process those accounts ran on the alert
  hosts carries strong command-line tradecraft (a credential tool, a hive or NTDS dump, an
  encoded command, a download cradle) or runs from a drop folder, and no implant lineage.

A compromised operator account on a compromised server passes this test; that is the trade every
SOC makes when it declares its jump hosts and service accounts, and why the kinds are the
organisation's to declare, in its own knowledge folder. Nothing here names an incident or a host.
"""

from __future__ import annotations

from collections.abc import Mapping

from agents.entities import AssetIndex, identity_key, single_ip
from agents.estate import (
    OPERATOR_ASSET_KINDS,
    OPERATOR_IDENTITY_KINDS,
    OPERATOR_SOURCE_KINDS,
    in_drop_folder,
)
from agents.knowledge import cmdline_indicators, is_system_account
from agents.telemetry import HostTelemetry, remote_logons
from tools.models import Alert, Severity

STRONG_TRADECRAFT = 3.0  # an encoded command, a download cradle, a credential tool


def operator_work(
    alerts: list[Alert],
    index: AssetIndex,
    telemetries: Mapping[str, HostTelemetry],
    protected: set[str],
) -> str | None:
    """Why the incident is the declared operators' routine work, or None when it is not shown.

    `telemetries` are the alert hosts' telemetry by asset id (a host left unread proves nothing,
    so the incident is not operators' work); `protected` the inventory's never-touch ids."""
    if not alerts or not OPERATOR_IDENTITY_KINDS:
        return None
    accounts: dict[str, str] = {}  # short name: inventory id
    for alert in alerts:
        user = alert.entities.user
        if not user or is_system_account(user):
            continue
        identity = index.identities.get(identity_key(index.identity_id(user)))
        if identity is None or identity.kind.value not in OPERATOR_IDENTITY_KINDS:
            return None
        accounts[identity.id.strip().lower().rsplit("\\", 1)[-1]] = identity.id
    if not accounts:
        return None
    hosts: set[str] = set()
    for alert in alerts:
        asset = index.asset_for(alert.entities.host)
        if asset is None or asset.kind.value not in OPERATOR_ASSET_KINDS:
            return None
        if asset.id.lower() in protected or alert.severity.rank > Severity.HIGH.rank:
            return None
        src = index.asset_for_ip(single_ip(alert.entities.src_ip))
        if alert.entities.src_ip and not _is_source(src):
            return None
        hosts.add(asset.id)
    sources: set[str] = set()
    for host in hosts:
        telemetry = telemetries.get(host)
        if telemetry is None or telemetry.processes_unread:
            return None
        logons = remote_logons(telemetry, set(accounts))
        for logon in logons:
            src = index.asset_for_ip(logon.src_ip)
            if not _is_source(src) or src is None:
                return None
            sources.add(src.id)
        asset = index.assets[host]
        if not logons and asset.kind.value not in OPERATOR_SOURCE_KINDS:
            return None
        if asset.kind.value in OPERATOR_SOURCE_KINDS:
            sources.add(asset.id)
        for record in telemetry.processes:
            user = (record.user or "").strip().lower().rsplit("\\", 1)[-1]
            if user not in accounts:
                continue
            craft = sum(w for w, _ in cmdline_indicators(record.cmd_line))
            if craft >= STRONG_TRADECRAFT or in_drop_folder(record.image):
                return None
    return (
        f"operators' routine work: {', '.join(sorted(accounts.values()))} (declared"
        f" {'/'.join(sorted(OPERATOR_IDENTITY_KINDS))} accounts) acting from"
        f" {', '.join(sorted(sources))}, no tradecraft in their processes"
    )


def _is_source(asset: object) -> bool:
    kind = getattr(asset, "kind", None)
    return kind is not None and kind.value in OPERATOR_SOURCE_KINDS
