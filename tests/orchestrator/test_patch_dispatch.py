"""Dispatching `patch` and `unpatch`: through an EDR that can patch they apply and read back
(the verification); through one that cannot, a clear refusal that names the fix to apply by hand
(the incident's ticket carries it), never an AttributeError."""

from __future__ import annotations

from typing import cast

import pytest

from orchestrator.activities.dispatch import apply, in_desired_state
from tests.tools.contracts.world import environment, events
from tools.actions import Patch
from tools.edr.base import EdrResponder
from tools.edr.memory import InMemoryEdr
from tools.errors import PermanentToolError, UnsupportedActionError
from tools.firewall.memory import InMemoryFirewall
from tools.identity.memory import InMemoryIdentity
from tools.inventory.memory import InMemoryInventory
from tools.ticketing.memory import InMemoryTicketing
from tools.toolsets import ResponseTools

PATCH = Patch(target="PRD01", cve="CVE-2021-34527", remediation="KB5004945")


def _tools(edr: EdrResponder) -> ResponseTools:
    env = environment()
    return ResponseTools(
        edr=edr,
        firewall=InMemoryFirewall(),
        identity=InMemoryIdentity(env),
        ticketing=InMemoryTicketing(),
        inventory=InMemoryInventory(env),
    )


async def test_patch_applies_verifies_and_its_inverse_reverts() -> None:
    tools = _tools(InMemoryEdr(environment(), events()))
    assert await in_desired_state(tools, PATCH) is False
    assert (await apply(tools, PATCH)).applied is True
    assert await in_desired_state(tools, PATCH) is True
    revert = PATCH.inverse()
    assert revert is not None
    assert await in_desired_state(tools, revert) is False
    assert (await apply(tools, revert)).applied is True
    assert await in_desired_state(tools, revert) is True
    assert await in_desired_state(tools, PATCH) is False


class _ContainmentOnlyEdr:
    """An EDR that isolates but has no patching endpoint."""

    async def is_contained(self, host: str) -> bool:
        return False


async def test_an_edr_without_patching_refuses_with_the_task_for_a_human() -> None:
    tools = _tools(cast(EdrResponder, _ContainmentOnlyEdr()))
    for call in (apply, in_desired_state):
        with pytest.raises(UnsupportedActionError) as refused:
            await call(tools, PATCH)
        assert isinstance(refused.value, PermanentToolError)  # never retried
        assert "KB5004945" in str(refused.value) and "CVE-2021-34527" in str(refused.value)
        assert "ticket" in str(refused.value)
