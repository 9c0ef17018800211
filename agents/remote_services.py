"""Services installed from another machine: the remote `sc create` of lateral movement.

A service created over the network (SMB named pipe to the service control manager, T1021.002 and
T1543.003) leaves, on the target, a network logon of the caller's account from the source and,
within seconds, the service's registration: Security 4697 names that account as its subject,
System 7045 names the service and its image. No Sigma rule needs to fire: services.exe writes
the service key, not the attacker's process. Such an install proves the movement, whether or
not the service was started.

A remote install is counted when all hold:
- the service starts on its own (boot, system or auto start): a demand-start service is how
  PsExec runs one command, seen by its own alerts, not a foothold;
- its image is outside the installed programs
  (`agents.persistence.attribution.installed_program`): a deployment tool installs its agent
  under Program Files;
- a successful network or RDP logon of a person's account (never SYSTEM, a machine account, a
  well-known principal) from another inventory host reached the target at most
  `REMOTE_INSTALL_WINDOW` before the install; a record naming its installer (4697's subject)
  must name that same account (Windows creating per-user service instances at a logon records
  the machine account).

Each install found is one `RemoteInstall`: the source host, the account, the service. Triage
counts it as proof of an attack (`agents/triage/corroboration.py`), the investigation as a
movement from the source as that account (`agents/investigation/nodes.py`); the service itself
is the persistence artefact to remove (`agents/persistence/artefacts.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.entities import AssetIndex, is_person
from agents.persistence.artefacts import AUTOSTART_SERVICES, REMOTE_INSTALL_WINDOW
from agents.persistence.attribution import SERVICE_INSTALLED, installed_program, short_account
from agents.telemetry import REMOTE_LOGON_TYPES, HostTelemetry


@dataclass(frozen=True)
class RemoteInstall:
    target: str  # asset id of the host the service was installed on
    source: str  # asset id of the host the caller logged on from
    account: str  # the caller's account, as the logon spelled it
    service: str
    image: str

    def summary(self) -> str:
        return (
            f"service {self.service} ({self.image[:120]}) installed on {self.target} by "
            f"{self.account} logged on from {self.source}"
        )


def remote_installs(telemetry: HostTelemetry, index: AssetIndex) -> list[RemoteInstall]:
    """The services installed remotely on `telemetry`'s host (see the module docstring), one per
    service name."""
    target = index.asset_id(telemetry.host)
    own = set(index.own_ips(target))
    found: dict[str, RemoteInstall] = {}
    for event in telemetry.system:
        if event.event_id not in SERVICE_INSTALLED or not event.name or not event.command:
            continue
        if (event.detail or "").lower() not in AUTOSTART_SERVICES:
            continue
        if installed_program(event.command):
            continue
        for logon in telemetry.logons:
            if not (logon.success and logon.logon_type in REMOTE_LOGON_TYPES and logon.src_ip):
                continue
            if not (logon.time <= event.time <= logon.time + REMOTE_INSTALL_WINDOW):
                continue
            if not is_person(logon.user) or logon.src_ip in own:
                continue
            if event.user and short_account(event.user) != short_account(logon.user):
                continue
            source = index.asset_for_ip(logon.src_ip)
            if source is None or source.id == target:
                continue
            install = RemoteInstall(
                target, source.id, logon.user or "", event.name.strip(), event.command
            )
            found.setdefault(install.service.lower(), install)
            break
    return list(found.values())
