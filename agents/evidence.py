"""What a claim of the agents rests on, as references to the records they read (`EvidenceRef`):
an alert, a process record, or the records a line about one host's telemetry names.

A claim is made where the agent judged the records, so the references are taken there from the
records in hand; the records themselves are kept per incident by the activity that read them
(`orchestrator/activities/evidence.py`), never read again from the EDR when a page opens."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from agents.models import EvidenceRef, Finding
from agents.telemetry import HostTelemetry, alert_records
from tools.models import Alert
from tools.results import ProcessEvent

MAX_REFS = 4  # per claim: enough to open the view around the time, not a copy of the window
_PAREN_PID = re.compile(r"\((\d{1,7})\)")


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def alert_ref(alert: Alert, host: str | None = None) -> EvidenceRef | None:
    """The alert itself, on `host` (the asset id it was read under) or its own host field."""
    where = host or alert.entities.host
    if not where:
        return None
    process = alert.entities.process
    return EvidenceRef(
        host=where,
        time=aware(alert.time),
        source="alert",
        pid=process.pid if process is not None else None,
        record_id=alert.uid,
    )


def record_ref(host: str, record: ProcessEvent) -> EvidenceRef:
    return EvidenceRef(
        host=host, time=aware(record.time), source="process", pid=record.pid, record_id=record.guid
    )


def unique(refs: Iterable[EvidenceRef | None]) -> list[EvidenceRef]:
    seen: list[EvidenceRef] = []
    for ref in refs:
        if ref is not None and ref not in seen:
            seen.append(ref)
    return seen[:MAX_REFS]


def line_refs(text: str, telemetry: HostTelemetry, alerts: list[Alert]) -> list[EvidenceRef]:
    """The records a line about `telemetry`'s host rests on: the processes it names (as
    `<host>:<pid>` or `(<pid>)`) as they were at the host's alerts, else the alerting processes'
    records, else the alerts themselves."""
    host = telemetry.host
    when = max((a.time for a in alerts), default=None)
    pids = [int(p) for p in re.findall(re.escape(host) + r":(\d{1,7})", text, re.I)]
    pids += [int(p) for p in _PAREN_PID.findall(text)]
    named = [telemetry.process(pid, when) for pid in pids]
    refs: list[EvidenceRef | None] = [record_ref(host, r) for r in named if r is not None]
    if not refs:
        refs = [record_ref(host, r) for a in alerts for r in alert_records(a, telemetry)]
    if not refs:
        refs = [alert_ref(a, host) for a in alerts]
    return unique(refs)


def refer_findings(
    findings: list[Finding], telemetries: dict[str, HostTelemetry], alerts: list[Alert]
) -> list[Finding]:
    """Findings made without references (a lateral movement, an account, a note) get those of
    the hosts they name, from each host's telemetry as `line_refs` takes them."""
    named = [(re.compile(rf"(?<![\w.-]){re.escape(h)}(?![\w-])", re.I), h) for h in telemetries]
    referred: list[Finding] = []
    for finding in findings:
        text = " ".join([finding.summary, *finding.evidence])
        if finding.refs:
            referred.append(finding)
            continue
        refs: list[EvidenceRef | None] = []
        for pattern, host in named:
            if pattern.search(text):
                on_host = [a for a in alerts if same_host(a.entities.host, host)]
                refs += line_refs(text, telemetries[host], on_host)
        referred.append(finding.model_copy(update={"refs": unique(refs)}) if refs else finding)
    return referred


def same_host(alerted: str | None, host: str) -> bool:
    """An alert's host field against the asset id a read named: the same name, or the same first
    label (`ws-17` and `ws-17.corp.example`)."""
    if not alerted:
        return False
    a, b = alerted.strip().lower(), host.strip().lower()
    return a == b or a.split(".", 1)[0] == b.split(".", 1)[0]
