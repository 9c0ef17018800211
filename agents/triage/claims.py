"""The triage's claims and the records they rest on (`agents.models.Claim`): an alerting
process's signals with its record, a line from one host's telemetry with the records it names,
and the rationale's per-alert and telemetry lines with their references."""

from __future__ import annotations

from agents.entities import AssetIndex
from agents.evidence import alert_ref, line_refs, record_ref, unique
from agents.models import Claim, EvidenceRef
from agents.processes import ProcessKey
from agents.seam import truncate
from agents.telemetry import HostTelemetry, judge_process
from agents.triage.state import AlertAssessment
from tools.models import Alert, Environment

MAX_NOTES = 10  # telemetry lines in the rationale


def corroborate_host(
    telemetry: HostTelemetry, alerts: list[Alert], networks: list[str]
) -> tuple[float, list[str], dict[str, list[EvidenceRef]]]:
    """Judge each alerting process once; a process with no record counts nothing. Each note
    comes with the record it was judged on."""
    score = 0.0
    notes: list[str] = []
    refs: dict[str, list[EvidenceRef]] = {}
    seen: set[ProcessKey] = set()
    for alert in alerts:
        process = alert.entities.process
        if process is None or process.pid is None:
            continue
        record = telemetry.process(process.pid, alert.time)  # pids are reused: the one then
        if record is None or telemetry.table.key(record) in seen:
            continue
        seen.add(telemetry.table.key(record))
        for signal in judge_process(record, telemetry, networks):
            score += signal.weight
            note = ("+" if signal.weight > 0 else "") + f"{signal.weight:g} {signal.text}"
            notes.append(note)
            refs[note] = unique([*refs.get(note, []), record_ref(telemetry.host, record)])
    return score, notes, refs


def refer_lines(
    refs: dict[str, list[EvidenceRef]],
    lines: list[str],
    telemetry: HostTelemetry,
    alerts: list[Alert],
) -> None:
    """Give each of `lines` (drawn from `telemetry`) without references the records it names."""
    for line in lines:
        refs.setdefault(line, line_refs(line, telemetry, alerts))


def rationale_claims(
    alerts: list[Alert],
    environment: Environment,
    top: list[AlertAssessment],
    notes: list[str],
    refs: dict[str, list[EvidenceRef]],
) -> tuple[list[str], list[Claim]]:
    """The rationale's lines for the `top` alerts and the telemetry `notes`, and the claims among
    them: an alert's line rests on the alert (on its host as the reads named it, the asset id),
    a note on the records it was drawn from."""
    by_uid = {a.uid: a for a in alerts}
    index = AssetIndex(environment)
    lines: list[str] = []
    claims: list[Claim] = []
    for a in top:
        line = truncate(f"alert {a.uid}: {a.score:g} pts; " + "; ".join(a.reasons), 300)
        lines.append(line)
        alert = by_uid.get(a.uid)
        where = index.asset_id(alert.entities.host) if alert and alert.entities.host else None
        if alert is not None and (ref := alert_ref(alert, where)) is not None:
            claims.append(Claim(text=line, refs=[ref]))
    for note in notes[:MAX_NOTES]:
        lines.append(line := truncate(note, 300))
        if refs.get(note):
            claims.append(Claim(text=line, refs=refs[note]))
    return lines, claims
