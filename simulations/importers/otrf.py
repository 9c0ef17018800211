"""Importer from OTRF Security-Datasets recordings to recorded incidents (first cut).

Alerts come from each dataset's precomputed `sigma_alerts.jsonl` (SigmaHQ rule hits with their
matching line numbers); labels never come from code but from a reviewed YAML file that says which
alerts form each incident and what the truth is. Events are streamed with `lzma` line by line and
normalised from the three shapes that occur (flat, winlogbeat-6 `event_data`, Sentinel `EventData`
JSON string). The output is deterministic: same inputs, same bytes.

    python -m simulations.importers.otrf --labels simulations/labels/starter.yaml \
        --datasets /work/shared/datasets/otrf --out simulations/incidents
"""

from __future__ import annotations

import argparse
import gzip
import io
import ipaddress
import json
import lzma
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from simulations.spec import INCIDENT_ID_PATTERN, SCHEMA, AnalystSpec, RecordedIncident, Truth
from tools.models import (
    Alert,
    AlertEntities,
    Asset,
    AssetKind,
    AttackRef,
    Criticality,
    Environment,
    FileRef,
    Identity,
    IdentityKind,
    ProcessRef,
    RuleRef,
    Severity,
)

Event = dict[str, object]
SOURCE_REPO = "OTRF/Security-Datasets"
LICENSE = "MIT (recording, OTRF Security-Datasets); DRL-1.1 (Sigma rules)"
INTERNAL_NETWORKS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
TACTICS = {
    "reconnaissance", "resource-development", "initial-access", "execution", "persistence",
    "privilege-escalation", "defense-evasion", "credential-access", "discovery",
    "lateral-movement", "collection", "command-and-control", "exfiltration", "impact",
}  # fmt: skip
# Context kept around the evidence: process creations, network connections, DNS, logons.
CONTEXT_KINDS: dict[tuple[str, int], str] = {
    ("sysmon", 1): "process",
    ("security", 4688): "process",
    ("sysmon", 3): "network",
    ("sysmon", 22): "network",
    ("security", 4624): "logon",
    ("security", 4625): "logon",
    ("security", 4648): "logon",
}
CONTEXT_SHARE = {"process": 0.55, "network": 0.3, "logon": 0.15}
DC_EVENTS = {4768, 4769}  # Kerberos KDC events: only domain controllers log them
DROPPED_FIELDS = {"Message", "message", "@metadata", "beat", "host", "event_data", "EventData"}
SERVER_NAME = re.compile(r"SRV|SERVER|SQL|ADFS|EXCH|WEC|WEB|APP|FS\d", re.IGNORECASE)
DC_NAME = re.compile(r"^DC|DC\d*$", re.IGNORECASE)
SYSTEM_DOMAINS = {"nt authority", "window manager", "font driver host", "nt service"}


# --- labels -----------------------------------------------------------------------------------


class _Label(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertSelection(_Label):
    """Which Sigma hits of the dataset form the incident."""

    rules: list[str] = Field(min_length=1, description="Sigma rule ids")
    hosts: list[str] = Field(default_factory=list, description="asset ids; empty: any host")
    images: list[str] = Field(
        default_factory=list, description="acting image basenames; empty: any"
    )
    start: datetime | None = None
    end: datetime | None = None


class IncidentLabel(_Label):
    id: str = Field(pattern=INCIDENT_ID_PATTERN)
    dataset: str
    title: str
    select: AlertSelection
    truth: Truth
    analyst: AnalystSpec = Field(default_factory=AnalystSpec)
    note: str
    context_minutes: float = 10.0
    max_alerts: int = Field(default=25, ge=1, le=100)
    max_telemetry: int = Field(default=2500, ge=10, le=20_000)


class LabelsFile(_Label):
    incidents: list[IncidentLabel]


def read_labels(path: Path) -> LabelsFile:
    return LabelsFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


# --- events -----------------------------------------------------------------------------------


def normalise(raw: dict[str, object]) -> Event:
    """One flat event with `@timestamp`, `host` (asset id) and `event_source`, from any shape."""
    flat: Event = {k: v for k, v in raw.items() if k not in DROPPED_FIELDS}
    nested = raw.get("event_data")
    if isinstance(nested, dict):
        flat.update({str(k): v for k, v in nested.items()})
    sentinel = raw.get("EventData")
    if isinstance(sentinel, str):
        try:
            sentinel = json.loads(sentinel)
        except json.JSONDecodeError:
            sentinel = None
    if isinstance(sentinel, dict):
        flat.update({str(k): v for k, v in sentinel.items()})
    hostname = _first(raw, "Hostname", "computer_name", "Computer") or _nested_name(raw.get("host"))
    flat["hostname"] = hostname
    flat["host"] = asset_id(hostname) if hostname else None
    flat["@timestamp"] = _timestamp(raw)
    flat["event_source"] = event_source(_first(raw, "Channel", "log_name", "Type") or "")
    event_id = raw.get("EventID", raw.get("event_id"))
    flat["EventID"] = (
        int(event_id) if isinstance(event_id, int | str) and str(event_id).isdigit() else None
    )
    flat.pop("event_id", None)
    return flat


def asset_id(hostname: str) -> str:
    return hostname.split(".", 1)[0].upper()


def event_source(channel: str) -> str:
    lowered = channel.lower()
    for needle, name in (
        ("sysmon", "sysmon"),
        ("powershell", "powershell"),
        ("security", "security"),
    ):
        if needle in lowered:
            return name
    return re.sub(r"[^a-z0-9]+", "_", lowered).strip("_") or "unknown"


def entities(event: Event) -> AlertEntities:
    """What an analyst reads off one matching event: host, user, process, addresses, file."""
    image = _first(event, "Image", "SourceImage", "NewProcessName", "ProcessName", "Application")
    pid = _pid(_first(event, "ProcessId", "SourceProcessId", "NewProcessId", "ProcessID"))
    cmd = _first(event, "CommandLine", "HostApplication")
    process = ProcessRef(pid=pid, name=_basename(image), cmd_line=cmd) if (image or cmd) else None
    path = _first(event, "TargetFilename", "ImageLoaded")
    sha256 = _sha256(_first(event, "Hashes", "Hash"))
    if sha256 and not path:
        path = image
    src = _first(event, "SourceIp", "SourceAddress", "IpAddress")
    return AlertEntities(
        host=event.get("host") if isinstance(event.get("host"), str) else None,  # type: ignore[arg-type]
        user=user_of(event),
        process=process,
        src_ip=src if src and _is_address(src) else None,
        dst_ip=_first(event, "DestinationIp", "DestAddress"),
        domain=_first(event, "QueryName", "DestinationHostname"),
        file=FileRef(path=path, sha256=sha256) if (path or sha256) else None,
    )


def user_of(event: Event) -> str | None:
    """`domain\\user` in lower case, preferring a person over SYSTEM and machine accounts."""
    candidates: list[str] = []
    for name in ("User", "SourceUser"):
        value = _first(event, name)
        if value and "\\" in value:
            candidates.append(value)
    for prefix in ("Subject", "Target"):
        user = _first(event, f"{prefix}UserName")
        domain = _first(event, f"{prefix}DomainName")
        if user and domain:
            candidates.append(f"{domain}\\{user}")
    people = [c for c in candidates if not is_system_account(c)]
    chosen = (people or candidates or [None])[0]
    return chosen.lower() if chosen else None


def is_system_account(identity: str) -> bool:
    domain, _, user = identity.lower().rpartition("\\")
    return domain in SYSTEM_DOMAINS or user.endswith("$") or user in {"system", "local service"}


def _first(event: dict[str, object], *names: str) -> str | None:
    for name in names:
        value = event.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value.strip() not in ("", "-"):
            return value
    return None


def _nested_name(value: object) -> str | None:
    if isinstance(value, dict):
        name = value.get("name")  # type: ignore[union-attr]
        return name if isinstance(name, str) else None
    return value if isinstance(value, str) else None


def _timestamp(raw: dict[str, object]) -> str:
    value = (
        _first(raw, "@timestamp", "TimeCreated", "TimeGenerated", "ts") or "1970-01-01T00:00:00Z"
    )
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


def _pid(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value, 16) if value.lower().startswith("0x") else int(value)
    except ValueError:
        return None


def _basename(path: str | None) -> str | None:
    return re.split(r"[\\/]", path)[-1] if path else None


def _sha256(hashes: str | None) -> str | None:
    match = re.search(r"SHA256=([0-9A-Fa-f]{64})", hashes or "")
    return match.group(1).lower() if match else None


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _when(event: Event) -> datetime:
    return datetime.fromisoformat(str(event["@timestamp"]).replace("Z", "+00:00"))


# --- dataset ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SigmaHit:
    source: str
    rule_id: str
    title: str
    level: str
    tags: list[str]
    author: str
    rows: list[int]


@dataclass
class HostFacts:
    """What the full recording says about its hosts and users (one streaming pass)."""

    ips: dict[str, Counter[str]] = field(default_factory=dict)
    dc_hosts: set[str] = field(default_factory=set)
    hostnames: dict[str, str] = field(default_factory=dict)
    privileged: set[str] = field(default_factory=set)
    interactive: dict[str, Counter[str]] = field(default_factory=dict)

    def observe(self, event: Event) -> None:
        host = event.get("host")
        if not isinstance(host, str):
            return
        if isinstance(event.get("hostname"), str):
            self.hostnames.setdefault(host, str(event["hostname"]))
        source, event_id = event.get("event_source"), event.get("EventID")
        if source == "security" and event_id in DC_EVENTS:
            self.dc_hosts.add(host)
        if source == "sysmon" and event_id == 3:
            local = _first(
                event, "SourceIp" if event.get("Initiated") == "true" else "DestinationIp"
            )
            if local and _usable_ip(local):
                self.ips.setdefault(host, Counter())[local] += 1
        if source == "security" and event_id == 4672:
            user = user_of(event)
            if user and not is_system_account(user):
                self.privileged.add(user)
        parent = _basename(_first(event, "ParentImage")) or ""
        if source == "sysmon" and event_id == 1 and parent.lower() == "explorer.exe":
            user = user_of(event)
            if user and not is_system_account(user):
                self.interactive.setdefault(host, Counter())[user] += 1


def _usable_ip(value: str) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return address.version == 4 and not (address.is_loopback or address.is_link_local)


def read_hits(folder: Path) -> list[SigmaHit]:
    hits: list[SigmaHit] = []
    with (folder / "sigma_alerts.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            hits.append(
                SigmaHit(
                    source=row["source"],
                    rule_id=row["rule_id"],
                    title=row["rule_title"],
                    level=row["level"],
                    tags=list(row.get("tags") or []),
                    author=row.get("rule_author") or "unknown",
                    rows=list(row["event_rows"]),
                )
            )
    return hits


def event_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("host/*.json.xz"), *folder.glob("cloud/*.json.xz")])


def stream(path: Path) -> Iterator[tuple[int, Event]]:
    with lzma.open(path, "rt", encoding="utf-8") as lines:
        for row, line in enumerate(lines):
            try:
                raw = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(raw, dict):
                yield row, normalise(raw)


# --- building ---------------------------------------------------------------------------------

Key = tuple[str, int]  # (source file name, 0-based line)


@dataclass
class _Group:
    hit: SigmaHit
    keys: list[Key]


def build_incident(label: IncidentLabel, folder: Path) -> tuple[RecordedIncident, list[Event]]:
    """The incident and its trimmed telemetry (evidence plus bounded context), deterministic."""
    hits = [h for h in read_hits(folder) if h.rule_id in set(label.select.rules)]
    wanted = {(h.source, r) for h in hits for r in h.rows}
    facts = HostFacts()
    evidence: dict[Key, Event] = {}
    candidates: dict[Key, Event] = {}
    for path in event_files(folder):
        for row, event in stream(path):
            facts.observe(event)
            key = (path.name, row)
            if key in wanted:
                evidence[key] = event
            elif (str(event["event_source"]), event["EventID"]) in CONTEXT_KINDS:
                candidates[key] = event
    groups = _select(label, hits, evidence)
    if not groups:
        raise ValueError(f"{label.id}: the selection matches no Sigma hit in {folder.name}")
    kept_evidence = {k: evidence[k] for g in groups for k in g.keys}
    context = _context(label, groups, evidence, candidates, len(kept_evidence))
    ordered = sorted(
        {**kept_evidence, **context}.items(), key=lambda kv: (kv[1]["@timestamp"], kv[0])
    )
    line_of = {key: i for i, (key, _) in enumerate(ordered)}
    alerts = [_alert(label.id, n, g, evidence, line_of) for n, g in enumerate(groups, start=1)]
    telemetry = [event for _, event in ordered]
    incident = RecordedIncident.model_validate(
        {
            "schema": SCHEMA,
            "id": label.id,
            "title": label.title,
            "source": _source(folder, groups),
            "environment": _environment(facts, alerts, telemetry),
            "alerts": alerts,
            "truth": label.truth,
            "analyst": label.analyst,
        }
    )
    return incident, telemetry


def _select(label: IncidentLabel, hits: list[SigmaHit], events: dict[Key, Event]) -> list[_Group]:
    """One group per (rule, host, acting process): repeated hits of a rule on a process dedupe."""
    select = label.select
    hosts = {h.upper() for h in select.hosts}
    images = {i.lower() for i in select.images}
    groups: dict[tuple[str, str, str], _Group] = {}
    for hit in sorted(hits, key=lambda h: (h.rule_id, h.source)):
        for row in hit.rows:
            event = events.get((hit.source, row))
            if event is None:
                continue
            found = entities(event)
            if hosts and (found.host or "").upper() not in hosts:
                continue
            name = (found.process.name if found.process else None) or ""
            if images and name.lower() not in images:
                continue
            when = _when(event)
            if (select.start and when < select.start) or (select.end and when > select.end):
                continue
            pid = found.process.pid if found.process else None
            group_key = (hit.rule_id, found.host or "", f"{pid}:{name.lower()}")
            groups.setdefault(group_key, _Group(hit, [])).keys.append((hit.source, row))
    ordered = sorted(groups.values(), key=lambda g: (events[g.keys[0]]["@timestamp"], g.hit.title))
    for group in ordered:
        group.keys = sorted(group.keys, key=lambda k: (events[k]["@timestamp"], k))[:20]
    return ordered[: label.max_alerts]


def _context(
    label: IncidentLabel,
    groups: list[_Group],
    evidence: dict[Key, Event],
    candidates: dict[Key, Event],
    used: int,
) -> dict[Key, Event]:
    """Process, network and logon events on the alerts' hosts around the alerts, bounded."""
    times = [_when(evidence[k]) for g in groups for k in g.keys]
    margin = timedelta(minutes=label.context_minutes)
    start, end = min(times) - margin, max(times) + margin
    hosts = {evidence[k]["host"] for g in groups for k in g.keys}
    by_kind: dict[str, list[tuple[Key, Event]]] = {kind: [] for kind in CONTEXT_SHARE}
    for key, event in sorted(candidates.items()):
        if event["host"] in hosts and start <= _when(event) <= end:
            kind = CONTEXT_KINDS[(str(event["event_source"]), event["EventID"])]  # type: ignore[index]
            by_kind[kind].append((key, event))
    budget = max(label.max_telemetry - used, 0)
    chosen: dict[Key, Event] = {}
    spare = 0
    for kind, share in CONTEXT_SHARE.items():
        items = by_kind[kind]
        room = int(budget * share) + spare
        picked = _spread(items, room)
        spare = room - len(picked)
        chosen.update(picked)
    return chosen


def _spread(items: list[tuple[Key, Event]], room: int) -> list[tuple[Key, Event]]:
    """At most `room` items evenly spaced over the list (deterministic downsampling)."""
    if len(items) <= room:
        return items
    if room <= 0:
        return []
    return [items[i * len(items) // room] for i in range(room)]


def _alert(
    incident_id: str, n: int, group: _Group, events: dict[Key, Event], line_of: dict[Key, int]
) -> Alert:
    hit = group.hit
    first = events[group.keys[0]]
    tactic = next((t[7:] for t in hit.tags if t.startswith("attack.") and t[7:] in TACTICS), None)
    techniques = [t[7:].upper() for t in hit.tags if re.fullmatch(r"attack\.t\d{4}(\.\d{3})?", t)]
    return Alert(
        uid=f"{incident_id}:{hit.rule_id[:8]}:{n}",
        time=_when(first),
        title=hit.title,
        severity=Severity(hit.level),
        product="sigma",
        rule=RuleRef(uid=hit.rule_id, name=hit.title, author=hit.author),
        attacks=[AttackRef(technique=t, tactic=tactic) for t in techniques],
        entities=entities(first),
        evidence=sorted(line_of[k] for k in group.keys),
    )


def _environment(facts: HostFacts, alerts: list[Alert], telemetry: list[Event]) -> Environment:
    hosts = sorted({str(e["host"]) for e in telemetry if isinstance(e.get("host"), str)})
    assets: list[Asset] = []
    for host in hosts:
        kind = _asset_kind(host, facts)
        owner = facts.interactive.get(host, Counter()).most_common(1)
        assets.append(
            Asset(
                id=host,
                hostname=facts.hostnames.get(host),
                kind=kind,
                criticality={
                    AssetKind.DOMAIN_CONTROLLER: Criticality.CRITICAL,
                    AssetKind.SERVER: Criticality.HIGH,
                }.get(kind, Criticality.MEDIUM),
                ips=[ip for ip, _ in sorted(facts.ips.get(host, Counter()).items())][:4],
                os="windows",
                owner=owner[0][0] if owner else None,
            )
        )
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
    return Environment(
        assets=assets,
        identities=identities,
        internal_networks=INTERNAL_NETWORKS,
        protected=[a.id for a in assets if a.kind is AssetKind.DOMAIN_CONTROLLER],
    )


def _asset_kind(host: str, facts: HostFacts) -> AssetKind:
    if host in facts.dc_hosts or DC_NAME.search(host):
        return AssetKind.DOMAIN_CONTROLLER
    if SERVER_NAME.search(host):
        return AssetKind.SERVER
    return AssetKind.WORKSTATION


def _source(folder: Path, groups: list[_Group]) -> dict[str, object]:
    meta = yaml.safe_load((folder / "metadata.yaml").read_text(encoding="utf-8")) or {}
    dataset = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    files = json.loads((folder / "files.json").read_text(encoding="utf-8"))
    origin = next(
        (f["origin_path"] for f in files.get("files", []) if f.get("type") in ("host", "cloud")),
        f"datasets/{folder.name}",
    )
    authors = ", ".join(str(c) for c in meta.get("contributors") or []) or "OTRF contributors"
    rules = sorted({f"{g.hit.title} ({g.hit.rule_id}) by {g.hit.author}" for g in groups})
    return {
        "dataset": f"OTRF Security-Datasets {folder.name}: {meta.get('title', folder.name)}",
        "ref": f"https://github.com/{SOURCE_REPO}/blob/{dataset['source']['commit']}/{origin}",
        "commit": dataset["source"]["commit"],
        "license": LICENSE,
        "attribution": (
            f"Recording by {authors} (OTRF Security-Datasets, MIT). "
            f"Alerts by SigmaHQ rules (Detection Rule License 1.1): {'; '.join(rules)}"
        ),
    }


# --- output -----------------------------------------------------------------------------------


def write_incident(out: Path, incident: RecordedIncident, telemetry: Iterable[Event]) -> Path:
    folder = out / incident.id
    folder.mkdir(parents=True, exist_ok=True)
    body = incident.model_dump(mode="json", by_alias=True, exclude_none=False)
    (folder / "incident.json").write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    buffer = io.BytesIO()
    # mtime=0 and no file name: the same events give the same bytes.
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as gz:
        for event in telemetry:
            gz.write((json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n").encode())
    (folder / "telemetry.jsonl.gz").write_bytes(buffer.getvalue())
    return folder


def run(labels_path: Path, datasets: Path, out: Path, only: set[str] | None = None) -> list[Path]:
    written: list[Path] = []
    for label in read_labels(labels_path).incidents:
        if only and label.id not in only:
            continue
        incident, telemetry = build_incident(label, datasets / label.dataset)
        written.append(write_incident(out, incident, telemetry))
        for warning in unresolved_targets(incident, telemetry):
            print(f"warning: {label.id}: {warning}", file=sys.stderr)
    return written


def unresolved_targets(incident: RecordedIncident, telemetry: Iterable[Event] = ()) -> list[str]:
    """Expected-action targets found neither in the alerts, the environment nor the events."""
    env = incident.environment
    seen = {str(e.get(f)).lower() for e in telemetry for f in ("DestinationIp", "SourceIp")}
    known = {a.id.lower() for a in env.assets} | {i.id.lower() for i in env.identities}
    for alert in incident.alerts:
        e = alert.entities
        known |= {v.lower() for v in (e.src_ip, e.dst_ip, e.domain, e.user, e.host) if v}
    for asset in env.assets:
        known |= set(asset.ips)
    known |= seen
    missing: list[str] = []
    for action in [*incident.truth.expected_actions, *incident.truth.acceptable_actions]:
        target = action.target.split(":", 1)[0] if ":" in action.target else action.target
        if target.lower() not in known:
            missing.append(
                f"{action.kind.value} target {action.target!r} not in alerts/environment"
            )
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulations.importers.otrf")
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--datasets", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", action="append", help="incident id to (re)build; repeatable")
    args = parser.parse_args(argv)
    for folder in run(args.labels, args.datasets, args.out, set(args.only or [])):
        print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
