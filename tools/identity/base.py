"""The identity capability: account reads for agents, account changes for actions."""

from __future__ import annotations

from typing import Protocol

from tools.results import AccountInfo, Change


class IdentityReader(Protocol):
    async def get_account(self, identity: str) -> AccountInfo | None: ...


class IdentityResponder(Protocol):
    async def is_enabled(self, identity: str) -> bool: ...

    async def disable_account(self, identity: str) -> Change: ...

    async def enable_account(self, identity: str) -> Change: ...

    async def reset_credentials(self, identity: str) -> Change: ...

    async def revoke_sessions(self, identity: str) -> Change: ...
