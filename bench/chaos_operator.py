"""The chaos run's operator (`bench/chaos.py`), who undoes Garrison's containment once its
incidents are done with it: hosts released, accounts enabled, addresses unblocked, with the
project's own vendor adapters against the emulators.

Why: the emulators keep state for the whole run and the replays come back to the same hosts,
accounts and addresses, so without an operator only the first replay of each recording changes
anything at the vendor and every later containment is found already in place; with one, the
containments happen again throughout the run, each under the kills and the faults.

An object is released only when every action of Garrison's on it has ended (none `pending` in the
store's ledger), so that no attempt of an action in flight can see it released between two
attempts. The ledger is read again just before each release: a round's releases take seconds,
and a release decided on the round's first read could land between two attempts of a new
incident's containment of the same host (the first applied, its answer lost to a fault), so
that the retry contains it again and one containment counts as unbacked (one 2-minute run
reported one such containment, which fits this and was not traced further). The read and the
release are still not one atomic step; the window is now the length of one read. Each release is an
`Execution` of the operator's (`OPERATOR`), which backs the transition it causes in
`chaos_figures.attribute`, as Garrison's own executions back theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.chaos_figures import Execution, subject_of
from orchestrator.composition import open_store
from orchestrator.settings import GarrisonSettings
from orchestrator.store.records import ActionStatus
from tools.actions import Action, ActionKind
from tools.errors import ToolError
from tools.models import Environment
from tools.vendors import vendor

OPERATOR = "(operator)"
UNDONE = {  # what Garrison did -> (vendor, the adapter's inverse)
    ActionKind.ISOLATE_HOST: ("crowdstrike", "release_host"),
    ActionKind.DISABLE_ACCOUNT: ("okta", "enable_account"),
    ActionKind.BLOCK_IP: ("panos", "unblock_ip"),
}


class Operator:
    def __init__(
        self, urls: dict[str, str], inventory: Environment, settings: GarrisonSettings, scope: str
    ) -> None:
        self.inventory = inventory
        self.settings = settings
        self.scope = scope
        self.adapters: dict[str, Any] = {}
        for name in {v for v, _ in UNDONE.values()}:
            spec = vendor(name)
            self.adapters[name] = spec.adapter(spec.emulator_settings(urls[name]), inventory)
        self.releases: list[Execution] = []  # the changes it made, as executions
        self.failures: list[str] = []

    async def run(self, every_s: float) -> None:
        """Release what is releasable every `every_s` until cancelled."""
        try:
            while True:
                await asyncio.sleep(every_s)
                for action in await self._releasable():
                    if action in await self._releasable():  # still: see the module docstring
                        await self._undo(action)
        finally:
            for adapter in self.adapters.values():
                with contextlib.suppress(Exception):
                    await adapter.aclose()

    async def _releasable(self) -> list[Action]:
        """Objects Garrison contained whose every action has ended."""
        store = await open_store(self.settings)
        try:
            incidents = [
                i.id
                for i in await store.list_incidents(limit=10_000_000)
                if i.id.startswith(f"{self.scope}-")
            ]
            records = [a for i in incidents for a in await store.actions_for(i)]
        finally:
            await store.close()
        busy = {(a.kind, a.target.lower()) for a in records if a.status is ActionStatus.PENDING}
        done = {
            (a.kind, a.target.lower()): a.action
            for a in records
            if a.kind in UNDONE and a.status is ActionStatus.SUCCEEDED
        }
        return [action for key, action in done.items() if key not in busy]

    async def _undo(self, action: Action) -> None:
        name, method = UNDONE[action.kind]
        call: Callable[[str], Awaitable[Any]] = getattr(self.adapters[name], method)
        at = datetime.now(UTC)
        inverse = action.inverse()
        try:
            applied = (await call(action.target)).applied
        except (ToolError, httpx.HTTPError) as error:  # a vendor fault: the next round
            self.failures.append(f"{method} {action.target}: {type(error).__name__}")
            applied = True  # it may have landed: an execution left unused flags nothing
        if applied and inverse is not None:
            self.releases.append(
                Execution(
                    OPERATOR, inverse.kind, inverse.target, subject_of(inverse, self.inventory), at
                )
            )
