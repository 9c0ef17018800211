"""Two Garrisons for the sharing tests: A with a finished incident in its store and its API
(TAXII under /taxii2/) served on loopback; B with its own store. Factories, not fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.approvals.service import ApprovalService
from orchestrator.intel.config import Collection, IntelConfig
from orchestrator.server.app import ServerDeps, create_app
from orchestrator.server.tokens import ApiTokens, Scope, TokenEntry, digest
from orchestrator.store import ActionRecord, ActionStatus, IncidentRecord
from orchestrator.store.repository import Store
from tools.actions import BlockIp, IsolateHost, business_key
from tools.emulators.serve import serve
from tools.models import (
    Alert,
    AlertEntities,
    Asset,
    AssetKind,
    AttackRef,
    Category,
    Criticality,
    Environment,
    Identity,
    IdentityKind,
    RuleRef,
    Severity,
    Verdict,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
C2 = "198.51.100.23"  # TEST-NET-2: the attacker's server in A's incident
TOKENS = {
    "garrison-b": ("tok-b", [Scope.INTEL_READ]),
    "publisher": ("tok-pub", [Scope.INTEL_READ, Scope.INTEL_WRITE]),
    "siem": ("tok-siem", [Scope.INGEST]),
    "stranger": ("tok-stranger", [Scope.INTEL_READ]),
}
SHARED = Collection(
    id="a9a1f0de-7a43-4b0e-9a55-0d5b7c1e2f30",  # type: ignore[arg-type]  # validated
    alias="shared",
    title="Incidents A shares",
    readers=["garrison-b", "publisher"],
    writers=["publisher"],
)


def environment_a() -> Environment:
    return Environment(
        assets=[
            Asset(
                id="FIN07",
                hostname="FIN07.acme.example",
                kind=AssetKind.WORKSTATION,
                criticality=Criticality.MEDIUM,
                ips=["10.20.0.7"],
            ),
        ],
        identities=[Identity(id="acme\\jdoe", kind=IdentityKind.USER)],
        internal_networks=["10.0.0.0/8"],
    )


def beacon_alert(uid: str, host: str, src: str, severity: Severity, technique: str | None) -> Alert:
    return Alert(
        uid=uid,
        time=T0,
        title="Outbound connection",
        severity=severity,
        product="sigma",
        rule=RuleRef(uid=f"rule-{uid}", name="Outbound HTTP connection"),
        attacks=[AttackRef(technique=technique, tactic="command-and-control")] if technique else [],
        entities=AlertEntities(host=host, user="acme\\jdoe", src_ip=src, dst_ip=C2),
    )


async def finished_incident(store: Store, incident_id: str = "inc-a1") -> None:
    """A's incident: a beacon to C2 from FIN07, triaged malicious, the address blocked and the
    host isolated, closed."""
    await store.ensure_incident(
        IncidentRecord(
            id=incident_id, group_key=f"g:{incident_id}", title="FIN07 beacon", opened_at=T0
        )
    )
    alert = beacon_alert("a-1", "FIN07", "10.20.0.7", Severity.HIGH, "T1071.001")
    await store.add_alert(alert, incident_id, "fp-a-1")
    await store.record_triage(
        incident_id, Verdict.MALICIOUS, Severity.HIGH, Category.COMMAND_AND_CONTROL, 0.9, None
    )
    for action in (BlockIp(target=C2), IsolateHost(target="FIN07")):
        key = business_key(incident_id, action)
        await store.ledger_begin(
            ActionRecord(
                business_key=key,
                incident_id=incident_id,
                action=action,
                risk=40,
                decision="auto",
                created_at=T0,
            )
        )
        await store.ledger_finish(
            key, ActionStatus.SUCCEEDED, outcome="done", completed_at=T0 + timedelta(minutes=5)
        )
    await store.close_incident(incident_id, "contained", T0 + timedelta(hours=1))


@dataclass
class GarrisonA:
    url: str
    store: Store
    config: IntelConfig

    @property
    def api_root(self) -> str:
        return f"{self.url}/taxii2/garrison/"


@asynccontextmanager
async def garrison_a(tmp_path: Path) -> AsyncIterator[GarrisonA]:
    store = await Store.open(f"sqlite:///{tmp_path / 'a.db'}")
    config = IntelConfig(organisation="Garrison A", collections=[SHARED])
    tokens = ApiTokens(
        tokens={
            name: TokenEntry(digest=digest(token), scopes=list(scopes))
            for name, (token, scopes) in TOKENS.items()
        }
    )
    directory = ApproverDirectory.model_validate({"groups": {"soc": {"members": ["publisher"]}}})
    deps = ServerDeps(
        store=store,
        approvals=ApprovalService(None, store, directory, "garrison-agent"),  # type: ignore[arg-type]
        tokens=tokens,
        intel=config,
    )
    async with serve(create_app(deps)) as url:
        yield GarrisonA(url, store, config)
    await deps.aclose()
    await store.close()
