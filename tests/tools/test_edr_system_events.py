"""System events through the vendor adapters: each vendor's own shapes mapped to `SystemEvent`,
and, over the emulators, what each vendor answers of a hand-made recording next to the twin.
What a vendor does not record, it must not answer (the emulators are honest about it too)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from tests.tools.contracts.world import (
    CALL_TRACE,
    RUNDLL_PID,
    SERVICE_IMAGE,
    WHOAMI_PID,
    environment,
    events,
    system_events,
)
from tools.edr.crowdstrike_system import to_system_event as falcon_system_event
from tools.edr.crowdstrike_system import with_target_images
from tools.edr.defender_hunting import hunting_query
from tools.edr.defender_system import to_system_event as defender_system_event
from tools.edr.memory import InMemoryEdr
from tools.edr.vendors import VENDORS
from tools.emulators.base import EmulatorState
from tools.emulators.serve import serve
from tools.results import ProcessEvent, SystemEvent

AT = 1692349090000  # 2023-08-18T08:58:10Z


def _falcon(name: str, **fields: object) -> dict[str, object]:
    return {"@timestamp": AT, "#event_simpleName": name, "ComputerName": "PRD01"} | fields


def _mde(action: str, **fields: object) -> dict[str, object]:
    base = {"Timestamp": "2023-08-18T08:58:10Z", "DeviceName": "prd01", "ActionType": action}
    return base | fields


# --- CrowdStrike Falcon mappers -------------------------------------------------------------


def test_falcon_task_joins_command_and_arguments_and_names_its_author_and_registrar() -> None:
    task = falcon_system_event(
        _falcon(
            "ScheduledTaskRegistered",
            TaskName="\\Updater",
            TaskExecCommand="C:\\Users\\Public\\u.exe",
            TaskExecArguments="-k run",
            TaskAuthor="PANDALAB\\pedro.gustavo",
            RpcClientProcessId="4242",
        )
    )
    assert task is not None
    assert (task.event_id, task.name, task.command) == (
        4698,
        "\\Updater",
        "C:\\Users\\Public\\u.exe -k run",
    )
    assert (task.pid, task.user) == (4242, "PANDALAB\\pedro.gustavo")
    modified = falcon_system_event(_falcon("ScheduledTaskModified", TaskName="\\Updater"))
    assert modified is not None and modified.event_id == 4702


def test_falcon_service_start_number_is_the_scm_word_and_unknown_events_are_none() -> None:
    service = falcon_system_event(
        _falcon(
            "CreateService", ServiceDisplayName="updsvc", ServiceImagePath="x.exe", ServiceStart=2
        )
    )
    assert service is not None
    assert (service.event_id, service.name, service.detail) == (7045, "updsvc", "auto start")
    assert falcon_system_event(_falcon("ProcessRollup2", RawProcessId=4)) is None
    assert falcon_system_event(_falcon("InjectedThread", ComputerName=None)) is None


def test_injected_thread_target_is_the_latest_start_of_that_id_before_it() -> None:
    thread = falcon_system_event(
        _falcon("InjectedThread", ContextProcessId="4242", TargetProcessId="600")
    )
    assert thread is not None and (thread.event_id, thread.pid, thread.target_pid) == (8, 4242, 600)

    def start(minute: int, image: str) -> ProcessEvent:
        at = datetime(2023, 8, 18, 8, minute, tzinfo=UTC)
        return ProcessEvent(time=at, host="PRD01", pid=600, image=image)

    starts = [start(50, "C:\\old.exe"), start(57, "C:\\notepad.exe"), start(59, "C:\\later.exe")]
    (resolved,) = with_target_images([thread], starts)
    assert resolved.target_image == "C:\\notepad.exe"
    (unknown,) = with_target_images([thread], [start(59, "C:\\later.exe")])
    assert unknown.target_image is None


# --- Defender for Endpoint mappers ----------------------------------------------------------


def test_defender_task_command_comes_from_its_xml_and_the_account_is_the_initiating_one() -> None:
    content = "<Task><Actions><Exec><Command>C:\\u.exe</Command><Arguments>-k</Arguments>"
    content += "</Exec></Actions></Task>"
    task = defender_system_event(
        _mde(
            "ScheduledTaskCreated",
            AdditionalFields=json.dumps({"TaskName": "\\Updater", "TaskContent": content}),
            InitiatingProcessId=4242,
            InitiatingProcessAccountDomain="pandalab",
            InitiatingProcessAccountName="pedro.gustavo",
        )
    )
    assert task is not None
    assert (task.event_id, task.name, task.command) == (4698, "\\Updater", "C:\\u.exe -k")
    assert (task.pid, task.user) == (4242, "pandalab\\pedro.gustavo")


def test_defender_process_open_access_is_hex_and_odd_additional_fields_are_empty() -> None:
    opened = defender_system_event(
        _mde(
            "OpenProcessApiCall",
            AdditionalFields={"DesiredAccess": 2097151},
            InitiatingProcessId=4242,
            ProcessId=418,
            FolderPath="C:\\Windows\\System32\\whoami.exe",
        )
    )
    assert opened is not None
    assert (opened.event_id, opened.pid, opened.target_pid, opened.access, opened.detail) == (
        10,
        4242,
        418,
        "0x1fffff",
        None,
    )
    service = defender_system_event(
        _mde("ServiceInstalled", AdditionalFields="{not json", FolderPath="C:\\s.exe")
    )
    assert service is not None and (service.event_id, service.name) == (7045, None)
    assert defender_system_event(_mde("ProcessCreated")) is None


def test_defender_query_names_the_action_types() -> None:
    query = hunting_query("DeviceEvents", "1" * 40, None, None, 5, ("ServiceInstalled", "X"))
    assert '| where ActionType in ("ServiceInstalled", "X")' in query.splitlines()


# --- over the emulators, next to the twin ---------------------------------------------------


async def _answers(name: str, recorded: list[dict[str, Any]]) -> list[SystemEvent]:
    spec = next(s for s in VENDORS if s.name == name)
    app = spec.emulator(environment(), recorded, EmulatorState())
    async with serve(app) as base_url:
        tool = spec.build(spec.emulator_settings(base_url), None)
        try:
            return await tool.system_events("PRD01")
        finally:
            await tool.aclose()


async def _twin(recorded: list[dict[str, Any]]) -> list[SystemEvent]:
    return await InMemoryEdr(environment(), recorded).system_events("PRD01")


async def test_falcon_answers_no_process_open_nor_lone_wmi_consumer() -> None:
    recorded = events() + system_events()
    assert [e.event_id for e in await _twin(recorded)] == [4698, 7045, 10, 8, 20, 21]
    falcon = await _answers("crowdstrike", recorded)
    assert [e.event_id for e in falcon] == [4698, 7045, 8, 21]
    thread = falcon[2]
    assert (thread.pid, thread.target_pid) == (RUNDLL_PID, WHOAMI_PID)
    assert thread.target_image == "C:\\Windows\\System32\\whoami.exe"  # from its process start


async def test_defender_answers_process_opens_without_call_trace_and_services_without_args() -> (
    None
):
    recorded = events() + system_events()
    twin = await _twin(recorded)
    defender = await _answers("defender", recorded)
    assert [e.event_id for e in defender] == [4698, 7045, 10, 8, 21]
    (twin_open,) = [e for e in twin if e.event_id == 10]
    (opened,) = [e for e in defender if e.event_id == 10]
    assert twin_open.detail == CALL_TRACE and opened.detail is None
    assert (opened.pid, opened.target_pid, opened.access) == (RUNDLL_PID, WHOAMI_PID, "0x1fffff")

    with_args = [
        e | {"ImagePath": f"{SERVICE_IMAGE} -k netsvcs"} if e.get("EventID") == 7045 else e
        for e in recorded
    ]
    (service,) = [e for e in await _answers("defender", with_args) if e.event_id == 7045]
    (twin_service,) = [e for e in await _twin(with_args) if e.event_id == 7045]
    assert twin_service.command == f"{SERVICE_IMAGE} -k netsvcs"
    assert service.command == SERVICE_IMAGE
