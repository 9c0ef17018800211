"""Raw events as recorded-incident telemetry: OCSF event classes mapped to the Sysmon and Windows
Security field names the simulated tools read; flat Windows/Sysmon events normalised as the OTRF
importer does. The mapping, class (activity) -> event source and id: OCSF field -> field:

- 1007 Process Activity (1 Launch, 2 Terminate) -> sysmon 1, 5: `process.file.path` (else `name`)
  Image, `cmd_line` CommandLine, `pid` ProcessId, `uid` ProcessGuid, `user` User (else
  `actor.user`), `file.hashes` Hashes, `integrity` IntegrityLevel; `process.parent_process` (else
  `actor.process`) ParentImage, ParentProcessId, ParentProcessGuid, ParentCommandLine.
- 1007 Process Activity (3 Open, 4 Inject) -> sysmon 10, 8: `actor.process` SourceImage,
  SourceProcessId; `actor.user` SourceUser; `process` TargetImage, TargetProcessId;
  `access_mask` GrantedAccess (hex).
- 4001 Network Activity -> sysmon 3: `src_endpoint` SourceIp, SourcePort, SourceHostname;
  `dst_endpoint` DestinationIp, DestinationPort, DestinationHostname;
  `connection_info.protocol_name` Protocol; `connection_info.direction_id` Initiated (2 outbound
  "true", 1 inbound "false"); `actor.process` Image, ProcessId; `actor.user` User.
- 4003 DNS Activity -> sysmon 22: `query.hostname` QueryName, `answers[].rdata` QueryResults.
- 1001 File System Activity (1 Create) -> sysmon 11; (4 Delete) -> sysmon 26, or 28 when
  `action_id` is 2 (Denied): `file.path` TargetFilename, `file.hashes` Hashes.
- 1005 Module Activity (1 Load) -> sysmon 7: `module.file.path` ImageLoaded, `.hashes` Hashes.
- 201001 (1011 in later versions) Registry Key Activity (1 Create, 4 Delete, 5 Rename) ->
  sysmon 12, 12, 14: `reg_key.path` TargetObject, EventType CreateKey, DeleteKey, RenameKey.
- 201002 (1012), and 201004 when it holds `reg_value`, Registry Value Activity (2 Set,
  3 Modify, 4 Delete) -> sysmon 13, 13, 12: `reg_value.path` + `name` TargetObject,
  `reg_value.data` Details. (201004 is Windows Service Activity in the schema's Windows
  extension; the object present decides.)
- 201004 Windows Service Activity (1 Create) -> security 4697: `win_service.name` ServiceName,
  `cmd_line` ServiceFileName, `service_start_name` ServiceAccount; `actor.user` SubjectUserName,
  SubjectDomainName; `actor.process.pid` ClientProcessId.
- 3002 Authentication (1 Logon) -> security 4624, 4625 when `status_id` is 2; (2 Logoff) ->
  4634: `user` TargetUserName, TargetDomainName; `logon_type_id` LogonType; `src_endpoint.ip`
  IpAddress, `.hostname` WorkstationName; `actor.process` ProcessName; `actor.user` Subject*.
- Actor fields of the sysmon kinds: `actor.process` Image, ProcessId; `actor.user` User.
- Any other class or activity -> `ocsf_<class_uid>`, the OCSF fields flattened (`actor.user.name`).

Every OCSF event also gets `@timestamp` (from `time`), `host` and `hostname` (from `device`), and
`ocsf_class_uid`, `ocsf_activity_id` and `ocsf_uid` (`metadata.uid`), so its origin stays visible.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from simulations.importers.ocsf.fields import (
    Json,
    account,
    event_time,
    host_of,
    integer,
    iso,
    obj,
    objects,
    sysmon_hashes,
    text,
)
from simulations.importers.otrf.events import Event, normalise, when

FLAT_TIMES = ("@timestamp", "TimeCreated", "TimeGenerated", "ts")  # what `normalise` reads
Mapped = tuple[str, int | None, dict[str, object]]  # event_source, EventID, fields


def is_ocsf(raw: Json) -> bool:
    return "class_uid" in raw


def telemetry_event(raw: Json) -> tuple[Event | None, list[tuple[str, str]]]:
    """The flat telemetry event of one raw line, or None and the (field, problem) pairs."""
    if not is_ocsf(raw):
        if not any(k in raw for k in FLAT_TIMES):
            return None, [("@timestamp", "missing (neither an OCSF class_uid nor an event time)")]
        flat = normalise(dict(raw))
        try:
            when(flat)
        except ValueError:
            return None, [("@timestamp", f"{flat['@timestamp']!r} is not an ISO 8601 time")]
        return flat, []
    class_uid = integer(raw, "class_uid")
    time = event_time(raw)
    errors = []
    if class_uid is None:
        errors.append(("class_uid", f"{raw.get('class_uid')!r} is not an OCSF class id"))
    if time is None:
        errors.append(("time", "missing or not a timestamp (ms since the epoch)"))
    if errors or class_uid is None or time is None:
        return None, errors
    source, event_id, fields = map_event(class_uid, raw)
    host, hostname = host_of(obj(raw, "device"))
    event: Event = {k: v for k, v in fields.items() if v is not None}
    event.update(
        {
            "@timestamp": iso(time),
            "host": host,
            "hostname": hostname,
            "event_source": source,
            "EventID": event_id,
            "ocsf_class_uid": class_uid,
            "ocsf_activity_id": integer(raw, "activity_id"),
            "ocsf_uid": text(raw, "metadata.uid"),
        }
    )
    return event, []


def map_event(class_uid: int, raw: Json) -> Mapped:
    mapper = MAPPERS.get(class_uid)
    if class_uid == 201004 and "win_service" in raw and "reg_value" not in raw:
        mapper = _service
    if mapper is not None:
        mapped = mapper(raw, integer(raw, "activity_id") or 0)
        if mapped is not None:
            return mapped
    return f"ocsf_{class_uid}", None, flatten(raw)


def flatten(raw: Json, prefix: str = "") -> dict[str, object]:
    """Nested OCSF objects as dotted names (`actor.process.pid`); arrays stay as they are."""
    flat: dict[str, object] = {}
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif name not in ("time", "time_dt", "device.hostname"):
            flat[name] = value
    return flat


def _process(raw: Json, activity: int) -> Mapped | None:
    if activity in (1, 2):
        process, actor = obj(raw, "process"), obj(raw, "actor.process")
        parent = obj(process, "parent_process") or actor
        fields = {
            "Image": _image(process),
            "CommandLine": text(process, "cmd_line"),
            "ProcessId": integer(process, "pid"),
            "ProcessGuid": text(process, "uid"),
            "User": account(obj(process, "user")) or account(obj(raw, "actor.user")),
            "Hashes": sysmon_hashes(obj(process, "file").get("hashes")),
            "IntegrityLevel": text(process, "integrity"),
            "ParentImage": _image(parent),
            "ParentProcessId": integer(parent, "pid"),
            "ParentProcessGuid": text(parent, "uid"),
            "ParentCommandLine": text(parent, "cmd_line"),
        }
        return "sysmon", 1 if activity == 1 else 5, fields
    if activity in (3, 4):
        source, target = obj(raw, "actor.process"), obj(raw, "process")
        mask = integer(raw, "access_mask")
        fields = {
            "SourceImage": _image(source),
            "SourceProcessId": integer(source, "pid"),
            "SourceUser": account(obj(raw, "actor.user")) or account(obj(source, "user")),
            "TargetImage": _image(target),
            "TargetProcessId": integer(target, "pid"),
            "GrantedAccess": f"0x{mask:x}" if mask is not None else None,
        }
        return "sysmon", 10 if activity == 3 else 8, fields
    return None


def _network(raw: Json, activity: int) -> Mapped:
    src, dst = obj(raw, "src_endpoint"), obj(raw, "dst_endpoint")
    direction = integer(raw, "connection_info.direction_id")
    fields = {
        **_actor(raw),
        "SourceIp": text(src, "ip"),
        "SourcePort": integer(src, "port"),
        "SourceHostname": text(src, "hostname"),
        "DestinationIp": text(dst, "ip"),
        "DestinationPort": integer(dst, "port"),
        "DestinationHostname": text(dst, "hostname"),
        "Protocol": (text(raw, "connection_info.protocol_name") or "").lower() or None,
        "Initiated": {2: "true", 1: "false"}.get(direction or 0),
    }
    return "sysmon", 3, fields


def _dns(raw: Json, activity: int) -> Mapped:
    answers = [a for item in objects(raw, "answers") if (a := text(item, "rdata"))]
    fields = {
        **_actor(raw),
        "QueryName": text(raw, "query.hostname"),
        "QueryResults": ";".join(answers) or None,
    }
    return "sysmon", 22, fields


def _file(raw: Json, activity: int) -> Mapped | None:
    file = obj(raw, "file")
    fields = {
        **_actor(raw),
        "TargetFilename": text(file, "path"),
        "Hashes": sysmon_hashes(file.get("hashes")),
    }
    if activity == 1:
        return "sysmon", 11, fields
    if activity == 4:
        return "sysmon", 28 if integer(raw, "action_id") == 2 else 26, fields
    return None


def _module(raw: Json, activity: int) -> Mapped | None:
    if activity != 1:
        return None
    file = obj(raw, "module.file")
    fields = {
        **_actor(raw),
        "ImageLoaded": text(file, "path"),
        "Hashes": sysmon_hashes(file.get("hashes")),
    }
    return "sysmon", 7, fields


REG_KEY_TYPES = {1: "CreateKey", 4: "DeleteKey", 5: "RenameKey"}


def _registry(raw: Json, activity: int) -> Mapped | None:
    value = obj(raw, "reg_value")
    if value:
        path = "\\".join(p for p in (text(value, "path"), text(value, "name")) if p) or None
        if activity in (2, 3):
            fields = {**_actor(raw), "EventType": "SetValue", "TargetObject": path}
            return "sysmon", 13, {**fields, "Details": text(value, "data")}
        if activity == 4:
            return "sysmon", 12, {**_actor(raw), "EventType": "DeleteValue", "TargetObject": path}
        return None
    key = text(raw, "reg_key.path")
    if activity not in REG_KEY_TYPES or key is None:
        return None
    fields = {**_actor(raw), "EventType": REG_KEY_TYPES[activity], "TargetObject": key}
    return "sysmon", 14 if activity == 5 else 12, fields


def _service(raw: Json, activity: int) -> Mapped | None:
    if activity != 1:
        return None
    service = obj(raw, "win_service")
    user = obj(raw, "actor.user")
    fields = {
        "ServiceName": text(service, "name"),
        "ServiceFileName": text(service, "cmd_line"),
        "ServiceAccount": text(service, "service_start_name"),
        "SubjectUserName": text(user, "name"),
        "SubjectDomainName": text(user, "domain"),
        "ClientProcessId": integer(raw, "actor.process.pid"),
    }
    return "security", 4697, fields


def _authentication(raw: Json, activity: int) -> Mapped | None:
    if activity not in (1, 2):
        return None
    user, src = obj(raw, "user"), obj(raw, "src_endpoint")
    event_id = 4634 if activity == 2 else 4625 if integer(raw, "status_id") == 2 else 4624
    fields = {
        "TargetUserName": text(user, "name"),
        "TargetDomainName": text(user, "domain"),
        "LogonType": integer(raw, "logon_type_id"),
        "IpAddress": text(src, "ip"),
        "WorkstationName": text(src, "hostname"),
        "ProcessName": _image(obj(raw, "actor.process")),
        "SubjectUserName": text(raw, "actor.user.name"),
        "SubjectDomainName": text(raw, "actor.user.domain"),
    }
    return "security", event_id, fields


def _actor(raw: Json) -> dict[str, object]:
    process = obj(raw, "actor.process")
    return {
        "Image": _image(process),
        "ProcessId": integer(process, "pid"),
        "User": account(obj(raw, "actor.user")) or account(obj(process, "user")),
    }


def _image(process: Json) -> str | None:
    return text(process, "file.path") or text(process, "name")


MAPPERS: dict[int, Callable[[Json, int], Mapped | None]] = {
    1007: _process,
    4001: _network,
    4003: _dns,
    1001: _file,
    1005: _module,
    201001: _registry,
    201002: _registry,
    201004: _registry,
    1011: _registry,
    1012: _registry,
    3002: _authentication,
}
