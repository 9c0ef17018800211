"""Mapping raw events to typed results, on the three shapes found in real recordings: flat
(recorded-incident format and most OTRF files), winlogbeat (`event_data`) and Sentinel rows
(`EventData` JSON string, `_string`/`_dynamic` suffixes). Events are trimmed real OTRF lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from tools.event_mappers import to_logon_event, to_network_connection, to_process_event
from tools.event_shapes import flatten
from tools.names import same_host, same_identity
from tools.telemetry import Telemetry, writer_pid

SHA = "DBA5D56949BA383DAB17C3AB95EAC8B3F1B693729676D1A5637790F6E7F01ABD"


def flat_sysmon_1() -> dict[str, Any]:
    return {
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Hostname": "ACCT01.pandalab.com",
        "@timestamp": "2023-08-15T05:33:54.484Z",
        "EventID": 1,
        "ProcessId": "6224",
        "Image": "C:\\Windows\\System32\\wermgr.exe",
        "CommandLine": '"C:\\Windows\\system32\\wermgr.exe" "-outproc" "0"',
        "User": "NT AUTHORITY\\SYSTEM",
        "Hashes": f"SHA1=5CC5DB09B1F1615A,MD5=74A0194782E039AC,SHA256={SHA},IMPHASH=37D12206",
        "ParentProcessId": "276",
        "ParentImage": "C:\\Windows\\System32\\SearchIndexer.exe",
    }


def winlogbeat_sysmon_1() -> dict[str, Any]:
    return {
        "@timestamp": "2019-05-18T20:20:32.811Z",
        "host": {"name": "WECserver"},
        "computer_name": "HR001.shire.com",
        "event_id": 1,
        "log_name": "Microsoft-Windows-Sysmon/Operational",
        "source_name": "Microsoft-Windows-Sysmon",
        "event_data": {
            "ProcessId": "7884",
            "Image": "C:\\Windows\\System32\\wbem\\WmiApSrv.exe",
            "CommandLine": "C:\\Windows\\system32\\wbem\\WmiApSrv.exe",
            "User": "NT AUTHORITY\\SYSTEM",
            "ParentProcessId": "532",
            "ParentImage": "C:\\Windows\\System32\\services.exe",
            "Hashes": f"SHA1=CDB1CAF9,MD5=D0A901EE,SHA256={SHA},IMPHASH=6BC48586",
        },
    }


def sentinel_4624() -> dict[str, Any]:
    fields = {
        "TargetUserName": "wardog",
        "TargetDomainName": "SIMULANDLABS.COM",
        "LogonType": 3,
        "IpAddress": "192.168.2.5",
    }
    return {
        "TimeGenerated": "2021-08-02T13:06:38.33Z",
        "Computer": "DC01.simulandlabs.com",
        "EventID": 4624,
        "Channel": "Security",
        "Type": "SecurityEvent",
        "EventData": json.dumps(fields),
    }


def test_flat_sysmon_process_create_maps_every_field() -> None:
    event = to_process_event(flat_sysmon_1())
    assert event is not None
    assert event.time == datetime(2023, 8, 15, 5, 33, 54, 484000, tzinfo=UTC)
    assert event.host == "ACCT01.pandalab.com"
    assert (event.pid, event.name, event.parent_pid) == (6224, "wermgr.exe", 276)
    assert event.image == "C:\\Windows\\System32\\wermgr.exe"
    assert event.parent_image == "C:\\Windows\\System32\\SearchIndexer.exe"
    assert event.cmd_line is not None and event.cmd_line.startswith('"C:\\Windows')
    assert event.user == "NT AUTHORITY\\SYSTEM"
    assert event.sha256 == SHA.lower()


def test_winlogbeat_process_create_reads_nested_event_data_and_computer_name() -> None:
    event = to_process_event(winlogbeat_sysmon_1())
    assert event is not None
    assert event.host == "HR001.shire.com"  # not the collector in `host`
    assert (event.pid, event.name, event.parent_pid) == (7884, "WmiApSrv.exe", 532)
    assert event.sha256 == SHA.lower()


def test_security_4688_reads_hex_pids_and_the_subject_account() -> None:
    raw = {
        "Channel": "Security",
        "Hostname": "ACCT01.pandalab.com",
        "@timestamp": "2023-08-15T05:33:54.466Z",
        "EventID": 4688,
        "SubjectUserName": "ACCT01$",
        "SubjectDomainName": "PANDALAB",
        "NewProcessId": "0x1850",
        "NewProcessName": "C:\\Windows\\System32\\wermgr.exe",
        "ProcessId": "0x114",
        "CommandLine": "wermgr.exe -outproc",
        "TargetUserName": "-",
        "TargetDomainName": "-",
        "ParentProcessName": "C:\\Windows\\System32\\SearchIndexer.exe",
    }
    event = to_process_event(raw)
    assert event is not None
    assert (event.pid, event.parent_pid, event.name) == (0x1850, 0x114, "wermgr.exe")
    assert event.user == "PANDALAB\\ACCT01$"
    assert event.sha256 is None


def test_security_4688_prefers_the_target_subject_the_process_runs_as() -> None:
    raw = {
        "Channel": "Security",
        "Hostname": "Pedro01",
        "@timestamp": "2022-08-03T04:18:26.519Z",
        "EventID": 4688,
        "SubjectUserName": "PEDRO01$",
        "SubjectDomainName": "WORKGROUP",
        "TargetUserName": "IT01-Pedro",
        "TargetDomainName": "PEDRO01",
        "NewProcessId": "0x1f70",
        "NewProcessName": "C:\\Windows\\System32\\reg.exe",
    }
    event = to_process_event(raw)
    assert event is not None and event.user == "PEDRO01\\IT01-Pedro"


def test_recorded_format_host_is_the_asset_id() -> None:
    raw = {**flat_sysmon_1(), "host": "ACCT01", "event_source": "sysmon"}
    event = to_process_event(raw)
    assert event is not None and event.host == "ACCT01"


def test_sysmon_network_connection_and_dns_query() -> None:
    connection = to_network_connection(
        {
            "Channel": "Microsoft-Windows-Sysmon/Operational",
            "Hostname": "ACCT01.pandalab.com",
            "@timestamp": "2023-08-15T05:33:56.632Z",
            "EventID": 3,
            "ProcessId": "1124",
            "Image": "C:\\Windows\\System32\\svchost.exe",
            "Protocol": "udp",
            "SourceIp": "192.168.1.43",
            "SourcePort": "52320",
            "DestinationIp": "192.168.1.1",
            "DestinationHostname": "-",
            "DestinationPort": "53",
        }
    )
    assert connection is not None
    assert (connection.src_ip, connection.src_port) == ("192.168.1.43", 52320)
    assert (connection.dst_ip, connection.dst_port, connection.protocol) == (
        "192.168.1.1",
        53,
        "udp",
    )
    assert connection.domain is None and connection.pid == 1124

    query = to_network_connection(
        {
            "Channel": "Microsoft-Windows-Sysmon/Operational",
            "Hostname": "ACCT01.pandalab.com",
            "@timestamp": "2023-08-15T05:33:56.387Z",
            "EventID": 22,
            "ProcessId": "6224",
            "QueryName": "umwatson.events.data.microsoft.com",
            "Image": "<unknown process>",
        }
    )
    assert query is not None
    assert (query.domain, query.protocol, query.pid) == (
        "umwatson.events.data.microsoft.com",
        "dns",
        6224,
    )


def test_winlogbeat_network_connection() -> None:
    connection = to_network_connection(
        {
            "@timestamp": "2019-05-18T20:19:21.130Z",
            "host": {"name": "WECserver"},
            "computer_name": "HR001.shire.com",
            "event_id": 3,
            "log_name": "Microsoft-Windows-Sysmon/Operational",
            "event_data": {
                "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                "SourceIp": "172.18.39.106",
                "ProcessId": "5452",
                "Protocol": "tcp",
                "DestinationIp": "10.0.10.106",
                "SourcePort": "52416",
                "DestinationPort": "443",
                "SourceHostname": "HR001.shire.com",
            },
        }
    )
    assert connection is not None and connection.host == "HR001.shire.com"
    assert (connection.dst_ip, connection.dst_port, connection.pid) == ("10.0.10.106", 443, 5452)


def test_zeek_conn_and_dns_have_no_host() -> None:
    conn = {
        "@timestamp": "2023-08-18T12:36:05.735Z",
        "host": None,
        "event_source": "zeek_conn",
        "id.orig_h": "192.168.1.42",
        "id.orig_p": 56129,
        "id.resp_h": "192.168.1.4",
        "id.resp_p": 53,
        "proto": "udp",
    }
    connection = to_network_connection(conn)
    assert connection is not None and connection.host is None
    assert (connection.src_ip, connection.dst_ip, connection.dst_port) == (
        "192.168.1.42",
        "192.168.1.4",
        53,
    )
    dns = {**conn, "event_source": "zeek_dns", "query": "evil.example"}
    query = to_network_connection(dns)
    assert query is not None and (query.domain, query.protocol) == ("evil.example", "dns")
    # A raw Zeek line (no normalised fields) is recognised by its own names and epoch `ts`.
    raw = {"ts": 1692374165.735188, "id.orig_h": "192.168.1.42", "id.resp_h": "192.168.1.4"}
    mapped = to_network_connection(raw)
    assert mapped is not None and mapped.time.year == 2023


def test_logons_success_failure_and_explicit_credentials() -> None:
    base = {
        "Channel": "Security",
        "Hostname": "PRD01.pandalab.com",
        "@timestamp": "2023-08-18T08:56:44.242Z",
        "TargetUserName": "pedro.gustavo",
        "TargetDomainName": "PANDALAB",
        "IpAddress": "::1",
    }
    failure = to_logon_event({**base, "EventID": 4625, "LogonType": "11"})
    assert failure is not None and failure.success is False and failure.logon_type == 11
    assert failure.user == "PANDALAB\\pedro.gustavo" and failure.src_ip == "::1"
    explicit = to_logon_event({**base, "EventID": 4648, "IpAddress": "-"})
    assert explicit is not None and explicit.success is True and explicit.src_ip is None


def test_a_registry_write_known_by_guid_only_gets_the_pid_its_process_accesses_show() -> None:
    guid = "{6a1e0b2c-0000-4000-8000-00000000c0de}"
    base = {"@timestamp": "2023-08-18T08:56:44Z", "host": "WS07", "event_source": "sysmon"}
    telemetry = Telemetry.from_events([
        {**base, "EventID": 10, "SourceProcessId": "716", "SourceProcessGUID": guid,
         "SourceImage": "powershell.exe", "TargetProcessId": "1000", "TargetImage": "x.exe"},
        {**base, "EventID": 13, "EventType": "SetValue", "ProcessGuid": guid,
         "TargetObject": "HKLM\\System\\CurrentControlSet\\Control\\Lsa\\X"},
    ])  # fmt: skip
    (write,) = telemetry.registry
    assert write.pid is None and writer_pid(telemetry, write) == 716


def test_a_new_credentials_logon_names_its_caller_and_the_account_it_presents() -> None:
    """4624 type 9 (`runas /netonly`, pass-the-hash): the session is the caller's own, the
    network sees the `TargetOutbound*` account's credentials."""
    logon = to_logon_event({
        "Channel": "Security", "EventID": 4624, "Hostname": "WS07.contoso.local",
        "@timestamp": "2023-08-18T08:56:44.242Z", "LogonType": "9",
        "SubjectUserName": "mallory", "SubjectDomainName": "CONTOSO",
        "TargetUserName": "mallory", "TargetDomainName": "CONTOSO",
        "TargetOutboundUserName": "bob", "TargetOutboundDomainName": "contoso.local",
    })  # fmt: skip
    assert logon is not None and logon.logon_type == 9
    assert logon.subject == "CONTOSO\\mallory" and logon.user == "CONTOSO\\mallory"
    assert logon.outbound_user == "contoso.local\\bob"


def test_sentinel_row_with_eventdata_json_string() -> None:
    logon = to_logon_event(sentinel_4624())
    assert logon is not None
    assert logon.host == "DC01.simulandlabs.com"
    assert logon.time == datetime(2021, 8, 2, 13, 6, 38, 330000, tzinfo=UTC)
    assert (logon.user, logon.logon_type, logon.src_ip) == (
        "SIMULANDLABS.COM\\wardog",
        3,
        "192.168.2.5",
    )


def test_sentinel_suffixed_fields_are_read_by_their_plain_names() -> None:
    flat = flatten({"ProcessId_dynamic": "5692", "Protocol_string": "6", "EventID": 3})
    assert flat["ProcessId"] == "5692" and flat["Protocol"] == "6"


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {
            "EventID": 1,
            "Channel": "System",
            "@timestamp": "2020-09-04T07:08:05.048Z",
            "Hostname": "W5",
        },
        {"EventID": 3, "Channel": "Microsoft-Windows-Kernel-IO/Operational", "Hostname": "DC01"},
        {
            "EventID": 1,
            "Channel": "Microsoft-Windows-Sysmon/Operational",
            "Hostname": "H",
        },  # no time
        {"EventID": "x", "Channel": "Security", "@timestamp": "not a time"},
        {"EventData": "{not json", "EventID": 4624, "Channel": "Security"},
        {"event_data": ["odd"], "@timestamp": 5, "EventID": None},
    ],
)
def test_unknown_shapes_are_skipped_never_raised(raw: dict[str, Any]) -> None:
    assert to_process_event(raw) is None
    assert to_network_connection(raw) is None
    assert to_logon_event(raw) is None


def test_telemetry_keeps_what_it_knows_in_time_order() -> None:
    late = {**flat_sysmon_1(), "@timestamp": "2023-08-15T06:00:00Z", "ProcessId": "1"}
    telemetry = Telemetry.from_events([late, {"junk": True}, flat_sysmon_1(), sentinel_4624()])
    assert [p.pid for p in telemetry.processes] == [6224, 1]
    assert len(telemetry.logons) == 1 and telemetry.connections == []


def test_hosts_compare_by_first_label_and_identities_with_or_without_domain() -> None:
    assert same_host("PRD01.pandalab.com", "prd01")
    assert not same_host("PRD01", "PRD02.pandalab.com")
    assert same_identity("pandalab\\Pedro.Gustavo", "pedro.gustavo")
    assert same_identity("PANDALAB.COM\\pedro.gustavo", "pedro.gustavo@pandalab.com")
    assert not same_identity("pandalab\\pedro.gustavo", "otherlab\\pedro.gustavo")


def test_a_parent_named_only_by_its_childs_sysmon_record_gets_a_record_of_its_own() -> None:
    """The parent started before the recording: its start is cut off, the child's record still
    says what it is; a parent with a record of its own, or a child that does not carry its
    parent's command line (Security 4688), adds nothing."""
    child = flat_sysmon_1() | {
        "ParentCommandLine": "C:\\Windows\\system32\\SearchIndexer.exe /Embedding"
    }
    telemetry = Telemetry.from_events([child])
    parent = next(p for p in telemetry.processes if p.pid == 276)
    assert parent.image == "C:\\Windows\\System32\\SearchIndexer.exe"
    assert parent.cmd_line == "C:\\Windows\\system32\\SearchIndexer.exe /Embedding"
    assert parent.time == datetime(2023, 8, 15, 5, 33, 54, 484000, tzinfo=UTC)
    assert len(telemetry.processes) == 2
    recorded = flat_sysmon_1() | {
        "ProcessId": "276",
        "Image": "C:\\Windows\\System32\\SearchIndexer.exe",
        "@timestamp": "2023-08-15T05:30:00.000Z",
    }
    assert len(Telemetry.from_events([recorded, child]).processes) == 2
    assert len(Telemetry.from_events([flat_sysmon_1()]).processes) == 1
