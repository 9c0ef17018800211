"""Retrying a dead letter (`garrison alerts dead-letter retry`): normalise what was kept again (the
normaliser may have been fixed, or the operator names the shape) and hand it to ingestion. The
letter stays open, with the new reason, if it still cannot be accepted."""

from __future__ import annotations

import json
from dataclasses import dataclass

from orchestrator.ingest.normalised import NormaliseError, Shape
from orchestrator.ingest.sink import AlertSink, Backpressure
from orchestrator.store.intake import DeadLetter
from orchestrator.store.repository import Store


@dataclass(frozen=True)
class RetryOutcome:
    letter_id: int
    accepted: bool
    detail: str  # the alert ids it became, or why it is still refused


async def retry_dead_letter(
    store: Store, sink: AlertSink, letter: DeadLetter, shape: Shape | None = None
) -> RetryOutcome:
    from orchestrator.ingest.shapes import normalise, split_batch

    if letter.status != "open":
        return RetryOutcome(letter.id, False, f"already {letter.status} as {letter.alert_id}")
    chosen = shape or (Shape(letter.shape) if letter.shape else None)
    try:
        records = split_batch(json.loads(letter.body))
        items = [normalise(record, chosen) for record in records]
    except (ValueError, NormaliseError) as error:  # JSONDecodeError is a ValueError
        reason = str(error) if isinstance(error, NormaliseError) else f"not JSON: {error}"
        await store.intake.settle_dead_letter(letter.id, accepted_as=None, reason=reason)
        return RetryOutcome(letter.id, False, reason)
    if not items:
        await store.intake.settle_dead_letter(letter.id, accepted_as=None, reason="no alerts")
        return RetryOutcome(letter.id, False, "no alerts")
    try:
        accepted = await sink.accept(items)
    except Backpressure as busy:
        return RetryOutcome(letter.id, False, f"ingestion is behind: {busy.reason}")
    await store.intake.settle_dead_letter(
        letter.id, accepted_as=",".join(accepted.alert_ids)[:1000]
    )
    return RetryOutcome(letter.id, True, ", ".join(accepted.alert_ids))
