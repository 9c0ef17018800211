"""The EDR contract: every `EdrReader`+`EdrResponder` implementation passes these.

Each contract is a plain async function taking a factory, so a twin, a vendor adapter over its
emulator, or a live tenant can all be run through the same list.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

import pytest

from tests.tools.contracts.world import (
    C2_IP,
    CONSUMER,
    FILTER,
    RUNDLL_PID,
    RUNDLL_SHA256,
    SERVICE_IMAGE,
    STARTUP_FILE,
    TASK_COMMAND,
    TASK_NAME,
    WHOAMI_PID,
    Factory,
    Scenario,
    events,
    system_events,
)
from tools.edr.base import EdrReader, EdrResponder, PatchResponder
from tools.errors import NotFoundError, PermanentToolError, TransientToolError
from tools.journal import TwinFaults


class Edr(EdrReader, EdrResponder, Protocol): ...


EdrFactory = Factory[Edr]


async def finds_hosts_by_id_hostname_and_label(make: EdrFactory) -> None:
    async with make(Scenario()) as h:
        for name in ("PRD01", "prd01", "PRD01.pandalab.com", "prd01.PANDALAB.com"):
            found = await h.tool.find_host(name)
            assert found is not None and found.id == "PRD01"
            assert found.ips == ["172.18.39.6"] and found.contained is False
        assert await h.tool.find_host("NOSUCHHOST") is None


async def reads_process_events_sorted_and_windowed(make: EdrFactory) -> None:
    async with make(Scenario()) as h:
        events = await h.tool.process_events("PRD01.pandalab.com")
        assert [(e.pid, e.name) for e in events] == [
            (0x1A2, "whoami.exe"),
            (RUNDLL_PID, "rundll32.exe"),
        ]
        rundll = events[1]
        assert rundll.sha256 == RUNDLL_SHA256 and rundll.user == "PANDALAB\\pedro.gustavo"
        assert rundll.parent_pid == 5100
        assert events[0].user == "PANDALAB\\pedro.gustavo" and events[0].parent_pid == 0x13EC

        late = await h.tool.process_events(
            "PRD01", start=datetime(2023, 8, 18, 8, 56, 30, tzinfo=UTC)
        )
        assert [e.pid for e in late] == [RUNDLL_PID]
        early = await h.tool.process_events(
            "PRD01", end=datetime(2023, 8, 18, 8, 56, 30, tzinfo=UTC)
        )
        assert [e.pid for e in early] == [0x1A2]
        assert [e.pid for e in await h.tool.process_events("PRD01", limit=1)] == [0x1A2]


async def reads_network_connections_of_host_and_network_sensor(make: EdrFactory) -> None:
    async with make(Scenario()) as h:
        connections = await h.tool.network_connections("PRD01")
        assert [(c.dst_ip, c.dst_port) for c in connections] == [("10.0.5.13", 443), (C2_IP, 8443)]
        assert connections[0].pid == RUNDLL_PID and connections[0].src_ip == "172.18.39.6"
        assert await h.tool.network_connections("MORDORDC") == []


async def reads_logons_successes_and_failures(make: EdrFactory) -> None:
    async with make(Scenario()) as h:
        logons = await h.tool.logons("PRD01")
        assert [(lg.user, lg.logon_type, lg.success) for lg in logons] == [
            ("PANDALAB\\pedro.gustavo", 2, True),
            ("PANDALAB\\pedro.gustavo", 11, False),
        ]


async def reads_registry_writes_with_short_hive_names(make: EdrFactory) -> None:
    async with make(Scenario()) as h:
        writes = await h.tool.registry_events("prd01.pandalab.com")
        assert [(w.operation, w.key) for w in writes] == [
            ("CreateKey", "HKLM\\SYSTEM\\CurrentControlSet\\Services\\updsvc"),
            ("SetValue", "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\Updater"),
        ]
        assert writes[1].pid == RUNDLL_PID and writes[1].details == "C:\\Users\\Public\\u.exe"
        late = await h.tool.registry_events(
            "PRD01", start=datetime(2023, 8, 18, 8, 57, 10, tzinfo=UTC)
        )
        assert [w.pid for w in late] == [RUNDLL_PID]
        assert len(await h.tool.registry_events("PRD01", limit=1)) == 1
        assert await h.tool.registry_events("MORDORDC") == []


async def reads_files_created(make: EdrFactory) -> None:
    async with make(Scenario()) as h:
        files = await h.tool.file_events("PRD01")
        assert [(f.pid, f.path) for f in files] == [(RUNDLL_PID, STARTUP_FILE)]
        assert files[0].image == "C:\\Windows\\System32\\rundll32.exe"
        early = await h.tool.file_events("PRD01", end=datetime(2023, 8, 18, 8, 57, 0, tzinfo=UTC))
        assert early == []


async def reads_system_events_of_the_kinds_every_vendor_records(make: EdrFactory) -> None:
    """Tasks, services, remote threads and WMI bindings: every vendor records these. Process
    opens and WMI consumers on their own are not recorded by every vendor (the vendor suites show
    which), but where answered, a process open carries its access mask."""
    async with make(Scenario(events=events() + system_events())) as h:
        answered = await h.tool.system_events("prd01.pandalab.com")
        common = [e for e in answered if e.event_id in (4698, 7045, 8, 21)]
        assert [e.event_id for e in common] == [4698, 7045, 8, 21]
        task, service, thread, binding = common
        assert (task.pid, task.user, task.name, task.command) == (
            RUNDLL_PID,
            "PANDALAB\\pedro.gustavo",
            TASK_NAME,
            TASK_COMMAND,
        )
        assert (service.name, service.command, service.detail) == (
            "updsvc",
            SERVICE_IMAGE,
            "auto start",
        )
        assert (thread.pid, thread.target_pid) == (RUNDLL_PID, WHOAMI_PID)
        assert (thread.image or "").lower().endswith("\\rundll32.exe")
        assert (thread.target_image or "").lower().endswith("\\whoami.exe")
        assert (binding.name, binding.detail) == (CONSUMER, FILTER)
        opened = [e for e in answered if e.event_id == 10]
        assert all(
            (e.pid, e.target_pid, e.access) == (RUNDLL_PID, WHOAMI_PID, "0x1fffff") for e in opened
        )

        late = await h.tool.system_events(
            "PRD01", start=datetime(2023, 8, 18, 8, 58, 6, tzinfo=UTC)
        )
        assert 4698 not in {e.event_id for e in late} and 21 in {e.event_id for e in late}
        assert [e.event_id for e in await h.tool.system_events("PRD01", limit=1)] == [4698]
        assert await h.tool.system_events("MORDORDC") == []


async def isolates_and_releases_idempotently(make: EdrFactory) -> None:
    async with make(Scenario()) as h:
        assert (await h.tool.isolate_host("prd01.pandalab.com")).applied is True
        assert await h.tool.is_contained("PRD01") is True
        found = await h.tool.find_host("PRD01")
        assert found is not None and found.contained is True
        again = await h.tool.isolate_host("PRD01")
        assert again.applied is False and "already" in again.detail
        assert h.state_changes() == 1

        assert (await h.tool.release_host("PRD01")).applied is True
        assert await h.tool.is_contained("PRD01") is False
        assert (await h.tool.release_host("PRD01")).applied is False
        assert h.state_changes() == 2


async def releasing_a_host_never_isolated_changes_nothing(make: EdrFactory) -> None:
    async with make(Scenario()) as h:
        assert (await h.tool.release_host("PRD01")).applied is False
        assert h.state_changes() == 0


async def kills_a_recorded_process_once(make: EdrFactory) -> None:
    async with make(Scenario()) as h:
        assert await h.tool.is_process_running("PRD01", RUNDLL_PID) is True
        assert (await h.tool.kill_process("PRD01", RUNDLL_PID)).applied is True
        assert await h.tool.is_process_running("PRD01", RUNDLL_PID) is False
        assert (await h.tool.kill_process("PRD01", RUNDLL_PID)).applied is False
        assert h.state_changes() == 1
        # Another host's process of the same pid is untouched.
        assert await h.tool.is_process_running("MORDORDC", RUNDLL_PID) is False


async def quarantines_and_restores_files_idempotently(make: EdrFactory) -> None:
    async with make(Scenario()) as h:
        assert await h.tool.is_file_quarantined("PRD01", RUNDLL_SHA256) is False
        assert (await h.tool.quarantine_file("PRD01", RUNDLL_SHA256)).applied is True
        assert await h.tool.is_file_quarantined("PRD01", RUNDLL_SHA256.upper()) is True
        assert (await h.tool.quarantine_file("PRD01", RUNDLL_SHA256)).applied is False
        assert h.state_changes() == 1
        assert (await h.tool.restore_file("PRD01", RUNDLL_SHA256)).applied is True
        assert await h.tool.is_file_quarantined("PRD01", RUNDLL_SHA256) is False
        assert (await h.tool.restore_file("PRD01", RUNDLL_SHA256)).applied is False
        assert h.state_changes() == 2


async def removes_persistence_once(make: EdrFactory) -> None:
    artefact = "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\Updater"
    async with make(Scenario()) as h:
        assert await h.tool.is_persistence_present("PRD01", artefact) is True
        assert (await h.tool.remove_persistence("PRD01", artefact)).applied is True
        assert await h.tool.is_persistence_present("PRD01", artefact) is False
        assert (await h.tool.remove_persistence("PRD01", artefact)).applied is False
        assert h.state_changes() == 1


async def removes_a_service_by_name_once(make: EdrFactory) -> None:
    # A service is named by its bare name (the persistence finding's target): every vendor
    # removes its registration (CrowdStrike over RTR: the service's key).
    async with make(Scenario()) as h:
        assert await h.tool.is_persistence_present("PRD01", "UpdaterSvc") is True
        assert (await h.tool.remove_persistence("PRD01", "UpdaterSvc")).applied is True
        assert await h.tool.is_persistence_present("PRD01", "UpdaterSvc") is False
        assert (await h.tool.remove_persistence("PRD01", "UpdaterSvc")).applied is False
        assert h.state_changes() == 1


async def unknown_hosts_are_not_found(make: EdrFactory) -> None:
    async with make(Scenario()) as h:
        with pytest.raises(NotFoundError):
            await h.tool.isolate_host("NOSUCHHOST")
        with pytest.raises(NotFoundError):
            await h.tool.kill_process("NOSUCHHOST", 4)
        with pytest.raises(NotFoundError):
            await h.tool.process_events("NOSUCHHOST")
        with pytest.raises(NotFoundError):
            await h.tool.registry_events("NOSUCHHOST")
        with pytest.raises(NotFoundError):
            await h.tool.file_events("NOSUCHHOST")
        assert h.state_changes() == 0


async def transient_faults_fail_the_first_calls_then_apply(make: EdrFactory) -> None:
    faults = TwinFaults(fail_first={"isolate_host": 2})
    async with make(Scenario(faults=faults)) as h:
        for _ in range(2):
            with pytest.raises(TransientToolError):
                await h.tool.isolate_host("PRD01")
        assert await h.tool.is_contained("PRD01") is False
        assert (await h.tool.isolate_host("PRD01")).applied is True
        assert await h.tool.is_contained("PRD01") is True
        assert h.state_changes() == 1


LOG4SHELL = "CVE-2021-44228"
NOLOOKUPS = "mitigation:log4j-nolookups"


def _patcher(tool: Edr) -> PatchResponder:
    assert isinstance(tool, PatchResponder), f"{type(tool).__name__} cannot patch"
    return tool


async def patches_verifies_and_reverts_idempotently(make: EdrFactory) -> None:
    """A host reports a CVE open until a fix is applied; the read-back is the verification;
    reverting re-opens it. Other CVEs and other hosts are untouched."""
    async with make(Scenario()) as h:
        tool = _patcher(h.tool)
        assert await tool.is_vulnerable("PRD01", LOG4SHELL) is True
        done = await tool.apply_patch("prd01.pandalab.com", LOG4SHELL, NOLOOKUPS)
        assert done.applied is True
        assert await tool.is_vulnerable("PRD01", LOG4SHELL.lower()) is False
        assert await tool.is_vulnerable("PRD01", "CVE-2021-45046") is True
        assert await tool.is_vulnerable("MORDORDC", LOG4SHELL) is True
        again = await tool.apply_patch("PRD01", LOG4SHELL, NOLOOKUPS)
        assert again.applied is False and "already" in again.detail
        assert h.state_changes() == 1

        assert (await tool.revert_patch("PRD01", LOG4SHELL, NOLOOKUPS)).applied is True
        assert await tool.is_vulnerable("PRD01", LOG4SHELL) is True
        assert (await tool.revert_patch("PRD01", LOG4SHELL, NOLOOKUPS)).applied is False
        assert h.state_changes() == 2


async def refuses_to_patch_with_ids_that_are_not_ids(make: EdrFactory) -> None:
    """CVE and remediation ids reach scripts and queries: anything else is refused, unapplied."""
    async with make(Scenario()) as h:
        tool = _patcher(h.tool)
        with pytest.raises(PermanentToolError, match="not a CVE id"):
            await tool.apply_patch("PRD01", "CVE-2021-44228' ; Remove-Item C:\\", NOLOOKUPS)
        with pytest.raises(PermanentToolError, match="not a remediation id"):
            await tool.apply_patch("PRD01", LOG4SHELL, "KB5008212 -Force")
        with pytest.raises(NotFoundError):
            await tool.apply_patch("NOSUCHHOST", LOG4SHELL, NOLOOKUPS)
        assert h.state_changes() == 0


CONTRACTS = (
    finds_hosts_by_id_hostname_and_label,
    reads_process_events_sorted_and_windowed,
    reads_network_connections_of_host_and_network_sensor,
    reads_logons_successes_and_failures,
    reads_registry_writes_with_short_hive_names,
    reads_files_created,
    reads_system_events_of_the_kinds_every_vendor_records,
    isolates_and_releases_idempotently,
    releasing_a_host_never_isolated_changes_nothing,
    kills_a_recorded_process_once,
    quarantines_and_restores_files_idempotently,
    removes_persistence_once,
    removes_a_service_by_name_once,
    unknown_hosts_are_not_found,
    transient_faults_fail_the_first_calls_then_apply,
    patches_verifies_and_reverts_idempotently,
    refuses_to_patch_with_ids_that_are_not_ids,
)
