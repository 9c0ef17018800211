"""The capability contracts run against the in-memory twins, plus what only twins promise: faults
that hang after applying, and one vendor world shared by readers, responders and processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from simulations.backends import memory_backends
from tests.tools.contracts import edr, firewall, identity, intel, ticketing
from tests.tools.contracts.world import PEDRO, RUNDLL_PID, Harness, Scenario, environment, events
from tools.edr.memory import InMemoryEdr
from tools.firewall.memory import InMemoryFirewall
from tools.identity.memory import InMemoryIdentity
from tools.intel.memory import InMemoryThreatIntel
from tools.journal import FileJournal, MemoryJournal, TwinFaults
from tools.ticketing.memory import InMemoryTicketing

Contract = Callable[[Any], Awaitable[None]]


def _twin_factory(build: Callable[[Scenario, MemoryJournal], Any]) -> Any:
    @asynccontextmanager
    async def make(scenario: Scenario) -> AsyncIterator[Harness[Any]]:
        journal = MemoryJournal()
        yield Harness(tool=build(scenario, journal), state_changes=lambda: len(journal.changes()))

    return make


TWINS: dict[str, tuple[tuple[Contract, ...], Any]] = {
    "edr": (
        edr.CONTRACTS,
        _twin_factory(lambda s, j: InMemoryEdr(s.environment, s.events, j, s.faults)),
    ),
    "firewall": (firewall.CONTRACTS, _twin_factory(lambda s, j: InMemoryFirewall(j, s.faults))),
    "identity": (
        identity.CONTRACTS,
        _twin_factory(lambda s, j: InMemoryIdentity(s.environment, j, s.faults)),
    ),
    "ticketing": (ticketing.CONTRACTS, _twin_factory(lambda s, j: InMemoryTicketing(j, s.faults))),
    "intel": (
        intel.CONTRACTS,
        _twin_factory(lambda s, j: InMemoryThreatIntel(s.environment, s.faults)),
    ),
}


@pytest.mark.parametrize(
    ("contract", "factory"),
    [
        pytest.param(contract, factory, id=f"{name}.{contract.__name__}")
        for name, (contracts, factory) in TWINS.items()
        for contract in contracts
    ],
)
async def test_twin_meets_contract(contract: Contract, factory: Any) -> None:
    await contract(factory)


# --- twin-only behaviour ------------------------------------------------------------------------


async def test_hang_after_apply_journals_the_change_then_never_answers() -> None:
    journal = MemoryJournal()
    faults = TwinFaults(hang_after_apply={"isolate_host"})
    twin = InMemoryEdr(environment(), events(), journal, faults)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(twin.isolate_host("PRD01"), timeout=0.05)
    assert [(c.op, c.target) for c in journal.changes()] == [("isolate_host", "PRD01")]
    assert await twin.is_contained("PRD01") is True
    # A retry finds the state already applied, and answers.
    assert (await twin.isolate_host("PRD01")).applied is False


async def test_hang_after_open_ticket_leaves_one_ticket_for_the_retry() -> None:
    journal = MemoryJournal()
    hanging = InMemoryTicketing(journal, TwinFaults(hang_after_apply={"open_ticket"}))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(hanging.open_ticket("inc-1", "t", "d"), timeout=0.05)
    retry = await InMemoryTicketing(journal).open_ticket("inc-1", "t", "d")
    assert retry.id == "GAR-1" and len(journal.changes()) == 1


async def test_reset_and_revoke_repeat_as_no_ops() -> None:
    journal = MemoryJournal()
    twin = InMemoryIdentity(environment(), journal)
    await twin.reset_credentials(PEDRO)
    await twin.revoke_sessions(PEDRO)
    assert (await twin.reset_credentials("pedro.gustavo")).applied is False
    assert (await twin.revoke_sessions(PEDRO)).applied is False
    assert [c.op for c in journal.changes()] == ["reset_credentials", "revoke_sessions"]


async def test_kill_of_a_pid_never_seen_changes_nothing() -> None:
    journal = MemoryJournal()
    twin = InMemoryEdr(environment(), events(), journal)
    assert await twin.is_process_running("PRD01", 99999) is False
    assert (await twin.kill_process("PRD01", 99999)).applied is False
    assert journal.changes() == []


async def test_backends_share_one_world_between_readers_and_responders() -> None:
    read, respond = memory_backends(environment(), iter(events()))
    await respond.edr.isolate_host("PRD01")
    await respond.identity.disable_account(PEDRO)
    host = await read.edr.find_host("PRD01")
    account = await read.identity.get_account(PEDRO)
    assert host is not None and host.contained is True
    assert account is not None and account.enabled is False
    assert [e.pid for e in await read.edr.process_events("PRD01")][-1] == RUNDLL_PID
    asset = await respond.inventory.get_asset("prd01.pandalab.com")
    assert asset is not None and asset.id == "PRD01"


async def test_backends_in_two_processes_sharing_a_file_journal_act_as_one_vendor(
    tmp_path: Path,
) -> None:
    path = tmp_path / "incident.jsonl"
    _, first = memory_backends(environment(), events(), journal=FileJournal(path))
    _, second = memory_backends(environment(), events(), journal=FileJournal(path))
    ticket = await first.ticketing.open_ticket("inc-1", "t", "d")
    await first.edr.isolate_host("PRD01")
    await first.firewall.block_ip("203.0.113.7")

    assert (await second.ticketing.open_ticket("inc-1", "t", "d")).id == ticket.id
    assert (await second.edr.isolate_host("PRD01")).applied is False
    assert await second.firewall.list_blocked() == ["203.0.113.7"]
    await second.ticketing.close_ticket(ticket.id, "done")
    found = await first.ticketing.find_ticket("inc-1")
    assert found is not None and found.state.value == "closed"


async def test_fail_first_is_counted_across_the_twins_of_a_process() -> None:
    faults = TwinFaults(fail_first={"block_ip": 1})
    _, first = memory_backends(environment(), [], faults=faults)
    _, second = memory_backends(environment(), [], faults=faults)
    with pytest.raises(Exception, match="injected"):
        await first.firewall.block_ip("203.0.113.7")
    assert (await second.firewall.block_ip("203.0.113.7")).applied is True


def test_faults_parse_from_an_env_string() -> None:
    faults = TwinFaults.from_env_string(
        " hang_after_apply=isolate_host,open_ticket ; fail_first=block_ip:2,kill_process"
    )
    assert faults.hang_after_apply == {"isolate_host", "open_ticket"}
    assert faults.fail_first == {"block_ip": 2, "kill_process": 1}
    assert TwinFaults.from_env_string("") == TwinFaults()


@pytest.mark.parametrize(
    "spec", ["hang_after_apply", "fail_first=block_ip:two", "explode=isolate_host", "fail_first="]
)
def test_faults_reject_malformed_env_strings(spec: str) -> None:
    with pytest.raises(ValueError, match="twin faults"):
        TwinFaults.from_env_string(spec)


async def test_twins_sharing_a_journal_fold_each_others_tickets_as_they_grow() -> None:
    """Each twin folds only what was appended since it last looked, and still sees every change
    another twin made in between: ids, comments and closes agree, whoever made them."""
    journal = MemoryJournal()
    first, second = InMemoryTicketing(journal), InMemoryTicketing(journal)
    opened = [await first.open_ticket(f"inc-{n}", f"t{n}", "d") for n in range(1, 51)]
    assert [t.id for t in opened] == [f"GAR-{n}" for n in range(1, 51)]
    again = await second.open_ticket("inc-7", "another title", "d")
    assert again == opened[6]
    await second.comment("GAR-7", "seen by the second")
    await first.comment("GAR-7", "seen by the first")
    closed = await second.close_ticket("GAR-7", "done")
    assert closed.comments == ["seen by the second", "seen by the first", "done"]
    assert await first.find_ticket("inc-7") == closed
    assert (await first.open_ticket("inc-51", "t51", "d")).id == "GAR-51"
    assert (await second.find_ticket("inc-51")) is not None
    assert await first.find_ticket("inc-404") is None
