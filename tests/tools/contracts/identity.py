"""The identity contract: every `IdentityReader`+`IdentityResponder` implementation passes these."""

from __future__ import annotations

from typing import Protocol

import pytest

from tests.tools.contracts.world import ADMIN, PEDRO, Factory, Scenario
from tools.errors import NotFoundError, TransientToolError
from tools.identity.base import IdentityReader, IdentityResponder
from tools.journal import TwinFaults


class Directory(IdentityReader, IdentityResponder, Protocol): ...


IdentityFactory = Factory[Directory]


async def reads_accounts_with_or_without_domain(make: IdentityFactory) -> None:
    async with make(Scenario()) as h:
        for name in (
            PEDRO,
            "PANDALAB\\Pedro.Gustavo",
            "pedro.gustavo",
            "pedro.gustavo@pandalab.com",
        ):
            account = await h.tool.get_account(name)
            assert account is not None and account.id == PEDRO
            assert account.enabled is True and account.privileged is False
        admin = await h.tool.get_account(ADMIN)
        assert admin is not None and admin.privileged is True
        assert await h.tool.get_account("pandalab\\nobody") is None
        assert await h.tool.get_account("otherdomain\\pedro.gustavo") is None


async def disables_and_enables_idempotently(make: IdentityFactory) -> None:
    async with make(Scenario()) as h:
        assert (await h.tool.disable_account("pedro.gustavo")).applied is True
        assert await h.tool.is_enabled(PEDRO) is False
        account = await h.tool.get_account(PEDRO)
        assert account is not None and account.enabled is False
        assert (await h.tool.disable_account(PEDRO)).applied is False
        assert h.state_changes() == 1
        assert (await h.tool.enable_account(PEDRO)).applied is True
        assert await h.tool.is_enabled(PEDRO) is True
        assert (await h.tool.enable_account(PEDRO)).applied is False
        assert h.state_changes() == 2


async def enabling_an_enabled_account_changes_nothing(make: IdentityFactory) -> None:
    async with make(Scenario()) as h:
        assert (await h.tool.enable_account(PEDRO)).applied is False
        assert h.state_changes() == 0


async def resets_credentials_and_revokes_sessions(make: IdentityFactory) -> None:
    async with make(Scenario()) as h:
        assert (await h.tool.reset_credentials(PEDRO)).applied is True
        assert (await h.tool.revoke_sessions(PEDRO)).applied is True
        assert h.state_changes() == 2
        # Neither disables the account, and repeating them is harmless.
        await h.tool.reset_credentials(PEDRO)
        await h.tool.revoke_sessions(PEDRO)
        assert await h.tool.is_enabled(PEDRO) is True


async def unknown_accounts_are_not_found(make: IdentityFactory) -> None:
    async with make(Scenario()) as h:
        for act in (
            h.tool.disable_account,
            h.tool.enable_account,
            h.tool.reset_credentials,
            h.tool.revoke_sessions,
            h.tool.is_enabled,
        ):
            with pytest.raises(NotFoundError):
                await act("pandalab\\nobody")
        assert h.state_changes() == 0


async def transient_faults_fail_the_first_calls_then_apply(make: IdentityFactory) -> None:
    async with make(Scenario(faults=TwinFaults(fail_first={"disable_account": 1}))) as h:
        with pytest.raises(TransientToolError):
            await h.tool.disable_account(PEDRO)
        assert await h.tool.is_enabled(PEDRO) is True
        assert (await h.tool.disable_account(PEDRO)).applied is True
        assert h.state_changes() == 1


CONTRACTS = (
    reads_accounts_with_or_without_domain,
    disables_and_enables_idempotently,
    enabling_an_enabled_account_changes_nothing,
    resets_credentials_and_revokes_sessions,
    unknown_accounts_are_not_found,
    transient_faults_fail_the_first_calls_then_apply,
)
