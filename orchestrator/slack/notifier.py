"""`SlackNotifier`: approval requests as Block Kit cards, one thread per incident for its timeline.

Exactly-once: every message has a key (`approval:<id>`, `incident:<id>`, `note:<id>:<what>`);
once Slack answers with the message `ts` it is stored under that key and later edits use it. When
a previous attempt may have posted without the answer arriving (a retried activity), the channel
is searched for a message carrying the key in its metadata before posting again. Messages are
rendered from the request the workflow sent, never from model text: the card's facts are the
policy engine's.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from temporalio import activity

from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.approvals.notifier import ticketing_text
from orchestrator.models import (
    ApprovalFinalInput,
    ApprovalNotice,
    ApprovalNoticeInput,
    ApprovalRequestInput,
    TicketingStatusInput,
)
from orchestrator.observability.tracing import current_trace_id
from orchestrator.slack.card import approval_card, decided_card, mention_text, thread_note
from orchestrator.slack.webapi import SlackWebClient
from orchestrator.store.records import SlackMessage
from orchestrator.store.repository import Store

log = logging.getLogger("garrison.slack")
EVENT_TYPE = "garrison_message"  # Slack message metadata type carrying the message key


class SlackNotifier:
    def __init__(
        self,
        client: SlackWebClient,
        store: Store,
        directory: ApproverDirectory,
        channel: str,
    ) -> None:
        self.client = client
        self.store = store
        self.directory = directory
        self.channel = channel

    # -- ApprovalNotifier -----------------------------------------------------------------------

    async def requested(self, request: ApprovalRequestInput) -> None:
        key = f"approval:{request.approval_id}"
        if await self.store.slack.message(key) is not None:
            return
        root = await self.store.slack.message(f"incident:{request.incident_id}")
        thread_ts = root.ts if root else None
        card = approval_card(
            request,
            approvers_needed=self.approvers_needed(request),
            rationale_from_model=request.rationale_from_model,
            trace_id=current_trace_id(),
        )
        ts = await self._post_once(key, card, thread_ts=thread_ts, broadcast=True)
        await self._save(key, ts, thread_ts, request.model_dump_json())
        if root is None:  # the incident's first card starts its thread
            await self._save(f"incident:{request.incident_id}", ts, None, "")

    async def notice(self, notice: ApprovalNoticeInput) -> None:
        request = await self._request(notice.approval_id)
        if request is None:
            return
        if notice.notice is ApprovalNotice.REMINDER:
            group = request.approver_group
            text = (
                f"Reminder: approval `{request.approval_id}` ({request.action.kind.value}, risk"
                f" {request.decision.risk}) still needs a decision from {group} before"
                f" {_when(request.deadline)}."
            )
        else:
            group = request.escalation_group
            text = (
                f"Escalated to {group}: approval `{request.approval_id}`"
                f" ({request.action.kind.value}, risk {request.decision.risk}) was not decided"
                f" by the deadline. It is denied by default at {_when(request.expires_at)}."
            )
        await self.note(
            request, f"{notice.notice.value}", text, mentions=self.directory.slack_mentions(group)
        )

    async def finalized(self, final: ApprovalFinalInput) -> None:
        card = await self.store.slack.message(f"approval:{final.approval_id}")
        if card is None:
            return
        request = ApprovalRequestInput.model_validate_json(card.payload)
        decisions = [(d.user, d.decision.value, final.at) for d in final.decisions]
        message = decided_card(request, status=final.status, decisions=decisions, at=final.at)
        await self.client.update(
            card.channel, card.ts, text=message["text"], blocks=message["blocks"]
        )
        who = ", ".join(f"{d.decision.value} by {d.user}" for d in final.decisions)
        outcome = {
            "approved": f"Approved ({who}): the action runs now.",
            "denied": f"Denied ({who}): the action will not run.",
        }.get(final.status, "Expired: not decided in time; denied by default.")
        await self.note(request, "final", f"`{request.approval_id}`: {outcome}")

    async def ticketing(self, status: TicketingStatusInput) -> None:
        """A ticketing outage of an incident, in its thread (broadcast) or, before any card
        started one, in the channel: Slack is the channel that does not depend on the ticket."""
        key = f"ticketing:{status.incident_id}:{status.seq}"
        if await self.store.slack.message(key) is not None:
            return
        root = await self.store.slack.message(f"incident:{status.incident_id}")
        thread_ts = root.ts if root else None
        ts = await self._post_once(
            key, thread_note(ticketing_text(status)), thread_ts=thread_ts, broadcast=True
        )
        await self._save(key, ts, thread_ts, "")

    # -- helpers for the interactivity endpoint -------------------------------------------------

    def approvers_needed(self, request: ApprovalRequestInput) -> str:
        """Garrison's own mrkdwn: how many, from which group, mentioning the group in Slack."""
        count = max(1, request.decision.required_approvers)
        who = "1 approver" if count == 1 else f"{count} distinct approvers"
        pinged = mention_text(self.directory.slack_mentions(request.approver_group))
        group = f"{request.approver_group} {pinged}".strip()
        return f"{who} from {group} (escalation: {request.escalation_group})"

    async def note(
        self,
        request: ApprovalRequestInput,
        what: str,
        text: str,
        *,
        mentions: list[str] | None = None,
        untrusted: str | None = None,
    ) -> None:
        """A timeline line in the incident's thread, posted once per (approval, what)."""
        key = f"note:{request.approval_id}:{what}"
        if await self.store.slack.message(key) is not None:
            return
        root = await self.store.slack.message(f"incident:{request.incident_id}")
        if root is None:
            return
        message = thread_note(text, mentions=mentions or [], untrusted=untrusted)
        ts = await self._post_once(key, message, thread_ts=root.ts, broadcast=False)
        await self._save(key, ts, root.ts, "")

    async def request_of(self, approval_id: str) -> ApprovalRequestInput | None:
        return await self._request(approval_id)

    async def ephemeral(self, channel: str, user: str, text: str) -> None:
        await self.client.post_ephemeral(channel, user, text=text)

    # -- internals ------------------------------------------------------------------------------

    async def _request(self, approval_id: str) -> ApprovalRequestInput | None:
        card = await self.store.slack.message(f"approval:{approval_id}")
        return None if card is None else ApprovalRequestInput.model_validate_json(card.payload)

    async def _post_once(
        self, key: str, message: dict, *, thread_ts: str | None, broadcast: bool
    ) -> str:
        if _retrying():
            if thread_ts is None or broadcast:  # broadcast replies show in the history too
                found = await self.client.find_message(self.channel, event_type=EVENT_TYPE, key=key)
            else:
                found = await self.client.find_reply(
                    self.channel, thread_ts, event_type=EVENT_TYPE, key=key
                )
            if found is not None:
                log.info("slack message %s was posted by an earlier attempt (ts %s)", key, found)
                return found
        return await self.client.post_message(
            self.channel,
            text=message["text"],
            blocks=message["blocks"],
            thread_ts=thread_ts,
            reply_broadcast=broadcast and thread_ts is not None,
            metadata={"event_type": EVENT_TYPE, "event_payload": {"key": key}},
        )

    async def _save(self, key: str, ts: str, thread_ts: str | None, payload: str) -> None:
        await self.store.slack.save_message(
            SlackMessage(
                key=key,
                channel=self.channel,
                ts=ts,
                thread_ts=thread_ts,
                payload=payload,
                posted_at=datetime.now(UTC),
            )
        )


def _retrying() -> bool:
    """True inside a retried activity: an earlier attempt may have posted already."""
    return activity.in_activity() and activity.info().attempt > 1


def _when(at: datetime) -> str:
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{at:%Y-%m-%d %H:%M} UTC>"
