"""The check behind `test_emulated_*.py` (two files, so that their two corpus replays can run in
two test processes): `garrison simulate --backends emulated`, the real vendor adapters over
loopback HTTP against emulators seeded with each incident, give the same verdicts and executed
actions as the in-memory twins, for every vendor of every capability.

The in-memory twins' outcomes are the committed baseline (`simulations/baselines/corpus.json`):
CI's gate replays the corpus on the twins and fails on any difference from it, so each emulated
run is compared with the baseline (`simulations.baseline.compare`: metrics, verdicts, executed
actions, and the tickets and vendor changes are as complete and as unrepeated) rather than with a
third replay of the corpus on the twins."""

from __future__ import annotations

import uuid
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from orchestrator.settings import GarrisonSettings, TemporalSettings
from simulations.baseline import compare, load_baseline
from simulations.loader import load_all
from simulations.runner import SimulationOptions, run_simulation
from tools.vendor_spec import Capability, VendorSpec
from tools.vendors import DEFAULT_EMULATED, of_capability, vendor

ROOT = Path(__file__).parents[2]
CORPUS = ROOT / "simulations" / "incidents"
BASELINE = ROOT / "simulations" / "baselines" / "corpus.json"

# What an EDR's own event search does not hold, so an action resting on it cannot follow from the
# vendor's telemetry: each entry is the baseline difference it explains, and the test fails when
# the run differs otherwise, or no longer differs there (then the entry goes).
# - A replication right granted on the domain object (a DCSync backdoor) is a directory-service
#   change, Security 5136 on the domain controller. Neither Falcon Insight's event search nor
#   Defender for Endpoint's advanced hunting holds it (Falcon Identity Protection and Defender for
#   Identity do, and Garrison reads neither yet); the twins read the recording's DC log.
BLIND_SPOTS = {
    "otrf-empire-dcsync-acl-ws5": "remove_persistence MORDORDC:DC=theshire,DC=local",
}


def _settings(env: WorkflowEnvironment, tmp_path: Path) -> GarrisonSettings:
    return GarrisonSettings(
        data_dir=tmp_path,
        temporal=TemporalSettings(
            address=env.client.service_client.config.target_host,
            task_queue_prefix=f"emu-{uuid.uuid4().hex[:8]}",
        ),
    )


def choices() -> list[dict[Capability, VendorSpec]]:
    """The default vendor per capability; then every other vendor, each in place of its
    capability's default, all in one run (capabilities are independent adapters, so every vendor
    still serves every incident, in two corpus replays rather than one per alternative)."""
    default = {capability: vendor(name) for capability, name in DEFAULT_EMULATED.items()}
    others = dict(default)
    for capability in Capability:
        alternatives = [s for s in of_capability(capability) if s is not default.get(capability)]
        assert len(alternatives) <= 1, f"{capability}: add a run for the third vendor"
        if alternatives:
            others[capability] = alternatives[0]
    assert others != default
    return [default, others]


async def check_choice(
    temporal_env: WorkflowEnvironment, tmp_path: Path, choice: dict[Capability, VendorSpec]
) -> None:
    """Replay the corpus on `choice`'s emulators and compare it with the twins' baseline."""
    incidents = load_all([CORPUS]).incidents
    emulated = await run_simulation(
        incidents,
        _settings(temporal_env, tmp_path / "emulated"),
        SimulationOptions(emulated=choice),
    )
    report = emulated.model_dump(mode="json", by_alias=True)
    baseline = load_baseline(BASELINE)
    differences = compare(report, baseline)
    blind = [f"{incident}: no longer executes {action}" for incident, action in BLIND_SPOTS.items()]
    recall = [d for d in differences if d.startswith("containment_recall:")]
    assert sorted(set(differences) - set(recall)) == sorted(blind)
    # recall lower by the blind spots' actions, no more
    expected = sum(len(row["expected_actions"]) for row in baseline["per_incident"])
    drop = baseline["containment_recall"] - report["containment_recall"]
    assert drop <= len(blind) / expected + 1e-3, (drop, recall)
    assert emulated.unapproved_risky_actions == 0
