"""The soak's alert stream (LD3): `rate` alerts a minute for `minutes`, mostly noise and a share
from recorded incidents that need a human.

- noise: bursts of 5-15 alerts of one rule on one host, sent together (a SIEM forwarding a
  correlated group), alert time = when sent; hosts come from a pool in turn, so a host alerts
  again only after the grouping window; 40 rule variants, so no rule storms;
- approvals: recordings whose playbooks ask for approvals (one and two approvers), each replay
  correlated under a fresh tag (`tests/scenarios/alerts.recorded_replay`): one new incident served
  by that recording's twins, decided by the simulated analysts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from simulations.loader import LoadedIncident
from tests.scenarios.alerts import RULES, AlertJson, Rule, alert, recorded_replay

# Recordings whose runs ask for approvals: an isolation by one approver (HR001, WORKSTATION5),
# a domain controller's isolation and an account's disabling by two.
APPROVAL_RECORDINGS = (
    "otrf-empire-wdigest-hr001",
    "otrf-empire-smbexec-ws5-ws6",
    "otrf-empire-ninjacopy-dc01",
    "otrf-lsass-nanodump-mkt01",
)
BURST = (5, 15)
RULE_VARIANTS = 10


@dataclass(frozen=True)
class Planned:
    due_s: float  # seconds from the start of the load
    records: list[AlertJson]
    kind: str  # "noise" or the recording's id


def noise_rules() -> list[Rule]:
    return [
        Rule(f"{r.uid}-{n}", r.name, r.severity, r.technique, r.process)
        for r in RULES
        for n in range(RULE_VARIANTS)
    ]


def plan(
    minutes: float,
    rate: float,
    approval_share: float,
    hosts: int,
    recordings: list[LoadedIncident],
    start: datetime,
    tag: str,
) -> list[Planned]:
    """The whole stream, in due order (see the module docstring)."""
    rng = random.Random(tag)
    rules = noise_rules()
    noise_per_s = rate * (1 - approval_share) / 60
    approval_per_s = rate * approval_share / 60
    planned: list[Planned] = []
    noise = approvals = 0.0
    bursts = replays = 0
    size = rng.randint(*BURST)
    for second in range(int(minutes * 60)):
        noise += noise_per_s
        approvals += approval_per_s
        while noise >= size:
            host = bursts % hosts
            at = start + timedelta(seconds=second)
            rule = rules[rng.randrange(len(rules))]
            records = [
                alert(f"{tag}-b{bursts}-{k}", at + timedelta(seconds=k), rule, host)
                for k in range(size)
            ]
            planned.append(Planned(second + rng.random(), records, "noise"))
            noise -= size
            bursts += 1
            size = rng.randint(*BURST)
        loaded = recordings[replays % len(recordings)] if recordings else None
        if loaded is not None and approvals >= len(loaded.spec.alerts):
            records = recorded_replay(loaded, f"{tag}r{replays}")
            planned.append(Planned(second + rng.random(), records, loaded.spec.id))
            approvals -= len(records)
            replays += 1
    return sorted(planned, key=lambda p: p.due_s)
