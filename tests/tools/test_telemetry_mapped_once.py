"""A recording's events are flattened once and every mapper reads that one flat event: the
typed telemetry is the one each mapper gives from the raw event, and what is cached (field
names) is bounded."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tests.tools.test_telemetry import flat_sysmon_1, sentinel_4624, winlogbeat_sysmon_1
from tools import event_shapes as shapes
from tools.event_mappers import (
    account_event,
    to_file_event,
    to_logon_event,
    to_network_connection,
    to_process_event,
    to_registry_event,
)
from tools.event_shapes import flatten
from tools.parents import unrecorded_parents
from tools.system_events import to_system_event
from tools.telemetry import Telemetry

RECORDINGS = Path(__file__).parents[1] / "playbooks" / "incidents"
AT = "2023-08-15T05:40:00Z"


def events() -> list[dict[str, Any]]:
    recorded: list[dict[str, Any]] = []
    for path in sorted(RECORDINGS.glob("*/telemetry.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            recorded += [json.loads(line) for line in lines if line.strip()]
    sysmon = {"Channel": "Microsoft-Windows-Sysmon/Operational", "Hostname": "WS1", "UtcTime": AT}
    return [
        *recorded,
        flat_sysmon_1(),
        winlogbeat_sysmon_1(),
        sentinel_4624(),
        sysmon | {"EventID": 13, "TargetObject": r"HKLM\SOFTWARE\Run\x", "Details": "a.exe"},
        sysmon | {"EventID": 11, "TargetFilename": r"C:\Users\bob\a.exe", "ProcessId": 9},
        sysmon | {"EventID": 3, "ProcessId": "9", "DestinationIp": "8.8.8.8"},
        sysmon | {"EventID": 1, "ProcessId": "not a pid", "UtcTime": "not a time"},
        {"Channel": "System", "Computer": "WS1", "EventID": 7045, "TimeCreated": AT,
         "ServiceName": "x", "ImagePath": r"C:\x.exe", "StartType_string": "2"},
        {"Channel": "Security", "Computer": "DC1", "EventID": 4769, "TimeCreated": AT,
         "TargetUserName": "bob", "ServiceName": "MSSQLSvc", "TicketEncryptionType": "0x17"},
        {"junk": True},
    ]  # fmt: skip


def mapped_one_by_one(raw: Iterable[Mapping[str, Any]]) -> Telemetry:
    """Each mapper given the raw event, as `Telemetry.from_events` did before."""
    telemetry = Telemetry()
    for event in raw:
        try:
            process = to_process_event(event)
            connection = None if process else to_network_connection(event)
            logon = None if process or connection else to_logon_event(event)
            registry = None if process or connection or logon else to_registry_event(event)
            file = None if process or connection or logon or registry else to_file_event(event)
            typed = process or connection or logon or registry or file
            account = None if typed else account_event(event)
            system = None if typed else to_system_event(event)
        except ValueError:
            continue
        for kept, into in [(process, telemetry.processes), (connection, telemetry.connections),
                           (logon, telemetry.logons), (registry, telemetry.registry),
                           (file, telemetry.files), (account, telemetry.accounts),
                           (system, telemetry.system)]:  # fmt: skip
            if kept:
                into.append(kept)  # pyright: ignore[reportArgumentType]
    telemetry.processes.sort(key=lambda e: e.time)
    telemetry.processes.extend(unrecorded_parents(telemetry.processes))
    for kind in (telemetry.processes, telemetry.connections, telemetry.logons, telemetry.registry,
                 telemetry.files, telemetry.accounts, telemetry.system):  # fmt: skip
        kind.sort(key=lambda e: e.time)
    return telemetry


def test_a_recording_mapped_once_is_the_one_each_mapper_gives() -> None:
    raw = events()
    mapped = Telemetry.from_events(raw)
    assert mapped == mapped_one_by_one(raw)
    assert mapped.processes and mapped.connections and mapped.logons and mapped.registry
    assert mapped.files and mapped.system and mapped.accounts


def test_a_flat_event_flattens_to_itself_and_field_names_are_kept_bounded() -> None:
    for event in events():
        once = shapes.FlatEvent(flatten(event))
        assert flatten(once) is once
        assert once == flatten(event)
    stripped = shapes._strip_suffix  # pyright: ignore[reportPrivateUsage]
    assert flatten({"Image_string": "a", "_int": 1, "Name": "b"}) == {
        "Image": "a",
        "_int": 1,
        "Name": "b",
    }
    for n in range(5_000):
        stripped(f"Field{n}_string")
    info = stripped.cache_info()
    assert info.maxsize is not None and info.currsize <= info.maxsize
