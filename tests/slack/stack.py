"""A whole Slack-approval deployment for tests, all real but Slack itself: Garrison's HTTP app on a
loopback port, real workers on the session's Temporal dev server, a SQLite store, the in-memory
twins of a recorded incident, and the fake Slack Web API (`orchestrator.slack.emulator`) that
enforces Slack's posting rate. Clicks are form bodies signed with the signing secret, as Slack
sends them."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from agents.model_client import AgentModels
from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.approvals.service import ApprovalService
from orchestrator.composition import open_checkpointer, open_store
from orchestrator.ingest.sink import Backpressure
from orchestrator.models import IncidentResult, IncidentStatusView, PendingApprovalView
from orchestrator.policy.model import PolicyDocument, load_policy
from orchestrator.server.app import ServerDeps, SlackRuntime, create_app
from orchestrator.server.tokens import ApiTokens, digest
from orchestrator.settings import GarrisonSettings, TemporalSettings
from orchestrator.slack.emulator import SlackState, StoredMessage, slack_emulator
from orchestrator.slack.notifier import SlackNotifier
from orchestrator.slack.signing import signature
from orchestrator.slack.webapi import SlackWebClient
from orchestrator.store.repository import Store
from orchestrator.worker import WorkerDeps, build_workers
from orchestrator.workflows.incident import IncidentWorkflow
from simulations.loader import LoadedIncident, load_all
from simulations.replay import start_incident
from simulations.routing import RecordedBackends
from simulations.runner import replay_context, workflow_input
from tools.actions import ActionKind
from tools.emulators.serve import serve
from tools.ticketing.base import TicketingClient
from tools.toolsets import ResponseTools

ROOT = Path(__file__).parents[2]
INCIDENT = ROOT / "simulations" / "incidents" / "otrf-lsass-procdump-acct01"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # Slack's documentation example, not a real secret
BOT_TOKEN = "xoxb-test-token"
CHANNEL = "C0SOCAPPROVALS"
TEAM = "T0GARRISON"
APP = "A0GARRISON"
ALICE, BOB, CAROL, MALLORY = "U0ALICE", "U0BOB", "U0CAROL", "U0MALLORY"
ONCALL_GROUP = "S0ONCALL"
TOKENS = {"alice": "tok-alice", "bob": "tok-bob", "garrison-agent": "tok-agent"}
DIRECTORY = {
    "slack": {"team_id": TEAM, "app_id": APP},
    "people": {"alice": {"slack_user": ALICE}, "bob": {"slack_user": BOB}},
    "groups": {
        # Bob is on call through the Slack user group only; the agents' identity is listed on
        # purpose: membership must never let it approve its own request.
        "soc-primary": {"members": ["alice", "garrison-agent"], "slack_usergroups": [ONCALL_GROUP]},
        "soc-secondary": {"slack_users": [CAROL]},
    },
}

Handle = WorkflowHandle[IncidentWorkflow, IncidentResult]
T = TypeVar("T")


def strict_policy(two_approvers: bool = False) -> PolicyDocument:
    """Every isolation of the recorded workstation needs a human (two with `two_approvers`)."""
    update: dict[str, Any] = {"threshold": 10, "version": "test-slack"}
    if two_approvers:
        update["two_approver_above"] = 20
    return load_policy(None).model_copy(update=update)


def click_body(
    approval_id: str,
    action_hash: str,
    *,
    user: str,
    approve: bool = True,
    team: str = TEAM,
    app: str = APP,
    action_ts: str | None = None,
) -> bytes:
    payload = {
        "type": "block_actions",
        "team": {"id": team, "domain": "garrison-test"},
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "api_app_id": app,
        "token": "deprecated-verification-token",
        "trigger_id": f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:12]}",
        "container": {"type": "message", "channel_id": CHANNEL, "message_ts": "1.0"},
        "channel": {"id": CHANNEL, "name": "soc-approvals"},
        "actions": [
            {
                "action_id": "garrison.approve" if approve else "garrison.deny",
                "block_id": "garrison.decision",
                "type": "button",
                "value": json.dumps({"approval_id": approval_id, "action_hash": action_hash}),
                "action_ts": action_ts or f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed_headers(body: bytes, *, skew_s: float = 0.0, secret: str = SECRET) -> dict[str, str]:
    timestamp = str(int(time.time() + skew_s))
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": signature(secret, timestamp, body),
    }


@dataclass
class Stack:
    url: str
    http: httpx.AsyncClient
    slack: SlackState
    store: Store
    settings: GarrisonSettings
    env: WorkflowEnvironment
    deps: ServerDeps
    backends: RecordedBackends
    loaded: LoadedIncident
    policy: PolicyDocument

    async def start(self) -> tuple[str, Handle]:
        incident_id = f"slk-{uuid.uuid4().hex[:6]}--{self.loaded.spec.id}"
        ctx = replay_context(self.env.client, self.store, self.settings, self.policy, 60)
        params = workflow_input(self.settings, self.policy, incident_id, self.loaded.spec.title)
        deadline = time.monotonic() + 90
        while True:  # as a sender waits out a 429: a loaded CI machine can keep SQLite busy
            try:
                handle = await start_incident(ctx, self.loaded, incident_id, params)
                return incident_id, handle
            except Backpressure:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1.0)

    async def click(self, body: bytes, **headers: Any) -> httpx.Response:
        return await self.http.post(
            "/slack/interactions", content=body, headers=signed_headers(body, **headers)
        )

    def cards(self) -> list[StoredMessage]:
        return [
            m
            for m in self.slack.messages.get(CHANNEL, [])
            if (m.metadata or {}).get("event_payload", {}).get("key", "").startswith("approval:")
        ]

    def notes(self, thread_ts: str) -> list[StoredMessage]:
        return [
            m
            for m in self.slack.messages.get(CHANNEL, [])
            if m.thread_ts == thread_ts and m.ts != thread_ts and m not in self.cards()
        ]


async def pending(
    handle: Handle,
    store: Store,
    *,
    seen: set[str] | None = None,
    kind: ActionKind | None = ActionKind.ISOLATE_HOST,
) -> PendingApprovalView:
    """The pending request for a `kind` action (None: any) not in `seen`, once the store holds
    its record: the workflow may show a request a moment before its record is stored, and a click
    in between is answered "unknown approval". A playbook round's requests are made together, so
    which is listed first is not the proposals' order."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status: IncidentStatusView = await handle.query(IncidentWorkflow.status)
        fresh = [
            p
            for p in status.pending_approvals
            if p.approval_id not in (seen or set()) and (kind is None or p.action.kind is kind)
        ]
        if fresh and await store.get_approval(fresh[0].approval_id) is not None:
            return fresh[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no stored approval request for {kind or 'any action'} appeared")


async def eventually(check: Any, timeout_s: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def until(
    check: Callable[[], Awaitable[T | None]], timeout_s: float = 60.0, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = await check()
        if result is not None:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class TicketingBackends(RecordedBackends):
    """The recorded twins, with the tickets in another ticketing client (a vendor's adapter
    against its emulator, say)."""

    def __init__(self, loaded: list[LoadedIncident], ticketing: TicketingClient) -> None:
        super().__init__(loaded)
        self.ticketing = ticketing

    def response_tools(self, incident_id: str) -> ResponseTools:
        return replace(super().response_tools(incident_id), ticketing=self.ticketing)


@asynccontextmanager
async def slack_stack(
    env: WorkflowEnvironment,
    tmp_path: Path,
    policy: PolicyDocument | None = None,
    *,
    post_interval_s: float = 1.0,
    model: AgentModels | None = None,
    ticketing: TicketingClient | None = None,
) -> AsyncIterator[Stack]:
    """`post_interval_s`: the fake Slack's posting limit per channel, which the client paces to.
    Slack's own (one a second) unless a test that posts many cards asks for a faster Slack.
    `model`: the agents' models (none: the rules alone); `ticketing`: where tickets go (none:
    the recorded incident's in-memory twin)."""
    address = env.client.service_client.config.target_host
    settings = GarrisonSettings(
        data_dir=tmp_path / "data",
        temporal=TemporalSettings(address=address, task_queue_prefix=f"s{uuid.uuid4().hex[:8]}"),
    )
    directory = ApproverDirectory.model_validate(DIRECTORY)
    loaded = load_all([INCIDENT]).incidents[0]
    backends = (
        RecordedBackends([loaded]) if ticketing is None else TicketingBackends([loaded], ticketing)
    )
    fake = slack_emulator(
        BOT_TOKEN, usergroups={ONCALL_GROUP: [BOB]}, rate_per_channel_s=post_interval_s
    )
    async with AsyncExitStack() as stack:
        slack_url = await stack.enter_async_context(serve(fake))
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        client = SlackWebClient(slack_url, BOT_TOKEN, min_interval_s=post_interval_s)
        stack.push_async_callback(client.aclose)
        notifier = SlackNotifier(client, store, directory, CHANNEL)
        checkpointer = await stack.enter_async_context(open_checkpointer(settings))
        for worker in build_workers(
            env.client,
            settings.temporal,
            WorkerDeps(store, backends, checkpointer, notifier, model=model),
        ):
            await stack.enter_async_context(worker)
        deps = ServerDeps(
            store=store,
            approvals=ApprovalService(env.client, store, directory, settings.agent_identity),
            tokens=ApiTokens(tokens={name: digest(token) for name, token in TOKENS.items()}),
            slack=SlackRuntime(SECRET, notifier),
        )
        url = await stack.enter_async_context(serve(create_app(deps)))
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
        stack.push_async_callback(deps.aclose)
        yield Stack(
            url=url,
            http=http,
            slack=fake.state.slack,
            store=store,
            settings=settings,
            env=env,
            deps=deps,
            backends=backends,
            loaded=loaded,
            policy=policy or strict_policy(),
        )
