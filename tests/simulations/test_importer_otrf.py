"""The OTRF importer: a small dataset and labels file give a valid incident; event shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulations.importers.otrf import entities, normalise, run
from simulations.loader import load_all

DATASETS = Path("/work/shared/datasets/otrf")
LABELS = """
incidents:
  - id: test-net-domain-admins
    dataset: SDWIN-190518201207
    title: Domain Admins enumeration
    select:
      rules: [d95de845-b83c-4a9a-8a6a-4fc802ebf6c0, 35ba1d85-724d-42a3-889f-2e2362bcaf23]
    truth: {verdict: malicious, category: discovery, techniques: [T1069.002]}
    analyst: {policy: oracle, latency_s: 100}
    note: test
"""


@pytest.mark.skipif(not (DATASETS / "SDWIN-190518201207").is_dir(), reason="OTRF datasets absent")
def test_import_small_dataset_gives_a_valid_incident(tmp_path: Path) -> None:
    labels = tmp_path / "labels.yaml"
    labels.write_text(LABELS)
    imported = run(labels, DATASETS, tmp_path / "out")
    [folder] = imported.written
    assert imported.unlabelled == []  # the recording's hits form one group
    result = load_all([folder])
    assert result.problems == []
    [incident] = result.incidents
    spec = incident.spec
    titles = {a.title for a in spec.alerts}
    # the selection's two rules name the group; the incident carries the whole group
    assert titles >= {
        "Suspicious Group And Account Reconnaissance Activity Using Net.EXE",
        "AD Privileged Users or Groups Reconnaissance",
    }
    assert len(titles) > 2
    assert all(a.rule.author for a in spec.alerts)
    assert {a.id for a in spec.environment.assets} >= {"WORKSTATION6", "MORDORDC"}
    assert spec.environment.protected == ["MORDORDC"]
    events = list(incident.telemetry())
    for alert in spec.alerts:
        for row in alert.evidence:
            assert events[row]["host"] == alert.entities.host
    assert "Detection Rule License" in spec.source.attribution
    [again] = run(labels, DATASETS, tmp_path / "again").written
    for name in ("incident.json", "telemetry.jsonl.gz", "../ATTRIBUTION.md"):
        assert (folder / name).read_bytes() == (again / name).read_bytes()


@pytest.mark.skipif(not (DATASETS / "SDWIN-190518201207").is_dir(), reason="OTRF datasets absent")
def test_import_writes_attribution_with_authors_and_licences(tmp_path: Path) -> None:
    labels = tmp_path / "labels.yaml"
    labels.write_text(LABELS)
    run(labels, DATASETS, tmp_path / "out")
    text = (tmp_path / "out" / "ATTRIBUTION.md").read_text()
    row = "| `test-net-domain-admins` | `SDWIN-190518201207` | Empire Shell Net Domain Admins |"
    assert f"{row} Roberto Rodriguez @Cyb3rWard0g |" in text
    assert (
        "| `35ba1d85-724d-42a3-889f-2e2362bcaf23` | AD Privileged Users or Groups Reconnaissance"
        " | Samir Bousseaden |"
    ) in text
    assert (DATASETS / "LICENSE").read_text().strip() in text
    assert "# Detection Rule License (DRL) 1.1" in text
    assert text.endswith("THE RULES.\n```\n")  # the closing fence on a line of its own


def test_flat_sysmon_event_entities() -> None:
    event = normalise(
        {
            "Channel": "Microsoft-Windows-Sysmon/Operational",
            "Hostname": "PRD01.pandalab.com",
            "@timestamp": "2023-08-18T09:00:03.123Z",
            "EventID": 1,
            "ProcessId": "7580",
            "Image": "C:\\Windows\\System32\\rundll32.exe",
            "CommandLine": "rundll32.exe comsvcs.dll MiniDump 628 C:\\x.dmp full",
            "User": "PANDALAB\\pedro.gustavo",
            "Hashes": "SHA1=AA,SHA256=" + "AB" * 32,
            "Message": "dropped",
        }
    )
    assert (event["host"], event["event_source"], event["EventID"]) == ("PRD01", "sysmon", 1)
    assert "Message" not in event
    found = entities(event)
    assert found.user == "pandalab\\pedro.gustavo"
    assert found.process is not None and found.process.pid == 7580
    assert found.process.name == "rundll32.exe"
    assert found.file is not None and found.file.sha256 == "ab" * 32


def test_winlogbeat_nested_event_data_entities() -> None:
    event = normalise(
        {
            "@timestamp": "2019-05-18T20:10:02.5Z",
            "log_name": "Microsoft-Windows-Sysmon/Operational",
            "computer_name": "WORKSTATION5.theshire.local",
            "event_id": 3,
            "host": {"name": "WORKSTATION5"},
            "event_data": {
                "ProcessId": "2316",
                "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                "User": "THESHIRE\\pgustavo",
                "SourceIp": "172.18.39.5",
                "DestinationIp": "10.10.10.5",
                "DestinationHostname": "-",
            },
        }
    )
    assert event["host"] == "WORKSTATION5" and event["@timestamp"] == "2019-05-18T20:10:02.500Z"
    found = entities(event)
    assert (found.src_ip, found.dst_ip, found.domain) == ("172.18.39.5", "10.10.10.5", None)
    assert found.user == "theshire\\pgustavo"


def test_sentinel_eventdata_string_entities() -> None:
    event = normalise(
        {
            "TimeGenerated": "2021-08-02T13:09:20.04Z",
            "Computer": "ADFS01.simulandlabs.com",
            "Channel": "Security",
            "EventID": 4688,
            "EventData": json.dumps(
                {
                    "SubjectUserName": "ADFS01$",
                    "SubjectDomainName": "SIMULAND",
                    "TargetUserName": "pgustavo",
                    "TargetDomainName": "SIMULAND",
                    "NewProcessId": "0x1a4",
                    "NewProcessName": "C:\\Windows\\System32\\cmd.exe",
                    "CommandLine": "cmd /c whoami",
                }
            ),
        }
    )
    assert (event["host"], event["event_source"]) == ("ADFS01", "security")
    found = entities(event)
    assert found.process is not None and found.process.pid == 0x1A4
    assert found.user == "simuland\\pgustavo"  # a person is preferred over the machine account
