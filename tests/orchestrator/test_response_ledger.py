"""`response.execute` keeps the ledger honest across retries (issue 11, item 5):

- a retry that finds the state already there after an earlier attempt sent the change records
  Garrison's own change (executed, not "already in that state"), and sends nothing again (I1);
- a state that was there before any attempt is still "already in that state";
- an action that ends without success is `failed` on its last attempt (the retry policy's last,
  or a non-retryable error) and `abandoned` when the workflow cancels it; an attempt that will be
  retried (or a worker shutting down) leaves it pending for the next one;
- `response.end`, the workflow's word after a last attempt that died, ends a pending entry once.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.activity import ActivityCancellationDetails
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from orchestrator.activities.response import ResponseActivities
from orchestrator.models import EndActionInput, ExecuteActionInput, ExecutionStatus
from orchestrator.store import ActionStatus, Store
from orchestrator.workflows.calls import NON_RETRYABLE
from tests.orchestrator.response_fakes import (
    ACTION,
    INCIDENT,
    KEY,
    FirewallOnly,
    FlakyFirewall,
)
from tools.errors import PermanentToolError, TransientToolError
from tools.firewall.memory import InMemoryFirewall


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(f"sqlite:///{tmp_path / 'garrison.db'}")
    yield store
    await store.close()


def attempt(number: int, of: int = 8) -> ActivityEnvironment:
    """An activity environment on attempt `number` of a workflow's policy of `of` attempts."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        attempt=number,
        retry_policy=RetryPolicy(maximum_attempts=of, non_retryable_error_types=NON_RETRYABLE),
    )
    return env


def request() -> ExecuteActionInput:
    return ExecuteActionInput(incident_id=INCIDENT, action=ACTION, risk=40, policy_version="p1")


async def test_a_retry_after_garrisons_own_change_records_it_as_executed(store: Store) -> None:
    firewall = FlakyFirewall(drops=1)
    activities = ResponseActivities(store, FirewallOnly(firewall))  # type: ignore[arg-type]

    with pytest.raises(ApplicationError) as first:
        await attempt(1).run(activities.execute, request())
    assert first.value.type == "TransientToolError"
    in_flight = await store.ledger_get(KEY)
    assert in_flight is not None
    assert (in_flight.status, in_flight.attempts) == (ActionStatus.PENDING, 1)

    result = await attempt(2).run(activities.execute, request())

    assert result.status is ExecutionStatus.EXECUTED
    assert result.verified
    assert "earlier attempt" in result.detail
    entry = await store.ledger_get(KEY)
    assert entry is not None
    assert (entry.status, entry.already_in_state, entry.attempts) == (
        ActionStatus.SUCCEEDED,
        False,
        1,
    )
    assert firewall.sent == 1  # the retry sent nothing again
    assert await firewall.list_blocked() == ["203.0.113.7"]


async def test_a_state_there_before_any_attempt_is_already_in_state(store: Store) -> None:
    firewall = FlakyFirewall()
    await InMemoryFirewall.block_ip(firewall, ACTION.target)  # someone else blocked it
    activities = ResponseActivities(store, FirewallOnly(firewall))  # type: ignore[arg-type]

    result = await attempt(1).run(activities.execute, request())

    assert result.status is ExecutionStatus.ALREADY_IN_STATE
    entry = await store.ledger_get(KEY)
    assert entry is not None
    assert (entry.status, entry.already_in_state, entry.attempts) == (
        ActionStatus.SUCCEEDED,
        True,
        0,
    )


async def test_the_last_attempt_that_fails_ends_the_entry_failed(store: Store) -> None:
    firewall = FlakyFirewall(refuse=TransientToolError("503 from the firewall"))
    activities = ResponseActivities(store, FirewallOnly(firewall))  # type: ignore[arg-type]

    with pytest.raises(ApplicationError):
        await attempt(2, of=3).run(activities.execute, request())
    entry = await store.ledger_get(KEY)
    assert entry is not None and entry.status is ActionStatus.PENDING  # attempt 3 will run

    with pytest.raises(ApplicationError):
        await attempt(3, of=3).run(activities.execute, request())
    entry = await store.ledger_get(KEY)
    assert entry is not None
    assert entry.status is ActionStatus.FAILED
    assert "503 from the firewall" in entry.outcome
    audit = [e.type for e in await store.audit_entries(INCIDENT)]
    assert audit == ["response.block_ip.failed"]


async def test_a_vendor_refusal_ends_the_entry_failed_on_the_first_attempt(store: Store) -> None:
    firewall = FlakyFirewall(refuse=PermanentToolError("rule base is read-only"))
    activities = ResponseActivities(store, FirewallOnly(firewall))  # type: ignore[arg-type]

    with pytest.raises(ApplicationError) as refused:
        await attempt(1).run(activities.execute, request())

    assert refused.value.non_retryable
    entry = await store.ledger_get(KEY)
    assert entry is not None
    assert (entry.status, entry.attempts) == (ActionStatus.FAILED, 1)
    assert "rule base is read-only" in entry.outcome


@pytest.mark.parametrize(
    ("details", "status"),
    [
        (ActivityCancellationDetails(cancel_requested=True), ActionStatus.ABANDONED),
        (ActivityCancellationDetails(worker_shutdown=True), ActionStatus.PENDING),
    ],
)
async def test_a_cancelled_action_is_abandoned_but_a_worker_shutdown_leaves_it_pending(
    store: Store, details: ActivityCancellationDetails, status: ActionStatus
) -> None:
    firewall = FlakyFirewall()
    firewall.hanging = True
    activities = ResponseActivities(store, FirewallOnly(firewall))  # type: ignore[arg-type]
    env = attempt(1)
    running = asyncio.create_task(env.run(activities.execute, request()))
    await asyncio.wait_for(firewall.reached.wait(), 10)

    env.cancel(details)
    with pytest.raises(asyncio.CancelledError):
        await running

    entry = await store.ledger_get(KEY)
    assert entry is not None and entry.status is status


async def test_response_end_ends_a_pending_entry_once(store: Store) -> None:
    firewall = FlakyFirewall(drops=1)
    activities = ResponseActivities(store, FirewallOnly(firewall))  # type: ignore[arg-type]
    with pytest.raises(ApplicationError):
        await attempt(1).run(activities.execute, request())  # its worker "died": still pending
    end = EndActionInput(
        incident_id=INCIDENT, action=ACTION, status="failed", reason="activity timed out"
    )

    await ActivityEnvironment().run(activities.end, end)
    await ActivityEnvironment().run(activities.end, end)  # a retried `response.end`

    entry = await store.ledger_get(KEY)
    assert entry is not None
    assert (entry.status, entry.outcome) == (ActionStatus.FAILED, "activity timed out")
    audit = [e.type for e in await store.audit_entries(INCIDENT)]
    assert audit == ["response.block_ip.failed"]


class _Killed(BaseException):
    """The worker's death: raised where a SIGKILL would stop the attempt, caught by nothing."""


async def test_a_change_whose_attempt_died_before_its_audit_entry_is_audited_by_the_retry(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chaos run (bench.chaos) found an executed action with no audit entry: its worker was
    killed between finishing the ledger entry and appending the audit entry, and the retry
    returned the finished entry without one. The two are one transaction now; an entry left so by
    earlier code (finished, then killed) is still audited by the retry, once."""
    firewall = FlakyFirewall()
    activities = ResponseActivities(store, FirewallOnly(firewall))  # type: ignore[arg-type]
    finish = store.ledger_finish

    async def finished_then_killed(*args: Any, audit_event: object = None, **kwargs: Any) -> None:
        await finish(*args, **kwargs)  # as earlier code did: the audit entry was a write of its own
        raise _Killed

    with monkeypatch.context() as dying:
        dying.setattr(store, "ledger_finish", finished_then_killed)  # a signal, as above
        with pytest.raises(_Killed):
            await attempt(1).run(activities.execute, request())
    entry = await store.ledger_get(KEY)
    assert entry is not None and entry.status is ActionStatus.SUCCEEDED
    assert await store.audit_entries(INCIDENT) == []

    again = await attempt(2).run(activities.execute, request())
    once_more = await attempt(3).run(activities.execute, request())

    assert again.status is once_more.status is ExecutionStatus.EXECUTED
    audit = [(e.type, e.target) for e in await store.audit_entries(INCIDENT)]
    assert audit == [("response.block_ip.succeeded", ACTION.target)]
    assert firewall.sent == 1


async def test_an_attempt_that_died_finishing_its_entry_leaves_neither_and_the_retry_does_both(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finishing the entry and auditing it are one transaction: a death inside it keeps neither
    (the entry stays pending, with the change counted as sent), and the retry finishes and
    audits it once, without sending the change again."""
    firewall = FlakyFirewall()
    activities = ResponseActivities(store, FirewallOnly(firewall))  # type: ignore[arg-type]

    async def killed(*args: Any, **kwargs: Any) -> None:
        raise _Killed

    with monkeypatch.context() as dying:
        dying.setattr(store, "ledger_finish", killed)
        with pytest.raises(_Killed):
            await attempt(1).run(activities.execute, request())
    entry = await store.ledger_get(KEY)
    assert entry is not None and entry.status is ActionStatus.PENDING and entry.attempts == 1
    assert await store.audit_entries(INCIDENT) == []

    again = await attempt(2).run(activities.execute, request())

    assert again.status is ExecutionStatus.EXECUTED
    audit = [(e.type, e.target) for e in await store.audit_entries(INCIDENT)]
    assert audit == [("response.block_ip.succeeded", ACTION.target)]
    assert firewall.sent == 1
