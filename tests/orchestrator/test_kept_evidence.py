"""Which records an agent run keeps (`RecordingEdr.kept_for`): those read on a referenced host
within the window of a reference, each once (by digest), oldest first; a record object that
several reads returned is converted once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from agents.models import EvidenceRef
from orchestrator.activities import evidence
from orchestrator.activities.evidence import KEEP_WINDOW, RecordingEdr
from orchestrator.store.evidence import KeptEvent
from tools.results import ProcessEvent

T0 = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)


def process(minutes: float, pid: int, host: str = "WS-1", tz: timezone = UTC) -> ProcessEvent:
    at = (T0 + timedelta(minutes=minutes)).astimezone(tz)
    return ProcessEvent(time=at, host=host, pid=pid, image=f"C:\\p{pid}.exe")


def test_records_are_kept_once_within_the_window_and_converted_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conversions: list[int | None] = []
    convert = evidence.kept_event

    def counting(host: str, kind: str, event: Any) -> Any:
        conversions.append(event.pid)
        return convert(host, kind, event)

    monkeypatch.setattr(evidence, "kept_event", counting)
    early, late, far = process(-1, 1), process(2, 2), process(30, 3)
    twin = process(-1, 1)  # an equal record, another object: the same digest, kept once
    shifted = process(2, 2, tz=timezone(timedelta(hours=1)))  # same instant, another digest
    recorder = RecordingEdr(edr=None)  # type: ignore[arg-type]  # only its notes are read
    recorder.read = [
        ("WS-1", "process", [late, early, far]),
        ("ws-1", "process", [early, late]),  # the same objects read again, under another case
        ("WS-1", "process", [twin, shifted]),
        ("WS-2", "process", [process(0, 9, host="WS-2")]),  # a host no claim refers to
    ]
    refs = [EvidenceRef(host="ws-1", time=T0, source="process", pid=1)]

    kept = recorder.kept_for(refs)

    assert [(e.pid, e.time) for e in kept] == [(1, T0 - timedelta(minutes=1))] + [
        (2, T0 + timedelta(minutes=2))
    ] * 2
    assert len({e.digest for e in kept}) == 3
    assert all(e.host == "ws-1" for e in kept)
    assert abs(far.time - T0) > KEEP_WINDOW
    assert sorted(p for p in conversions if p is not None) == [1, 1, 2, 2]  # not per read


def test_a_kept_record_built_without_validation_is_what_validation_makes_of_it() -> None:
    event = ProcessEvent(
        time=T0.replace(tzinfo=None),  # a naive time: kept in UTC
        host="WS-1",
        pid=4242,
        image="C:\\Windows\\System32\\rundll32.exe",
        cmd_line="rundll32.exe comsvcs.dll MiniDump 624 out.dmp full",
        parent_pid=600,
    )
    built = evidence.kept_event("WS-1", "process", event)
    validated = KeptEvent.model_validate(built.model_dump())
    assert built == validated
    assert built.time.tzinfo is not None and built.pid == 4242
    assert all(isinstance(v, str) for _, v in built.fields)
