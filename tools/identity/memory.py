"""The in-memory identity twin: the environment's identities are the directory, and account
state (disabled, credentials reset, sessions revoked) is kept in a `StateJournal`.

A credential reset is modelled as a "must change password" flag and a revocation as "no live
sessions", so both are idempotent states the twin can report, like every other change.
"""

from __future__ import annotations

from tools.errors import NotFoundError
from tools.inventory.memory import find_identity
from tools.journal import StateJournal, TwinFaults, TwinRuntime
from tools.models import Environment
from tools.results import AccountInfo, Change

_DISABLED = ("disable_account", "enable_account")


class InMemoryIdentity:
    """Implements `IdentityReader` and `IdentityResponder`."""

    def __init__(
        self,
        environment: Environment | None = None,
        journal: StateJournal | None = None,
        faults: TwinFaults | None = None,
    ) -> None:
        self._environment = environment or Environment()
        self._runtime = TwinRuntime(journal, faults)

    async def get_account(self, identity: str) -> AccountInfo | None:
        self._runtime.call("get_account")
        found = find_identity(self._environment, identity)
        if found is None:
            return None
        return AccountInfo(
            id=found.id,
            enabled=not self._runtime.latest(found.id, *_DISABLED),
            privileged=found.privileged,
        )

    async def is_enabled(self, identity: str) -> bool:
        self._runtime.call("is_enabled")
        return not self._runtime.latest(self._id(identity), *_DISABLED)

    async def disable_account(self, identity: str) -> Change:
        return await self._runtime.flip(
            "disable_account", self._id(identity), *_DISABLED, "disabled"
        )

    async def enable_account(self, identity: str) -> Change:
        return await self._runtime.flip("enable_account", self._id(identity), *_DISABLED, "enabled")

    async def reset_credentials(self, identity: str) -> Change:
        return await self._once("reset_credentials", identity, "reset (pending password change)")

    async def revoke_sessions(self, identity: str) -> Change:
        return await self._once("revoke_sessions", identity, "revoked (no live sessions)")

    async def _once(self, op: str, identity: str, done: str) -> Change:
        target = self._id(identity)
        self._runtime.call(op)
        if self._runtime.changes_of(target, op):
            return Change(applied=False, detail=f"already {done}")
        await self._runtime.record(op, target)
        return Change(applied=True, detail=done)

    def _id(self, identity: str) -> str:
        found = find_identity(self._environment, identity)
        if found is None:
            raise NotFoundError(f"no account {identity!r} in the directory")
        return found.id
