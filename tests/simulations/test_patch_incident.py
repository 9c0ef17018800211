"""The recorded exploit incident (`synthetic-log4shell-horizon-hzn01`: Log4Shell on an
internet-facing server, the CVE named by the Sigma rule that fired) through the real pipeline:
the hands-on-keyboard playbook proposes the Log4j fix beside the containment, the policy asks a
human (a patch on a server always does), the simulated analyst approves, the EDR applies it and
the read-back verifies that the host no longer reports the CVE. Once on the in-memory twins, once
over loopback HTTP to each EDR vendor's emulator (CrowdStrike's RTR runscript and Spotlight,
Defender's Live Response and Vulnerability Management)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from orchestrator.settings import GarrisonSettings, TemporalSettings
from orchestrator.store.records import ActionStatus, ApprovalStatus
from orchestrator.store.repository import Store
from simulations.loader import load_all
from simulations.runner import SimulationOptions, run_simulation
from tools.actions import ActionKind, Patch
from tools.edr.vendors import VENDORS
from tools.vendor_spec import Capability, VendorSpec
from tools.vendors import DEFAULT_EMULATED, vendor

pytestmark = [pytest.mark.temporal, pytest.mark.simulation]

INCIDENT = Path(__file__).parents[2] / "simulations" / "incidents"
INCIDENT_ID = "synthetic-log4shell-horizon-hzn01"


def _settings(env: WorkflowEnvironment, tmp_path: Path) -> GarrisonSettings:
    return GarrisonSettings(
        data_dir=tmp_path,
        temporal=TemporalSettings(
            address=env.client.service_client.config.target_host,
            task_queue_prefix=f"patch-{uuid.uuid4().hex[:8]}",
        ),
    )


@pytest.mark.parametrize(
    "edr",
    [None, *VENDORS],
    ids=lambda spec: "twins" if spec is None else spec.name,
)
async def test_an_exploited_cve_is_patched_approved_and_verified(
    temporal_env: WorkflowEnvironment, tmp_path: Path, edr: VendorSpec | None
) -> None:
    loaded = load_all([INCIDENT / INCIDENT_ID])
    assert loaded.problems == []
    run_id = uuid.uuid4().hex[:8]
    emulated = {capability: vendor(name) for capability, name in DEFAULT_EMULATED.items()}
    options = SimulationOptions(
        run_id=run_id, emulated=None if edr is None else emulated | {Capability.EDR: edr}
    )
    card = await run_simulation(loaded.incidents, _settings(temporal_env, tmp_path), options)
    # the spec's containment is untouched by the patch (which the scorecard does not count)
    assert (card.containment_recall, card.containment_precision) == (1.0, 1.0)
    assert card.over_response == 0 and card.unapproved_risky_actions == 0

    store = await Store.open(f"sqlite:///{tmp_path / 'garrison.db'}")
    try:
        records = await store.actions_for(f"sim-{run_id}--{INCIDENT_ID}")
        patches = [r for r in records if r.kind is ActionKind.PATCH]
        # proposed: one patch, the knowledge's Log4j fix for the CVE the alert named that fits a
        # Windows server (Log4j inside a vendor product: the lookup class removed)
        assert [r.action for r in patches] == [
            Patch(
                target="HZN01",
                cve="CVE-2021-44228",
                remediation="mitigation:log4j-remove-jndilookup",
            )
        ]
        record = patches[0]
        # approved: the policy asked (a patch on a server), the analyst approved
        assert record.decision == "approved" and record.approval_id is not None
        approval = await store.get_approval(record.approval_id)
        assert approval is not None and approval.status is ApprovalStatus.APPROVED
        assert approval.action == record.action and approval.required_approvers >= 1
        assert approval.risk_factors.get("action patch") == 30
        # executed and verified: the EDR applied it and the host no longer reports the CVE
        assert record.status is ActionStatus.SUCCEEDED and record.verified
        assert record.already_in_state is False
        # the inverse a rollback would run: uninstall the update
        assert record.inverse == record.action.inverse()
        assert record.inverse is not None and record.inverse.kind is ActionKind.UNPATCH
    finally:
        await store.close()
