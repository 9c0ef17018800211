"""Side effects off (`orchestrator/dry_run.py`): a dry-run process cannot change a vendor's state.
Its responders refuse every method of their capability's Protocol, its tickets stay in the
process, and a whole incident replayed dry-run against the vendors' emulators decides its actions
(the policy gate and the simulated analyst as ever) without one change reaching any vendor."""

from __future__ import annotations

import inspect
import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from orchestrator.composition import open_store
from orchestrator.dry_run import DryRunBackends, DryRunRefused
from orchestrator.settings import GarrisonSettings, TemporalSettings
from simulations.loader import load_all
from simulations.routing import RecordedBackends
from simulations.runner import SIM_PREFIX, SimulationOptions, run_simulation
from tools.edr.base import EdrResponder
from tools.firewall.base import FirewallResponder
from tools.identity.base import IdentityResponder
from tools.vendors import DEFAULT_EMULATED, vendor

ROOT = Path(__file__).parents[2]
# A credential-access incident whose truth contains the account, its host and krbtgt.
INCIDENT = ROOT / "simulations" / "incidents" / "otrf-covenant-dcsync-ws5"
RECORDED = INCIDENT.name


def _protocol_methods(protocol: type) -> list[str]:
    return [
        name
        for name, member in vars(protocol).items()
        if not name.startswith("_") and inspect.iscoroutinefunction(member)
    ]


def _arguments(method: object) -> list[object]:
    parameters = list(inspect.signature(method).parameters.values())  # type: ignore[arg-type]
    return [1 if p.annotation in ("int", int) else "x" for p in parameters if p.default is p.empty]


def _backends() -> tuple[RecordedBackends, DryRunBackends]:
    inner = RecordedBackends(load_all([INCIDENT]).incidents)
    return inner, DryRunBackends(inner)


@pytest.mark.parametrize(
    ("capability", "protocol"),
    [("edr", EdrResponder), ("firewall", FirewallResponder), ("identity", IdentityResponder)],
)
async def test_dry_run_responders_refuse_every_protocol_method(
    capability: str, protocol: type
) -> None:
    inner, dry = _backends()
    incident_id = f"{SIM_PREFIX}-t--{RECORDED}"
    responder = getattr(dry.response_tools(incident_id), capability)
    methods = _protocol_methods(protocol)
    assert methods, f"{protocol.__name__} has no methods?"
    for name in methods:
        method = getattr(responder, name)
        with pytest.raises(DryRunRefused, match=f"{capability}.{name}"):
            await method(*_arguments(method))
    # the twins the dry run wraps saw nothing
    twins = inner.response_tools(incident_id)
    assert await twins.edr.is_contained("WORKSTATION5") is False


async def test_dry_run_tickets_stay_in_the_process_and_reads_are_the_real_ones() -> None:
    inner, dry = _backends()
    incident_id = f"{SIM_PREFIX}-t--{RECORDED}"
    tools = dry.response_tools(incident_id)
    ticket = await tools.ticketing.open_ticket("k-1", "title", "body")
    assert await tools.ticketing.find_ticket("k-1") == ticket
    assert await inner.response_tools(incident_id).ticketing.find_ticket("k-1") is None
    assert dry.read_tools(incident_id) is inner.read_tools(incident_id)


@pytest.mark.temporal
@pytest.mark.simulation
async def test_dry_run_incident_decides_actions_and_changes_no_vendor(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = GarrisonSettings(
        data_dir=tmp_path,
        temporal=TemporalSettings(
            address=temporal_env.client.service_client.config.target_host,
            task_queue_prefix=f"dry-{uuid.uuid4().hex[:8]}",
        ),
    )
    emulated = {capability: vendor(name) for capability, name in DEFAULT_EMULATED.items()}
    options = SimulationOptions(emulated=emulated, run_id="dry", dry_run=True)
    card = await run_simulation(load_all([INCIDENT]).incidents, settings, options)
    (row,) = card.per_incident
    assert row.verdict == "malicious"
    decided = {f"{a.kind.value}:{a.target}" for a in row.executed_actions}
    assert "isolate_host:WORKSTATION5" in decided  # the gate and the analyst let it through
    assert row.vendors is not None
    changes = {capability: sum(e.changes.values()) for capability, e in row.vendors.items()}
    assert changes and set(changes.values()) == {0}, changes
    assert row.ticket is not None and not row.ticket.found  # no ticket at the vendor either
    store = await open_store(settings)
    try:
        audit = await store.audit_entries(incident_id=f"{SIM_PREFIX}-dry--{RECORDED}")
        ledger = await store.actions_for(f"{SIM_PREFIX}-dry--{RECORDED}")
    finally:
        await store.close()
    assert {f"{e.type}:{e.target}" for e in audit if e.type.endswith(".dry_run")} >= {
        "response.isolate_host.dry_run:WORKSTATION5"
    }
    assert ledger == []  # nothing was begun, so nothing can be rolled back or resumed
