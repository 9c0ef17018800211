"""Every case of the injection corpus (../shared/reference/injection-corpus/) rendered by the
console as alert fields, incident title, triage rationale and evidence, and as the host and
fields of the records a claim rests on (the kept-records page), stays text: the page's
markup (every tag, attribute and link) is exactly that of the same page rendered with an inert
placeholder of the same line structure, and the payload reads back whole from the page's text.
A few classic cross-site-scripting strings of our own are rendered the same way."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from orchestrator.store.evidence import KeptEvent
from orchestrator.store.records import AuditEvent
from orchestrator.store.repository import Store
from tests.orchestrator.console.seed import (
    client,
    console,
    make_alert,
    passwords,
    seed_incident,
    sign_in,
)
from tests.security.corpus_cases import load_cases

OURS = [
    "<script>window.__pwned=1</script>",
    '"><img src=x onerror="window.__pwned=1">',
    "javascript:window.__pwned=1",
    "</code></td></tr></table><a href=https://evil.example/>Approve</a>",
    "{{ 7*7 }}{% raw %}",
]
SHORT = 1_024  # ShortText fields
AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def payloads() -> list[tuple[str, str]]:
    return [(c.id, c.payload) for c in load_cases()] + [
        (f"ours-{i}", p) for i, p in enumerate(OURS)
    ]


def placeholder(payload: str) -> str:
    """An inert text of the payload's line structure (the rationale and evidence are shown one
    line per item)."""
    return "".join(ch if len(f"a{ch}b".splitlines()) == 2 else "x" for ch in payload)


class Markup(HTMLParser):
    """Every tag (start and end), comment and declaration of a page with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple[tuple[str, str | None], ...]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        kept = tuple((k, v if k != "value" or len(v or "") < 40 else "<token>") for k, v in attrs)
        self.tags.append((tag, kept))

    def handle_endtag(self, tag: str) -> None:
        self.tags.append((f"/{tag}", ()))

    def handle_comment(self, data: str) -> None:
        self.tags.append(("!--", ()))

    def handle_decl(self, decl: str) -> None:
        self.tags.append((f"!{decl}", ()))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Markup:
    parser = Markup()
    parser.feed(page)
    return parser


IDS = re.compile(r"apr-[0-9a-f]{16}|[0-9a-f]{64}")
# a link to the kept records carries the (url-encoded) host: ours, whatever the host's text
EVENTS_QUERY = re.compile(r"/events\?[^\"]*$")


def normalise(markup: Markup, incident_id: str) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    """The tags with the incident's own ids (incident, approval, action hash) made alike."""
    return [
        (
            tag,
            tuple(
                (
                    k,
                    EVENTS_QUERY.sub(
                        "/events?Q", IDS.sub("ID", (v or "").replace(incident_id, "ID"))
                    ),
                )
                for k, v in attrs
            ),
        )
        for tag, attrs in markup.tags
    ]


async def seed(store: Store, incident_id: str, payload: str) -> None:
    short = payload[:SHORT]
    alert = make_alert(
        f"{incident_id}-a",
        title=short,
        host=short,
        user=short,
        domain=short,
        process={"name": short, "cmd_line": payload},
        file={"path": short},
    )
    await seed_incident(store, incident_id, alerts=[alert], title=short, rationale=payload)
    # a claim of the rationale resting on a kept record of the hostile host (its link carries
    # the host; its label shows it)
    claim = "the process rests on a kept record"
    ref = {"host": short, "time": AT.isoformat(), "source": "process", "pid": 4242}
    await store.append_audit(
        AuditEvent(
            type="agent.triage",
            actor="garrison-agent",
            incident_id=incident_id,
            target=incident_id,
            outcome="malicious:execution",
            source="test",
            detail={
                "rationale": f"{payload}\n{claim}",
                "claims": json.dumps([{"text": claim, "refs": [ref]}]),
            },
        )
    )
    fields = (("image", short), ("cmd_line", payload), ("user", short))
    await store.evidence.keep(
        incident_id, [KeptEvent(host=short, time=AT, kind="process", pid=4242, fields=fields)]
    )


def events_href(page: str) -> str:
    links = [dict(a).get("href") for t, a in parse(page).tags if ("class", "evidence-link") in a]
    assert len(links) == 1 and links[0], "the claim has no link to its records"
    return links[0]


@pytest.mark.slow
async def test_every_injection_case_renders_as_text_never_as_markup(tmp_path: Path) -> None:
    cases = payloads()
    assert len(cases) >= 144
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c, client(c.app) as http:
        await seed(c.store, "control", placeholder("x"))
        for n, (_case, payload) in enumerate(cases):
            await seed(c.store, f"hostile-{n}", payload)
            await seed(c.store, f"inert-{n}", placeholder(payload))
        await sign_in(http, "alice")
        for n, (case, payload) in enumerate(cases):
            hostile = (await http.get(f"/console/incidents/hostile-{n}")).text
            inert = (await http.get(f"/console/incidents/inert-{n}")).text
            hostile_markup, inert_markup = parse(hostile), parse(inert)
            normalised = normalise(hostile_markup, f"hostile-{n}")
            expected = normalise(inert_markup, f"inert-{n}")
            assert normalised == expected, f"{case}: the payload changed the page's markup"
            assert payload in "".join(hostile_markup.text), (
                f"{case}: the payload is not shown whole"
            )
            assert payload[:SHORT] in html.unescape(hostile)
            hostile_records = (await http.get(events_href(hostile))).text
            inert_records = (await http.get(events_href(inert))).text
            assert "kept-event" in hostile_records, f"{case}: the kept record is not shown"
            records = parse(hostile_records)
            assert normalise(records, f"hostile-{n}") == normalise(
                parse(inert_records), f"inert-{n}"
            ), f"{case}: the payload changed the kept records' page's markup"
            assert payload in "".join(records.text), f"{case}: the record is not shown whole"
        listing = (await http.get("/console/incidents")).text
        hrefs = [v for t, a in parse(listing).tags for k, v in a if k == "href"]
        assert all(h and h.startswith("/console/") for h in hrefs), hrefs
        assert "<script>window" not in listing and "&lt;script&gt;window" in listing
