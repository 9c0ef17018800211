"""A small world for the console's tests: a store with incidents, alerts, an approval waiting,
the approver directory (alice and bob approve, carol is in no approver group, mallory is
nobody), console passwords, and the app served over ASGI (https, so Secure cookies travel)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI

from orchestrator.approvals.directory import ApproverDirectory, ApproverGroup, Person
from orchestrator.approvals.service import ApprovalService
from orchestrator.console.auth import ConsoleConfig
from orchestrator.console.passwords import set_password
from orchestrator.server.app import ServerDeps, create_app
from orchestrator.server.tokens import ApiTokens
from orchestrator.store.records import ApprovalRecord, AuditEvent, IncidentRecord
from orchestrator.store.repository import Store
from tools.actions import IsolateHost, action_hash
from tools.models import Alert, Category, Severity, Verdict

PASSWORD = "correct horse battery staple"
BASE_URL = "https://console.test"
DIRECTORY = ApproverDirectory(
    people={"carol": Person()},  # a person of the directory in no approver group
    groups={"soc-primary": ApproverGroup(members=["alice", "bob"])},
)
NOW = datetime.now(UTC).replace(microsecond=0)
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def passwords(path: Path, *users: str) -> Path:
    for user in users or ("alice", "bob", "carol"):
        set_password(path, DIRECTORY, user, PASSWORD)
    return path


def make_alert(uid: str, *, title: str = "Suspicious LSASS access", **entities: object) -> Alert:
    raw: dict[str, object] = {
        "uid": uid,
        "time": NOW - timedelta(minutes=30),
        "title": title,
        "severity": "high",
        "product": "test-edr",
        "rule": {"uid": "r-1", "name": "LSASS access"},
        "entities": {"host": "WS-7", "user": "CORP\\jdoe"} | entities,
    }
    return Alert.model_validate(raw)


async def seed_incident(
    store: Store,
    incident_id: str,
    *,
    alerts: list[Alert] | None = None,
    title: str = "Credential theft on WS-7",
    opened: datetime = NOW,
    severity: Severity = Severity.HIGH,
    verdict: Verdict = Verdict.MALICIOUS,
    category: Category = Category.CREDENTIAL_ACCESS,
    rationale: str = "LSASS memory read by an unsigned process",
    requester: str = "garrison-agent",
) -> ApprovalRecord:
    """An incident with its alerts, a triage, and one isolate_host waiting for approval."""
    await store.ensure_incident(
        IncidentRecord(id=incident_id, group_key=f"g-{incident_id}", title=title, opened_at=opened)
    )
    for alert in alerts or [make_alert(f"{incident_id}-a1")]:
        await store.add_alert(alert, incident_id, f"fp-{incident_id}-{alert.uid}")
    await store.record_triage(incident_id, verdict, severity, category, 0.9, "contain-host")
    await store.append_audit(
        AuditEvent(
            type="agent.triage",
            actor="garrison-agent",
            incident_id=incident_id,
            target=incident_id,
            outcome=f"{verdict.value}:{category.value}",
            source="activity:agents.triage",
            detail={"rationale": rationale},
        )
    )
    action = IsolateHost(target="WS-7")
    approval = ApprovalRecord(
        id="apr-" + hashlib.sha256(incident_id.encode()).hexdigest()[:16],
        incident_id=incident_id,
        action=action,
        action_hash=action_hash(incident_id, action, "p1"),
        risk=70,
        risk_factors={"asset_criticality": 40, "user_impact": 30},
        required_approvers=1,
        approver_group="soc-primary",
        requester=requester,
        policy_version="p1",
        created_at=opened,
        deadline=NOW + timedelta(minutes=15),
    )
    await store.create_approval(approval)
    await store.append_audit(
        AuditEvent(
            type="approval.requested",
            actor="garrison-worker",
            incident_id=incident_id,
            target=approval.id,
            outcome="pending",
            source="activity:approvals.request",
            approval_ref=approval.id,
            detail={
                "rationale": rationale,
                "evidence": "edr:event:4",
                "rationale_from_model": False,
            },
        )
    )
    return approval


@dataclass
class Console:
    app: FastAPI
    deps: ServerDeps
    store: Store


@asynccontextmanager
async def console(
    tmp_path: Path, *, secure: bool = True, temporal_ui_url: str | None = "http://127.0.0.1:8233"
) -> AsyncIterator[Console]:
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    deps = ServerDeps(
        store=store,
        approvals=ApprovalService(None, store, DIRECTORY, "garrison-agent"),
        tokens=ApiTokens(),
        console=ConsoleConfig(
            passwords_file=tmp_path / "console-passwords.yaml",
            cookie_secure=secure,
            temporal_ui_url=temporal_ui_url,
        ),
    )
    try:
        yield Console(create_app(deps), deps, store)
    finally:
        await deps.aclose()
        await store.close()


def client(app: FastAPI, base_url: str = BASE_URL) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=base_url, follow_redirects=False
    )


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def sign_in(http: httpx.AsyncClient, user: str, password: str = PASSWORD) -> httpx.Response:
    page = await http.get("/console/sign-in")
    token = csrf_of(page.text)
    return await http.post(
        "/console/sign-in", data={"csrf_token": token, "user": user, "password": password}
    )
