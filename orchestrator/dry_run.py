"""Side effects off: what a shadow (a candidate version evaluated beside the live one) runs with.

Two layers, so that a dry-run worker cannot change a vendor's state even by mistake:

- `DryRunResponseActivities` serve `response.execute`, `response.end` and `response.rollback`
  under their real names and hold no responder at all: an action the policy let through (or an
  analyst approved) is audited as `response.<kind>.dry_run` and reported to the workflow as
  executed, so the incident runs on exactly as it would have, and nothing is sent anywhere.
- `DryRunBackends` wraps the process's backends: readers are the real ones (the candidate must
  see what the live version sees), but every responder refuses every call with
  `DryRunRefused`, and tickets go to an in-memory ticketing system of the incident's own, which
  lives and dies with the process.

`open_runtime(..., dry_run=True)` puts both in place (docs/shadow.md).
"""

from __future__ import annotations

from temporalio import activity

from orchestrator.activities.errors import activity_source
from orchestrator.activities.policy_audit import audit_policy_decision
from orchestrator.backends import Backends
from orchestrator.models import (
    EndActionInput,
    ExecuteActionInput,
    ExecuteActionResult,
    ExecutionStatus,
    RollbackInput,
    RollbackResult,
)
from orchestrator.store.records import AuditEvent
from orchestrator.store.repository import Store
from tools.actions import business_key
from tools.errors import PermanentToolError
from tools.results import Change
from tools.ticketing.memory import InMemoryTicketing
from tools.toolsets import ReadTools, ResponseTools

DRY_RUN_DETAIL = "dry run: decided, not executed"


class DryRunRefused(PermanentToolError):
    """A responder of a dry-run process was asked to change something."""


class _Refusing:
    """Every responder method of a dry-run process: refuse, naming the call."""

    def __init__(self, capability: str) -> None:
        self._capability = capability

    def _refuse(self, op: str, target: str) -> DryRunRefused:
        return DryRunRefused(f"dry run: {self._capability}.{op}({target}) refused, no side effects")


class RefusingEdr(_Refusing):
    """Implements `EdrResponder` by refusing."""

    async def is_contained(self, host: str) -> bool:
        raise self._refuse("is_contained", host)

    async def isolate_host(self, host: str) -> Change:
        raise self._refuse("isolate_host", host)

    async def release_host(self, host: str) -> Change:
        raise self._refuse("release_host", host)

    async def is_process_running(self, host: str, pid: int) -> bool:
        raise self._refuse("is_process_running", f"{host}:{pid}")

    async def kill_process(self, host: str, pid: int) -> Change:
        raise self._refuse("kill_process", f"{host}:{pid}")

    async def is_file_quarantined(self, host: str, file: str) -> bool:
        raise self._refuse("is_file_quarantined", f"{host}:{file}")

    async def quarantine_file(self, host: str, file: str) -> Change:
        raise self._refuse("quarantine_file", f"{host}:{file}")

    async def restore_file(self, host: str, file: str) -> Change:
        raise self._refuse("restore_file", f"{host}:{file}")

    async def is_persistence_present(self, host: str, artefact: str) -> bool:
        raise self._refuse("is_persistence_present", f"{host}:{artefact}")

    async def remove_persistence(self, host: str, artefact: str) -> Change:
        raise self._refuse("remove_persistence", f"{host}:{artefact}")


class RefusingFirewall(_Refusing):
    """Implements `FirewallResponder` by refusing."""

    async def is_ip_blocked(self, ip: str) -> bool:
        raise self._refuse("is_ip_blocked", ip)

    async def block_ip(self, ip: str, comment: str = "") -> Change:
        raise self._refuse("block_ip", ip)

    async def unblock_ip(self, ip: str) -> Change:
        raise self._refuse("unblock_ip", ip)

    async def is_domain_blocked(self, domain: str) -> bool:
        raise self._refuse("is_domain_blocked", domain)

    async def block_domain(self, domain: str, comment: str = "") -> Change:
        raise self._refuse("block_domain", domain)

    async def unblock_domain(self, domain: str) -> Change:
        raise self._refuse("unblock_domain", domain)

    async def list_blocked(self) -> list[str]:
        raise self._refuse("list_blocked", "*")


class RefusingIdentity(_Refusing):
    """Implements `IdentityResponder` by refusing."""

    async def is_enabled(self, identity: str) -> bool:
        raise self._refuse("is_enabled", identity)

    async def disable_account(self, identity: str) -> Change:
        raise self._refuse("disable_account", identity)

    async def enable_account(self, identity: str) -> Change:
        raise self._refuse("enable_account", identity)

    async def reset_credentials(self, identity: str) -> Change:
        raise self._refuse("reset_credentials", identity)

    async def revoke_sessions(self, identity: str) -> Change:
        raise self._refuse("revoke_sessions", identity)


class DryRunBackends:
    """`inner`'s readers; refusing responders and an in-memory ticketing per incident."""

    def __init__(self, inner: Backends) -> None:
        self.inner = inner
        self._response: dict[str, ResponseTools] = {}

    def read_tools(self, incident_id: str) -> ReadTools:
        return self.inner.read_tools(incident_id)

    def response_tools(self, incident_id: str) -> ResponseTools:
        if incident_id not in self._response:
            self._response[incident_id] = ResponseTools(
                edr=RefusingEdr("edr"),
                firewall=RefusingFirewall("firewall"),
                identity=RefusingIdentity("identity"),
                ticketing=InMemoryTicketing(),
                inventory=self.inner.read_tools(incident_id).inventory,
            )
        return self._response[incident_id]

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()


class DryRunResponseActivities:
    """The actions role of a dry-run worker: decisions are audited, never carried out."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @activity.defn(name="response.execute")
    async def execute(self, request: ExecuteActionInput) -> ExecuteActionResult:
        action = request.action
        key = business_key(request.incident_id, action)
        if request.policy is not None:
            await audit_policy_decision(self.store, request.policy)
        await self.store.append_audit(
            AuditEvent(
                type=f"response.{action.kind.value}.dry_run",
                actor="dry-run",
                incident_id=request.incident_id,
                target=action.target,
                outcome="not executed",
                source=activity_source(),
                approval_ref=request.approval_id,
                policy_decision_id=f"{request.policy_version}:{key}",
                detail={"risk": request.risk, "approved_by": ", ".join(request.approved_by)},
            )
        )
        return ExecuteActionResult(
            business_key=key,
            status=ExecutionStatus.EXECUTED,
            verified=True,
            inverse=action.inverse(),
            detail=DRY_RUN_DETAIL,
        )

    @activity.defn(name="response.end")
    async def end(self, request: EndActionInput) -> None:
        """Nothing was begun in the ledger, so nothing is left to end."""

    @activity.defn(name="response.rollback")
    async def rollback(self, request: RollbackInput) -> RollbackResult:
        """Nothing was executed, so nothing is reverted."""
        return RollbackResult(reverted=[], failed=[])
