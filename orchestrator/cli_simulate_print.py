"""What `garrison simulate` prints: the per-incident table and the scorecard, the breakdowns by
category and tactic, and the vendors' effects of an emulated run (terminal output only; the JSON
report is the whole scorecard)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from orchestrator.cli_common import err, out

if TYPE_CHECKING:
    from simulations.scorer import Scorecard

NUMERIC_METRICS = (
    "verdict_accuracy",
    "containment_precision",
    "containment_recall",
    "over_response",
    "unapproved_risky_actions",
    "approvals_requested",
)


def print_scorecard(report: dict[str, object]) -> None:
    """Counts per incident: actions executed, expected ones missed, unexpected ones, approvals
    requested, time to contain (the actions themselves are in the JSON report); then the metrics."""
    table = Table("incident", "verdict", "acts", "miss", "extra", "appr", "ttc s", box=None)
    for column in table.columns:
        column.no_wrap = True
    per_incident = report.get("per_incident")
    for row in per_incident if isinstance(per_incident, list) else []:
        verdict = row["verdict"] or "error"
        right = verdict == row["expected_verdict"]
        ttc = row.get("time_to_contain_s")
        table.add_row(
            row["id"],
            verdict if right else f"{verdict} (expected {row['expected_verdict']})",
            str(len(row["executed_actions"])),
            str(len(row.get("missed_actions", []))),
            str(len(row.get("unexpected_actions", []))),
            str(row["approvals_requested"]),
            "-" if ttc is None else f"{ttc:.0f}",
        )
    out.print(table)
    for row in per_incident if isinstance(per_incident, list) else []:
        if row.get("error"):
            err.print(f"incident {row['id']} failed: {row['error']}", markup=False)
    summary = Table("metric", "value", title="scorecard")
    for key in ("incidents", "elapsed_s", "incidents_per_s", *NUMERIC_METRICS):
        value = report.get(key)
        summary.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    ttc = report.get("time_to_contain_s")
    if isinstance(ttc, dict):
        summary.add_row("time_to_contain_s", f"median {ttc.get('median')}, p90 {ttc.get('p90')}")
    summary.add_row("time_to_contain_split", split_summary(report.get("time_to_contain_split")))
    out.print(summary)


def split_summary(split: object) -> str:
    """The medians of agent time, approval wait and execution over the contained incidents."""
    median = split.get("median") if isinstance(split, dict) else None
    if not isinstance(median, dict):
        return "-"
    return (
        f"median agent {median.get('agent_s')}, approval wait {median.get('approval_wait_s')},"
        f" execution {median.get('execution_s')}"
    )


def print_breakdown(
    groups: dict[str, dict[str, dict[str, float | int]]], playbooks: dict[str, str]
) -> None:
    """Verdict accuracy, recall, precision and over-response per category and per tactic; per
    category also the playbooks the routing chose."""
    for key, title in (
        ("by_category", "by category"),
        ("by_tactic", "by ATT&CK tactic of the alerts"),
        ("by_truth_tactic", "by ATT&CK tactic of the truth's techniques"),
    ):
        columns = ["group", "n", "verdict", "recall", "precision", "over"]
        if key == "by_category":
            columns.append("playbooks")
        table = Table(*columns, title=title, box=None)
        for name, metrics in groups.get(key, {}).items():
            cells = [
                Text(name),
                str(metrics["incidents"]),
                f"{metrics['verdict_accuracy']:.3f}",
                f"{metrics['containment_recall']:.3f}",
                f"{metrics['containment_precision']:.3f}",
                str(metrics["over_response"]),
            ]
            if key == "by_category":
                cells.append(Text(playbooks.get(name, "-")))
            table.add_row(*cells)
        out.print(table)


def print_vendor_effects(scorecard: Scorecard) -> None:
    """Per capability over the run: requests, error answers (a fault's 503s and 429s), changes
    applied and changes applied twice; then the tickets as the ticketing vendor shows them."""
    from simulations.vendor_effects import VendorEffects

    rows = scorecard.per_incident
    faults = ", ".join(scorecard.faults)
    title = "vendors" + (f" under --fault {faults}" if faults else "")
    table = Table("capability", "vendor", "requests", "5xx", "429", "changes", "twice", title=title)
    totals: dict[str, list[VendorEffects]] = {}
    for row in rows:
        for capability, effects in (row.vendors or {}).items():
            totals.setdefault(capability, []).append(effects)
    for capability, effects in totals.items():
        answers = [a for e in effects for a in e.answers.items()]
        table.add_row(
            capability,
            effects[0].vendor,
            str(sum(e.requests for e in effects)),
            str(sum(n for status, n in answers if status.startswith("5"))),
            str(sum(n for status, n in answers if status == "429")),
            str(sum(sum(e.changes.values()) for e in effects)),
            str(sum(e.repeated_changes for e in effects)),
        )
    out.print(table)
    tickets = [row.ticket for row in rows if row.ticket is not None]
    if tickets:
        closed = sum(t.state == "closed" for t in tickets)
        out.print(
            f"tickets: {sum(t.found for t in tickets)} of {len(rows)} incidents have one, "
            f"{closed} closed, {sum(t.comments for t in tickets)} comments, "
            f"{sum(t.repeated_comments for t in tickets)} posted twice",
            markup=False,
        )
