"""The OCSF importer: the fixture (exported from two committed incidents) gives incidents that
load and keep their alerts, entities and environment; OCSF events become the fields the simulated
tools read; labels must fit the groups; malformed lines are reported by line and field, writing
nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from simulations.importers.ocsf import InputError, run
from simulations.importers.ocsf.events import telemetry_event
from simulations.importers.ocsf.findings import parse_finding
from simulations.loader import LoadedIncident, load_all
from simulations.spec import RecordedIncident
from tools.models import AssetKind, IdentityKind, Severity, Verdict
from tools.telemetry import Telemetry

FIXTURE = Path(__file__).parent / "fixtures" / "ocsf"
FINDINGS, EVENTS, LABELS = (FIXTURE / n for n in ("findings.jsonl", "events.jsonl", "labels.yaml"))
INCIDENTS = Path(__file__).parents[2] / "simulations" / "incidents"
# the corpus incident as it was when scripts/export_ocsf.py made the fixture from it (the corpus
# has since been regrouped: the committed incident now carries its whole group's alerts)
EXPORTED_FROM = FIXTURE / "exported-from" / "otrf-lsass-comsvcs-prd01.json"


def imported(tmp_path: Path) -> dict[str, LoadedIncident]:
    result = run(FINDINGS, EVENTS, LABELS, tmp_path / "out")
    loaded = load_all(result.written)
    assert loaded.problems == []
    return {i.spec.id: i for i in loaded.incidents}


def finding(**changes: object) -> dict[str, object]:
    """A small valid Detection Finding; `changes` replace top-level fields (None drops one)."""
    body: dict[str, object] = {
        "class_uid": 2004,
        "activity_id": 1,
        "time": 1692349010227,
        "severity_id": 4,
        "metadata": {"version": "1.1.0", "product": {"name": "EDR", "vendor_name": "Acme"}},
        "finding_info": {"uid": "f-1", "title": "Credential dumping", "analytic": {"uid": "r-1"}},
        "device": {"hostname": "WS5.lab.local", "ip": "10.1.2.3"},
        "actor": {"user": {"name": "pedro", "domain": "LAB"}},
    }
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def write_lines(path: Path, rows: Sequence[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_import_fixture_gives_two_loadable_incidents(tmp_path: Path) -> None:
    result = run(FINDINGS, EVENTS, LABELS, tmp_path / "out")
    assert [p.name for p in result.written] == [
        "ocsf-lsass-comsvcs-prd01",
        "ocsf-background-acct01",
    ]
    assert result.unlabelled == []
    assert result.notices == []  # every related event of every finding is in the events file
    assert load_all([tmp_path / "out"]).problems == []
    run(FINDINGS, EVENTS, LABELS, tmp_path / "again")
    for name in (
        "ocsf-lsass-comsvcs-prd01/incident.json",
        "ocsf-background-acct01/telemetry.jsonl.gz",
    ):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()


def test_import_keeps_the_alerts_of_the_exported_incident(tmp_path: Path) -> None:
    spec = imported(tmp_path)["ocsf-lsass-comsvcs-prd01"].spec
    original = RecordedIncident.model_validate_json(EXPORTED_FROM.read_text(encoding="utf-8"))
    assert [a.model_dump(exclude={"evidence"}) for a in spec.alerts] == [
        a.model_dump(exclude={"evidence"}) for a in original.alerts
    ]
    assert [len(a.evidence) for a in spec.alerts] == [len(a.evidence) for a in original.alerts]
    dump = next(a for a in spec.alerts if a.title == "Lsass Memory Dump via Comsvcs DLL")
    assert dump.uid == "otrf-lsass-comsvcs-prd01:a49fa4d5:21"
    assert dump.severity is Severity.HIGH
    assert dump.product == "sigma"
    assert dump.rule.uid == "a49fa4d5-11db-418c-8473-1e014a8dd462"
    assert dump.rule.author == "Roberto Rodriguez (Cyb3rWard0g), OTR (Open Threat Research)"
    assert [(a.technique, a.tactic) for a in dump.attacks] == [("T1003.001", "credential-access")]
    assert dump.entities.host == "PRD01"
    assert dump.entities.user == "nt authority\\system"
    assert dump.entities.process is not None and dump.entities.process.name == "rundll32.exe"
    assert spec.truth.verdict is Verdict.MALICIOUS
    assert spec.source.license == "MIT (recording, OTRF Security-Datasets); DRL-1.1 (Sigma rules)"
    assert "Lsass Memory Dump via Comsvcs DLL (a49fa4d5" in spec.source.attribution
    assert spec.source.ref.startswith("findings.jsonl sha256:")


def test_import_evidence_points_at_the_mapped_events(tmp_path: Path) -> None:
    incident = imported(tmp_path)["ocsf-lsass-comsvcs-prd01"]
    events = list(incident.telemetry())
    by_title = {a.title: a for a in incident.spec.alerts}
    [access] = [events[r] for r in by_title["Lsass Memory Dump via Comsvcs DLL"].evidence]
    assert (access["event_source"], access["EventID"], access["ocsf_class_uid"]) == (
        "sysmon",
        10,
        1007,
    )
    assert access["TargetImage"] == "C:\\Windows\\system32\\lsass.exe"
    assert access["SourceImage"] == "C:\\Windows\\System32\\rundll32.exe"
    assert access["GrantedAccess"] == "0x1410"  # as recorded by Sysmon
    [service] = [
        events[r]
        for r in by_title[
            "Meterpreter or Cobalt Strike Getsystem Service Installation - Security"
        ].evidence
    ]
    assert (service["event_source"], service["EventID"], service["ServiceName"]) == (
        "security",
        4697,
        "qfhaer",
    )
    for alert in incident.spec.alerts:
        assert {events[r]["host"] for r in alert.evidence} == {"PRD01"}


def test_import_telemetry_is_what_the_simulated_tools_read(tmp_path: Path) -> None:
    events = list(imported(tmp_path)["ocsf-lsass-comsvcs-prd01"].telemetry())
    telemetry = Telemetry.from_events(events)
    payload = [p for p in telemetry.processes if p.name == "rundll32.exe" and p.pid == 7580]
    assert payload and "comsvcs.dll" in (payload[0].cmd_line or "")
    assert any(c.dst_ip == "10.0.5.13" and c.dst_port == 5678 for c in telemetry.connections)
    assert any(r.key.startswith("HKU\\") for r in telemetry.registry)
    assert telemetry.logons
    flat = [e for e in events if e.get("EventID") == 4648]
    assert flat and flat[0]["host"] == "PRD01" and "ocsf_class_uid" not in flat[0]


def test_import_environment_comes_from_devices_users_and_addresses(tmp_path: Path) -> None:
    incidents = imported(tmp_path)
    prd01 = incidents["ocsf-lsass-comsvcs-prd01"].spec.environment
    [asset] = prd01.assets
    assert (asset.id, asset.hostname, asset.ips) == (
        "PRD01",
        "PRD01.pandalab.com",
        ["192.168.1.42"],
    )
    assert (asset.kind, asset.os, asset.owner) == (
        AssetKind.WORKSTATION,
        "windows",
        "pandalab\\pupy.godoy",
    )
    assert [(i.id, i.kind, i.privileged) for i in prd01.identities] == [
        ("pandalab\\pedro.gustavo", IdentityKind.ADMIN, True),
        ("pandalab\\pupy.godoy", IdentityKind.USER, False),
    ]
    assert prd01.internal_networks == ["10.0.0.0/8", "192.168.0.0/16"]
    assert prd01.protected == []
    acct01 = incidents["ocsf-background-acct01"].spec
    assert [a.id for a in acct01.environment.assets] == ["ACCT01"]
    assert acct01.environment.assets[0].ips == ["192.168.1.43"]
    assert [i.id for i in acct01.environment.identities] == ["pandalab\\nora.quemona"]
    assert acct01.truth.verdict is Verdict.BENIGN
    assert [a.title for a in acct01.alerts] == [
        "Sysmon Blocked File Shredding",
        "Scheduled Task Created - Registry",
        "Sysmon Blocked File Shredding",
    ]


def test_import_writes_attribution_for_the_imported_incidents(tmp_path: Path) -> None:
    result = run(FINDINGS, EVENTS, LABELS, tmp_path)
    assert result.attribution == tmp_path / "ATTRIBUTION-OCSF.md"
    text = (tmp_path / "ATTRIBUTION-OCSF.md").read_text()
    assert "| `ocsf-background-acct01` | OCSF import of findings.jsonl (sigma) |" in text
    assert (
        "| `c3e5c1b1-45e9-4632-b242-27939c170239` | Sysmon Blocked File Shredding | frack113 |"
        in text
    )
    assert "Jose Rodriguez @Cyb3rPandaH" in text
    assert not (tmp_path / "ATTRIBUTION.md").exists()  # the OTRF importer's page is not touched


def test_import_lists_groups_without_a_label_and_skips_them(tmp_path: Path) -> None:
    labels = tmp_path / "labels.yaml"
    text = LABELS.read_text()
    labels.write_text(text[: text.index("  - id: ocsf-background-acct01")])
    result = run(FINDINGS, EVENTS, labels, tmp_path / "out")
    assert [p.name for p in result.written] == ["ocsf-lsass-comsvcs-prd01"]
    assert result.unlabelled == [
        "unlabelled group: host ACCT01, 2023-08-15 05:33:51-05:34:00Z, 3 findings"
    ]


def test_import_label_matching_no_group_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    labels = tmp_path / "labels.yaml"
    labels.write_text(LABELS.read_text().replace("hosts: [PRD01]", "hosts: [IT01]"))
    with pytest.raises(InputError) as raised:
        run(FINDINGS, EVENTS, labels, tmp_path / "out")
    assert [str(p) for p in raised.value.problems] == [
        f"{labels}: incidents[0].select: ocsf-lsass-comsvcs-prd01: selects none of 2 groups"
    ]
    assert raised.value.groups[0].startswith(
        "host ACCT01, 2023-08-15 05:33:51-05:34:00Z, 3 findings"
    )
    assert not (tmp_path / "out").exists()


def test_import_label_matching_two_groups_or_a_taken_group_is_an_error(tmp_path: Path) -> None:
    labels = tmp_path / "labels.yaml"
    text = LABELS.read_text().replace(
        'hosts: [PRD01]\n      start: "2023-08-18T08:50:00Z"', 'start: "2023-08-01T00:00:00Z"'
    )
    labels.write_text(
        text.replace('findings: ["otrf-background-acct01:c3e5c1b1:1"]', "hosts: [PRD01]")
    )
    with pytest.raises(InputError) as raised:
        run(FINDINGS, EVENTS, labels, tmp_path / "out")
    problems = [str(p) for p in raised.value.problems]
    assert problems[0].startswith(
        f"{labels}: incidents[0].select: ocsf-lsass-comsvcs-prd01: selects host ACCT01"
    )
    assert "; host PRD01, 2023-08-18 08:56:35-09:00:08Z, 22 findings" in problems[0]
    assert problems[1:] == []  # the second label fits PRD01 alone: the first selected nothing


def test_import_reports_every_malformed_finding_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(INCIDENTS / "otrf-lsass-procdump-acct01", out / "ocsf-background-acct01")
    before = (out / "ocsf-background-acct01" / "incident.json").read_bytes()
    findings = write_lines(
        tmp_path / "findings.jsonl",
        [
            finding(),
            "{not json",
            finding(class_uid=1007),
            finding(time=None),
            finding(time="yesterday"),
            finding(severity_id=0),
            finding(finding_info={"title": "no uid"}),
            "[1, 2]",
        ],
    )
    with pytest.raises(InputError) as raised:
        run(findings, EVENTS, LABELS, out)
    assert [str(p) for p in raised.value.problems] == [
        f"{findings}:2: not JSON: Expecting property name enclosed in double quotes",
        f"{findings}:3: class_uid: 1007; a finding line must be 2004 (Detection Finding),"
        " 2001 (Security Finding)",
        f"{findings}:4: time: missing (OCSF timestamp_t: milliseconds since the epoch)",
        f"{findings}:5: time: 'yesterday' is not a timestamp (ms since the epoch)",
        f"{findings}:6: severity_id: 0 is not a severity 1-6",
        f"{findings}:7: finding_info.uid: missing",
        f"{findings}:8: not a JSON object",
    ]
    assert (out / "ocsf-background-acct01" / "incident.json").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["ocsf-background-acct01"]


def test_import_reports_malformed_event_lines(tmp_path: Path) -> None:
    events = write_lines(
        tmp_path / "events.jsonl",
        [
            *EVENTS.read_text().splitlines()[:3],
            {"class_uid": 1007, "activity_id": 1, "device": {"hostname": "PRD01"}},
            {"EventID": 1, "Hostname": "PRD01"},
            "{",
        ],
    )
    with pytest.raises(InputError) as raised:
        run(FINDINGS, events, LABELS, tmp_path / "out")
    assert [str(p) for p in raised.value.problems] == [
        f"{events}:4: time: missing or not a timestamp (ms since the epoch)",
        f"{events}:5: @timestamp: missing (neither an OCSF class_uid nor an event time)",
        f"{events}:6: not JSON: Expecting property name enclosed in double quotes",
    ]


def test_import_repeated_uid_is_an_error_unless_it_is_an_update(tmp_path: Path) -> None:
    rows = [finding(), finding(activity_id=2, severity_id=5), finding()]
    findings = write_lines(tmp_path / "findings.jsonl", rows)
    with pytest.raises(InputError) as raised:
        run(findings, None, LABELS, tmp_path / "out")
    assert [str(p) for p in raised.value.problems] == [
        f"{findings}:3: finding_info.uid: 'f-1' repeats the finding of line 1"
    ]


def test_parse_detection_finding_fields() -> None:
    raw = finding(
        evidences=[
            {
                "process": {"pid": 4242, "file": {"path": "C:\\Windows\\System32\\rundll32.exe"}},
                "dst_endpoint": {"ip": "203.0.113.9", "hostname": "evil.example"},
                "file": {
                    "path": "C:\\x.dmp",
                    "hashes": [{"algorithm_id": 3, "value": "AB" * 32}],
                },
            }
        ],
        finding_info={
            "uid": "f-9",
            "title": "Dump",
            "analytic": {"uid": "r-9", "name": "LSASS dump rule"},
            "attacks": [
                {"technique": {"uid": "T1003"}, "tactic": {"name": "Credential Access"}},
                {"tactic": {"name": "Discovery"}},
            ],
            "related_events": [{"uid": "e-1"}, {"uid": "e-2"}],
        },
    )
    parsed, errors = parse_finding(raw, 7)
    assert errors == [] and parsed is not None
    alert = parsed.alert
    assert (alert.uid, alert.title, alert.severity) == ("f-9", "Dump", Severity.HIGH)
    assert (alert.rule.uid, alert.rule.name, alert.rule.author) == (
        "r-9",
        "LSASS dump rule",
        "Acme",
    )
    assert [(a.technique, a.tactic) for a in alert.attacks] == [("T1003", "credential-access")]
    assert alert.entities.host == "WS5" and alert.entities.user == "lab\\pedro"
    assert alert.entities.process is not None
    assert (alert.entities.process.pid, alert.entities.process.name) == (4242, "rundll32.exe")
    assert (alert.entities.dst_ip, alert.entities.domain) == ("203.0.113.9", "evil.example")
    assert alert.entities.file is not None and alert.entities.file.sha256 == "ab" * 32
    assert parsed.related_events == ("e-1", "e-2")
    assert parsed.product == "EDR (Acme)"


def test_parse_security_finding_2001() -> None:
    raw = finding(class_uid=2001, finding_info=None, severity_id=None, severity="Critical")
    raw["finding"] = {"uid": "sf-1", "title": "Old-style finding"}
    raw["analytic"] = {"name": "Legacy rule"}
    parsed, errors = parse_finding(raw, 1)
    assert errors == [] and parsed is not None
    assert (parsed.alert.uid, parsed.alert.severity, parsed.alert.rule.name) == (
        "sf-1",
        Severity.CRITICAL,
        "Legacy rule",
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {
                "class_uid": 1007,
                "activity_id": 1,
                "process": {
                    "pid": 7580,
                    "cmd_line": "rundll32.exe comsvcs.dll MiniDump 628 x.dmp full",
                    "file": {"path": "C:\\Windows\\System32\\rundll32.exe"},
                    "user": {"name": "pedro", "domain": "LAB"},
                    "parent_process": {"pid": 7196, "file": {"path": "C:\\p.exe"}},
                },
            },
            {
                "event_source": "sysmon",
                "EventID": 1,
                "Image": "C:\\Windows\\System32\\rundll32.exe",
                "ProcessId": 7580,
                "User": "LAB\\pedro",
                "ParentImage": "C:\\p.exe",
                "ParentProcessId": 7196,
            },
        ),
        (
            {
                "class_uid": 4001,
                "activity_id": 1,
                "src_endpoint": {"ip": "10.1.2.3", "port": 50000},
                "dst_endpoint": {"ip": "203.0.113.9", "port": 443},
                "connection_info": {"protocol_name": "TCP", "direction_id": 2},
                "actor": {"process": {"pid": 7196, "file": {"path": "C:\\p.exe"}}},
            },
            {
                "event_source": "sysmon",
                "EventID": 3,
                "SourceIp": "10.1.2.3",
                "DestinationIp": "203.0.113.9",
                "DestinationPort": 443,
                "Protocol": "tcp",
                "Initiated": "true",
                "Image": "C:\\p.exe",
            },
        ),
        (
            {
                "class_uid": 3002,
                "activity_id": 1,
                "status_id": 2,
                "user": {"name": "pedro", "domain": "LAB"},
                "logon_type_id": 3,
                "src_endpoint": {"ip": "10.9.9.9"},
            },
            {
                "event_source": "security",
                "EventID": 4625,
                "TargetUserName": "pedro",
                "LogonType": 3,
                "IpAddress": "10.9.9.9",
            },
        ),
        (
            {
                "class_uid": 201004,
                "activity_id": 2,
                "reg_value": {"path": "HKLM\\Software\\Run", "name": "x", "data": "c:\\x.exe"},
            },
            {"event_source": "sysmon", "EventID": 13, "TargetObject": "HKLM\\Software\\Run\\x"},
        ),
        (
            {"class_uid": 6003, "activity_id": 1, "api": {"operation": "GetObject"}},
            {"event_source": "ocsf_6003", "EventID": None, "api.operation": "GetObject"},
        ),
    ],
)
def test_ocsf_event_maps_to_recorded_field_names(
    raw: dict[str, object], expected: dict[str, object]
) -> None:
    raw |= {
        "time": 1692349010227,
        "device": {"hostname": "WS5.lab.local"},
        "metadata": {"uid": "e-1"},
    }
    event, errors = telemetry_event(raw)
    assert errors == [] and event is not None
    assert {k: event.get(k) for k in expected} == expected
    assert (event["@timestamp"], event["host"], event["ocsf_uid"]) == (
        "2023-08-18T08:56:50.227Z",
        "WS5",
        "e-1",
    )


def test_flat_windows_event_is_normalised_as_otrf_does() -> None:
    event, errors = telemetry_event(
        {
            "Channel": "Microsoft-Windows-Sysmon/Operational",
            "Hostname": "PRD01.pandalab.com",
            "@timestamp": "2023-08-18T09:00:03.123Z",
            "EventID": 1,
            "Image": "C:\\Windows\\System32\\rundll32.exe",
        }
    )
    assert errors == [] and event is not None
    assert (event["host"], event["event_source"], event["EventID"]) == ("PRD01", "sysmon", 1)
