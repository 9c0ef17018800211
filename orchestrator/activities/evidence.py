"""Keeping what the agents read: an EDR reader that remembers every record it returned during
one agent run, and the choice of which of them to keep in the store (`evidence_events`).

The agents' claims name records (`agents.models.EvidenceRef`); the activity that ran the agent
keeps the records it read on each referenced host within `KEEP_WINDOW` of each referenced time,
exactly as they were read (nothing is asked of the EDR again), so that the console can show
what a claim rests on and its surroundings. Also the `agent.investigation` audit entry: the
investigation's report (findings with their references, scope) audited as the triage is."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from agents.evidence import aware
from agents.models import EvidenceRef, Finding, InvestigationReport
from orchestrator.activities.errors import activity_source
from orchestrator.store.evidence import KeptEvent
from orchestrator.store.records import AuditEvent
from orchestrator.store.repository import Store
from tools.edr.base import AccountEventReader, EdrReader
from tools.results import (
    AccountEvent,
    FileEvent,
    HostInfo,
    LogonEvent,
    NetworkConnection,
    ProcessEvent,
    RegistryEvent,
    SystemEvent,
)

KEEP_WINDOW = timedelta(minutes=5)
MAX_KEPT = 2_000  # per agent run: the records around its claims, not the whole window read
MAX_DETAIL = 16_000  # characters of an audit entry's JSON detail
Record = (
    ProcessEvent
    | NetworkConnection
    | LogonEvent
    | RegistryEvent
    | FileEvent
    | SystemEvent
    | AccountEvent
)
_E = TypeVar("_E", bound=Record)
When = datetime | None


class RecordingEdr:
    """`edr`, remembering what each read returned (the same list objects, so a read's
    `truncated` flag is the reader's). It offers the optional account read and answers it
    with nothing when `edr` does not, as `agents.reads.RetryingEdr` does."""

    def __init__(self, edr: EdrReader) -> None:
        self.edr = edr
        self.read: list[tuple[str, str, Sequence[Record]]] = []

    async def find_host(self, host: str) -> HostInfo | None:
        return await self.edr.find_host(host)

    async def process_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[ProcessEvent]:
        return self._note(host, "process", await self.edr.process_events(host, start, end, limit))

    async def network_connections(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[NetworkConnection]:
        found = await self.edr.network_connections(host, start, end, limit)
        return self._note(host, "connection", found)

    async def logons(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[LogonEvent]:
        return self._note(host, "logon", await self.edr.logons(host, start, end, limit))

    async def registry_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[RegistryEvent]:
        found = await self.edr.registry_events(host, start, end, limit)
        return self._note(host, "registry", found)

    async def file_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[FileEvent]:
        return self._note(host, "file", await self.edr.file_events(host, start, end, limit))

    async def system_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[SystemEvent]:
        return self._note(host, "system", await self.edr.system_events(host, start, end, limit))

    async def account_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[AccountEvent]:
        reader = self.edr
        if not isinstance(reader, AccountEventReader):
            return []
        return self._note(host, "account", await reader.account_events(host, start, end, limit))

    def _note(self, host: str, kind: str, events: list[_E]) -> list[_E]:
        self.read.append((host, kind, events))
        return events

    def kept_for(self, refs: Iterable[EvidenceRef]) -> list[KeptEvent]:
        """The records read on each referenced host within `KEEP_WINDOW` of its reference."""
        windows: dict[str, list[datetime]] = {}
        for ref in refs:
            windows.setdefault(ref.host.lower(), []).append(aware(ref.time))
        # One record per digest; keyed on what the digest hashes (host, kind, time, fields: the
        # same equality, without hashing every candidate). A record object returned by several
        # reads is converted once.
        kept: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], KeptEvent] = {}
        made: set[tuple[str, str, int]] = set()
        for host, kind, events in self.read:
            times = windows.get(host.lower())
            if not times:
                continue
            for event in events:
                seen = (host.lower(), kind, id(event))  # `self.read` keeps every event alive
                if seen in made:
                    continue
                made.add(seen)
                at = aware(event.time)  # every telemetry record has its time
                if any(abs(at - t) <= KEEP_WINDOW for t in times):
                    record = kept_event(host, kind, event)
                    key = (record.host, record.kind, record.time.isoformat(), record.fields)
                    kept.setdefault(key, record)
        return sorted(kept.values(), key=lambda e: e.time)[:MAX_KEPT]


def kept_event(host: str, kind: str, event: Record) -> KeptEvent:
    data = event.model_dump(mode="json")
    fields = tuple(
        (name, value if isinstance(value, str) else json.dumps(value))
        for name, value in data.items()
        if name not in ("time", "host") and value not in (None, "", [], ())
    )
    pid = data.get("pid")
    guid = data.get("guid") or data.get("process_guid")
    # Built, not validated: every value has its field's type by construction here (the test
    # validates a built one); validating the fields' pairs took 2.5% of a simulation's GIL time.
    return KeptEvent.model_construct(
        host=host.lower(),
        time=aware(event.time),
        kind=kind,
        pid=pid if isinstance(pid, int) else None,
        record_id=guid if isinstance(guid, str) else None,
        fields=fields,
    )


async def keep_evidence(
    store: Store, incident_id: str, recorder: RecordingEdr, refs: Iterable[EvidenceRef]
) -> int:
    return await store.evidence.keep(incident_id, recorder.kept_for(refs))


def claims_json(items: Iterable[tuple[str, list[EvidenceRef]]]) -> str:
    """`[{"text", "refs": [...]}]` for an audit entry's detail, cut to whole claims."""
    out: list[dict[str, object]] = []
    size = 2
    for text, refs in items:
        if not refs:
            continue
        claim = {"text": text, "refs": [r.model_dump(mode="json") for r in refs]}
        size += len(json.dumps(claim)) + 1
        if size > MAX_DETAIL:
            break
        out.append(claim)
    return json.dumps(out)


async def audit_investigation(store: Store, incident_id: str, report: InvestigationReport) -> None:
    """One `agent.investigation` entry per distinct report (a playbook's later rounds return
    the same report: audited once)."""
    text = report.model_dump_json()
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    for entry in await store.audit_entries(incident_id=incident_id):
        if entry.type == "agent.investigation" and entry.detail.get("report_digest") == digest:
            return
    findings: list[Finding] = report.findings
    await store.append_audit(
        AuditEvent(
            type="agent.investigation",
            actor="garrison-agent",
            incident_id=incident_id,
            target=incident_id,
            outcome=f"{report.verdict.value}:{report.category.value if report.category else '-'}",
            source=activity_source(),
            detail={
                "report_digest": digest,
                "confidence": report.confidence,
                "corroborated": report.corroborated,
                "findings": "\n".join(f.summary.replace("\n", " ") for f in findings)[:8_000],
                "claims": claims_json((f.summary.replace("\n", " "), f.refs) for f in findings),
                "compromised_assets": ", ".join(report.compromised_assets)[:1_000],
                "compromised_identities": ", ".join(report.compromised_identities)[:1_000],
                "attacker_ips": ", ".join(report.attacker_ips)[:1_000],
                "attacker_domains": ", ".join(report.attacker_domains)[:1_000],
                "malicious_processes": ", ".join(report.malicious_processes)[:1_000],
                "evidence_gaps": "; ".join(report.evidence_gaps)[:1_000],
            },
        )
    )
