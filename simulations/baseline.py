"""Compare a scorecard report (`garrison.scorecard/1` JSON) with a saved one.

A difference is a regression: a metric got worse, an incident's verdict or its executed actions
(the set of kind and target) changed, or an incident was added or dropped; in emulated runs also
an incident's ticket less complete than the baseline's, a comment posted twice, or a vendor change
applied twice more often. Improvements of a metric are not differences; changed verdicts and
actions are, whichever way they go, since the baseline is what was reviewed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

HIGHER_IS_BETTER = ("verdict_accuracy", "containment_precision", "containment_recall")
LOWER_IS_BETTER = ("over_response", "unapproved_risky_actions")
SCHEMA = "garrison.scorecard/1"
_EPSILON = 1e-9


def load_baseline(path: Path) -> dict[str, Any]:
    """The report saved at `path`, checked; ValueError naming the problem otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"baseline {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"baseline {path}: cannot read it ({error})") from None
    try:
        report = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"baseline {path}: not JSON ({error.msg} at line {error.lineno})"
        ) from None
    try:
        check_report(report)
    except ValueError as error:
        raise ValueError(f"baseline {path}: {error}") from None
    return report


def check_report(report: object) -> None:
    """Raise ValueError naming the first thing `report` lacks to be compared."""
    if not isinstance(report, dict):
        raise ValueError("not a scorecard report (expected a JSON object)")
    if report.get("schema") != SCHEMA:
        raise ValueError(f"schema is {report.get('schema')!r}, expected {SCHEMA!r}")
    for metric in (*HIGHER_IS_BETTER, *LOWER_IS_BETTER):
        value = report.get(metric)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"metric {metric!r} is missing or not a number")
    rows = report.get("per_incident")
    if not isinstance(rows, list):
        raise ValueError("'per_incident' is missing or not a list")
    seen: set[str] = set()
    for index, row in enumerate(rows):
        where = f"per_incident[{index}]"
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise ValueError(f"{where}: not an object with a string 'id'")
        if row["id"] in seen:
            raise ValueError(f"{where}: incident {row['id']!r} listed twice")
        seen.add(row["id"])
        if row.get("verdict") is not None and not isinstance(row.get("verdict"), str):
            raise ValueError(f"{where}: 'verdict' is not a string or null")
        actions = row.get("executed_actions")
        if not isinstance(actions, list) or not all(
            isinstance(a, dict)
            and isinstance(a.get("kind"), str)
            and isinstance(a.get("target"), str)
            for a in actions
        ):
            raise ValueError(f"{where}: 'executed_actions' is not a list of {{kind, target}}")


def compare(current: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """The differences from `baseline` to `current`, one line each; empty when nothing regressed.

    Both must pass `check_report` (ValueError otherwise, saying which one)."""
    for name, report in (("current report", current), ("baseline", baseline)):
        try:
            check_report(report)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    differences: list[str] = []
    for metric in HIGHER_IS_BETTER:
        if current[metric] < baseline[metric] - _EPSILON:
            differences.append(
                f"{metric}: {baseline[metric]} -> {current[metric]} (worse, higher is better)"
            )
    for metric in LOWER_IS_BETTER:
        if current[metric] > baseline[metric] + _EPSILON:
            differences.append(
                f"{metric}: {baseline[metric]} -> {current[metric]} (worse, lower is better)"
            )
    now = {row["id"]: row for row in current["per_incident"]}
    before = {row["id"]: row for row in baseline["per_incident"]}
    for incident in sorted(before.keys() - now.keys()):
        differences.append(f"{incident}: in the baseline, missing from this run")
    for incident in sorted(now.keys() - before.keys()):
        differences.append(f"{incident}: new in this run, not in the baseline")
    for incident in sorted(now.keys() & before.keys()):
        differences.extend(_incident_differences(incident, now[incident], before[incident]))
    return differences


def _incident_differences(incident: str, now: dict[str, Any], before: dict[str, Any]) -> list[str]:
    found: list[str] = []
    if now.get("verdict") != before.get("verdict"):
        found.append(f"{incident}: verdict {_verdict(before)} -> {_verdict(now)}")
    executed_now, executed_before = _actions(now), _actions(before)
    gained = sorted(executed_now - executed_before)
    lost = sorted(executed_before - executed_now)
    if gained:
        found.append(f"{incident}: now executes {_list(gained)}")
    if lost:
        found.append(f"{incident}: no longer executes {_list(lost)}")
    return found + _bookkeeping_differences(incident, now, before)


def _bookkeeping_differences(
    incident: str, now: dict[str, Any], before: dict[str, Any]
) -> list[str]:
    """Emulated runs: the ticket is at least as complete as the baseline's (there, closed if it
    was, no fewer comments: a run may add a note, e.g. about an outage), nothing is posted twice,
    and no vendor applied more repeated changes than in the baseline."""
    found: list[str] = []
    ticket, was = now.get("ticket"), before.get("ticket")
    if isinstance(ticket, dict):
        if ticket.get("repeated_comments"):
            found.append(
                f"{incident}: {ticket['repeated_comments']} ticket comment(s) posted twice"
            )
        if isinstance(was, dict):
            if was.get("found") and not ticket.get("found"):
                found.append(f"{incident}: no ticket (the baseline had one)")
            elif was.get("state") == "closed" and ticket.get("state") != "closed":
                found.append(f"{incident}: ticket {ticket.get('state')} (the baseline's closed)")
            if int(ticket.get("comments") or 0) < int(was.get("comments") or 0):
                found.append(
                    f"{incident}: ticket comments {was.get('comments')} -> {ticket.get('comments')}"
                )
    vendors, had = now.get("vendors"), before.get("vendors")
    if isinstance(vendors, dict) and isinstance(had, dict):
        for capability, effects in sorted(vendors.items()):
            twice = int(effects.get("repeated_changes") or 0)
            baseline_twice = int((had.get(capability) or {}).get("repeated_changes") or 0)
            if twice > baseline_twice:
                found.append(
                    f"{incident}: {capability} applied {twice} change(s) twice"
                    f" (the baseline {baseline_twice}): {effects.get('changes')}"
                )
    return found


def _verdict(row: dict[str, Any]) -> str:
    verdict = row.get("verdict")
    return "error" if verdict is None else str(verdict)


def _actions(row: dict[str, Any]) -> set[tuple[str, str]]:
    return {(a["kind"], a["target"]) for a in row["executed_actions"]}


def _list(actions: list[tuple[str, str]]) -> str:
    return ", ".join(f"{kind} {target}" for kind, target in actions)
