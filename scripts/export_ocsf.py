"""Export committed recorded incidents as OCSF 1.1 findings and events (JSON lines).

Each alert becomes a Detection Finding (class 2004) whose `finding_info.related_events` name its
evidence events; each telemetry event becomes the OCSF event class that describes it (Process,
Network, DNS, File System, Module, Registry Key/Value, Windows Service, Authentication), or stays
a flat Windows event when no class fits (4648, for example). Everything is derived from the
incident's own files: devices from its environment, users from its alerts and events. Rule authors
go to `unmapped.rule_author`, because OCSF has no field for them and the Sigma rules' licence (DRL
1.1) wants them shown; each finding's evidence rows go to `unmapped.evidence` and its incident's id
to `metadata.correlation_uid`, so that live ingestion reads the finding back as the very alert
(`orchestrator.ingest.shapes.ocsf.alert_to_ocsf` makes one finding). The output is
deterministic. Used to build the OCSF test fixture:

    python scripts/export_ocsf.py otrf-lsass-comsvcs-prd01 otrf-background-acct01:3 \\
        --findings tests/simulations/fixtures/ocsf/findings.jsonl \\
        --events tests/simulations/fixtures/ocsf/events.jsonl --context 60

An incident given as `ID:N` keeps its first N alerts. Per incident, every evidence event and every
event that stays flat is kept, plus `--context` other events spread evenly over the recording.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from orchestrator.ingest.shapes.ocsf import VERSION, alert_to_ocsf, compact, device, split_account
from simulations.loader import LoadedIncident, load_incident
from simulations.spec import RecordedIncident
from tools.models import Alert

INCIDENTS = Path("simulations/incidents")
PRODUCTS = {
    "sysmon": {"name": "Sysmon", "vendor_name": "Microsoft"},
    "security": {"name": "Microsoft Windows Security Auditing", "vendor_name": "Microsoft"},
}
Obj = dict[str, Any]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/export_ocsf.py")
    parser.add_argument("incidents", nargs="+", help="incident id (or folder), optionally ID:N")
    parser.add_argument("--findings", type=Path, required=True)
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--context", type=int, default=60, help="context events per incident")
    args = parser.parse_args(argv)
    findings: list[Obj] = []
    events: list[Obj] = []
    for spec in args.incidents:
        name, _, count = spec.partition(":")
        folder = Path(name) if "/" in name else INCIDENTS / name
        incident = LoadedIncident(folder, load_incident(folder))
        alerts = incident.spec.alerts[: int(count)] if count else incident.spec.alerts
        findings += [finding(incident.spec, a) for a in alerts]
        events += export_events(incident, alerts, args.context, partial=bool(count))
    findings.sort(key=lambda f: f["time"])  # stable: same-time alerts keep the incident's order
    events.sort(key=lambda e: (e.get("time") or 0, e.get("@timestamp") or "", _uid(e)))
    for path, rows in ((args.findings, findings), (args.events, events)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        print(f"{path}: {len(rows)} lines, {path.stat().st_size} bytes")
    return 0


def finding(incident: RecordedIncident, alert: Alert) -> Obj:
    """The alert as a Detection Finding: rule, ATT&CK, entities, and its evidence by uid."""
    return alert_to_ocsf(
        alert, incident.environment, event_uid_prefix=incident.id, correlation_uid=incident.id
    )


def export_events(
    incident: LoadedIncident, alerts: list[Alert], context: int, partial: bool
) -> list[Obj]:
    """The evidence events of `alerts`, the events that stay flat, and `context` more, spread
    evenly; with only some of the alerts (`partial`), nothing after their last evidence."""
    rows = list(incident.telemetry())
    wanted = {row for a in alerts for row in a.evidence}
    last = max(str(rows[r]["@timestamp"]) for r in wanted) if partial and wanted else None
    converted = [
        (row, convert(incident.spec, row, e))
        for row, e in enumerate(rows)
        if last is None or str(e["@timestamp"]) <= last
    ]
    keep = {row for row, e in converted if row in wanted or "class_uid" not in e}
    others = [row for row, _ in converted if row not in keep]
    room = min(context, len(others))
    keep |= {others[i * len(others) // room] for i in range(room)}
    return [e for row, e in converted if row in keep]


def convert(incident: RecordedIncident, row: int, event: Mapping[str, Any]) -> Obj:
    """One telemetry event as OCSF, or as the flat Windows event it was recorded as."""
    make = CONVERTERS.get((str(event.get("event_source")), int(event.get("EventID") or 0)))
    body = make(event) if make else None
    if body is None:
        drop = {"host", "hostname", "event_source"}  # the importer recomputes these
        return {k: v for k, v in event.items() if k not in drop}
    class_uid, activity_id = body.pop("class_uid"), body.pop("activity_id")
    head = {
        "class_uid": class_uid,
        "activity_id": activity_id,
        "type_uid": class_uid * 100 + activity_id,
        "time": _ms(str(event["@timestamp"])),
        "severity_id": 1,
        "metadata": {
            "version": VERSION,
            "uid": f"{incident.id}:{row}",
            "product": PRODUCTS[str(event["event_source"])],
        },
        "device": device(incident.environment, str(event.get("host") or ""), full=False),
    }
    return compact({**head, **body})


# --- one converter per recorded kind ------------------------------------------------------------


def _launch(e: Mapping[str, Any]) -> Obj:
    process = {
        "pid": _int(e.get("ProcessId")),
        "uid": e.get("ProcessGuid"),
        "cmd_line": e.get("CommandLine"),
        "file": _file(e.get("Image"), e.get("Hashes")),
        "user": split_account(e.get("User")),
        "integrity": e.get("IntegrityLevel"),
        "parent_process": {
            "pid": _int(e.get("ParentProcessId")),
            "uid": e.get("ParentProcessGuid"),
            "cmd_line": e.get("ParentCommandLine"),
            "file": _file(e.get("ParentImage")),
        },
    }
    return {"class_uid": 1007, "activity_id": 1, "process": process}


def _launch_4688(e: Mapping[str, Any]) -> Obj:
    runs_as = _account(e, "Target") or _account(e, "Subject")
    process = {
        "pid": _int(e.get("NewProcessId")),
        "cmd_line": e.get("CommandLine"),
        "file": _file(e.get("NewProcessName")),
        "user": split_account(runs_as),
        "parent_process": {
            "pid": _int(e.get("ProcessId")),
            "file": _file(e.get("ParentProcessName")),
        },
    }
    actor = {"user": split_account(_account(e, "Subject"))}
    return {"class_uid": 1007, "activity_id": 1, "process": process, "actor": actor}


def _access(e: Mapping[str, Any]) -> Obj:
    return {
        "class_uid": 1007,
        "activity_id": 3,
        "actor": {
            "process": {"pid": _int(e.get("SourceProcessId")), "file": _file(e.get("SourceImage"))},
            "user": split_account(e.get("SourceUser")),
        },
        "process": {"pid": _int(e.get("TargetProcessId")), "file": _file(e.get("TargetImage"))},
        "access_mask": _int(e.get("GrantedAccess")),
    }


def _handle_4656(e: Mapping[str, Any]) -> Obj | None:
    if e.get("ObjectType") != "Process":
        return None
    return {
        "class_uid": 1007,
        "activity_id": 3,
        "actor": {
            "process": {"pid": _int(e.get("ProcessId")), "file": _file(e.get("ProcessName"))},
            "user": split_account(_account(e, "Subject")),
        },
        "process": {"file": _file(e.get("ObjectName"))},
        "access_mask": _int(e.get("AccessMask")),
    }


def _network(e: Mapping[str, Any]) -> Obj:
    return {
        "class_uid": 4001,
        "activity_id": 1,
        **_actor(e),
        "src_endpoint": {
            "ip": e.get("SourceIp"),
            "port": _int(e.get("SourcePort")),
            "hostname": _text(e.get("SourceHostname")),
        },
        "dst_endpoint": {
            "ip": e.get("DestinationIp"),
            "port": _int(e.get("DestinationPort")),
            "hostname": _text(e.get("DestinationHostname")),
        },
        "connection_info": {
            "protocol_name": e.get("Protocol"),
            "direction_id": 2 if e.get("Initiated") == "true" else 1,
        },
    }


def _dns(e: Mapping[str, Any]) -> Obj:
    results = [r for r in str(_text(e.get("QueryResults")) or "").split(";") if r.strip()]
    return {
        "class_uid": 4003,
        "activity_id": 1,
        **_actor(e),
        "query": {"hostname": e.get("QueryName")},
        "answers": [{"rdata": r} for r in results],
    }


def _file_create(e: Mapping[str, Any]) -> Obj:
    digest = e.get("Hashes") or e.get("Hash")
    return {
        "class_uid": 1001,
        "activity_id": 1,
        **_actor(e),
        "file": _file(e.get("TargetFilename"), digest),
    }


def _shred_blocked(e: Mapping[str, Any]) -> Obj:
    return {
        "class_uid": 1001,
        "activity_id": 4,
        "action_id": 2,
        "disposition_id": 2,
        **_actor(e),
        "file": _file(e.get("TargetFilename"), e.get("Hashes")),
    }


def _module(e: Mapping[str, Any]) -> Obj:
    return {
        "class_uid": 1005,
        "activity_id": 1,
        **_actor(e),
        "module": {"file": _file(e.get("ImageLoaded"), e.get("Hashes"))},
    }


def _registry(e: Mapping[str, Any]) -> Obj | None:
    kind, target = e.get("EventType"), str(e.get("TargetObject") or "")
    path, _, name = target.rpartition("\\")
    match kind:
        case "SetValue":
            value = {"path": path, "name": name, "data": e.get("Details")}
            return {"class_uid": 201002, "activity_id": 2, **_actor(e), "reg_value": value}
        case "DeleteValue":
            return {
                "class_uid": 201002,
                "activity_id": 4,
                **_actor(e),
                "reg_value": {"path": path, "name": name},
            }
        case "CreateKey" | "DeleteKey" | "RenameKey":
            activity = {"CreateKey": 1, "DeleteKey": 4, "RenameKey": 5}[kind]
            return {
                "class_uid": 201001,
                "activity_id": activity,
                **_actor(e),
                "reg_key": {"path": target},
            }
    return None


def _service_4697(e: Mapping[str, Any]) -> Obj:
    return {
        "class_uid": 201004,
        "activity_id": 1,
        "actor": {
            "process": {"pid": _int(e.get("ClientProcessId"))},
            "user": split_account(_account(e, "Subject")),
        },
        "win_service": {
            "name": e.get("ServiceName"),
            "cmd_line": e.get("ServiceFileName"),
            "service_start_name": e.get("ServiceAccount"),
        },
    }


def _logon(e: Mapping[str, Any]) -> Obj:
    return {
        "class_uid": 3002,
        "activity_id": 1,
        "status_id": 2 if e.get("EventID") == 4625 else 1,
        "user": {
            "name": _text(e.get("TargetUserName")),
            "domain": _text(e.get("TargetDomainName")),
        },
        "logon_type_id": _int(e.get("LogonType")),
        "src_endpoint": {
            "ip": _text(e.get("IpAddress")),
            "hostname": _text(e.get("WorkstationName")),
        },
        "actor": {
            "process": {"file": _file(e.get("ProcessName"))},
            "user": split_account(_account(e, "Subject")),
        },
    }


CONVERTERS: dict[tuple[str, int], Callable[[Mapping[str, Any]], Obj | None]] = {
    ("sysmon", 1): _launch,
    ("security", 4688): _launch_4688,
    ("sysmon", 10): _access,
    ("security", 4656): _handle_4656,
    ("sysmon", 3): _network,
    ("sysmon", 22): _dns,
    ("sysmon", 11): _file_create,
    ("sysmon", 15): _file_create,  # a stream created on a file: a file creation in OCSF
    ("sysmon", 28): _shred_blocked,
    ("sysmon", 7): _module,
    ("sysmon", 12): _registry,
    ("sysmon", 13): _registry,
    ("sysmon", 14): _registry,
    ("security", 4697): _service_4697,
    ("security", 4624): _logon,
    ("security", 4625): _logon,
}


# --- values -------------------------------------------------------------------------------------


def _actor(e: Mapping[str, Any]) -> Obj:
    return {
        "actor": {
            "process": {"pid": _int(e.get("ProcessId")), "file": _file(e.get("Image"))},
            "user": split_account(e.get("User")),
        }
    }


def _file(path: object, hashes: object = None) -> Obj | None:
    text = _text(path)
    if text is None:
        return None
    fingerprints = []
    for part in str(hashes or "").split(","):
        name, _, value = part.partition("=")
        algorithm = {"MD5": (1, "MD5"), "SHA1": (2, "SHA-1"), "SHA256": (3, "SHA-256")}.get(
            name.strip().upper()
        )
        if algorithm and value:
            fingerprints.append(
                {"algorithm_id": algorithm[0], "algorithm": algorithm[1], "value": value.lower()}
            )
    return {
        "path": text,
        "name": text.replace("/", "\\").rsplit("\\", 1)[-1],
        "hashes": fingerprints or None,
    }


def _account(e: Mapping[str, Any], prefix: str) -> str | None:
    user, domain = _text(e.get(f"{prefix}UserName")), _text(e.get(f"{prefix}DomainName"))
    if user is None:
        return None
    return f"{domain}\\{user}" if domain else user


def _text(value: object) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return None if text in ("", "-") else text


def _int(value: object) -> int | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def _ms(timestamp: str) -> int:
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return round(moment.timestamp() * 1000)


def _uid(event: Mapping[str, Any]) -> str:
    metadata = event.get("metadata")
    return str(metadata.get("uid")) if isinstance(metadata, Mapping) else ""


if __name__ == "__main__":
    raise SystemExit(main())
