"""One host's processes as the investigation reads them: which processes the alerts name (each
by its identity: host, pid, start, image, never by pid alone), which of them are the attacker's,
the bystanders whose tool an attacker used, the critical processes it acted through, and the
processes it injected into; what each tells the scope (compromised assets and identities,
attacker processes and their network contacts, command-line accounts). Split out of
`agents/investigation/nodes.py`, which composes the investigation's graph nodes from it."""

from __future__ import annotations

from dataclasses import dataclass

from agents.entities import AssetIndex, command_line_accounts, is_person
from agents.estate import KERNEL_PIDS, in_drop_folder, is_critical_process
from agents.evidence import record_ref
from agents.investigation.scope import Scope, add_connection
from agents.knowledge import image_name, in_user_writable_dir
from agents.models import Finding
from agents.persistence.injection import injected_processes
from agents.processes import ProcessKey
from agents.seam import truncate
from agents.telemetry import HostTelemetry, is_attacker_process, judge_process
from tools.models import Alert
from tools.results import ProcessEvent

MAX_TREE = 60


def alerting_processes(
    alerts: list[Alert], telemetry: HostTelemetry, index: AssetIndex
) -> dict[ProcessKey, list[Alert]]:
    """The processes the alerts on a host name, each the process that had the alert's pid at the
    alert's time (`agents.processes`) -> the alerts that name it."""
    host = telemetry.host
    found: dict[ProcessKey, list[Alert]] = {}
    for a in alerts:
        process = a.entities.process
        if not a.entities.host or index.asset_id(a.entities.host).lower() != host.lower():
            continue
        if process is None or process.pid is None:
            continue
        record = _record_of(telemetry, process.pid, process.name, a)
        key = (
            telemetry.table.key(record)
            if record is not None
            else ProcessKey.unrecorded(host, process.pid, process.name)
        )
        found.setdefault(key, []).append(a)
    return found


def _record_of(
    telemetry: HostTelemetry, pid: int, name: str | None, alert: Alert
) -> ProcessEvent | None:
    """The record of the process an alert names: the one with its pid at the alert's time. A
    record of another image (the alerting powershell started before the window, a taskhostw
    reused its pid) is not it."""
    record = telemetry.process(pid, alert.time)
    if record is None or not name or not name.lower().endswith(".exe"):
        return record
    return record if image_name(record.image or record.name) == name.lower() else None


def _descendants(telemetry: HostTelemetry, seeds: set[ProcessKey]) -> set[ProcessKey]:
    found = set(seeds)
    frontier = [r for k in seeds if (r := telemetry.get(k)) is not None]
    while frontier and len(found) < MAX_TREE:
        record = frontier.pop()
        for child in telemetry.children(record):
            key = telemetry.table.key(child)
            if child.pid is not None and key not in found:
                found.add(key)
                frontier.append(child)
    return found


def _ancestors_to_payload(
    telemetry: HostTelemetry, roots: set[ProcessKey], networks: list[str]
) -> set[ProcessKey]:
    """Parents of attacker processes back to the initial payload: the walk continues while the
    parent shows tradecraft or runs from a user-writable folder, and stops at the first ordinary
    process (explorer, services, a shell host), which is the system's, not the attacker's."""
    found: set[ProcessKey] = set()
    for key in roots:
        record = telemetry.get(key)
        for parent in telemetry.ancestors(record) if record is not None else []:
            if parent.pid is None:
                break
            if not (
                is_attacker_process(parent, telemetry, networks)
                or in_user_writable_dir(parent.image)
            ):
                break
            found.add(telemetry.table.key(parent))
    return found


@dataclass
class HostProcesses:
    """One host's processes as the investigation reads them, each by its identity (host, pid,
    start, image), never by pid alone."""

    attacker: set[ProcessKey]  # alerting, proven, related and injected processes
    bystanders: set[ProcessKey]  # alerting, with a record, but the victim's tool
    used: set[ProcessKey]  # critical system processes an alert says acted for the attacker
    bystander_alerts: set[str]  # the uids of the alerts that name a bystander
    injected: dict[ProcessKey, str]  # processes an attacker process injected into -> how


def _classify(
    telemetry: HostTelemetry, index: AssetIndex, significant: list[Alert], malicious: bool
) -> HostProcesses:
    networks = index.internal_networks
    records = telemetry.table.records
    seeds: set[ProcessKey] = set()
    # a critical system process (lsass read, services.exe asked) is what the attacker used or
    # attacked, never the attacker's own process: isolation contains what ran inside it
    critical = {ProcessKey.of(p) for p in records if is_critical_process(p.image)}
    used: set[ProcessKey] = set()
    alerting = alerting_processes(significant, telemetry, index)
    for key, raised in alerting.items():
        name = next(
            (n for a in raised if a.entities.process and (n := a.entities.process.name)), ""
        )
        if is_critical_process(name) or key in critical or key.pid in KERNEL_PIDS:
            critical.add(key)
            used.add(key)
            continue
        record = telemetry.get(key)
        weight = sum(s.weight for s in judge_process(record, telemetry, networks)) if record else 0
        # an alerting process counts on a malicious incident unless it is plainly maintenance;
        # on a benign one only with tradecraft of its own
        if weight >= 2.0 or (malicious and weight >= 0):
            seeds.add(key)
    if malicious:
        seeds |= {
            ProcessKey.of(p)
            for p in records
            if p.pid is not None and is_attacker_process(p, telemetry, networks)
        }
    seeds = {k for k in seeds if k not in critical and k.pid not in KERNEL_PIDS}
    roots = {
        key
        for key in seeds
        if (r := telemetry.get(key)) is not None and is_attacker_process(r, telemetry, networks)
    }
    roots |= _ancestors_to_payload(telemetry, roots, networks)
    proven = {
        k
        for k in roots | _descendants(telemetry, roots)
        if k not in critical and k.pid not in KERNEL_PIDS
    }
    injected = {
        key: how
        for key, how in injected_processes(telemetry, seeds | proven).items()
        if key not in critical and key.pid not in KERNEL_PIDS
    }
    # an alerting process without a record cannot be judged: it keeps the benefit of the alert;
    # one with a record but no tradecraft is the victim's tool (the browser that saved the
    # download), unless it was itself started from a drop folder: nobody's tool lives there
    bystanders = {
        key
        for key in seeds - proven
        if (r := telemetry.get(key)) is not None and not in_drop_folder(r.image)
    }
    return HostProcesses(
        attacker=seeds | proven | set(injected),
        bystanders=bystanders,
        used=used,
        bystander_alerts={a.uid for k in bystanders for a in alerting.get(k, [])},
        injected=injected,
    )


def scope_host(
    scope: Scope,
    telemetry: HostTelemetry,
    index: AssetIndex,
    significant: list[Alert],
    malicious: bool,
) -> HostProcesses:
    host = telemetry.host
    networks = index.internal_networks
    found = _classify(telemetry, index, significant, malicious)
    scope.bystander_alerts |= found.bystander_alerts
    scope.bystander_processes |= {k.label(host).lower() for k in found.bystanders}
    if found.attacker - found.bystanders:
        scope.attacked.add(host)
    own_ips = index.own_ips(host)
    infrastructure = telemetry.infrastructure()
    for key in sorted(found.attacker, key=by_start):
        label = key.label(host)
        if telemetry.processes_unread:
            # an alerting pid whose record could not be read: reported, never killed on a guess
            scope.add(scope.unconfirmed_processes, label)
            continue
        scope.add(scope.processes, label)
        if key in found.bystanders:
            continue
        record = telemetry.get(key)
        signals = judge_process(record, telemetry, networks) if record is not None else []
        scope.corroboration += sum(s.weight for s in signals if s.weight > 0)
        if record is not None and signals:
            scope.findings.append(
                Finding(
                    summary=truncate(f"attacker process {label} {image_name(record.image)}"),
                    evidence=[truncate(s.text, 300) for s in signals[:5]],
                    refs=[record_ref(host, record)],
                )
            )
        if record is not None and record.user and is_person(record.user):
            scope.add(scope.identities, index.identity_id(record.user))
        if record is not None:
            _scope_command_accounts(scope, index, label, record)
        if record is not None and record.sha256:
            scope.add(scope.hashes, record.sha256.lower())
        tradecraft = sum(s.weight for s in signals) >= 2.0
        for conn in telemetry.connections_of_key(key):
            if conn.dst_ip not in infrastructure:
                add_connection(scope, index, telemetry, conn, tradecraft, own_ips)
    if found.attacker:
        scope.add(scope.assets, host)
    return found


def _scope_command_accounts(
    scope: Scope, index: AssetIndex, label: str, record: ProcessEvent
) -> None:
    """Accounts an attacker process's command line runs as or hands the secret of are used
    (compromised); those it only names are reported, and so is a bare name that neither the
    inventory, the acting account nor the host qualifies with a domain."""
    host = label.rsplit(":", 1)[0]
    found = command_line_accounts(record.cmd_line, index, host, record.user)
    for account in found.used:
        scope.add(scope.identities, account)
    if found.used:
        scope.note(f"{label} uses the credentials of {', '.join(found.used[:5])}")
    if found.mentioned:
        scope.note(f"{label} names the accounts {', '.join(found.mentioned[:5])}")
    if found.unresolved:
        scope.note(
            f"{label} names {', '.join(found.unresolved[:5])} without a domain nothing"
            " resolves: not contained"
        )


def by_start(key: ProcessKey) -> tuple[int, float]:
    return (key.pid, key.start.timestamp() if key.start is not None else 0.0)
