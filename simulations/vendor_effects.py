"""What an emulated run did to each incident's vendors, read from the emulators' ledgers after the
incident ended: the answers they gave (the 503s of a fault among them), the changes they applied,
any change applied twice, and the incident's ticket as the ticketing vendor shows it.

This is what `--fault` runs are judged on beside the scorecard: containment is the executed
actions (compared with an unfaulted run by `--baseline`), bookkeeping is the ticket (found once,
closed, no comment twice).
"""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, ConfigDict, Field

from tools.emulators.base import EmulatorState
from tools.results import Ticket


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VendorEffects(_Model):
    vendor: str
    requests: int = Field(description="requests the vendor received")
    answers: dict[str, int] = Field(
        description="how many of each HTTP status it answered; `dropped`: the connection dropped "
        "after a change (reset_after_apply), `unanswered`: no answer (hang_after_apply)"
    )
    changes: dict[str, int] = Field(description="effective transitions, by the vendor's op name")
    repeated_changes: int = Field(
        description="transitions with the op and target of an earlier one: a second ticket, a "
        "comment posted twice (a device contained again after a release counts too)"
    )


class TicketCheck(_Model):
    found: bool
    state: str | None = None
    comments: int = 0
    repeated_comments: int = Field(
        default=0, description="comments with the text of an earlier one"
    )
    error: str | None = Field(default=None, description="why the ticket could not be read")


def effects_of(vendor: str, state: EmulatorState) -> VendorEffects:
    answers = Counter(entry.answer for entry in state.ledger)
    seen = Counter((t.op, t.target) for t in state.transitions)
    return VendorEffects(
        vendor=vendor,
        requests=state.arrivals,
        answers=dict(sorted(answers.items())),
        changes=dict(sorted(Counter(t.op for t in state.transitions).items())),
        repeated_changes=sum(count - 1 for count in seen.values()),
    )


def ticket_check(ticket: Ticket | None) -> TicketCheck:
    if ticket is None:
        return TicketCheck(found=False)
    texts = Counter(ticket.comments)
    return TicketCheck(
        found=True,
        state=ticket.state.value,
        comments=len(ticket.comments),
        repeated_comments=sum(count - 1 for count in texts.values()),
    )
