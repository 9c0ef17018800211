"""CrowdStrike Falcon: the private mappers from wire shapes to domain models, the request builders,
settings, and the OAuth2 flow over `httpx.MockTransport`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from tools.edr.crowdstrike import CrowdStrikeEdr, CrowdStrikeSettings, _Device, _to_host_info
from tools.edr.crowdstrike_events import (
    parse_ps,
    presence_command,
    query_job,
    removal_command,
    to_file_event,
    to_logon_event,
    to_network_connection,
    to_process_event,
    to_registry_event,
)
from tools.edr.oauth import ClientCredentialsAuth
from tools.errors import AuthError, PermanentToolError, TransientToolError
from tools.vendor_settings import VendorConfigError, load_vendor_settings

AT = 1692349010227  # 2023-08-18T08:56:50.227Z
AID = "a" * 32


def _row(name: str, **fields: object) -> dict[str, object]:
    return {"@timestamp": AT, "#event_simpleName": name, "aid": AID, "ComputerName": "PRD01"} | (
        fields
    )


def test_process_rollup_maps_raw_pid_hash_and_user() -> None:
    event = to_process_event(
        _row(
            "ProcessRollup2",
            RawProcessId="4242",
            ImageFileName="C:\\Windows\\System32\\rundll32.exe",
            ParentProcessId=5100,
            SHA256HashData="ABC",
            UserName="pedro.gustavo",
            LogonDomain="PANDALAB",
        )
    )
    assert event is not None
    assert (event.pid, event.name, event.parent_pid) == (4242, "rundll32.exe", 5100)
    assert event.sha256 == "abc" and event.user == "PANDALAB\\pedro.gustavo"
    assert event.time == datetime(2023, 8, 18, 8, 56, 50, 227000, tzinfo=UTC)


def test_inbound_accept_swaps_local_and_remote_and_names_the_protocol() -> None:
    row = _row(
        "NetworkReceiveAcceptIP4",
        LocalAddressIP4="172.18.39.6",
        LocalPort=445,
        RemoteAddressIP4="10.0.0.9",
        RemotePort=50000,
        Protocol=6,
    )
    connection = to_network_connection(row)
    assert connection is not None
    assert (connection.src_ip, connection.dst_ip, connection.dst_port) == (
        "10.0.0.9",
        "172.18.39.6",
        445,
    )
    assert connection.protocol == "tcp"
    dns = to_network_connection(_row("DnsRequest", DomainName="evil.example"))
    assert dns is not None and dns.domain == "evil.example" and dns.protocol == "dns"


def test_registry_value_write_joins_key_and_value_with_short_hive() -> None:
    row = _row(
        "RegGenericValueUpdate",
        RegObjectName="\\REGISTRY\\MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run",
        RegValueName="Updater",
        RegOperationType=1,
        RegStringValue="C:\\Users\\Public\\u.exe",
    )
    event = to_registry_event(row)
    assert event is not None and event.operation == "SetValue"
    assert event.key == "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run\\Updater"


def test_a_new_credentials_logon_keeps_its_caller_and_the_account_it_presents() -> None:
    logon = to_logon_event(
        _row("UserLogon", UserName="bob", LogonDomain="CORP", LogonType="9",
             SubjectUserName="bob", SubjectDomainName="CORP",
             TargetOutboundUserName="carol", TargetOutboundDomainName="corp.local")
    )  # fmt: skip
    assert logon is not None and logon.logon_type == 9
    assert logon.subject == "CORP\\bob" and logon.outbound_user == "corp.local\\carol"


def test_failed_logon_and_file_written_and_foreign_rows() -> None:
    failed = to_logon_event(_row("UserLogonFailed2", UserName="bob", LogonType="10"))
    assert failed is not None and failed.success is False and failed.logon_type == 10
    written = to_file_event(_row("LnkFileWritten", TargetFileName="C:\\u.lnk"))
    assert written is not None and written.path == "C:\\u.lnk"
    assert to_process_event(_row("DnsRequest")) is None
    assert to_logon_event({"#event_simpleName": "UserLogon"}) is None


def test_host_info_joins_hostname_and_domain_and_reads_containment() -> None:
    device = _Device(
        device_id=AID,
        hostname="PRD01",
        machine_domain="pandalab.com",
        local_ip="172.18.39.6",
        platform_name="Windows",
        status="containment_pending",
    )
    info = _to_host_info(device)
    assert (info.id, info.hostname, info.ips, info.os) == (
        "PRD01",
        "PRD01.pandalab.com",
        ["172.18.39.6"],
        "windows",
    )
    assert info.contained is True


def test_query_job_bounds_the_window_in_epoch_ms_and_sorts_oldest_first() -> None:
    body = query_job(AID, ("ProcessRollup2",), datetime(2023, 8, 18, 8, 56, 50), None, 5, "7d")
    assert body["start"] == 1692349010000 and "end" not in body
    assert f"aid={AID}" in body["queryString"]
    assert "sort(@timestamp, order=asc, limit=5)" in body["queryString"]
    assert query_job(AID, ("X",), None, None, 1, "7d")["start"] == "7d"


def test_ps_rows_give_pids_and_the_header_none() -> None:
    stdout = "Name    Id\nrundll32.exe    4242\nsvc host.exe   612  extra\n"
    assert parse_ps(stdout) == {4242, 612}


def test_rtr_commands_quote_artefacts_and_refuse_injection() -> None:
    key = "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\Updater"
    assert presence_command(key) == (
        "reg query",
        'reg query "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run" "Updater"',
    )
    assert removal_command("C:\\Users\\Public\\u.exe") == ("rm", 'rm "C:\\Users\\Public\\u.exe"')
    with pytest.raises(PermanentToolError):
        presence_command('HKLM\\Run\\x" & runscript -Raw=```evil```')
    # a service name: its registration key
    assert removal_command("updsvc") == (
        "reg delete",
        'reg delete "HKLM\\SYSTEM\\CurrentControlSet\\Services\\updsvc"',
    )
    with pytest.raises(PermanentToolError):
        presence_command('updsvc" & runscript -Raw=```evil```')
    with pytest.raises(PermanentToolError):
        presence_command("\\Microsoft\\Updater")  # a scheduled task: not removable over RTR here


def test_settings_name_the_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GARRISON_CROWDSTRIKE_BASE_URL", "https://api.crowdstrike.com")
    monkeypatch.setenv("GARRISON_CROWDSTRIKE_CLIENT_SECRET", "hunter2-value")
    monkeypatch.delenv("GARRISON_CROWDSTRIKE_CLIENT_ID", raising=False)
    with pytest.raises(VendorConfigError, match="GARRISON_CROWDSTRIKE_CLIENT_ID is required"):
        load_vendor_settings(CrowdStrikeSettings)
    monkeypatch.setenv("GARRISON_CROWDSTRIKE_CLIENT_ID", "id")
    settings = load_vendor_settings(CrowdStrikeSettings)
    assert "hunter2" not in repr(settings) and settings.client_id == "id"


# --- auth over MockTransport ----------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _api(answers: list[int], tokens: list[str]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            form = dict(httpx.QueryParams(request.content.decode()))
            if form.get("client_secret") != "secret":
                return httpx.Response(401, json={"errors": [{"code": 401, "message": "denied"}]})
            tokens.append(f"t{len(tokens) + 1}")
            return httpx.Response(201, json={"access_token": tokens[-1], "expires_in": 1799})
        assert request.headers["authorization"] == f"Bearer {tokens[-1]}"
        status = answers.pop(0) if answers else 200
        return httpx.Response(status, json={"resources": [], "errors": []})

    return httpx.MockTransport(handle)


async def _get(auth: ClientCredentialsAuth, transport: httpx.MockTransport) -> httpx.Response:
    async with httpx.AsyncClient(transport=transport, auth=auth) as client:
        return await client.get("https://falcon.test/devices/queries/devices/v1")


async def test_token_is_reused_then_refreshed_a_minute_before_expiry() -> None:
    clock, tokens = _Clock(), []
    auth = ClientCredentialsAuth(
        "https://falcon.test/oauth2/token", "id", SecretStr("secret"), "crowdstrike", clock=clock
    )
    transport = _api([], tokens)
    await _get(auth, transport)
    clock.now = 1700
    await _get(auth, transport)
    assert tokens == ["t1"]
    clock.now = 1740
    await _get(auth, transport)
    assert tokens == ["t1", "t2"]


async def test_a_401_refreshes_once_and_a_second_401_is_returned() -> None:
    tokens: list[str] = []
    auth = ClientCredentialsAuth(
        "https://falcon.test/oauth2/token", "id", SecretStr("secret"), "crowdstrike"
    )
    assert (await _get(auth, _api([401], tokens))).status_code == 200
    assert tokens == ["t1", "t2"]
    assert (await _get(auth, _api([401, 401], tokens))).status_code == 401
    assert tokens == ["t1", "t2", "t3"]


def _adapter(transport: httpx.MockTransport, secret: str = "secret") -> CrowdStrikeEdr:
    settings = CrowdStrikeSettings(
        base_url="https://falcon.test", client_id="id", client_secret=SecretStr(secret)
    )
    return CrowdStrikeEdr(settings, transport)


async def test_refused_credentials_are_an_auth_error_naming_the_vendor() -> None:
    tool = _adapter(_api([], []), secret="wrong")
    with pytest.raises(AuthError, match="crowdstrike: POST /oauth2/token -> 401"):
        await tool.find_host("PRD01")
    await tool.aclose()


async def test_429_and_403_map_to_transient_with_retry_after_and_auth() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            return httpx.Response(201, json={"access_token": "t", "expires_in": 1799})
        if "filter" in request.url.params and "'LIMITED'" in request.url.params["filter"]:
            return httpx.Response(429, headers={"Retry-After": "3"}, json={"errors": []})
        body = {"errors": [{"code": 403, "message": "access denied, authorization failed"}]}
        return httpx.Response(403, content=json.dumps(body))

    tool = _adapter(httpx.MockTransport(handle))
    with pytest.raises(TransientToolError) as caught:
        await tool.find_host("LIMITED")
    assert caught.value.retry_after_s == 3.0
    with pytest.raises(AuthError, match="authorization failed"):
        await tool.isolate_host("PRD01")
    assert await tool.find_host("PRD01' or hostname:*'") is None  # never reaches FQL
    await tool.aclose()
