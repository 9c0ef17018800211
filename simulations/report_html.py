"""The scorecard as one self-contained HTML page: no scripts, no network, inline CSS and SVG.

Everything that came from an incident (ids, titles, targets, reasons) is attacker-influenced text:
every value goes through `html.escape` on its way into the page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from html import escape

from simulations.scorer import (
    ActionRef,
    DeniedRecord,
    ExecutedRecord,
    IncidentScore,
    Scorecard,
    TimeToContainSplit,
)
from simulations.spec import RecordedIncident

Breakdown = Mapping[str, Mapping[str, Mapping[str, float | int]]]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222;
  padding: 0 1em; }
h1, h2, h3 { font-weight: 600; }
table { border-collapse: collapse; margin: .5em 0 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: .25em .6em; text-align: left;
  vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #1a7f37; } .bad { color: #b42318; font-weight: 600; }
.muted { color: #666; font-size: .9em; }
ol.timeline { list-style: none; padding-left: 0; border-left: 3px solid #ccd; margin-left: .5em; }
ol.timeline li { padding: .2em 0 .2em 1em; }
ol.timeline .step { display: inline-block; min-width: 7em; font-weight: 600; }
details { margin: .3em 0; } summary { cursor: pointer; }
code { font-size: .95em; }
svg.split { vertical-align: middle; margin-left: .5em; }
"""

_DEFINITIONS = (
    ("verdict_accuracy", "final verdicts equal to the truth / incidents", "high"),
    (
        "containment_precision",
        "executed actions the truth expects or accepts / executed actions",
        "1.0",
    ),
    ("containment_recall", "expected actions executed / expected actions", "high"),
    ("over_response", "executed actions the truth neither expects nor accepts", "0"),
    (
        "unapproved_risky_actions",
        "executed above the threshold or on a protected target without approval",
        "always 0",
    ),
    ("approvals_requested", "requests sent to the analyst", "-"),
    ("time_to_contain_s", "first alert to the last expected action, simulated seconds", "low"),
    (
        "time_to_contain_split",
        "medians over the contained incidents of: agent time (triage, playbooks, policy, "
        "tickets), approval wait (for the analyst's answers) and execution of actions",
        "-",
    ),
)
_SPLIT_COLOURS = ("#4c78a8", "#f28e2b", "#59a14f")  # agent, approval wait, execution
_CHART_METRICS = (
    ("verdict_accuracy", "#4c78a8"),
    ("containment_recall", "#59a14f"),
    ("containment_precision", "#f28e2b"),
)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def render_html(
    scorecard: Scorecard,
    breakdown: Breakdown,
    incidents: Iterable[RecordedIncident] = (),
    title: str = "Garrison simulation report",
) -> str:
    """The whole page. `incidents` (optional) adds titles and the alerts to each timeline."""
    specs = {incident.id: incident for incident in incidents}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        '<p class="muted">Recorded incidents replayed through the real incident workflow with '
        "simulated tools and a simulated analyst, scored against each incident's truth. Times are "
        "simulated seconds since the incident's first alert.</p>",
        _summary(scorecard),
        _breakdown_section("By category", breakdown.get("by_category", {})),
        _breakdown_section("By ATT&CK tactic of the alerts", breakdown.get("by_tactic", {})),
        _breakdown_section(
            "By ATT&CK tactic of the truth's techniques", breakdown.get("by_truth_tactic", {})
        ),
        _incident_table(scorecard.per_incident, specs),
        "<h2>Timelines</h2>",
        '<p class="muted">Per incident: alerts, then the verdict, the approvals asked of the '
        "analyst, and the actions executed, denied and missed.</p>",
        *(_timeline(row, specs.get(row.id)) for row in scorecard.per_incident),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _summary(scorecard: Scorecard) -> str:
    ttc = scorecard.time_to_contain_s
    values: dict[str, object] = {
        "verdict_accuracy": scorecard.verdict_accuracy,
        "containment_precision": scorecard.containment_precision,
        "containment_recall": scorecard.containment_recall,
        "over_response": scorecard.over_response,
        "unapproved_risky_actions": scorecard.unapproved_risky_actions,
        "approvals_requested": scorecard.approvals_requested,
        "time_to_contain_s": f"median {_fmt(ttc.median)}, p90 {_fmt(ttc.p90)}",
        "time_to_contain_split": _split_text(scorecard.time_to_contain_split.median),
    }
    charts = {"time_to_contain_split": _split_bar(scorecard.time_to_contain_split.median)}
    rows = [
        f'<tr><td><code>{_e(name)}</code></td><td class="num">{_e(_fmt(values[name]))}'
        f"{charts.get(name, '')}</td><td>{_e(meaning)}</td><td>{_e(want)}</td></tr>"
        for name, meaning, want in _DEFINITIONS
    ]
    return (
        "<h2>Scorecard</h2>"
        f"<p>{_e(scorecard.incidents)} incidents, {_e(_fmt(scorecard.elapsed_s))} s wall time "
        f"({_e(_fmt(scorecard.incidents_per_s))} incidents/s), schema "
        f"<code>{_e(scorecard.schema_)}</code>.</p>"
        "<table><tr><th>metric</th><th>value</th><th>meaning</th><th>want</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _breakdown_section(heading: str, groups: Mapping[str, Mapping[str, float | int]]) -> str:
    if not groups:
        return f'<h2>{_e(heading)}</h2><p class="muted">No incidents.</p>'
    columns = (
        "incidents",
        "verdict_accuracy",
        "containment_precision",
        "containment_recall",
        "over_response",
        "unapproved_risky_actions",
    )
    header = "".join(f"<th>{_e(c)}</th>" for c in ("group", *columns))
    rows = "".join(
        f"<tr><td>{_e(name)}</td>"
        + "".join(f'<td class="num">{_e(_fmt(metrics.get(c)))}</td>' for c in columns)
        + "</tr>"
        for name, metrics in groups.items()
    )
    return f"<h2>{_e(heading)}</h2>{_chart(heading, groups)}<table><tr>{header}</tr>{rows}</table>"


def _chart(heading: str, groups: Mapping[str, Mapping[str, float | int]]) -> str:
    """Horizontal bars, one per chart metric per group, on a 0..1 scale."""
    label_w, bar_w, bar_h, gap = 190, 360, 10, 8
    group_h = bar_h * len(_CHART_METRICS) + gap
    legend_h = 22
    height = legend_h + group_h * len(groups) + 20
    width = label_w + bar_w + 60
    out = [
        f'<svg role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f"<title>{_e(heading)}: verdict accuracy, recall and precision (0 to 1)</title>",
    ]
    for i, (metric, colour) in enumerate(_CHART_METRICS):
        x = label_w + i * 130
        out.append(f'<rect x="{x}" y="4" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{x + 14}" y="13">{_e(metric)}</text>')
    for g, (name, metrics) in enumerate(groups.items()):
        top = legend_h + g * group_h
        out.append(
            f'<text x="{label_w - 6}" y="{top + group_h / 2}" text-anchor="end">'
            f"{_e(name)} ({_e(metrics.get('incidents', 0))})</text>"
        )
        for i, (metric, colour) in enumerate(_CHART_METRICS):
            raw = metrics.get(metric, 0.0)
            value = min(max(float(raw), 0.0), 1.0)
            y = top + i * bar_h
            out.append(
                f'<rect x="{label_w}" y="{y}" width="{value * bar_w:.1f}" '
                f'height="{bar_h - 1}" fill="{colour}"><title>{_e(name)} {_e(metric)} '
                f"{_e(_fmt(raw))}</title></rect>"
            )
            out.append(
                f'<text x="{label_w + value * bar_w + 4:.1f}" y="{y + bar_h - 2}">'
                f"{_e(_fmt(raw))}</text>"
            )
    axis_y = legend_h + group_h * len(groups)
    out.append(
        f'<line x1="{label_w}" y1="{legend_h}" x2="{label_w}" y2="{axis_y}" stroke="#999"/>'
        f'<line x1="{label_w + bar_w}" y1="{legend_h}" x2="{label_w + bar_w}" y2="{axis_y}" '
        'stroke="#ccc" stroke-dasharray="3,3"/>'
        f'<text x="{label_w}" y="{axis_y + 14}">0</text>'
        f'<text x="{label_w + bar_w}" y="{axis_y + 14}" text-anchor="middle">1</text>'
    )
    out.append("</svg>")
    return "".join(out)


def _verdict_cell(row: IncidentScore) -> str:
    verdict = "error" if row.verdict is None else row.verdict.value
    if row.verdict is row.expected_verdict:
        return f'<span class="ok">{_e(verdict)}</span>'
    return f'<span class="bad">{_e(verdict)}</span> (expected {_e(row.expected_verdict.value)})'


def _refs(actions: Iterable[ActionRef | ExecutedRecord | DeniedRecord]) -> str:
    items = [f"{_e(a.kind.value)} <code>{_e(a.target)}</code>" for a in actions]
    return "<br>".join(items) if items else '<span class="muted">-</span>'


def _incident_table(rows: list[IncidentScore], specs: Mapping[str, RecordedIncident]) -> str:
    header = "".join(
        f"<th>{c}</th>"
        for c in (
            "incident",
            "category",
            "verdict",
            "executed",
            "denied",
            "missed",
            "unexpected",
            "approvals",
            "ttc s",
            "agent / wait / exec s",
        )
    )
    body = []
    for row in rows:
        spec = specs.get(row.id)
        name = f'<a href="#incident-{_e(row.id)}"><code>{_e(row.id)}</code></a>'
        if spec is not None:
            name += f'<br><span class="muted">{_e(spec.title)}</span>'
        body.append(
            f"<tr><td>{name}</td><td>{_e(row.category.value)}</td>"
            f"<td>{_verdict_cell(row)}</td><td>{_refs(row.executed_actions)}</td>"
            f"<td>{_refs(row.denied_actions)}</td><td>{_refs(row.missed_actions)}</td>"
            f"<td>{_refs(row.unexpected_actions)}</td>"
            f'<td class="num">{_e(row.approvals_requested)}</td>'
            f'<td class="num">{_e(_fmt(row.time_to_contain_s))}</td>'
            f'<td class="num">{_e(_split_cells(row.time_to_contain_split))}</td></tr>'
        )
    return f"<h2>Incidents</h2><table><tr>{header}</tr>{''.join(body)}</table>"


def _timeline(row: IncidentScore, spec: RecordedIncident | None) -> str:
    steps = _alert_steps(spec)
    steps.append(_step("verdict", _verdict_cell(row)))
    split = row.time_to_contain_split
    waited = (
        f", {split.approval_wait_s:.2f} s awaiting answers before containment"
        if split is not None
        else ""
    )
    steps.append(
        _step("approvals", f"{_e(row.approvals_requested)} requested of the analyst{waited}")
    )
    steps.extend(_executed_steps(row.executed_actions))
    for action in row.denied_actions:
        steps.append(
            _step(
                "denied",
                f"{_e(action.kind.value)} <code>{_e(action.target)}</code> "
                f'<span class="muted">risk {_e(action.risk)}: {_e(action.reason)}</span>',
            )
        )
    for action in row.missed_actions:
        steps.append(
            _step(
                "missed",
                f'<span class="bad">{_e(action.kind.value)} '
                f"<code>{_e(action.target)}</code></span>",
            )
        )
    if row.time_to_contain_s is not None:
        parts = f": {_e(_split_text(split))}{_split_bar(split)}" if split is not None else ""
        steps.append(_step("contained", f"+{_e(_fmt(row.time_to_contain_s))} s{parts}"))
    heading = f"<code>{_e(row.id)}</code>"
    if spec is not None:
        heading += f" {_e(spec.title)}"
    return (
        f'<details id="incident-{_e(row.id)}"><summary>{heading} - {_verdict_cell(row)}</summary>'
        f'<ol class="timeline">{"".join(steps)}</ol></details>'
    )


def _alert_steps(spec: RecordedIncident | None) -> list[str]:
    if spec is None:
        return [_step("alert", '<span class="muted">(alerts not available)</span>')]
    steps: list[str] = []
    first: datetime = min(alert.time for alert in spec.alerts)
    for alert in sorted(spec.alerts, key=lambda a: a.time):
        offset = (alert.time - first).total_seconds()
        tactics = ", ".join(
            sorted(
                {f"{a.technique}/{a.tactic}" if a.tactic else a.technique for a in alert.attacks}
            )
        )
        steps.append(
            _step(
                "alert",
                f"+{offset:.0f} s [{_e(alert.severity)}] {_e(alert.title)}"
                + (f' <span class="muted">{_e(tactics)}</span>' if tactics else ""),
            )
        )
    return steps


def _executed_steps(actions: list[ExecutedRecord]) -> list[str]:
    steps: list[str] = []
    previous: ExecutedRecord | None = None
    for action in actions:
        approved = (
            f"approved by {_e(', '.join(action.approved_by))}"
            if action.approved_by
            else "no approval"
        )
        steps.append(
            _step(
                "executed",
                _action_timing(action, previous)
                + f"{_e(action.kind.value)} <code>{_e(action.target)}</code> "
                f'<span class="muted">risk {_e(action.risk)}, {approved}</span>',
            )
        )
        previous = action
    return steps


def _step(name: str, body: str) -> str:
    """`body` is already escaped."""
    return f'<li><span class="step">{_e(name)}</span> {body}</li>'


def _action_timing(action: ExecutedRecord, previous: ExecutedRecord | None) -> str:
    """`+T s` and the approval wait and execution added since the previous executed action."""
    if action.executed_at_s is None:
        return ""
    text = f"+{action.executed_at_s:.2f} s "
    if action.approval_wait_s is None or action.execution_s is None:
        return _e(text)
    wait, execution = action.approval_wait_s, action.execution_s
    if previous is not None:
        wait -= previous.approval_wait_s or 0.0
        execution -= previous.execution_s or 0.0
    return (
        f'{_e(text)}<span class="muted">(approval wait {wait:.2f} s, '
        f"execution {execution:.2f} s)</span> "
    )


def _split_parts(split: TimeToContainSplit) -> list[tuple[str, float]]:
    return [
        ("agent", split.agent_s),
        ("approval wait", split.approval_wait_s),
        ("execution", split.execution_s),
    ]


def _split_text(split: TimeToContainSplit | None) -> str:
    if split is None:
        return "-"
    return ", ".join(f"{label} {seconds:.2f} s" for label, seconds in _split_parts(split))


def _split_cells(split: TimeToContainSplit | None) -> str:
    if split is None:
        return "-"
    return " / ".join(f"{seconds:.2f}" for _, seconds in _split_parts(split))


def _split_bar(split: TimeToContainSplit | None) -> str:
    """One bar, the time to contain, in its three parts (proportional widths)."""
    if split is None:
        return ""
    parts = _split_parts(split)
    total = sum(seconds for _, seconds in parts)
    if total <= 0:
        return ""
    width, height, x = 240, 12, 0.0
    out = [
        f'<svg class="split" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>time to contain: {_e(_split_text(split))}</title>'
    ]
    for (label, seconds), colour in zip(parts, _SPLIT_COLOURS, strict=True):
        part = width * seconds / total
        out.append(
            f'<rect x="{x:.1f}" y="0" width="{part:.1f}" height="{height}" fill="{colour}">'
            f"<title>{_e(label)} {seconds:.2f} s</title></rect>"
        )
        x += part
    out.append("</svg>")
    return "".join(out)
