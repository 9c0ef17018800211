"""Triage corroboration: what the incident's hosts' telemetry says of its alerts.

Per host (the hosts of the most significant alerts first, at most `agents.attention.MAX_HOSTS`):
the alerting processes judged on their records (`claims.corroborate_host`, points capped at
MAX_CORROBORATION, maintenance counting negative), the kill-chain stages telemetry shows
(`stages.py`), proof of an attack whatever alerted (an implant's lineage or enumeration, a capture
by the attacker's program: `agents.capture`, a service installed from another machine:
`agents.remote_services`), and alerts proven to be the platform's own maintenance
(`maintenance.py`), which then count nothing. Every line comes with the records it rests on
(`claim_refs`); the operators' declared work (`operators.py`) is judged only when every host was
read and nothing proves an attack.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from agents.attention import hosts_by_attention
from agents.capture import CAPTURE_STAGE_WEIGHT, captures
from agents.entities import AssetIndex
from agents.evidence import alert_ref, unique
from agents.models import EvidenceRef
from agents.remote_services import remote_installs
from agents.telemetry import HostTelemetry, read_host
from agents.triage.claims import corroborate_host, refer_lines
from agents.triage.discovery import implant_discovery
from agents.triage.maintenance import maintenance_reason
from agents.triage.operators import operator_work
from agents.triage.stages import (
    LATERAL_STAGE_WEIGHT,
    implant_lineage,
    incident_movements,
    telemetry_stages,
)
from agents.triage.state import AlertAssessment, TriageState
from tools.edr.base import EdrReader
from tools.models import Alert

MAX_CORROBORATION = 8.0
MIN_CORROBORATION = -4.0

Stage = tuple[str, float, str]  # tactic, weight, the rationale's line


@dataclass
class Findings:
    """What the hosts' telemetry showed, host after host, in the order the rationale gives it."""

    notes: list[str] = field(default_factory=list)
    score: float = 0.0
    stages: list[Stage] = field(default_factory=list)
    lineage: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    maintenance: dict[str, str] = field(default_factory=dict)  # alert uid -> why
    telemetries: dict[str, HostTelemetry] = field(default_factory=dict)
    # a line's records, taken from those judged
    refs: dict[str, list[EvidenceRef]] = field(default_factory=dict)

    def add_host(
        self,
        host: str,
        alerts: list[Alert],
        telemetry: HostTelemetry,
        index: AssetIndex,
        networks: list[str],
    ) -> None:
        self.telemetries[host] = telemetry
        self.gaps += telemetry.gaps
        marks = (len(self.notes), len(self.stages), len(self.lineage))
        score, found, found_refs = corroborate_host(telemetry, alerts, networks)
        self.score += score
        self.notes += found
        self.refs |= found_refs
        self.stages += telemetry_stages(telemetry, alerts, index)
        self.lineage += implant_lineage(telemetry, alerts)
        self.lineage += [x for x in implant_discovery(telemetry, alerts) if x not in self.lineage]
        self._add_proofs(telemetry, index)
        self._add_maintenance(host, alerts, telemetry)
        drawn = [why for _, _, why in self.stages[marks[1] :]]
        drawn = [*self.notes[marks[0] :], *drawn, *self.lineage[marks[2] :]]
        refer_lines(self.refs, drawn, telemetry, alerts)

    def _add_proofs(self, telemetry: HostTelemetry, index: AssetIndex) -> None:
        for capture in captures(telemetry):  # an implant recording: an attack
            self.lineage.append("capture by the attacker's program: " + capture.summary())
            self.stages.append(
                ("collection", CAPTURE_STAGE_WEIGHT, "stage collection: " + capture.summary())
            )
        for install in remote_installs(telemetry, index):  # a movement proven: an attack
            self.lineage.append("remote service install: " + install.summary())
            self.stages.append(
                (
                    "lateral-movement",
                    LATERAL_STAGE_WEIGHT,
                    "stage lateral movement: " + install.summary(),
                )
            )

    def _add_maintenance(self, host: str, alerts: list[Alert], telemetry: HostTelemetry) -> None:
        for alert in alerts:
            if (why := maintenance_reason(alert, telemetry)) is not None:
                self.maintenance[alert.uid] = why
                self.refs.setdefault(why, unique([alert_ref(alert, host)]))


async def corroborate_incident(edr: EdrReader, state: TriageState) -> dict[str, Any]:
    """The `corroborate` node's update of the triage state."""
    alerts = state["input"].alerts
    environment = state["environment"]
    index = AssetIndex(environment)
    by_host = _alerts_by_host(alerts, index)
    findings = Findings()
    # the hosts of the most significant alerts first: background alerts on a dozen
    # servers must not fill the cap (agents/attention.py); a cut is said
    attention = hosts_by_attention(alerts, state["assessments"], index, list(by_host))
    findings.gaps += attention.gaps
    findings.notes += attention.notes
    for host in attention.hosts:
        host_alerts = by_host[host]
        times = [a.time for a in host_alerts]
        telemetry = await read_host(edr, host, min(times), max(times), registrations=True)
        findings.add_host(host, host_alerts, telemetry, index, environment.internal_networks)
    assessments = [_discount_maintenance(a, findings.maintenance) for a in state["assessments"]]
    found_stages = findings.stages + incident_movements(alerts, assessments, index)
    stages: dict[str, float] = {}
    for tactic, weight, _ in found_stages:
        stages[tactic] = max(stages.get(tactic, 0.0), weight)
    notes = findings.notes + [why for _, _, why in found_stages]
    # a host the attention cap left unread proves nothing: operators' work needs them all
    protected = {p.strip().lower() for p in environment.protected}
    operators = (
        operator_work(alerts, index, findings.telemetries, protected)
        if set(by_host) <= set(findings.telemetries) and not findings.lineage
        else None
    )
    return {
        "operators": operators,
        "assessments": assessments,
        "corroboration": notes + findings.lineage + list(findings.maintenance.values()),
        "corroboration_score": max(MIN_CORROBORATION, min(MAX_CORROBORATION, findings.score)),
        "stages": stages,
        "lineage": findings.lineage,
        "gaps": findings.gaps,
        "claim_refs": findings.refs,
    }


def _alerts_by_host(alerts: list[Alert], index: AssetIndex) -> dict[str, list[Alert]]:
    by_host: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        if alert.entities.host:
            by_host[index.asset_id(alert.entities.host)].append(alert)
    return by_host


def _discount_maintenance(
    assessment: AlertAssessment, maintenance: dict[str, str]
) -> AlertAssessment:
    """An alert proven to be the platform's own maintenance (`maintenance.py`) counts nothing
    toward the verdict or the category."""
    why = maintenance.get(assessment.uid)
    if why is None:
        return assessment
    return assessment.model_copy(
        update={
            "score": 0.0,
            "stage_weight": 0.0,
            "noisy": True,
            "maintenance": True,
            "reasons": [*assessment.reasons, "platform maintenance: " + why],
        }
    )
