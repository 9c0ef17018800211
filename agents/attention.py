"""Which alerts and hosts the agents look at first when an incident holds more than they read.

Triage and the investigation read the telemetry of at most `MAX_HOSTS` hosts, and the model sees
at most `MAX_MODEL_ALERTS` alerts. Taken in arrival order, those caps fill with whatever came
first: a monitoring agent's background alerts on a dozen servers, hours before the few alerts
that matter. Attention orders by significance instead:

- alerts: significant ones first (not known to be noisy, at least `SIGNIFICANT` points), by
  assessed score, one alert per rule before any rule's repeats (distinct rules say more than a
  rule firing fifty times); background alerts after, in time order;
- hosts: in the order their alerts come in that ranking, then the incident's other hosts.

A cut is said, never silent (`Attention.notes`): a host with significant alerts left unread is
an evidence gap (the incident is degraded, no containment without a human); hosts with only
background alerts left unread are a note in the findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agents.entities import AssetIndex
from agents.triage.state import AlertAssessment
from tools.models import Alert

MAX_HOSTS = 10
MAX_MODEL_ALERTS = 30
SIGNIFICANT = 2.0  # points of an alert that counts (triage's SIGNIFICANT_ALERT)


def is_significant(assessment: AlertAssessment | None) -> bool:
    return assessment is not None and not assessment.noisy and assessment.score >= SIGNIFICANT


def rank_alerts(alerts: Sequence[Alert], assessments: Sequence[AlertAssessment]) -> list[Alert]:
    """The alerts, most telling first (module docstring)."""
    by_uid = {a.uid: a for a in assessments}
    significant = [a for a in alerts if is_significant(by_uid.get(a.uid))]
    background = [a for a in alerts if not is_significant(by_uid.get(a.uid))]
    significant.sort(key=lambda a: (-by_uid[a.uid].score, a.time))
    firsts: list[Alert] = []
    repeats: list[Alert] = []
    rules: set[str] = set()
    for alert in significant:
        rule = by_uid[alert.uid].rule
        (repeats if rule in rules else firsts).append(alert)
        rules.add(rule)
    return [*firsts, *repeats, *sorted(background, key=lambda a: a.time)]


@dataclass
class Attention:
    """The hosts to read, most significant first, and what the cap left out."""

    hosts: list[str]
    gaps: list[str] = field(default_factory=list)  # significant hosts left unread
    notes: list[str] = field(default_factory=list)  # background hosts left unread


def hosts_by_attention(
    alerts: Sequence[Alert],
    assessments: Sequence[AlertAssessment],
    index: AssetIndex,
    candidates: Sequence[str] | None = None,
    limit: int = MAX_HOSTS,
) -> Attention:
    """At most `limit` of the incident's hosts (`candidates`, else the alerts' hosts), those of
    the most significant alerts first."""
    by_uid = {a.uid: a for a in assessments}
    ordered: list[str] = []
    significant: set[str] = set()
    for alert in rank_alerts(alerts, assessments):
        if not alert.entities.host or not alert.entities.host.strip():
            continue
        host = index.asset_id(alert.entities.host)
        if host.lower() not in {h.lower() for h in ordered}:
            ordered.append(host)
        if is_significant(by_uid.get(alert.uid)):
            significant.add(host.lower())
    if candidates is not None:
        wanted = {c.lower(): c for c in candidates}
        ordered = [wanted[h.lower()] for h in ordered if h.lower() in wanted]
        ordered += [c for c in candidates if c.lower() not in {h.lower() for h in ordered}]
    chosen, left = ordered[:limit], ordered[limit:]
    attention = Attention(hosts=chosen)
    lost = [h for h in left if h.lower() in significant]
    quiet = [h for h in left if h.lower() not in significant]
    if lost:
        attention.gaps.append(
            f"telemetry of {len(lost)} host(s) with significant alerts not read (at most "
            f"{limit} hosts per incident): {', '.join(lost[:5])}"
        )
    if quiet:
        attention.notes.append(
            f"telemetry of {len(quiet)} host(s) with only background alerts not read (at most "
            f"{limit} hosts per incident, the significant first): {', '.join(quiet[:5])}"
        )
    return attention
