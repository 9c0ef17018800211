"""What telemetry around the alerting processes says beyond the alerts' own tactics.

Kill-chain stages (they weigh in the category, not in the verdict's score):
- command and control: an alerting process with tradecraft of its own holding a channel to an
  address that is neither an inventory asset nor the estate's infrastructure;
- lateral movement: an alerting COM server (`-Embedding`, `/automation`) started for an account
  within a minute of that account's network logon from another machine, which is a remote DCOM
  activation (T1021.003); or an alerting process that reached another host of the incident where
  significant alerts fired.

Implant lineage (it decides the verdict): an alerting process started, through a shell, by a
program run from a drop folder (Desktop, Downloads), or descended from a process with strong
command-line tradecraft (an encoded command, a download cradle, a credential tool). Whatever such
a process does, discovery included, is the attacker's hands on the keyboard: lone enumeration by
a person's own shell stays with its alerts' score.
"""

from __future__ import annotations

from agents.entities import AssetIndex, is_routable_peer, single_ip
from agents.estate import in_drop_folder
from agents.knowledge import INFRASTRUCTURE_PORTS, SHELLS, cmdline_indicators, image_name
from agents.processes import ProcessKey
from agents.telemetry import HostTelemetry, alert_records, remote_activation
from agents.triage.state import AlertAssessment
from tools.models import Alert

C2_CHANNEL_WEIGHT = 5.0  # as a medium alert on an application-layer C2 technique (2 + 3)
LATERAL_STAGE_WEIGHT = 6.5  # as a high alert on remote services (3.5 + 3)
STRONG_TRADECRAFT = 3.0  # an encoded command, a download cradle, a credential tool


def telemetry_stages(
    telemetry: HostTelemetry, alerts: list[Alert], index: AssetIndex
) -> list[tuple[str, float, str]]:
    return [*_c2_channels(telemetry, alerts, index), *_remote_activations(telemetry, alerts, index)]


def _c2_channels(
    telemetry: HostTelemetry, alerts: list[Alert], index: AssetIndex
) -> list[tuple[str, float, str]]:
    infrastructure = telemetry.infrastructure()
    own = {ip for a in index.assets.values() for ip in a.ips}
    found: list[tuple[str, float, str]] = []
    seen: set[ProcessKey] = set()
    for alert in alerts:
        process = alert.entities.process
        record = telemetry.process(process.pid, alert.time) if process is not None else None
        if record is None or telemetry.table.key(record) in seen:
            continue
        seen.add(telemetry.table.key(record))
        if sum(w for w, _ in cmdline_indicators(record.cmd_line)) < 2.0:
            continue
        peers = sorted(
            {
                c.dst_ip
                for c in telemetry.connections_of(record)
                if c.dst_ip
                and c.dst_ip not in own
                and c.dst_ip not in infrastructure
                and c.dst_port not in INFRASTRUCTURE_PORTS
                and is_routable_peer(c.dst_ip)
            }
        )
        if peers:
            why = (
                f"{telemetry.host}:{record.pid} with tradecraft holds a channel to "
                f"{', '.join(peers[:3])}"
            )
            found.append(("command-and-control", C2_CHANNEL_WEIGHT, f"stage C2: {why}"))
    return found


def _remote_activations(
    telemetry: HostTelemetry, alerts: list[Alert], index: AssetIndex
) -> list[tuple[str, float, str]]:
    own = frozenset(index.own_ips(telemetry.host))
    for alert in alerts:
        for record in alert_records(alert, telemetry):
            logon = remote_activation(record, telemetry, own)
            if logon is None:
                continue
            why = (
                f"stage lateral movement: {telemetry.host}:{record.pid} "
                f"{image_name(record.image)} started over DCOM for {logon.user} "
                f"logged on from {logon.src_ip}"
            )
            return [("lateral-movement", LATERAL_STAGE_WEIGHT, why)]
    return []


def incident_movements(
    alerts: list[Alert], assessments: list[AlertAssessment], index: AssetIndex
) -> list[tuple[str, float, str]]:
    """An alerting process on one host that reached another host of the incident where
    significant alerts fired: the incident spans a hop between them."""
    hit = {
        index.asset_id(a.host).lower()
        for a in assessments
        if a.host and not a.noisy and a.score >= 2.0
    }
    for alert in alerts:
        target = index.asset_for_ip(single_ip(alert.entities.dst_ip))
        source = index.asset_for(alert.entities.host)
        if target is None or source is None or target.id == source.id:
            continue
        if target.id.lower() in hit:
            why = f"stage lateral movement: {source.id} reached {target.id} ({alert.title})"
            return [("lateral-movement", LATERAL_STAGE_WEIGHT, why)]
    return []


def implant_lineage(telemetry: HostTelemetry, alerts: list[Alert]) -> list[str]:
    """Alerting processes that an implant started (see the module docstring)."""
    found: list[str] = []
    for alert in alerts:
        for record in alert_records(alert, telemetry):
            chain = [record, *telemetry.ancestors(record)]
            for child in chain:
                parent = telemetry.parent_path(child)
                if image_name(child.image) in SHELLS and in_drop_folder(parent):
                    found.append(
                        f"{telemetry.host}:{record.pid} {image_name(record.image)} runs under "
                        f"{image_name(parent)}, started from a drop folder, through a shell"
                    )
                    break
                craft = sum(w for w, _ in cmdline_indicators(child.cmd_line))
                if child is not record and craft >= STRONG_TRADECRAFT:
                    found.append(
                        f"{telemetry.host}:{record.pid} {image_name(record.image)} descends "
                        f"from {image_name(child.image)} ({child.pid}) with tradecraft"
                    )
                    break
    return found
