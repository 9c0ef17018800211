"""One playbook round's proposals, answered together (issue 17: an approval wait should not
serialise containment).

Before `PATCH`, a round's proposals were handled one after another: a step with three risky
actions cost three approval round trips, and a low-risk action proposed after a risky one waited
for the risky one's decision. Since, each proposal is handled in its own task of the workflow's
deterministic event loop: those needing approval are requested together and decided
independently, and each executes as soon as it is allowed. Isolations stay one after another (one
task of their own beside the others, no lock), so that the per-incident cap
(`max_isolations_per_incident`) counts executed isolations exactly as before. The outcomes come
back in the proposals' order, as the playbook expects.

`BusyTime` keeps the incident's approval-wait and execution seconds as the time during which at
least one request was waiting (one action executing), so overlapping waits are not counted twice
and the time-to-contain split (agent, approval wait, execution) still adds up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from tools.actions import ActionKind

PATCH = "parallel-approvals-v1"
_P = TypeVar("_P")
_O = TypeVar("_O")


async def answer_round(
    proposals: Sequence[_P],
    kind_of: Callable[[_P], ActionKind],
    answer: Callable[[_P], Awaitable[_O]],
) -> list[_O]:
    """Every proposal's answer, in the proposals' order: together since `PATCH`, one after
    another in histories recorded before it (and for a single proposal, where both agree)."""
    if len(proposals) < 2 or not workflow.patched(PATCH):
        return [await answer(p) for p in proposals]
    isolations = [n for n, p in enumerate(proposals) if kind_of(p) is ActionKind.ISOLATE_HOST]
    others = [n for n in range(len(proposals)) if n not in isolations]

    async def one_after_another() -> list[_O]:  # isolations decided and executed in order
        return [await answer(proposals[n]) for n in isolations]

    async def together() -> list[_O]:
        return list(await asyncio.gather(*(answer(proposals[n]) for n in others)))

    isolated, rest = await asyncio.gather(one_after_another(), together())
    by_index = dict(zip(isolations, isolated, strict=True)) | dict(zip(others, rest, strict=True))
    return [by_index[n] for n in range(len(proposals))]


class BusyTime:
    """Seconds during which at least one of possibly overlapping spans was open."""

    def __init__(self, total_s: float = 0.0) -> None:
        self.total_s = total_s  # closed spans only
        self._open = 0
        self._since: datetime | None = None

    @property
    def busy(self) -> bool:
        return self._open > 0

    def begin(self, now: datetime) -> None:
        if self._open == 0:
            self._since = now
        self._open += 1

    def end(self, now: datetime) -> None:
        self._open -= 1
        if self._open == 0 and self._since is not None:
            self.total_s += (now - self._since).total_seconds()
            self._since = None

    def seconds(self, now: datetime) -> float:
        """The total at `now`, the span still open included."""
        if self._since is None:
            return self.total_s
        return self.total_s + (now - self._since).total_seconds()
