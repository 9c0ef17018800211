"""What the console's simulation pages show, shaped from a kept scorecard (`garrison.scorecard/1`):
the per-incident rows, the breakdown tables, the baselines one may diff against, and the diff.

Pure functions over the report's JSON (no I/O but reading a baseline file), tolerant of a report
that lacks an optional field: an older run still renders. The diff's lines are
`simulations.baseline.compare`'s, the same as `garrison simulate --baseline` prints."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulations.baseline import HIGHER_IS_BETTER, LOWER_IS_BETTER, compare, load_baseline

BASELINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\.json$")
BREAKDOWNS = (
    ("by_category", "By category"),
    ("by_tactic", "By ATT&CK tactic of the alerts"),
    ("by_truth_tactic", "By ATT&CK tactic of the truth's techniques"),
)
HEADLINE = (*HIGHER_IS_BETTER, *LOWER_IS_BETTER, "approvals_requested", "incidents")


@dataclass(frozen=True)
class IncidentRow:
    id: str
    category: str
    verdict: str
    expected_verdict: str
    right: bool
    executed: list[str]
    missed: list[str]
    unexpected: list[str]
    denied: list[str]
    approvals: int
    unapproved_risky: int
    time_to_contain_s: float | None


@dataclass(frozen=True)
class MetricChange:
    metric: str
    baseline: object
    current: object
    worse: bool


def _actions(items: object) -> list[str]:
    if not isinstance(items, list):
        return []
    return [f"{a.get('kind')} {a.get('target')}" for a in items if isinstance(a, dict)]


def incident_rows(report: dict[str, Any]) -> list[IncidentRow]:
    rows = report.get("per_incident")
    found: list[IncidentRow] = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        verdict = str(row.get("verdict") or "error")
        expected = str(row.get("expected_verdict") or "-")
        ttc = row.get("time_to_contain_s")
        found.append(
            IncidentRow(
                id=str(row.get("id")),
                category=str(row.get("category") or "-"),
                verdict=verdict,
                expected_verdict=expected,
                right=verdict == expected,
                executed=_actions(row.get("executed_actions")),
                missed=_actions(row.get("missed_actions")),
                unexpected=_actions(row.get("unexpected_actions")),
                denied=_actions(row.get("denied_actions")),
                approvals=int(row.get("approvals_requested") or 0),
                unapproved_risky=int(row.get("unapproved_risky_actions") or 0),
                time_to_contain_s=ttc if isinstance(ttc, int | float) else None,
            )
        )
    return found


def breakdown_tables(report: dict[str, Any]) -> list[tuple[str, dict[str, dict[str, Any]]]]:
    """(title, {group: metrics}) for each breakdown the report has."""
    groups = report.get("breakdown")
    if not isinstance(groups, dict):
        return []
    tables = []
    for key, title in BREAKDOWNS:
        table = groups.get(key)
        if isinstance(table, dict) and table:
            tables.append((title, {str(k): v for k, v in table.items() if isinstance(v, dict)}))
    return tables


def baseline_names(folder: Path | None) -> list[str]:
    """The committed baselines one may diff against: the folder's `*.json` files, by name."""
    if folder is None or not folder.is_dir():
        return []
    return sorted(p.name for p in folder.glob("*.json") if BASELINE_NAME.match(p.name))


def load_named_baseline(folder: Path | None, name: str) -> dict[str, Any]:
    """The baseline file `name` of `folder` (only a name `baseline_names` lists: never a path
    from the request); ValueError saying why not."""
    if name not in baseline_names(folder):
        raise ValueError(f"there is no baseline named {name!r}")
    assert folder is not None
    return load_baseline(folder / name)


def metric_changes(current: dict[str, Any], baseline: dict[str, Any]) -> list[MetricChange]:
    changes = []
    for metric in HEADLINE:
        now, before = current.get(metric), baseline.get(metric)
        worse = False
        if isinstance(now, int | float) and isinstance(before, int | float):
            if metric in HIGHER_IS_BETTER:
                worse = now < before - 1e-9
            elif metric in LOWER_IS_BETTER:
                worse = now > before + 1e-9
        changes.append(MetricChange(metric, before, now, worse))
    return changes


def differences(current: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """`compare`'s lines; one line saying why when either report cannot be compared."""
    try:
        return compare(current, baseline)
    except ValueError as error:
        return [f"cannot compare: {error}"]
