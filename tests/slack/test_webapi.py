"""The Slack Web API client against the Slack emulator on a real loopback port (and, for timing
and error classification alone, over `httpx.MockTransport` with an injected clock)."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from orchestrator.slack.card import approval_card, decided_card, thread_note
from orchestrator.slack.emulator import Ephemeral, SlackState, slack_emulator
from orchestrator.slack.webapi import SlackApiError, SlackUnavailable, SlackWebClient
from tests.slack.test_card import APPROVERS, T0, make_request
from tools.emulators.serve import serve
from tools.errors import PermanentToolError, TransientToolError

TOKEN = "xoxb-1111-2222-CANARYsecretVALUE"
CHANNEL = "C0APPROVALS"
GROUP = {"S05SOCLEAD": ["U05A1B2C3D4", "U0BOB00001"]}
EVENT = "garrison_message"


@asynccontextmanager
async def slack(
    *, rate_s: float = 0.2, token: str = TOKEN, **client: Any
) -> AsyncIterator[tuple[SlackState, SlackWebClient]]:
    app = slack_emulator(TOKEN, usergroups=GROUP, rate_per_channel_s=rate_s)
    state: SlackState = app.state.slack
    client.setdefault("min_interval_s", rate_s)
    async with serve(app) as base_url, SlackWebClient(base_url, token, **client) as web:
        yield state, web


def keyed(key: str) -> Any:
    return {"event_type": EVENT, "event_payload": {"key": key}}


async def test_post_update_ephemeral_and_usergroup_round_trip() -> None:
    request = make_request()
    card = approval_card(request, approvers_needed=APPROVERS, rationale_from_model=True)
    async with slack() as (state, web):
        ts = await web.post_message(
            CHANNEL, text=card["text"], blocks=card["blocks"], metadata=keyed("approval:1")
        )
        note = thread_note("Reminder: still pending.", mentions=["S05SOCLEAD"])
        reply = await web.post_message(
            CHANNEL, text=note["text"], blocks=note["blocks"], thread_ts=ts
        )
        decided = decided_card(
            request, status="approved", decisions=[("alice", "approve", T0)], at=T0
        )
        await web.update(CHANNEL, ts, text=decided["text"], blocks=decided["blocks"])
        await web.post_ephemeral(CHANNEL, "U05A1B2C3D4", text="You are not an approver.")
        members = await web.usergroup_members("S05SOCLEAD")

        with pytest.raises(SlackApiError) as unknown_group:
            await web.usergroup_members("S0NOBODY00")
        with pytest.raises(SlackApiError) as unknown_ts:
            await web.update(CHANNEL, "1.000001", text="x", blocks=decided["blocks"])
        with pytest.raises(SlackApiError) as no_channel:
            await web.post_message("#general", text="x", blocks=note["blocks"])

    card_message, reply_message = state.messages[CHANNEL]
    assert card_message.ts == ts and reply_message.ts == reply and float(reply) > float(ts)
    assert (card_message.text, card_message.blocks) == (decided["text"], decided["blocks"])
    assert [(e.text, e.blocks) for e in card_message.edits] == [(card["text"], card["blocks"])]
    assert card_message.metadata == keyed("approval:1")
    assert reply_message.thread_ts == ts and not reply_message.reply_broadcast
    assert state.ephemerals == [
        Ephemeral(
            CHANNEL, "U05A1B2C3D4", "You are not an approver.", None, state.ephemerals[0].message_ts
        )
    ]
    assert members == frozenset(GROUP["S05SOCLEAD"])
    assert unknown_group.value.error == "no_such_subteam"
    assert unknown_ts.value.error == "message_not_found"
    assert no_channel.value.error == "channel_not_found"


async def test_burst_to_one_channel_is_paced_below_the_limit() -> None:
    async with slack(rate_s=0.2) as (state, web):
        posts = [web.post_message(CHANNEL, text=f"approval {i}", blocks=[]) for i in range(10)]
        other = web.post_message("C0OTHER", text="another channel", blocks=[])
        *stamps, other_ts = await asyncio.gather(*posts, other)

    assert len(set(stamps)) == 10
    ledger = state.calls("chat.postMessage")
    assert [entry.status for entry in ledger] == [200] * 11  # not one 429
    burst = [entry.at for entry in ledger if b"C0APPROVALS" in entry.body]
    assert all(b - a >= timedelta(seconds=0.2) for a, b in itertools.pairwise(burst))
    arrivals = [m.received_at for m in state.messages[CHANNEL]]
    assert all(b - a >= 0.2 for a, b in itertools.pairwise(arrivals))
    # Pacing is per channel: the other channel's post did not queue behind the burst.
    assert state.messages["C0OTHER"][0].received_at < arrivals[1]
    assert other_ts == state.messages["C0OTHER"][0].ts


async def test_forced_429_is_waited_out_never_sooner_than_retry_after() -> None:
    async with slack() as (state, web):
        state.force_429(retry_after=1)
        ts = await web.post_message(CHANNEL, text="approval", blocks=[])

    limited, accepted = state.calls("chat.postMessage")
    assert (limited.status, accepted.status) == (429, 200)
    assert accepted.at - limited.at >= timedelta(seconds=1)
    assert [m.ts for m in state.messages[CHANNEL]] == [ts]


async def test_429_beyond_the_budget_or_too_long_is_unavailable() -> None:
    async with slack(rate_limit_retries=2) as (state, web):
        state.force_429(retry_after=0, calls=5)
        with pytest.raises(SlackUnavailable):
            await web.usergroup_members("S05SOCLEAD")
        assert [e.status for e in state.calls("usergroups.users.list")] == [429] * 3

        state.force_429(retry_after=120, calls=1)
        with pytest.raises(SlackUnavailable) as long_wait:
            await web.post_message(CHANNEL, text="approval", blocks=[])
    assert long_wait.value.retry_after_s == 120
    assert isinstance(long_wait.value, TransientToolError)
    assert [e.status for e in state.calls("chat.postMessage")] == [429]


async def test_emulator_refuses_posts_faster_than_its_rate() -> None:
    async with slack(rate_s=5.0, min_interval_s=0.0, rate_limit_retries=0) as (state, web):
        await web.post_message(CHANNEL, text="first", blocks=[])
        with pytest.raises(SlackUnavailable) as limited:
            await web.post_message(CHANNEL, text="too soon", blocks=[])
    assert limited.value.retry_after_s == 5
    assert [m.text for m in state.messages[CHANNEL]] == ["first"]


async def test_outage_and_unreachable_slack_are_unavailable() -> None:
    async with slack() as (state, web):
        state.outage = True
        with pytest.raises(SlackUnavailable):
            await web.post_message(CHANNEL, text="approval", blocks=[])
        state.outage = False
        state.outage_until = state.clock() + 0.5
        with pytest.raises(SlackUnavailable):
            await web.update(CHANNEL, "1.000001", text="x", blocks=[])
        await asyncio.sleep(state.outage_until - state.clock() + 0.05)
        await web.post_message(CHANNEL, text="approval", blocks=[])
    assert [e.status for e in state.ledger] == [503, 503, 200]

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with SlackWebClient(f"http://127.0.0.1:{port}", TOKEN) as web:
        with pytest.raises(SlackUnavailable) as refused:
            await web.usergroup_members("S05SOCLEAD")
    assert TOKEN not in str(refused.value)


async def test_wrong_token_is_invalid_auth_and_never_echoed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "xoxb-9999-8888-WRONGsecretVALUE"
    caplog.set_level(logging.DEBUG)
    async with slack(token=wrong) as (state, web):
        with pytest.raises(SlackApiError) as refused:
            await web.post_message(CHANNEL, text="approval", blocks=[])
    assert refused.value.error == "invalid_auth"
    assert isinstance(refused.value, PermanentToolError)
    for shown in (str(refused.value), repr(refused.value), caplog.text):
        assert wrong not in shown and TOKEN not in shown
    assert CHANNEL not in state.messages


async def test_find_message_by_metadata_key() -> None:
    async with slack(rate_s=0.0) as (state, web):
        first = await web.post_message(CHANNEL, text="a", blocks=[], metadata=keyed("approval:a"))
        for i in range(205):  # more than one page of history
            await web.post_message(CHANNEL, text=f"n{i}", blocks=[], metadata=keyed(f"n:{i}"))
        plain = await web.post_message(CHANNEL, text="no metadata", blocks=[])
        await web.post_message(
            CHANNEL, text="reply", blocks=[], thread_ts=plain, metadata=keyed("reply")
        )
        latest = await web.post_message(CHANNEL, text="b", blocks=[], metadata=keyed("approval:b"))

        assert await web.find_message(CHANNEL, event_type=EVENT, key="approval:b") == latest
        assert await web.find_message(CHANNEL, event_type=EVENT, key="approval:a") == first
        assert await web.find_message(CHANNEL, event_type=EVENT, key="nothing") is None
        assert await web.find_message(CHANNEL, event_type="other", key="approval:b") is None
        # Thread replies are not in a channel's history (as in Slack), nor is anything older
        # than `oldest`.
        assert await web.find_message(CHANNEL, event_type=EVENT, key="reply") is None
        found = await web.find_message(CHANNEL, event_type=EVENT, key="approval:a", oldest=plain)
        assert found is None
    pages = state.calls("conversations.history")
    assert len(pages) >= 3 and all(e.status == 200 for e in pages)


async def test_emulator_refuses_what_slack_refuses() -> None:
    too_long = [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]
    empty_text = [{"type": "section", "text": {"type": "plain_text", "text": ""}}]
    async with slack(rate_s=0.0) as (_, web):
        for blocks in (too_long, empty_text, [{"type": "divider"}] * 51):
            with pytest.raises(SlackApiError, match="invalid_blocks"):
                await web.post_message(CHANNEL, text="x", blocks=blocks)
        with pytest.raises(SlackApiError, match="no_text"):
            await web.post_message(CHANNEL, text="", blocks=[])


# ---- the client's own decisions, over MockTransport ------------------------------------------


class FakeClock:
    """Time that moves only when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def mock_client(
    answers: list[httpx.Response], seen: list[httpx.Request], clock: FakeClock
) -> SlackWebClient:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    return SlackWebClient(
        "https://slack.test",
        TOKEN,
        transport=httpx.MockTransport(handle),
        clock=clock,
        sleep=clock.sleep,
    )


def ok(**fields: Any) -> httpx.Response:
    return httpx.Response(200, json={"ok": True, **fields})


async def test_requests_are_json_with_the_bearer_token_and_posts_are_paced() -> None:
    clock, seen = FakeClock(), []
    answers = [ok(ts="1.1"), ok(ts="1.2"), ok(users=["U1"])]
    async with mock_client(answers, seen, clock) as web:
        await web.post_message(CHANNEL, text="a", blocks=[], metadata=keyed("k"))
        clock.now += 0.25
        await web.post_message(CHANNEL, text="b", blocks=[])
        await web.usergroup_members("S05SOCLEAD")

    assert clock.sleeps == [pytest.approx(0.75)]  # one second after the first answer
    post, _, members = seen
    assert str(post.url) == "https://slack.test/api/chat.postMessage"
    assert post.headers["Authorization"] == f"Bearer {TOKEN}"
    assert post.headers["Content-Type"] == "application/json; charset=utf-8"
    body = json.loads(post.content)
    assert body["metadata"] == keyed("k")
    assert (body["unfurl_links"], body["unfurl_media"]) == (False, False)
    assert members.method == "GET" and members.url.params["usergroup"] == "S05SOCLEAD"


async def test_retry_after_is_slept_in_full() -> None:
    clock, seen = FakeClock(), []
    limited = httpx.Response(429, headers={"Retry-After": "7"}, json={"ok": False})
    async with mock_client([limited, ok(ts="2.0")], seen, clock) as web:
        assert await web.post_message(CHANNEL, text="a", blocks=[]) == "2.0"
    assert clock.sleeps == [7.0] and len(seen) == 2


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (httpx.Response(200, json={"ok": False, "error": "channel_not_found"}), SlackApiError),
        (httpx.Response(200, json={"ok": False, "error": "internal_error"}), SlackUnavailable),
        (httpx.Response(502, text="<html>bad gateway</html>"), SlackUnavailable),
        (httpx.Response(200, text="<html>proxy</html>"), SlackUnavailable),
        (httpx.Response(404, text="not here"), SlackApiError),
    ],
)
async def test_answers_are_classified_once(answer: httpx.Response, error: type[Exception]) -> None:
    async with mock_client([answer], [], FakeClock()) as web:
        with pytest.raises(error):
            await web.update(CHANNEL, "1.0", text="x", blocks=[])


async def test_error_codes_that_are_not_codes_are_not_echoed() -> None:
    answer = httpx.Response(200, json={"ok": False, "error": "<!channel> see <https://x>"})
    async with mock_client([answer], [], FakeClock()) as web:
        with pytest.raises(SlackApiError) as refused:
            await web.update(CHANNEL, "1.0", text="x", blocks=[])
    assert refused.value.error == "unknown_error" and "channel" not in str(refused.value)
