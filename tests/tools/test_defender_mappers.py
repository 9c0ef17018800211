"""Defender for Endpoint: the private mappers from hunting rows and machines to domain models,
the KQL builder, settings, and the adapter's error handling over `httpx.MockTransport`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from tools.edr.defender import DefenderEdr, DefenderSettings, _Machine, _to_host_info
from tools.edr.defender_hunting import (
    hunting_query,
    to_file_event,
    to_logon_event,
    to_network_connection,
    to_process_event,
    to_registry_event,
)
from tools.edr.defender_live import live_response_body, script_answer
from tools.errors import PermanentToolError
from tools.vendor_settings import VendorConfigError, load_vendor_settings

MACHINE = "1" * 40
AT = "2023-08-18T08:56:50.227Z"


def _row(**fields: object) -> dict[str, object]:
    return {"Timestamp": AT, "DeviceId": MACHINE, "DeviceName": "prd01.pandalab.com"} | fields


def test_process_row_maps_initiating_process_as_parent_and_account() -> None:
    event = to_process_event(
        _row(
            FileName="whoami.exe",
            FolderPath="C:\\Windows\\System32\\whoami.exe",
            ProcessId=418,
            InitiatingProcessId=5100,
            AccountDomain="pandalab",
            AccountName="pedro.gustavo",
            SHA256="ABC",
        )
    )
    assert event is not None
    assert (event.pid, event.parent_pid, event.name) == (418, 5100, "whoami.exe")
    assert event.user == "pandalab\\pedro.gustavo" and event.sha256 == "abc"
    assert event.time == datetime(2023, 8, 18, 8, 56, 50, 227000, tzinfo=UTC)


def test_process_row_keeps_what_it_says_of_the_parent() -> None:
    """DeviceProcessEvents names the initiating process's command line and account: what the
    agents know of a parent that started before the window they read."""
    event = to_process_event(
        _row(
            FileName="net.exe",
            ProcessId=418,
            InitiatingProcessId=5100,
            InitiatingProcessFolderPath="C:\\Users\\pedro\\Desktop\\tool.exe",
            InitiatingProcessCommandLine='"tool.exe" -connect',
            InitiatingProcessAccountDomain="pandalab",
            InitiatingProcessAccountName="pedro.gustavo",
        )
    )
    assert event is not None
    assert (event.parent_cmd_line, event.parent_user) == (
        '"tool.exe" -connect',
        "pandalab\\pedro.gustavo",
    )


def test_network_inbound_swaps_sides_and_logon_type_names_become_numbers() -> None:
    inbound = to_network_connection(
        _row(ActionType="InboundConnectionAccepted", LocalIP="172.18.39.6", RemoteIP="10.0.0.9")
    )
    assert inbound is not None and (inbound.src_ip, inbound.dst_ip) == ("10.0.0.9", "172.18.39.6")
    failed = to_logon_event(_row(ActionType="LogonFailed", LogonType="RemoteInteractive"))
    assert failed is not None and failed.success is False and failed.logon_type == 10


def test_a_new_credentials_logon_keeps_its_caller_and_the_account_it_presents() -> None:
    outbound = '{"TargetOutboundUserName": "carol", "TargetOutboundDomainName": "corp.local"}'
    logon = to_logon_event(
        _row(ActionType="LogonSuccess", LogonType="NewCredentials", AccountDomain="CORP",
             AccountName="bob", InitiatingProcessAccountDomain="CORP",
             InitiatingProcessAccountName="bob", AdditionalFields=outbound)
    )  # fmt: skip
    assert logon is not None and logon.logon_type == 9
    assert logon.subject == "CORP\\bob" and logon.outbound_user == "corp.local\\carol"


def test_registry_row_uses_short_hive_and_joins_the_value() -> None:
    event = to_registry_event(
        _row(
            ActionType="RegistryValueSet",
            RegistryKey="HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run",
            RegistryValueName="Updater",
            RegistryValueData="C:\\u.exe",
        )
    )
    assert event is not None and event.operation == "SetValue"
    assert event.key == "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\Updater"


def test_file_rows_other_than_created_and_rows_without_time_are_skipped() -> None:
    assert to_file_event(_row(ActionType="FileDeleted", FolderPath="C:\\x")) is None
    assert to_file_event(_row(ActionType="FileCreated", FolderPath="C:\\x")) is not None
    assert to_process_event({"DeviceName": "x"}) is None


def test_host_info_takes_the_first_dns_label_as_id() -> None:
    machine = _Machine(
        id=MACHINE,
        computerDnsName="PRD01.pandalab.com",
        lastIpAddress="172.18.39.6",
        osPlatform="Windows10",
    )
    info = _to_host_info(machine, isolated=True)
    assert (info.id, info.ips, info.os, info.contained) == (
        "PRD01",
        ["172.18.39.6"],
        "windows10",
        True,
    )


def test_hunting_query_bounds_time_in_utc_and_takes_oldest_first() -> None:
    query = hunting_query("DeviceProcessEvents", MACHINE, datetime(2023, 8, 18, 8, 0), None, 10)
    assert query.splitlines() == [
        "DeviceProcessEvents",
        f'| where DeviceId == "{MACHINE}"',
        "| where Timestamp >= datetime(2023-08-18T08:00:00.000000Z)",
        "| order by Timestamp asc",
        "| take 10",
    ]


def test_settings_name_the_missing_variable_and_default_the_token_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GARRISON_DEFENDER_BASE_URL", "https://api.securitycenter.microsoft.com")
    monkeypatch.setenv("GARRISON_DEFENDER_CLIENT_ID", "id")
    monkeypatch.setenv("GARRISON_DEFENDER_CLIENT_SECRET", "s3cr3t-value")
    monkeypatch.delenv("GARRISON_DEFENDER_TENANT_ID", raising=False)
    with pytest.raises(VendorConfigError, match="GARRISON_DEFENDER_TENANT_ID is required"):
        load_vendor_settings(DefenderSettings)
    monkeypatch.setenv("GARRISON_DEFENDER_TENANT_ID", "contoso")
    settings = load_vendor_settings(DefenderSettings)
    assert settings.token_endpoint == "https://login.microsoftonline.com/contoso/oauth2/v2.0/token"
    assert "s3cr3t" not in repr(settings)


def _adapter(handle: httpx.MockTransport) -> DefenderEdr:
    settings = DefenderSettings(
        base_url="https://mde.test",
        token_url="https://login.test/t/oauth2/v2.0/token",
        tenant_id="t",
        client_id="id",
        client_secret=SecretStr("secret"),
        poll_interval_s=0,
    )
    return DefenderEdr(settings, handle)


def _tenant(pending_after_post: bool, post_status: int, post_body: Mapping[str, object]):
    """A scripted tenant: one machine, no actions until the POST; then maybe a pending one."""
    posted: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/token"):
            form = dict(httpx.QueryParams(request.content.decode()))
            assert form["scope"] == "https://api.securitycenter.microsoft.com/.default"
            assert form["grant_type"] == "client_credentials"
            return httpx.Response(200, json={"access_token": "t", "expires_in": 3599})
        if path == "/api/machines":
            machine = {"id": MACHINE, "computerDnsName": "prd01.pandalab.com"}
            return httpx.Response(200, json={"value": [machine]})
        if path == "/api/machineactions":
            pending = {"id": "a1", "type": "Isolate", "status": "Pending", "machineId": MACHINE}
            return httpx.Response(
                200, json={"value": [pending] if posted and pending_after_post else []}
            )
        posted.append(path)
        return httpx.Response(post_status, json=post_body)

    return httpx.MockTransport(handle), posted


async def test_active_request_already_exists_is_success_once_the_state_reads_isolated() -> None:
    error = {"error": {"code": "ActiveRequestAlreadyExists", "message": "in progress"}}
    transport, posted = _tenant(True, 400, error)
    tool = _adapter(transport)
    change = await tool.isolate_host("PRD01")
    assert change.applied is False and "already isolated" in change.detail
    assert posted == [f"/api/machines/{MACHINE}/isolate"]
    await tool.aclose()


async def test_another_400_is_permanent_and_a_failed_action_too() -> None:
    transport, _ = _tenant(False, 400, {"error": {"code": "InvalidRequestBody", "message": "x"}})
    tool = _adapter(transport)
    with pytest.raises(PermanentToolError, match="InvalidRequestBody"):
        await tool.isolate_host("PRD01")
    await tool.aclose()
    failed = {"id": "a2", "type": "Isolate", "status": "Failed", "machineId": MACHINE}
    transport, _ = _tenant(False, 201, failed)
    tool = _adapter(transport)
    with pytest.raises(PermanentToolError, match="Failed"):
        await tool.isolate_host("PRD01")
    await tool.aclose()


def test_live_response_body_quotes_the_target_and_refuses_what_powershell_expands() -> None:
    body = live_response_body("garrison.ps1", "remove", "HKLM\\Software\\Run\\Updater", "c")
    params = {p["key"]: p["value"] for p in body["Commands"][0]["params"]}
    assert params == {
        "ScriptName": "garrison.ps1",
        "Args": "-Action remove -Target 'HKLM\\Software\\Run\\Updater'",
    }
    for evil in ("x'; Remove-Item C:\\", "$(calc)", "a`b", "a\nb", "a|b"):
        with pytest.raises(PermanentToolError):
            live_response_body("garrison.ps1", "remove", evil, "c")


def test_script_answer_is_one_word_or_a_permanent_error() -> None:
    assert script_answer({"exit_code": 0, "script_output": "Present\r\n"}) == "present"
    with pytest.raises(PermanentToolError, match="access denied"):
        script_answer({"script_name": "g", "exit_code": 1, "script_errors": "access denied"})
    with pytest.raises(PermanentToolError):
        script_answer({"exit_code": 0, "script_output": "maybe"})
