"""The HTML report: self-contained, escaped, and carrying the scorecard."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from simulations.breakdown import breakdown
from simulations.report_html import render_html
from simulations.scorer import DeniedAction, ExecutedAction, IncidentRun, Scorecard, score
from simulations.spec import ExpectedAction, RecordedIncident, Truth
from tools.actions import ActionKind
from tools.models import Category, Verdict

K = ActionKind
HOSTILE = '<script>alert("x")</script>'


def hostile_incident() -> RecordedIncident:
    alert: dict[str, Any] = {
        "uid": "a1",
        "time": "2024-01-01T00:00:00Z",
        "title": f"alert {HOSTILE}",
        "severity": "high",
        "product": "edr",
        "rule": {"uid": "r1", "name": "rule"},
        "attacks": [{"technique": "T1003", "tactic": "<b>credential-access</b>"}],
    }
    later = {**alert, "uid": "a2", "time": "2024-01-01T00:02:00Z", "title": "second alert"}
    return RecordedIncident.model_validate(
        {
            "schema": "recorded-incident/1",
            "id": "evil-1",
            "title": f"title {HOSTILE}",
            "source": {"dataset": "d", "ref": "r", "license": "MIT", "attribution": "a"},
            "environment": {},
            "alerts": [alert, later],
            "truth": {"verdict": "malicious", "category": "credential_access"},
        }
    )


def hostile_scorecard() -> Scorecard:
    runs = [
        IncidentRun(
            id="evil-1",
            verdict=Verdict.MALICIOUS,
            executed_actions=[
                ExecutedAction(
                    kind=K.ISOLATE_HOST,
                    target=HOSTILE,
                    risk=70,
                    approved_by=['analyst"><img src=x>'],
                    executed_at_s=42.0,
                )
            ],
            denied_actions=[
                DeniedAction(
                    kind=K.DISABLE_ACCOUNT, target="lab\\<i>bob</i>", risk=90, reason=HOSTILE
                )
            ],
            approvals_requested=2,
        ),
        IncidentRun(id="calm-1", verdict=Verdict.MALICIOUS),
    ]
    truths = {
        "evil-1": Truth(
            verdict=Verdict.MALICIOUS,
            category=Category.CREDENTIAL_ACCESS,
            expected_actions=[
                ExpectedAction(kind=K.ISOLATE_HOST, target=HOSTILE),
                ExpectedAction(kind=K.BLOCK_IP, target="10.9.9.9"),
            ],
        ),
        "calm-1": Truth(verdict=Verdict.BENIGN, category=Category.DISCOVERY),
    }
    return score(runs, truths, threshold=50, elapsed_s=2.0)


def render() -> str:
    card = hostile_scorecard()
    specs = [hostile_incident()]
    return render_html(card, breakdown(card, specs), specs)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.urls.extend(v or "" for k, v in attrs if k in ("src", "href", "xlink:href", "action"))


def test_the_page_is_self_contained() -> None:
    page = render()
    parser = _Collector()
    parser.feed(page)
    assert "script" not in parser.tags
    assert "img" not in parser.tags
    assert "link" not in parser.tags
    assert all(url.startswith("#") for url in parser.urls), parser.urls
    assert "http://" not in page
    assert "https://" not in page
    assert "@import" not in page
    assert re.search(r"url\(", page) is None
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page


def test_hostile_text_is_escaped() -> None:
    page = render()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<b>credential-access</b>" not in page
    assert "&lt;b&gt;credential-access&lt;/b&gt;" in page
    assert "<i>bob</i>" not in page
    assert 'analyst"><img' not in page


def test_the_metrics_and_incidents_appear() -> None:
    card = hostile_scorecard()
    page = render()
    for metric in (
        "verdict_accuracy",
        "containment_precision",
        "containment_recall",
        "over_response",
        "unapproved_risky_actions",
    ):
        assert metric in page
    assert f"{card.verdict_accuracy:.3f}" in page
    assert f"{card.containment_recall:.3f}" in page
    assert "By category" in page and "credential_access" in page and "discovery" in page
    assert "By ATT&amp;CK tactic" in page
    assert "evil-1" in page and "calm-1" in page
    assert "(expected benign)" in page  # calm-1's wrong verdict
    assert "block_ip" in page  # missed
    assert "+120 s" in page  # the second alert's offset on the timeline
    assert "2 requested of the analyst" in page


def test_the_page_renders_without_the_incidents() -> None:
    card = hostile_scorecard()
    page = render_html(card, breakdown(card, []))
    assert "(alerts not available)" in page
    assert "<script>" not in page


def contained_scorecard() -> Scorecard:
    runs = [
        IncidentRun(
            id="fast-1",
            verdict=Verdict.MALICIOUS,
            executed_actions=[
                ExecutedAction(
                    kind=K.KILL_PROCESS, target="WS1:42", risk=20, executed_at_s=12.0, execution_s=1
                ),
                ExecutedAction(
                    kind=K.ISOLATE_HOST,
                    target="WS1",
                    risk=70,
                    approved_by=["sim-analyst-1"],
                    executed_at_s=650.0,
                    approval_wait_s=600.0,
                    execution_s=3.5,
                ),
            ],
            approvals_requested=1,
        ),
    ]
    truths = {
        "fast-1": Truth(
            verdict=Verdict.MALICIOUS,
            category=Category.EXECUTION,
            expected_actions=[
                ExpectedAction(kind=K.KILL_PROCESS, target="WS1:42"),
                ExpectedAction(kind=K.ISOLATE_HOST, target="WS1"),
            ],
        )
    }
    return score(runs, truths, threshold=50, elapsed_s=1.0)


def test_the_time_to_contain_split_appears_in_scorecard_table_and_timeline() -> None:
    card = contained_scorecard()
    page = render_html(card, breakdown(card, []))
    split = "agent 46.50 s, approval wait 600.00 s, execution 3.50 s"
    scorecard_section = page[page.index("<h2>Scorecard</h2>") : page.index("<h2>By category")]
    assert "time_to_contain_split" in scorecard_section
    assert split in scorecard_section
    assert "46.50 / 600.00 / 3.50" in page  # the incidents table
    timeline = page[page.index('<details id="incident-fast-1">') :]
    assert "1 requested of the analyst, 600.00 s awaiting answers before containment" in timeline
    # Each action: when, and the approval wait and execution added since the previous one.
    assert "+12.00 s" in timeline and "(approval wait 0.00 s, execution 1.00 s)" in timeline
    assert "+650.00 s" in timeline and "(approval wait 600.00 s, execution 2.50 s)" in timeline
    assert f"+650.000 s: {split}" in timeline
    assert '<svg class="split"' in timeline
    assert "<title>approval wait 600.00 s</title>" in timeline


def test_no_split_without_containment() -> None:
    page = render()  # evil-1 misses an expected action, calm-1 is benign
    assert "awaiting answers before containment" not in page
    assert '<svg class="split"' not in page
