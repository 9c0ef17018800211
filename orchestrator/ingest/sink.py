"""The one door into ingestion, as entry points see it: hand over normalised alerts, get back what
was committed. `pipeline.Ingestor` is the implementation; pollers and the API depend on this."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from orchestrator.ingest.normalised import Normalised


@dataclass(frozen=True)
class Accepted:
    """What a call to `accept` committed: one id per alert given, in order (a duplicate's id is
    the stored alert's), and the incidents they went to."""

    alert_ids: list[str]
    duplicates: int = 0
    incidents: list[str] = field(default_factory=list)


class Backpressure(Exception):
    """The store or Temporal is behind: nothing was accepted; try again after `retry_after_s`."""

    def __init__(self, retry_after_s: int, reason: str) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s
        self.reason = reason


class AlertSink(Protocol):
    async def accept(self, items: Sequence[Normalised], *, scope: str | None = None) -> Accepted:
        """Deduplicate, group, store and commit `items` (in the sink's own scope unless one is
        given); signalling their incidents' workflows follows (it never blocks the caller).
        Raises `Backpressure` when it cannot keep up."""
        ...
