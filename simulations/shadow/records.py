"""What one side of a shadow run decided, per incident: the `garrison.shadow-side/1` document a
side's process writes and the store keeps beside its scorecard.

An incident's proposals are the actions its playbook put to the policy gate, each with the gate's
decision (the `policy.*` audit entries of the incident): what the version would have done, and
under which approval, before any analyst or vendor had a say.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.models import IncidentResult
from orchestrator.store.records import IncidentRecord
from orchestrator.store.repository import Store
from tools.models import Verdict

SIDE_SCHEMA = "garrison.shadow-side/1"
POLICY_OUTCOMES = ("allow", "needs_approval", "deny")

Role = Literal["current", "candidate"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Proposal(_Model):
    action: str = Field(description="`<kind>:<target>`")
    decision: str = Field(description="the policy gate's outcome: allow, needs_approval or deny")
    risk: int
    approvers: int = Field(description="approvers the policy asked for (0, 1 or 2)")


class ShadowIncident(_Model):
    id: str = Field(description="the recorded incident's id")
    verdict: Verdict | None = Field(description="None when the replay failed")
    category: str | None = None
    playbook: str | None = None
    knowledge_version: str | None = None
    proposals: list[Proposal] = Field(default_factory=list)
    executed: list[str] = Field(
        default_factory=list, description="`<kind>:<target>` that would have been executed"
    )
    error: str | None = None


class ShadowSide(_Model):
    schema_: str = Field(default=SIDE_SCHEMA, alias="schema")
    role: Role
    run_id: str = Field(description="the simulation run's id (`sim-<run_id>--<recorded id>`)")
    knowledge_version: str
    knowledge_dir: str | None = Field(description="GARRISON_KNOWLEDGE_DIR, None: the packaged one")
    python: str = Field(description="the interpreter (so the installed Garrison) that ran the side")
    overrides: dict[str, str] = Field(
        default_factory=dict, description="the settings the side's process ran with on top"
    )
    elapsed_s: float = 0.0
    incidents: list[ShadowIncident]

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def dump(self) -> dict[str, object]:
        return self.model_dump(mode="json", by_alias=True)


async def shadow_incident(
    store: Store,
    recorded_id: str,
    incident_id: str,
    result: IncidentResult | None,
    error: str | None,
) -> ShadowIncident:
    """One replayed incident as the store and its workflow's result saw it."""
    record = await store.get_incident(incident_id)
    proposals: dict[str, Proposal] = {}
    for entry in await store.audit_entries(incident_id=incident_id):
        outcome = entry.type.removeprefix("policy.")
        if not entry.type.startswith("policy.") or outcome not in POLICY_OUTCOMES:
            continue
        risk, approvers = entry.detail.get("risk"), entry.detail.get("required_approvers")
        action = entry.target or ""
        # a re-triage may put the same action to the gate again: its last decision stands
        proposals[action] = Proposal(
            action=action,
            decision=outcome,
            risk=risk if isinstance(risk, int) else 0,
            approvers=approvers if isinstance(approvers, int) else 0,
        )
    if result is None and error is None and record is None:
        error = f"no incident {incident_id} in the store"
    return ShadowIncident(
        id=recorded_id,
        # a live incident's own row when no workflow result is at hand (`shadow report --live`)
        verdict=result.verdict if result is not None else (record.verdict if record else None),
        category=result.category if result is not None else _category(record),
        playbook=record.playbook if record is not None else None,
        knowledge_version=record.knowledge_version if record is not None else None,
        proposals=sorted(proposals.values(), key=lambda p: p.action),
        executed=sorted(
            f"{e.action.kind.value}:{e.action.target}" for e in (result.executed if result else [])
        ),
        error=error if result is None else None,
    )


def _category(record: IncidentRecord | None) -> str | None:
    return None if record is None or record.category is None else record.category.value
