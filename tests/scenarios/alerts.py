"""The alerts the load scenarios send, as Garrison's own alert JSON (`tools.models.Alert`) or, for
recorded incidents, as OCSF Detection Findings correlated under a suffix that routes them to
their recording's twins (`backends.py`). Generated from a seed; every uid carries the run's tag.

- `storm`: LD1, one rule firing on a few dozen hosts, most alerts re-sent verbatim (a SIEM's
  retries and overlapping searches): exact duplicates, the same uid and body.
- `host_bursts`: LD2 and the soak's noise, bursts of alerts on one host each (its own user, so no
  person links two hosts), spread so that no rule storms; one incident per burst.
- `recorded_replay`: the soak's incidents that need a human, a recording's alerts once more.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.ingest.shapes import alert_to_ocsf
from simulations.loader import LoadedIncident

AlertJson = dict[str, object]


@dataclass(frozen=True)
class Rule:
    uid: str
    name: str
    severity: str
    technique: str
    process: str


RULES = (
    Rule("sc-rundll", "Rundll32 without arguments", "medium", "T1218.011", "rundll32.exe"),
    Rule("sc-schtask", "Scheduled task created", "low", "T1053.005", "schtasks.exe"),
    Rule("sc-encoded-ps", "Encoded PowerShell command", "medium", "T1059.001", "powershell.exe"),
    Rule("sc-certutil", "Certutil download", "medium", "T1105", "certutil.exe"),
)


def host_name(index: int) -> str:
    return f"SC{index:04d}.corp.example"


def user_name(index: int) -> str:
    return f"CORP\\scuser{index:04d}"


def alert(uid: str, at: datetime, rule: Rule, host: int) -> AlertJson:
    return {
        "uid": uid,
        "time": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "title": f"{rule.name} on {host_name(host).split('.')[0]}",
        "severity": rule.severity,
        "product": "scenario-edr",
        "rule": {"uid": rule.uid, "name": rule.name},
        "attacks": [{"technique": rule.technique}],
        "entities": {
            "host": host_name(host),
            "user": user_name(host),
            "process": {"name": rule.process, "cmd_line": rule.process},
        },
    }


def storm(
    total: int, hosts: int, duplicate_share: float, span_s: float, start: datetime, tag: str
) -> list[AlertJson]:
    """`total` alerts of one rule on `hosts` hosts within `span_s` of alert time, of which
    `duplicate_share` are exact re-sends of the others; shuffled, seeded by `tag`."""
    rng = random.Random(tag)
    unique = max(hosts, round(total * (1 - duplicate_share)))
    originals = [
        alert(
            f"{tag}-{i:06d}",
            start + timedelta(seconds=span_s * i / unique),
            RULES[0],
            i % hosts if i < hosts else rng.randrange(hosts),
        )
        for i in range(unique)
    ]
    sent = originals + [rng.choice(originals) for _ in range(total - unique)]
    rng.shuffle(sent)
    return sent


def host_bursts(
    hosts: range, per_host: int, start: datetime, spacing_s: float, tag: str
) -> list[AlertJson]:
    """`per_host` alerts on each host, a host's within a minute of alert time, hosts `spacing_s`
    apart; rules rotate, so no rule alerts on many hosts at once. In alert-time order."""
    rng = random.Random(tag)
    alerts: list[AlertJson] = []
    for position, host in enumerate(hosts):
        begin = start + timedelta(seconds=position * spacing_s)
        for k in range(per_host):
            at = begin + timedelta(seconds=rng.uniform(0, 60))
            alerts.append(alert(f"{tag}-h{host}-{k:03d}", at, RULES[(host + k) % len(RULES)], host))
    alerts.sort(key=lambda a: str(a["time"]))
    return alerts


def recorded_replay(loaded: LoadedIncident, tag: str) -> list[AlertJson]:
    """A recording's alerts as OCSF, with fresh uids and correlated as `<tag>--<recorded id>`:
    one new incident served by that recording's twins."""
    spec = loaded.spec
    return [
        alert_to_ocsf(
            a.model_copy(update={"uid": f"{tag}-{a.uid}"}),
            spec.environment,
            event_uid_prefix=f"{tag}-{spec.id}",
            correlation_uid=f"{tag}--{spec.id}",
        )
        for a in spec.alerts
    ]
