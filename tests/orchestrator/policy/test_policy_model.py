"""Loading and validating policy files: the packaged default, and errors that name the file and
the field path instead of a traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.policy.model import (
    DEFAULT_POLICY_PATH,
    PolicyError,
    TierName,
    load_policy,
)
from tests.orchestrator.policy.policy_factories import policy_data, tier
from tools.actions import ActionKind


def test_packaged_default_loads_and_covers_every_action_kind() -> None:
    policy = load_policy(None)
    assert policy.version == "2026-12-06.2"
    assert (policy.threshold, policy.two_approver_above) == (50, 80)
    assert set(policy.weights.base) == set(ActionKind)
    assert set(policy.tiers) == set(TierName)
    assert policy.deny.max_isolations_per_incident == 1
    assert load_policy(DEFAULT_POLICY_PATH) == policy


def test_a_valid_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy_data()), encoding="utf-8")
    policy = load_policy(path)
    assert policy.version == "test.1"
    assert policy.tiers["standard"].sla_s == 900


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _without_base(kind: str) -> dict[str, Any]:
    data = policy_data()
    del data["weights"]["base"][kind]
    return data


def _set(path: str, value: Any) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        data = policy_data()
        *parents, last = path.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[last] = value
        return data

    return build


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (_set("tiers.critical.sla_s", 0), "tiers.critical.sla_s: must be > 0"),
        (
            _set("tiers.standard.escalation_wait_s", -5),
            "tiers.standard.escalation_wait_s: must be > 0",
        ),
        (
            _set("tiers.standard", tier(reminder_after_s=900)),
            "tiers.standard.reminder_after_s: must be < sla_s (900)",
        ),
        (_set("threshold", "fifty"), "threshold: must be an integer"),
        (_set("threshold", 101), "threshold: must be <= 100"),
        (_set("two_approver_above", -1), "two_approver_above: must be >= 0"),
        (_set("two_approver_above", 40), "two_approver_above: must be >= threshold (50)"),
        (_set("weights.base.isolate_host", 150), "weights.base.isolate_host: must be <= 100"),
        (
            _set("weights.base.isolate_host", "high"),
            "weights.base.isolate_host: must be an integer",
        ),
        (_set("weights.low_confidence", [1]), "weights.low_confidence: must be an integer"),
        (lambda: _without_base("release_host"), "weights.base.release_host: missing weight"),
        (_set("weights.base.isolate_hots", 10), "weights.base.isolate_hots: not a valid key"),
        (_set("tiers", {"standard": tier()}), "tiers.critical: missing tier"),
        (_set("tiers.urgent", tier()), "tiers.urgent: unknown tier"),
        (_set("deny.min_cidr_prefix_v4", 33), "deny.min_cidr_prefix_v4: must be <= 32"),
        (_set("deny.never_touch", "orch01"), "deny.never_touch: must be a list"),
        (_set("deny.surprise", True), "deny.surprise: unknown field"),
        (_set("version", ""), "version: must not be empty"),
        (lambda: {k: v for k, v in policy_data().items() if k != "weights"}, "weights: required"),
    ],
)
def test_invalid_policy_names_the_file_and_field(
    tmp_path: Path, build: Callable[[], dict[str, Any]], expected: str
) -> None:
    path = _write(tmp_path, build())
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "Traceback" not in message
    assert caught.value.__suppress_context__


def test_malformed_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: x\nthreshold: [50\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"policy\.yaml: invalid YAML: line \d+, column \d+"):
        load_policy(path)


@pytest.mark.parametrize("text", ["", "- a list\n", "just a string\n"])
def test_a_policy_that_is_not_a_mapping_is_rejected(tmp_path: Path, text: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match="must be a mapping"):
        load_policy(path)


def test_a_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"nope\.yaml: cannot read"):
        load_policy(tmp_path / "nope.yaml")


def test_every_problem_is_reported(tmp_path: Path) -> None:
    data = policy_data(threshold=-1)
    data["tiers"]["critical"]["sla_s"] = 0
    with pytest.raises(PolicyError) as caught:
        load_policy(_write(tmp_path, data))
    assert "threshold: must be >= 0" in str(caught.value)
    assert "tiers.critical.sla_s: must be > 0" in str(caught.value)


def test_policy_document_is_frozen() -> None:
    policy = load_policy(None)
    with pytest.raises(ValueError, match="frozen"):
        policy.threshold = 10  # type: ignore[misc]
