"""The console in a real browser (Debian's chromium via Playwright), against one shared server
with real workers on the session's Temporal dev server and the twins of a replayed recorded
incident: an analyst signs in, opens the incident, reads the rationale, approves one action (a
second analyst completes its two approvals) and denies another, sees the incident finish; the
requester's own approval is refused on the page with the reason; every injection-corpus payload
rendered as alerts stays inert in the browser.

Screenshots of each page go to .garrison/screenshots/ (GARRISON_SCREENSHOTS to move them)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from orchestrator.approvals.notifier import LogNotifier
from orchestrator.approvals.service import ApprovalService
from orchestrator.composition import open_checkpointer, open_store
from orchestrator.console.auth import ConsoleConfig
from orchestrator.console.evidence_pages import events_url
from orchestrator.models import IncidentStatusView
from orchestrator.policy.model import load_policy
from orchestrator.server.app import ServerDeps, create_app
from orchestrator.server.tokens import ApiTokens
from orchestrator.settings import GarrisonSettings, TemporalSettings
from orchestrator.store.evidence import KeptEvent
from orchestrator.store.records import ApprovalRecord, ApprovalStatus
from orchestrator.store.repository import Store
from orchestrator.worker import WorkerDeps, build_workers
from orchestrator.workflows.incident import IncidentWorkflow
from simulations.loader import load_all
from simulations.replay import start_incident
from simulations.routing import RecordedBackends
from simulations.runner import replay_context, workflow_input
from tests.orchestrator.console.browser import SCREENSHOTS, launch_args, require_browser
from tests.orchestrator.console.seed import (
    DIRECTORY,
    NOW,
    PASSWORD,
    make_alert,
    passwords,
    seed_incident,
)
from tests.orchestrator.console.test_console_injection import payloads
from tools.emulators.serve import serve
from tools.models import IncidentStatus

pytestmark = [pytest.mark.temporal, pytest.mark.slow, pytest.mark.browser]
ROOT = Path(__file__).parents[3]
INCIDENT = ROOT / "simulations" / "incidents" / "otrf-lsass-procdump-acct01"
TEMPORAL_UI = "http://127.0.0.1:8233"


@dataclass
class World:
    url: str
    store: Store
    incident_id: str
    handle: Any
    screenshots: Path


async def status_of(world: World) -> IncidentStatusView:
    return await world.handle.query(IncidentWorkflow.status)


async def closed(world: World) -> bool:
    record = await world.store.get_incident(world.incident_id)
    return record is not None and record.status is IncidentStatus.CLOSED


async def next_pending(
    world: World, seen: set[str], timeout_s: float = 60, kind: str | None = None
) -> ApprovalRecord:
    """The next approval request the workflow made (and the store holds), for a `kind` action
    if given (a playbook round's requests are made together, in no fixed order)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not await closed(world):
        for request in (await status_of(world)).pending_approvals:
            if kind is not None and request.action.kind.value != kind:
                continue
            if request.approval_id not in seen:
                record = await world.store.get_approval(request.approval_id)
                if record is not None:
                    return record
        await asyncio.sleep(0.1)
    raise AssertionError("no new approval request appeared")


@pytest.fixture(scope="module")
async def world(
    temporal_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    require_browser()
    tmp = tmp_path_factory.mktemp("console-browser")
    settings = GarrisonSettings(
        data_dir=tmp / "data",
        temporal=TemporalSettings(
            address=temporal_env.client.service_client.config.target_host,
            task_queue_prefix=f"c{uuid.uuid4().hex[:8]}",
        ),
    )
    # Every containment of the recorded workstation needs two distinct humans.
    policy = load_policy(None).model_copy(
        update={"threshold": 10, "two_approver_above": 20, "version": "test-console"}
    )
    loaded = load_all([INCIDENT]).incidents[0]
    backends = RecordedBackends([loaded])
    async with AsyncExitStack() as stack:
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        checkpointer = await stack.enter_async_context(open_checkpointer(settings))
        for worker in build_workers(
            temporal_env.client,
            settings.temporal,
            WorkerDeps(store, backends, checkpointer, LogNotifier()),
        ):
            await stack.enter_async_context(worker)
        deps = ServerDeps(
            store=store,
            approvals=ApprovalService(temporal_env.client, store, DIRECTORY, "garrison-agent"),
            tokens=ApiTokens(),
            console=ConsoleConfig(
                passwords_file=passwords(tmp / "console-passwords.yaml", "alice", "bob"),
                cookie_secure=False,  # plain http on the loopback: the development setting
                temporal_ui_url=TEMPORAL_UI,
                refresh_s=1,  # the lists' live refresh, fast enough to watch
            ),
        )
        url = await stack.enter_async_context(serve(create_app(deps)))
        stack.push_async_callback(deps.aclose)
        incident_id = f"web-{uuid.uuid4().hex[:6]}--{loaded.spec.id}"
        ctx = replay_context(temporal_env.client, store, settings, policy, 60)
        params = workflow_input(settings, policy, incident_id, loaded.spec.title)
        handle = await start_incident(ctx, loaded, incident_id, params)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        yield World(url, store, incident_id, handle, SCREENSHOTS)
        if not await closed(World(url, store, incident_id, handle, SCREENSHOTS)):
            await handle.terminate("test done")


@pytest.fixture(scope="module")
async def browser(world: World) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(**launch_args())
        try:
            yield chromium
        finally:
            await chromium.close()


async def signed_in_page(browser: Any, world: World, user: str) -> Any:
    context = await browser.new_context(base_url=world.url)
    page = await context.new_page()
    await page.goto("/console/incidents")
    assert page.url.endswith("/console/sign-in")  # sent to sign in first
    await page.fill("input[name=user]", user)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/console/incidents")
    return page


async def test_an_analyst_decides_a_replayed_incident_in_the_browser(
    world: World, browser: Any
) -> None:
    page = await signed_in_page(browser, world, "alice")
    first = await next_pending(world, set(), kind="isolate_host")  # the two-approver one
    await page.reload()
    await page.screenshot(path=world.screenshots / "01-incidents.png", full_page=True)
    await page.click(f"a[href='/console/incidents/{world.incident_id}']")
    await page.wait_for_selector("ul.rationale li")
    rationale = await page.inner_text("ul.rationale")
    assert rationale.strip(), "the triage's rationale is shown"
    assert await page.inner_text(f"#approval-{first.id} code.hash") == first.action_hash
    why = await page.inner_text(f"#approval-{first.id} + .proposal")
    assert why.startswith("Why") and len(why) > len("Why: "), why  # the request's rationale
    temporal = await page.get_attribute("dl.summary a", "href")
    assert temporal == f"{TEMPORAL_UI}/namespaces/default/workflows/incident-{world.incident_id}"
    await page.screenshot(path=world.screenshots / "02-incident.png", full_page=True)
    await page.screenshot(path=world.screenshots / "02-incident-top.png")
    # A claim of the rationale opens the records it rests on, kept when the triage read them.
    await page.click("ul.rationale a.evidence-link >> nth=0")
    await page.wait_for_selector("tr.kept-event")
    assert "/events?" in page.url, page.url
    await page.screenshot(path=world.screenshots / "02-rests-on.png")
    await page.go_back()

    # Approve the first request from the queue: one of the two approvals it needs.
    await page.click("nav >> text=Approvals")
    await page.wait_for_selector(f"#approval-{first.id}")
    await page.screenshot(path=world.screenshots / "03-approvals.png", full_page=True)
    await page.click(f"#approval-{first.id} button.approve")
    flash = await page.inner_text("p.flash")
    assert flash == "approve: recorded (1 of 2 approvals)", flash
    await page.screenshot(path=world.screenshots / "04-first-of-two.png", full_page=True)
    # Approving again is no second approval.
    await page.click(f"#approval-{first.id} button.approve")
    again = await page.inner_text("p.flash.refused")
    assert "alice has already decided this request" in again, again

    # A second analyst, in a browser of her own, completes it.
    second = await signed_in_page(browser, world, "bob")
    await second.goto("/console/approvals")
    await second.click(f"#approval-{first.id} button.approve")
    flash = await second.inner_text("p.flash")
    assert flash == "approve: approved (2 of 2 approvals)", flash
    await second.screenshot(path=world.screenshots / "05-second-approver.png", full_page=True)
    await second.context.close()
    approved = await world.store.get_approval(first.id)
    assert approved is not None and approved.status is ApprovalStatus.APPROVED
    assert sorted((d.user, d.channel) for d in approved.decisions) == [
        ("alice", "console"),
        ("bob", "console"),
    ]

    # Deny the next one from the incident's page; deny any further ones so that it finishes.
    seen = {first.id}
    denied = 0
    while not await closed(world):
        try:
            request = await next_pending(world, seen, timeout_s=30)
        except AssertionError:
            break
        seen.add(request.id)
        await page.goto(f"/console/incidents/{world.incident_id}")
        await page.click(f"#approval-{request.id} button.deny")
        flash = await page.inner_text("p.flash")
        assert flash.startswith("deny:"), flash
        if not denied:
            await page.screenshot(path=world.screenshots / "06-denied.png", full_page=True)
        denied += 1
    assert denied >= 1, "the recorded incident asked for a second decision"

    deadline = time.monotonic() + 60
    while not await closed(world):
        assert time.monotonic() < deadline, "the incident did not finish"
        await asyncio.sleep(0.2)
    await page.goto(f"/console/incidents/{world.incident_id}")
    facts = await page.inner_text("dl.summary")
    assert "closed" in facts
    timeline = await page.inner_text("ol.timeline")
    assert "approval.decision_received" in timeline and "alert" in timeline.lower()
    await page.screenshot(path=world.screenshots / "07-finished.png", full_page=True)
    await page.screenshot(path=world.screenshots / "07-finished-top.png")


async def test_the_requesters_own_approval_is_refused_on_the_page(
    world: World, browser: Any
) -> None:
    page = await signed_in_page(browser, world, "alice")
    await page.goto("/console/approvals")
    # A request alice made herself (a human requester), arriving while the queue is open: the
    # queue shows it by itself (live refresh), and the service refuses her decision.
    own = await seed_incident(world.store, "web-own-request", requester="alice")
    await page.wait_for_selector(f"#approval-{own.id}", timeout=10_000)
    await page.click(f"#approval-{own.id} button.approve")
    flash = await page.inner_text("p.flash.refused")
    assert "You requested this action, so you cannot decide it." in flash
    assert "alice requested this action and cannot decide it" in flash
    await page.screenshot(path=world.screenshots / "08-own-request-refused.png", full_page=True)
    record = await world.store.get_approval(own.id)
    assert record is not None and record.status is ApprovalStatus.PENDING


async def test_injection_payloads_stay_inert_in_the_browser(world: World, browser: Any) -> None:
    cases = payloads()
    alerts = []
    for n, (_case, payload) in enumerate(cases):
        short = payload[:1_024]
        alerts.append(
            make_alert(
                f"inj-{n}",
                title=short,
                host=short,
                user=short,
                domain=short,
                process={"name": short, "cmd_line": payload},
                file={"path": short},
            ).model_copy(update={"time": NOW - timedelta(seconds=n)})
        )
    rationale = "\n".join(p for _c, p in cases)[:8_000]
    await seed_incident(
        world.store, "web-injection", alerts=alerts, title=cases[1][1][:1_024], rationale=rationale
    )
    page = await signed_in_page(browser, world, "bob")
    dialogs: list[str] = []
    foreign: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), asyncio.ensure_future(d.dismiss())))
    page.on(
        "request",
        lambda r: None if r.url.startswith(world.url) else foreign.append(r.url),
    )
    await page.goto("/console/incidents/web-injection")
    await page.wait_for_load_state("networkidle")
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    assert dialogs == [] and foreign == []
    scripts = await page.eval_on_selector_all("script", "s => s.map(x => x.src)")
    assert scripts == [f"{world.url}/console/static/console.js"]
    assert await page.locator("img, iframe, object, embed, svg, form[action^=http]").count() == 0
    hrefs = await page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
    ours = (f"{world.url}/console/", f"{TEMPORAL_UI}/namespaces/")
    assert hrefs and all(h.startswith(ours) for h in hrefs), [
        h for h in hrefs if not h.startswith(ours)
    ]
    shown = await page.inner_text("table.alerts")
    assert all(p[:1_024].split("\n")[0].strip()[:40] in shown for _c, p in cases[:20])
    await page.screenshot(path=world.screenshots / "09-injection-inert.png", full_page=False)

    # The kept records behind a claim: a hostile host, every payload as a field of a record.
    host = cases[0][1][:1_024]
    fields = tuple((f"field-{n}", p) for n, (_c, p) in enumerate(cases))
    record = KeptEvent(host=host, time=NOW, kind="process", pid=1, fields=fields)
    await world.store.evidence.keep("web-injection", [record])
    await page.goto(events_url("web-injection", host, NOW, 1))
    await page.wait_for_load_state("networkidle")
    assert await page.locator("tr.kept-event").count() == 1
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    assert dialogs == [] and foreign == []
    assert await page.locator("img, iframe, object, embed, svg, form[action^=http]").count() == 0
    hrefs = await page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
    assert all(h.startswith(ours) for h in hrefs), [h for h in hrefs if not h.startswith(ours)]
    shown = await page.inner_text("tr.kept-event")
    assert all(p.split("\n")[0].strip()[:40] in shown for _c, p in cases[:20])
    await page.screenshot(path=world.screenshots / "10-injection-records-inert.png")
    await page.goto("/console/incidents")
    assert await page.evaluate("typeof window.__pwned") == "undefined" and dialogs == []
