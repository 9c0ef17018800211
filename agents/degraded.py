"""Degraded evidence: what an agent could not read within its retry budget, said the same way on
the triage result, the investigation report, the proposals' evidence, the approval card and the
ticket. An incident with gaps is never contained without a human (`orchestrator/policy`)."""

from __future__ import annotations

from collections.abc import Iterable

from agents.seam import truncate

MAX_GAPS = 10
# The verdict confidence the risk policy sees on degraded evidence. With the packaged policy's
# low_confidence weight (50) it adds 45 points, which alone takes the cheapest containment
# (block_ip of one address, 10) over the threshold (50); `TargetFacts.degraded` makes that hold
# whatever a deployment's weights are.
DEGRADED_CONFIDENCE = 0.1
PREFIX = "Evidence degraded: "


def gaps_of(*lists: Iterable[str]) -> list[str]:
    """The gaps of several reads, each once, in order, at most MAX_GAPS."""
    seen: set[str] = set()
    found: list[str] = []
    for gaps in lists:
        for gap in gaps:
            if gap not in seen:
                seen.add(gap)
                found.append(truncate(gap, 300))
    return found[:MAX_GAPS]


def degraded_line(gaps: Iterable[str]) -> str:
    """`Evidence degraded: <what could not be read>`, one line."""
    return truncate(PREFIX + "; ".join(gaps), 1_000)
