"""Vendor reads retried within a budget (`agents/reads.py`): a transient error is retried, a
permanent one is not, Retry-After is honoured, and only a spent budget becomes an evidence gap."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from agents.reads import ReadBudget, ReadRetry, RetryingEdr
from agents.telemetry import read_host
from tests.agents.fakes import T0, FlakyEdr
from tests.agents.scenarios import lsass_edr
from tools.errors import PermanentToolError, TransientToolError

FAST = ReadRetry(first_wait_s=0.001, max_wait_s=0.004)


async def test_transient_errors_within_the_budget_are_retried_until_the_read_answers() -> None:
    edr = FlakyEdr(lsass_edr(), failures=6)
    reader = RetryingEdr(edr, ReadBudget(FAST))
    events = await reader.process_events("PRD01")
    assert [e.pid for e in events] == [3100, 4100, 4242]
    assert edr.calls == 7  # six 503s, then the answer


async def test_a_spent_budget_raises_the_last_transient_error() -> None:
    edr = FlakyEdr(lsass_edr(), failures=100)
    reader = RetryingEdr(edr, ReadBudget(ReadRetry(attempts=4, first_wait_s=0.001)))
    with pytest.raises(TransientToolError):
        await reader.logons("PRD01")
    assert edr.calls == 4


async def test_a_permanent_error_is_not_retried() -> None:
    edr = FlakyEdr(lsass_edr(), failures=1, permanent=True)
    reader = RetryingEdr(edr, ReadBudget(FAST))
    with pytest.raises(PermanentToolError):
        await reader.process_events("PRD01")
    assert edr.calls == 1


async def test_no_retry_comes_sooner_than_the_vendors_retry_after() -> None:
    edr = FlakyEdr(lsass_edr(), failures=2, retry_after_s=0.3)
    reader = RetryingEdr(edr, ReadBudget(FAST))
    started = time.monotonic()
    await reader.network_connections("PRD01")
    elapsed = time.monotonic() - started
    assert edr.calls == 3
    assert elapsed >= 0.6  # two waits of Retry-After, not of the 1 ms backoff


async def test_retry_after_beyond_its_cap_waits_only_the_cap() -> None:
    policy = ReadRetry(first_wait_s=0.001, max_retry_after_s=0.05)
    error = TransientToolError("429", retry_after_s=3600)
    assert policy.wait_before(1, error) == 0.05
    assert policy.wait_before(3, TransientToolError("503")) == pytest.approx(0.004)


async def test_the_runs_deadline_stops_retrying_and_later_reads_fail_at_once() -> None:
    edr = FlakyEdr(lsass_edr(), failures=1_000)
    budget = ReadBudget(ReadRetry(attempts=8, first_wait_s=0.05, max_wait_s=0.05, deadline_s=0.12))
    reader = RetryingEdr(edr, budget)
    with pytest.raises(TransientToolError):
        await reader.process_events("PRD01")
    first = edr.calls
    assert 2 <= first <= 3  # waits of 50 ms fit twice in 120 ms at most
    with pytest.raises(TransientToolError):
        await reader.logons("PRD01")
    assert edr.calls == first + 1  # the deadline passed: one attempt, no wait


async def test_read_host_records_a_gap_only_once_the_budget_is_spent() -> None:
    within = FlakyEdr(lsass_edr(), failures=7)  # one read's attempts, all but its last
    telemetry = await read_host(
        RetryingEdr(within, ReadBudget(FAST)), "PRD01", T0, T0 + timedelta(minutes=1)
    )
    assert telemetry.gaps == []
    assert not telemetry.processes_unread
    assert len(telemetry.processes) == 3

    beyond = FlakyEdr(lsass_edr(), failures=8)  # the first read's eight attempts
    telemetry = await read_host(
        RetryingEdr(beyond, ReadBudget(FAST)), "PRD01", T0, T0 + timedelta(minutes=1)
    )
    assert telemetry.gaps == ["process events on PRD01 unavailable (TransientToolError)"]
    assert telemetry.processes_unread
    assert [c.dst_ip for c in telemetry.connections] == ["10.0.5.13"]  # the next read answered
