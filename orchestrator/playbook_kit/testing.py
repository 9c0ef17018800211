"""The playbook test kit: give a playbook a recorded incident and assert on its proposals, from
pytest. A run is `garrison playbook dry-run` (in-memory twins, the policy gate, the simulated
answers of the workflow, nothing executed), so a test sees what the CLI shows.

    run = await run_on_incident("playbooks/my_playbook", "otrf-empire-vbs-c2-ws5")
    assert_proposes(run, ActionKind.BLOCK_IP, "10.10.10.5")
"""

from __future__ import annotations

from pathlib import Path

from orchestrator.playbook_kit.dryrun import (
    DEFAULT_CORPUS,
    Approvals,
    DryRun,
    dry_run,
    expected_coverage,
    find_incident,
)
from orchestrator.playbook_kit.loading import load_playbook
from orchestrator.playbook_kit.validate import validate_path
from playbooks.base import Playbook
from tools.actions import ActionKind

__all__ = [
    "Approvals",
    "DryRun",
    "assert_covers_expected",
    "assert_never_proposes",
    "assert_proposes",
    "assert_valid",
    "proposals_of",
    "run_on_incident",
]


async def run_on_incident(
    playbook: Playbook | str | Path,
    incident: str | Path,
    approvals: Approvals = Approvals.APPROVE,
    corpus: Path = DEFAULT_CORPUS,
) -> DryRun:
    """Run `playbook` (an object, a registered id, a folder, a graph.py or a CACAO .json) on a
    recorded incident (a folder, or an id in `corpus`)."""
    loaded = playbook if isinstance(playbook, Playbook) else load_playbook(playbook).playbook
    return await dry_run(loaded, find_incident(incident, corpus), approvals)


def proposals_of(run: DryRun) -> set[tuple[ActionKind, str]]:
    return set(run.proposed)


def assert_proposes(run: DryRun, kind: ActionKind, target: str | None = None) -> None:
    targets = [t for k, t in run.proposed if k is kind]
    wanted = target is None or target.lower() in {t.lower() for t in targets}
    assert targets and wanted, (
        f"expected a {kind.value} proposal{' on ' + target if target else ''};"
        f" proposed: {sorted((k.value, t) for k, t in run.proposed)}"
    )


def assert_never_proposes(run: DryRun, kind: ActionKind) -> None:
    targets = sorted(t for k, t in run.proposed if k is kind)
    assert not targets, f"{kind.value} proposed on {targets}"


def assert_covers_expected(run: DryRun) -> None:
    """Every action the incident's truth expects was proposed."""
    _, missed = expected_coverage(run)
    assert not missed, f"expected actions not proposed on {run.incident.id}: {missed}"


def assert_valid(path: str | Path) -> None:
    problems = validate_path(Path(path))
    assert not problems, "\n".join(str(p) for p in problems)
