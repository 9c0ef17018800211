"""Timeouts, heartbeats and retries per activity kind: `GARRISON_ACTIVITIES__<KIND>__<FIELD>` reach
the activity options the workflow schedules with, through the workflow input (as Temporal carries
it); a wrong value is one line naming its variable; a workflow input from before the kinds decodes
to exactly the options it ran with; every activity Garrison registers has a kind."""

from __future__ import annotations

import os

import pytest

from orchestrator.activities.agents import AgentActivities
from orchestrator.activities.approvals import ApprovalActivities
from orchestrator.activities.guards import GuardActivities
from orchestrator.activities.ingest import PollActivities
from orchestrator.activities.records import RecordActivities
from orchestrator.activities.response import ResponseActivities
from orchestrator.ingest.inputs import activity_profile
from orchestrator.models import ActivityKind, ActivityProfile, KindTimeouts
from orchestrator.settings import ConfigError, load_settings
from orchestrator.temporal.converter import DATA_CONVERTER
from orchestrator.workflows.calls import ACTIVITY_KINDS, timeouts_for


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in os.environ:
        if name.startswith("GARRISON_"):
            monkeypatch.delenv(name)
    return monkeypatch


def carried(profile: ActivityProfile) -> ActivityProfile:
    """The profile as a worker decodes it from the workflow's input payload."""
    converter = DATA_CONVERTER.payload_converter
    [payload] = converter.to_payloads([profile])
    [decoded] = converter.from_payloads([payload], [ActivityProfile])
    return decoded


def test_every_kind_has_defaults_with_a_heartbeat() -> None:
    profile = activity_profile(load_settings().activities)

    assert set(profile.kinds) == set(ActivityKind)
    for kind, timeouts in profile.kinds.items():
        assert timeouts.heartbeat_s is not None, kind
        assert timeouts.heartbeat_s < timeouts.start_to_close_s, kind
    execute = timeouts_for(profile, "response.execute")
    assert (execute.start_to_close_s, execute.heartbeat_s) == (600.0, 15.0)


def test_settings_reach_the_activity_options_through_the_workflow_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GARRISON_ACTIVITIES__VENDOR_ACTIONS__START_TO_CLOSE_S", "900")
    monkeypatch.setenv("GARRISON_ACTIVITIES__VENDOR_ACTIONS__HEARTBEAT_S", "7.5")
    monkeypatch.setenv("GARRISON_ACTIVITIES__VENDOR_ACTIONS__RETRY_INITIAL_S", "2")
    monkeypatch.setenv("GARRISON_ACTIVITIES__VENDOR_ACTIONS__RETRY_MAX_S", "45")
    monkeypatch.setenv("GARRISON_ACTIVITIES__VENDOR_ACTIONS__MAX_ATTEMPTS", "0")
    monkeypatch.setenv("GARRISON_ACTIVITIES__STORE__HEARTBEAT_S", "none")
    monkeypatch.setenv("GARRISON_ACTIVITIES__AGENTS__START_TO_CLOSE_S", "1200")

    profile = carried(activity_profile(load_settings().activities))

    assert timeouts_for(profile, "response.execute") == KindTimeouts(
        start_to_close_s=900, heartbeat_s=7.5, initial_retry_s=2, max_retry_s=45, max_attempts=0
    )
    assert timeouts_for(profile, "response.rollback").heartbeat_s == 7.5  # same kind
    assert timeouts_for(profile, "approvals.request").heartbeat_s is None
    agents = timeouts_for(profile, "playbooks.step")
    assert (agents.start_to_close_s, agents.heartbeat_s) == (1200, 30.0)  # its other defaults
    assert timeouts_for(profile, "tickets.open").start_to_close_s == 120.0  # untouched kind


@pytest.mark.parametrize(
    ("env", "named"),
    [
        (
            {"GARRISON_ACTIVITIES__TICKETS__HEARTBEAT_S": "soon"},
            "GARRISON_ACTIVITIES__TICKETS__HEARTBEAT_S: Input should be a valid number",
        ),
        (
            {"GARRISON_ACTIVITIES__VENDOR_READS__MAX_ATTEMPTS": "-1"},
            "GARRISON_ACTIVITIES__VENDOR_READS__MAX_ATTEMPTS: Input should be greater than",
        ),
        (
            {"GARRISON_ACTIVITIES__STORE__HEARTBEAT_S": "90"},
            "GARRISON_ACTIVITIES__STORE__HEARTBEAT_S: 90 must be below "
            "GARRISON_ACTIVITIES__STORE__START_TO_CLOSE_S (60)",
        ),
        (
            {
                "GARRISON_ACTIVITIES__AGENTS__RETRY_INITIAL_S": "30",
                "GARRISON_ACTIVITIES__AGENTS__RETRY_MAX_S": "10",
            },
            "GARRISON_ACTIVITIES__AGENTS__RETRY_INITIAL_S: 30 must not exceed "
            "GARRISON_ACTIVITIES__AGENTS__RETRY_MAX_S (10)",
        ),
    ],
)
def test_a_wrong_value_is_one_line_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("invalid configuration: ")
    assert named in message


def test_an_input_from_before_the_kinds_runs_with_what_it_ran_with() -> None:
    recorded = b'{"start_to_close_s":8.0,"agent_start_to_close_s":60.0,"heartbeat_s":null,'
    recorded += b'"initial_retry_s":1.0,"max_attempts":10,"notify_drain_s":3600.0}'
    profile = ActivityProfile.model_validate_json(recorded)

    assert profile.kinds == {}
    assert timeouts_for(profile, "response.execute") == KindTimeouts(
        start_to_close_s=8.0, heartbeat_s=None, initial_retry_s=1.0, max_attempts=10
    )
    assert timeouts_for(profile, "playbooks.step", agent=True).start_to_close_s == 60.0


def test_every_registered_activity_has_a_kind() -> None:
    holders = (
        AgentActivities,
        ApprovalActivities,
        GuardActivities,
        PollActivities,
        RecordActivities,
        ResponseActivities,
    )
    names = {
        definition.name
        for holder in holders
        for member in vars(holder).values()
        if (definition := getattr(member, "__temporal_activity_definition", None)) is not None
    }
    assert names  # the scan sees the definitions
    assert sorted(names - set(ACTIVITY_KINDS)) == []
