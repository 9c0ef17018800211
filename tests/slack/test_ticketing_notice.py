"""Humans hear of a ticketing outage through Slack, which does not depend on the ticketing vendor:
`SlackNotifier.ticketing` over the Slack emulator and a real SQLite store posts each notice once,
in the channel before any approval card started the incident's thread, and in that thread
(broadcast) after."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.composition import open_store
from orchestrator.models import TicketingEvent, TicketingStatusInput
from orchestrator.settings import GarrisonSettings
from orchestrator.slack.emulator import SlackState, slack_emulator
from orchestrator.slack.notifier import SlackNotifier
from orchestrator.slack.webapi import SlackWebClient
from orchestrator.store.records import SlackMessage
from tests.slack.stack import BOT_TOKEN, CHANNEL, DIRECTORY
from tools.emulators.serve import serve

SINCE = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)


def status(event: TicketingEvent, seq: int, incident_id: str = "inc-1") -> TicketingStatusInput:
    return TicketingStatusInput(
        incident_id=incident_id,
        event=event,
        seq=seq,
        at=datetime.now(UTC),
        since=SINCE,
        pending=3,
    )


async def test_ticketing_notices_are_posted_once_in_the_channel_then_in_the_thread(
    tmp_path: Path,
) -> None:
    fake = slack_emulator(BOT_TOKEN, rate_per_channel_s=0.01)
    slack: SlackState = fake.state.slack
    async with serve(fake) as url:
        store = await open_store(GarrisonSettings(data_dir=tmp_path))
        client = SlackWebClient(url, BOT_TOKEN, min_interval_s=0.01)
        try:
            notifier = SlackNotifier(
                client, store, ApproverDirectory.model_validate(DIRECTORY), CHANNEL
            )
            down = status(TicketingEvent.UNAVAILABLE, 1)
            await notifier.ticketing(down)
            await notifier.ticketing(down)  # delivered again by the outbox: posted once
            (posted,) = slack.messages[CHANNEL]
            assert posted.thread_ts is None
            assert "Ticketing is unavailable for incident inc-1 since 2026-12-06 04:00:00" in (
                posted.text
            )
            assert "3 update(s) wait" in posted.text

            # Once an approval card started the incident's thread, notices go there, broadcast.
            await store.slack.save_message(
                SlackMessage(
                    key="incident:inc-1",
                    channel=CHANNEL,
                    ts=posted.ts,
                    thread_ts=None,
                    payload="",
                    posted_at=datetime.now(UTC),
                )
            )
            await notifier.ticketing(status(TicketingEvent.RESTORED, 2))
            restored = slack.messages[CHANNEL][-1]
            assert (restored.thread_ts, restored.reply_broadcast) == (posted.ts, True)
            assert restored.text.startswith("Ticketing is back for incident inc-1")
            assert len(slack.messages[CHANNEL]) == 2
        finally:
            await client.aclose()
            await store.close()
