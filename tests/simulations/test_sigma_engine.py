"""The importer's Sigma engine: rules compiled by pySigma and cached, evaluated over recordings.

A synthetic recording (the three event shapes and a Zeek log) against hand-written rules gives
exact hits; a second load comes from the cache without converting; over real OTRF recordings the
engine finds the precomputed reference hits (`sigma_alerts.jsonl`) of the rules they name.
"""

from __future__ import annotations

import json
import lzma
import uuid
from collections import Counter
from importlib.metadata import version
from pathlib import Path

import pytest
import yaml

from simulations.importers.otrf import importer
from simulations.importers.otrf.alerts import read_reference_hits, read_reference_totals
from simulations.importers.sigma.engine import evaluate
from simulations.importers.sigma.rules import (
    CompiledRule,
    PySigmaConverter,
    RuleFile,
    Skipped,
    compile_rules,
    load_rules,
    read_rule_files,
)
from tests.simulations.test_importer_otrf import LABELS

DATASETS = Path("/work/shared/datasets/otrf")
RULES_TARBALL = Path("/work/shared/datasets/sigma-rules/sigma-rules.tar.gz")
SYSMON = "Microsoft-Windows-Sysmon/Operational"
real_data = pytest.mark.skipif(
    not (DATASETS.is_dir() and RULES_TARBALL.is_file()), reason="shared datasets absent"
)


def _rule(folder: Path, name: str, logsource: dict[str, str], detection: dict[str, object]) -> None:
    body = {
        "title": name.replace("_", " ").title(),
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        "status": "test",
        "author": f"Author of {name}",
        "level": "high",
        "tags": ["attack.execution", "attack.t1059"],
        "logsource": logsource,
        "detection": detection,
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yml").write_text(yaml.safe_dump(body, sort_keys=False))


def _rules(folder: Path) -> Path:
    windows = {"product": "windows"}
    _rule(
        folder,
        "whoami",
        {**windows, "category": "process_creation"},
        {
            "selection": {"Image|endswith": "\\whoami.exe"},
            "filter": {"CommandLine|contains": "benign"},
            "condition": "selection and not filter",
        },
    )
    _rule(
        folder,
        "dbghelp_load",  # the filter's field is absent from image loads: `not filter` holds
        {**windows, "category": "image_load"},
        {
            "selection": {"ImageLoaded|endswith": "\\dbghelp.dll"},
            "filter": {"CommandLine|contains": "legit"},
            "condition": "selection and not filter",
        },
    )
    _rule(
        folder,
        "run_key",
        {**windows, "category": "registry_set"},
        {
            "selection": {
                "TargetObject|contains": "\\CurrentVersion\\Run\\",
                "Details|re": "^C:\\\\[a-z]+\\.exe$",
            },
            "condition": "selection",
        },
    )
    _rule(
        folder,
        "adws_connection",  # a boolean and a number, as YAML gives them
        {**windows, "category": "network_connection"},
        {"selection": {"Initiated": True, "DestinationPort": 9389}, "condition": "selection"},
    )
    _rule(
        folder,
        "network_logon",
        {**windows, "service": "security"},
        {
            "selection": {"EventID": 4624, "LogonType": 3, "IpAddress|cidr": "10.0.0.0/8"},
            "condition": "selection",
        },
    )
    _rule(
        folder,
        "zeek_dns",
        {"product": "zeek", "service": "dns"},
        {"selection": {"query|endswith": ".evil.test"}, "condition": "selection"},
    )
    _rule(
        folder,
        "linux_whoami",  # compiles, never runs: no Linux events
        {"product": "linux", "category": "process_creation"},
        {"selection": {"Image|endswith": "/whoami"}, "condition": "selection"},
    )
    _rule(
        folder,
        "file_access",  # compiles, never runs: no pipeline maps this category to a channel
        {**windows, "category": "file_access"},
        {"selection": {"FileName|endswith": ".kdbx"}, "condition": "selection"},
    )
    _rule(
        folder,
        "keywords",  # value-only search: the SQLite backend refuses it
        {**windows, "service": "security"},
        {"keywords": ["mimikatz"], "condition": "keywords"},
    )
    return folder


def _xz(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with lzma.open(path, "wt", encoding="utf-8") as out:
        out.writelines(line + "\n" for line in lines)


def _flat(event_id: int, channel: str = SYSMON, **fields: object) -> str:
    stamp = "2020-09-21T08:09:16.014Z"
    return json.dumps(
        {"Channel": channel, "EventID": event_id, "Hostname": "WS1.lab.local", "@timestamp": stamp}
        | fields
    )


def _recording(folder: Path) -> Path:
    _xz(
        folder / "host" / "flat.json.xz",
        [
            _flat(1, Image="C:\\Windows\\System32\\whoami.exe", CommandLine="whoami /all"),
            "not json: skipped, but counted as a line",
            _flat(1, Image="C:\\Windows\\System32\\whoami.exe", CommandLine="whoami benign"),
            _flat(7, Image="C:\\x\\rundll32.exe", ImageLoaded="C:\\Windows\\dbghelp.dll"),
            _flat(4688, "security", NewProcessName="C:\\Windows\\System32\\whoami.exe"),
        ],
    )
    winlogbeat = {"@timestamp": "2019-05-18T20:19:19.105Z", "computer_name": "HR001.shire.com"}
    _xz(
        folder / "host" / "winlogbeat.json.xz",
        [
            json.dumps(
                winlogbeat
                | {
                    "log_name": SYSMON,
                    "event_id": 13,
                    "event_data": {
                        "EventType": "SetValue",
                        "TargetObject": "HKU\\S-1\\Software\\Microsoft\\Windows\\CurrentVersion"
                        "\\Run\\updater",
                        "Details": "C:\\evil.exe",
                    },
                }
            ),
            json.dumps(
                winlogbeat
                | {
                    "log_name": SYSMON,
                    "event_id": 3,
                    "user": {"name": "SYSTEM"},
                    "event_data": {"Initiated": "true", "DestinationPort": "9389"},
                }
            ),
        ],
    )
    sentinel = {"TimeGenerated": "2021-08-02T13:09:20.04Z", "Computer": "DC1.lab.local"}
    _xz(
        folder / "host" / "sentinel.json.xz",
        [
            json.dumps(
                sentinel
                | {
                    "Channel": "Security",
                    "EventID": 4624,
                    "EventData": json.dumps({"LogonType": "3", "IpAddress": "10.1.2.3"}),
                }
            ),
            json.dumps(
                sentinel
                | {
                    "Channel": "Security",
                    "EventID": 4624,
                    "EventData": json.dumps({"LogonType": "3", "IpAddress": "192.168.1.9"}),
                }
            ),
        ],
    )
    _xz(
        folder / "network" / "dns.log.xz",
        [
            "#separator \\x09",
            "#path\tdns",
            "#fields\tts\tuid\tid.orig_h\tquery\tanswers",
            "#types\ttime\tstring\taddr\tstring\tvector[string]",
            "1692374165.7\tC1\t192.168.1.42\twww.example.org\t(empty)",
            "1692374166.1\tC2\t192.168.1.42\tc2.evil.test\t-",
            "#close\t2023-08-18-12-24-21",
        ],
    )
    return folder


def test_rules_compile_and_evaluate_to_exact_hits_over_the_three_event_shapes(
    tmp_path: Path,
) -> None:
    loaded = load_rules(_rules(tmp_path / "rules"), tmp_path / "cache")
    assert loaded.rules.failures == {"SigmaFeatureNotSupportedByBackendError": 1}
    assert len(loaded.rules.rules) == 8

    result = evaluate(_recording(tmp_path / "recording"), loaded.rules.rules)

    assert {(h.title, h.source, tuple(h.rows)) for h in result.hits} == {
        ("Whoami", "flat.json.xz", (0,)),
        ("Dbghelp Load", "flat.json.xz", (3,)),
        ("Run Key", "winlogbeat.json.xz", (0,)),
        ("Adws Connection", "winlogbeat.json.xz", (1,)),
        ("Network Logon", "sentinel.json.xz", (0,)),
        ("Zeek Dns", "dns.log.xz", (5,)),
    }
    assert (result.rules_run, result.rules_skipped, result.errors) == (6, 2, {})
    assert result.events == 4 + 2 + 2 + 2
    whoami = next(h for h in result.hits if h.title == "Whoami")
    assert (whoami.author, whoami.level) == ("Author of whoami", "high")
    assert whoami.tags == ["attack.execution", "attack.t1059"]


def test_second_load_comes_from_the_cache_without_converting(tmp_path: Path) -> None:
    converted: list[str] = []
    pysigma = PySigmaConverter()

    def counting(rule_file: RuleFile) -> list[CompiledRule | Skipped]:
        converted.append(rule_file[0])
        return pysigma(rule_file)

    rules, cache = _rules(tmp_path / "rules"), tmp_path / "cache"
    first = load_rules(rules, cache, convert=counting)
    second = load_rules(rules, cache, convert=counting)

    assert (first.cached, second.cached) == (False, True)
    assert len(converted) == 9  # every file once, at the first load only
    assert second.rules == first.rules
    assert [p.name for p in cache.iterdir()] == [f"rules-{first.rules.key}.json"]
    assert f"-pysigma{version('pysigma')}-" in first.rules.key

    system = {"product": "windows", "service": "system"}
    _rule(rules, "service_installed", system, {"s": {"EventID": 7045}, "condition": "s"})
    third = load_rules(rules, cache, convert=counting)
    assert not third.cached and third.rules.key != first.rules.key
    assert len(converted) == 9 + 10

    (cache / f"rules-{third.rules.key}.json").write_text("{not json")  # compiled again
    assert load_rules(rules, cache, convert=counting).rules == third.rules
    assert len(converted) == 9 + 10 + 10


def _reference_rules(folder: Path) -> list[RuleFile]:
    """The rule files of the tarball that fired in the recording's reference hits."""
    with (folder / "sigma_alerts.jsonl").open() as lines:
        paths = {json.loads(line)["rule_path"] for line in lines}
    return [f for f in read_rule_files(RULES_TARBALL) if f[0] in paths]


def _coverage(name: str) -> float:
    folder = DATASETS / name
    rules = compile_rules(_reference_rules(folder), PySigmaConverter()).compiled
    ours = {(h.rule_id, h.source, r) for h in evaluate(folder, rules).hits for r in h.rows}
    reference = {(h.rule_id, h.source, r) for h in read_reference_hits(folder) for r in h.rows}
    covered = len(ours & reference) / len(reference)
    print(f"{name}: {covered:.1%} of {len(reference)} reference (rule, source, row) triples")
    return covered


@real_data
def test_engine_covers_the_reference_hits_of_a_flat_recording() -> None:
    assert _coverage("SDWIN-190518201207") >= 0.9  # measured: 100% of 16


@real_data
def test_engine_covers_the_reference_hits_of_a_winlogbeat_recording() -> None:
    assert _coverage("SDWIN-190518201922") >= 0.9  # measured: 100% of 56


@real_data
@pytest.mark.slow  # compiles the whole tarball cold (about 10 s)
def test_all_rules_count_what_the_reference_counts(tmp_path: Path) -> None:
    rules = load_rules(RULES_TARBALL, tmp_path / "cache").rules.rules
    for name in ("SDWIN-201018195009", "SDWIN-190518201922"):
        folder = DATASETS / name
        result = evaluate(folder, rules)
        counts = Counter((h.rule_id, h.source) for h in result.hits for _ in h.rows)
        totals = read_reference_totals(folder)
        assert {pair: counts[pair] for pair in totals} == totals
        assert result.errors == {}


@real_data
def test_importer_with_rules_builds_what_the_reference_hits_build(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    for name, data in _reference_rules(DATASETS / "SDWIN-190518201207"):
        (rules / name).parent.mkdir(parents=True, exist_ok=True)
        (rules / name).write_bytes(data)
    labels = tmp_path / "labels.yaml"
    labels.write_text(LABELS)
    common = ["--labels", str(labels), "--datasets", str(DATASETS)]
    engine = [*common, "--out", str(tmp_path / "engine"), "--rules", str(rules)]
    reference = [*common, "--out", str(tmp_path / "reference"), "--reference-hits"]

    assert importer.main([*engine, "--sigma-cache", str(tmp_path / "cache")]) == 0
    assert importer.main(reference) == 0

    for name in ("test-net-domain-admins/incident.json", "ATTRIBUTION.md"):
        assert (tmp_path / "engine" / name).read_bytes() == (
            tmp_path / "reference" / name
        ).read_bytes()
