"""The read-only tools an investigation model is given, and the desk that answers them.

Each tool is a typed question (a Pydantic schema, extra arguments forbidden) about one of the
incident's hosts (those the rules read) within the incident's window: there is no argument for a
time, a write or another host, so a call cannot ask for one. `ToolDesk.answer` refuses a tool
that was not given, arguments outside the schema, a host outside the scope and an indicator that
appears nowhere in the evidence; it answers the rest through the investigation's own retrying
EDR reader (the same read path, the same retry budget) and threat intelligence, at most
`MAX_EVENTS` events per answer, compacted and truncated. Every typed value it answers with joins
the evidence pool (`EvidencePool`) the model's conclusion is checked against.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.entities import host_key, identity_key, single_ip
from agents.reads import Fetch, RetryingEdr, read_window
from agents.seam import truncate
from agents.telemetry import HostTelemetry
from tools.errors import ToolError
from tools.intel.base import ThreatIntelReader
from tools.models import Indicator, IndicatorKind

MAX_EVENTS = 30  # events per answer; the rest are counted, not shown
RESULT_BUDGET = 4_000  # characters of one answer, before it is fenced as DATA
TEXT_FIELD = 240  # characters of one command line, path or value in an answer


class _Question(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an argument nobody asked for is refused


class ProcessTree(_Question):
    """Processes recorded on one of the incident's hosts in the incident's window; with `pid`,
    that process, its ancestors and its descendants."""

    host: str = Field(max_length=256)
    pid: int | None = Field(default=None, ge=0)


class NetworkConnections(_Question):
    """Network connections on one of the incident's hosts in the window; with `pid`, that
    process's only."""

    host: str = Field(max_length=256)
    pid: int | None = Field(default=None, ge=0)


class Logons(_Question):
    """Logons on one of the incident's hosts in the window; with `user`, that account's only."""

    host: str = Field(max_length=256)
    user: str | None = Field(default=None, max_length=256)


class FileEvents(_Question):
    """Files created on one of the incident's hosts in the window; with `pid`, by that process."""

    host: str = Field(max_length=256)
    pid: int | None = Field(default=None, ge=0)


class RegistryEvents(_Question):
    """Registry writes on one of the incident's hosts in the window; with `pid`, by that
    process."""

    host: str = Field(max_length=256)
    pid: int | None = Field(default=None, ge=0)


class IndicatorReputation(_Question):
    """Threat intelligence's reputation of an address, domain or SHA-256 seen in the evidence."""

    kind: Literal["ip", "domain", "sha256"]
    value: str = Field(max_length=256)


READ_TOOLS: tuple[type[_Question], ...] = (
    ProcessTree,
    NetworkConnections,
    Logons,
    FileEvents,
    RegistryEvents,
    IndicatorReputation,
)
EntityKind = Literal["hosts", "users", "ips", "domains", "sha256"]


def entity_key(kind: EntityKind, value: str) -> str | None:
    """The normalised key of a value of `kind` (the remediation's target keys), or None."""
    match kind:
        case "hosts":
            return host_key(value) or None
        case "users":
            return identity_key(value) or None
        case "ips":
            return single_ip(value)
        case "domains":
            return value.strip().lower().rstrip(".") or None
        case "sha256":
            return value.strip().lower() or None


@dataclass
class EvidencePool:
    """Entities found in the evidence (the alerts' extraction, the rules' report, the typed
    fields of what the tools answered), by kind: key -> the spelling found there."""

    found: dict[str, dict[str, str]] = field(
        default_factory=lambda: {k: {} for k in ("hosts", "users", "ips", "domains", "sha256")}
    )

    def add(self, kind: EntityKind, values: Iterable[str | None]) -> None:
        for value in values:
            key = entity_key(kind, value) if value else None
            if key is not None:
                self.found[kind].setdefault(key, value.strip())  # type: ignore[union-attr]

    def canonical(self, kind: EntityKind, value: str) -> str | None:
        """The evidence's spelling of `value`, None when the evidence never names it."""
        key = entity_key(kind, value)
        return self.found[kind].get(key) if key is not None else None

    def kind_of(self, value: str) -> tuple[EntityKind, str] | None:
        for kind in ("hosts", "users", "ips", "domains", "sha256"):
            if (spelling := self.canonical(kind, value)) is not None:  # type: ignore[arg-type]
                return kind, spelling  # type: ignore[return-value]
        return None


@dataclass
class ToolDesk:
    """Answers the model's questions within the incident's hosts and window."""

    edr: RetryingEdr
    intel: ThreatIntelReader
    hosts: dict[str, str]  # host key -> the host as the rules read it
    start: datetime
    end: datetime
    pool: EvidencePool
    _read: dict[tuple[str, str], list[Any]] = field(default_factory=dict)

    async def answer(
        self, name: str, args: object
    ) -> tuple[Literal["answered", "refused", "failed"], str]:
        """The outcome of one call and its text: the answer's JSON, or why it was refused."""
        tool = next((t for t in READ_TOOLS if t.__name__ == name), None)
        if tool is None:
            return "refused", f"a tool it was not given: {truncate(name, 80)}"
        try:
            question = tool.model_validate(args)
        except ValidationError as error:
            return "refused", f"arguments outside the schema ({error.error_count()} errors)"
        if isinstance(question, IndicatorReputation):
            return await self._reputation(question)
        host = self.hosts.get(host_key(getattr(question, "host", "")))
        if host is None:
            return "refused", "host outside the incident's scope"
        try:
            rows = await self._rows(question, host)
        except ToolError as error:
            return "failed", f"unavailable ({type(error).__name__})"
        return "answered", _fitted(host, rows)

    async def _reputation(
        self, question: IndicatorReputation
    ) -> tuple[Literal["answered", "refused", "failed"], str]:
        kind = {"ip": "ips", "domain": "domains", "sha256": "sha256"}[question.kind]
        value = self.pool.canonical(kind, question.value)  # type: ignore[arg-type]
        if value is None:
            return "refused", "indicator not found in the incident's evidence"
        try:
            found = await self.intel.reputation(
                Indicator(kind=IndicatorKind(question.kind), value=value)
            )
        except ToolError as error:
            return "failed", f"unavailable ({type(error).__name__})"
        return "answered", json.dumps(found.model_dump(mode="json"), ensure_ascii=True)

    async def _rows(self, question: _Question, host: str) -> list[dict[str, object]]:
        pid = getattr(question, "pid", None)
        match question:
            case ProcessTree():
                events = await self._events("processes", host, self.edr.process_events)
                self.pool.add("users", (e.user for e in events))
                self.pool.add("sha256", (e.sha256 for e in events))
                return [_process(e) for e in _family(host, events, pid)]
            case NetworkConnections():
                events = await self._events("connections", host, self.edr.network_connections)
                events = [e for e in events if pid is None or e.pid == pid]
                self.pool.add("ips", (ip for e in events for ip in (e.src_ip, e.dst_ip)))
                self.pool.add("domains", (e.domain for e in events))
                return [_connection(e) for e in events]
            case Logons(user=user):
                events = await self._events("logons", host, self.edr.logons)
                wanted = identity_key(user) if user else None
                events = [
                    e for e in events if wanted is None or identity_key(e.user or "") == wanted
                ]
                self.pool.add("users", (e.user for e in events))
                self.pool.add("ips", (e.src_ip for e in events))
                return [_logon(e) for e in events]
            case FileEvents():
                events = await self._events("files", host, self.edr.file_events)
                return [_file(e) for e in events if pid is None or e.pid == pid]
            case RegistryEvents():
                events = await self._events("registry", host, self.edr.registry_events)
                return [_registry(e) for e in events if pid is None or e.pid == pid]
        return []

    async def _events(
        self, kind: str, host: str, method: Callable[..., Awaitable[list[Any]]]
    ) -> list[Any]:
        """One kind of a host's events in the window, read once per loop (paged, as the rules
        read them)."""
        if (kind, host) not in self._read:
            fetch: Fetch[Any] = lambda a, b, limit: method(host, a, b, limit)  # noqa: E731
            self._read[(kind, host)] = (await read_window(fetch, self.start, self.end)).events
        return self._read[(kind, host)]


def _fitted(host: str, rows: list[dict[str, object]]) -> str:
    """The answer as JSON of at most `RESULT_BUDGET` characters: whole events, the first
    `MAX_EVENTS` that fit, and how many were left out (never a cut inside an event)."""
    shown = rows[:MAX_EVENTS]
    while True:
        body: dict[str, object] = {"host": host, "events": shown}
        if len(rows) > len(shown):
            body["not_shown"] = len(rows) - len(shown)
        text = json.dumps(body, ensure_ascii=True)
        if len(text) <= RESULT_BUDGET or not shown:
            return text
        shown = shown[: len(shown) // 2]


def _family(host: str, events: list[Any], pid: int | None) -> list[Any]:
    """All the processes, or the one `pid` names with its ancestors and descendants."""
    if pid is None:
        return events
    telemetry = HostTelemetry(host=host, processes=events)
    roots = [e for e in events if e.pid == pid]
    family: list[Any] = []
    for root in roots:
        family += reversed(telemetry.ancestors(root))
        queue = [root]
        while queue and len(family) < MAX_EVENTS * 2:
            current = queue.pop(0)
            family.append(current)
            queue += telemetry.children(current)
    return list(dict.fromkeys(family))


def _text(value: str | None) -> str | None:
    return truncate(value, TEXT_FIELD) if value else value


def _process(e: Any) -> dict[str, object]:
    return {
        "time": e.time.isoformat(),
        "pid": e.pid,
        "image": _text(e.image or e.name),
        "cmd_line": _text(e.cmd_line),
        "parent_pid": e.parent_pid,
        "parent_image": _text(e.parent_image),
        "parent_cmd_line": _text(e.parent_cmd_line),
        "user": e.user,
        "sha256": e.sha256,
    }


def _connection(e: Any) -> dict[str, object]:
    return {
        "time": e.time.isoformat(),
        "pid": e.pid,
        "image": _text(e.image),
        "src": f"{e.src_ip}:{e.src_port}",
        "dst": f"{e.dst_ip}:{e.dst_port}",
        "domain": e.domain,
    }


def _logon(e: Any) -> dict[str, object]:
    return {
        "time": e.time.isoformat(),
        "user": e.user,
        "type": e.logon_type,
        "src_ip": e.src_ip,
        "success": e.success,
    }


def _file(e: Any) -> dict[str, object]:
    return {
        "time": e.time.isoformat(),
        "pid": e.pid,
        "image": _text(e.image),
        "path": _text(e.path),
    }


def _registry(e: Any) -> dict[str, object]:
    return {
        "time": e.time.isoformat(),
        "pid": e.pid,
        "image": _text(e.image),
        "operation": e.operation,
        "key": _text(e.key),
        "details": _text(e.details),
    }
