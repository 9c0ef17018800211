"""Timeouts and retries of activities, per kind of activity: what an activity waits on decides
them (`GARRISON_ACTIVITIES__*`), carried in every incident's workflow input."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from orchestrator.models.base import FrozenModel


class ActivityKind(StrEnum):
    """What an activity waits on, which decides its timeouts and retries (`GARRISON_ACTIVITIES__*`;
    `orchestrator/workflows/calls.py` maps each activity name to its kind)."""

    VENDOR_READS = "vendor_reads"  # telemetry and state reads at a vendor
    VENDOR_ACTIONS = "vendor_actions"  # containment and its rollback at a vendor
    TICKETS = "tickets"  # the ticketing vendor
    AGENTS = "agents"  # whole LangGraph graphs, with their vendor reads
    STORE = "store"  # Garrison's own database only


class KindTimeouts(FrozenModel):
    """One kind's timeouts and retry policy. `heartbeat_s`: how long a silent activity (its worker
    died) waits before it is retried; `max_attempts` 0: without limit."""

    start_to_close_s: float
    heartbeat_s: float | None = None
    initial_retry_s: float = 1.0
    max_retry_s: float | None = None  # None: Temporal's default, 100 x the initial interval
    max_attempts: int = 8


class ActivityProfile(FrozenModel):
    """Timeouts and retries of activities: settings, never constants in workflow code.

    `kinds` carries the settings per activity kind; a kind it lacks (every kind, in the inputs of
    workflows started before it existed) falls back to the flat fields below, which are exactly
    what those workflows ran with."""

    start_to_close_s: float = 120.0
    agent_start_to_close_s: float = 300.0
    heartbeat_s: float | None = None
    initial_retry_s: float = 1.0
    max_attempts: int = 8
    # How long a finished incident waits for its last messages to humans to be delivered (a
    # Slack outage), and for its ticket to catch up (a ticketing outage); delivery itself retries
    # without limit until then.
    notify_drain_s: float = 3600.0
    # Ticket work (the ticket, comments, the close note): attempts before the vendor counts as
    # unavailable (humans are told, then delivery goes on without limit), and the longest wait
    # between two attempts of an outbox (tickets and messages to humans).
    ticket_probe_attempts: int = Field(default=3, ge=1)
    outbox_retry_max_s: float = Field(default=60.0, gt=0)
    kinds: dict[ActivityKind, KindTimeouts] = Field(default_factory=dict)

    def timeouts(self, kind: ActivityKind | None, *, agent: bool = False) -> KindTimeouts:
        """The timeouts of `kind` (None: an activity no kind is known for), or the flat ones."""
        found = self.kinds.get(kind) if kind is not None else None
        if found is not None:
            return found
        return KindTimeouts(
            start_to_close_s=self.agent_start_to_close_s if agent else self.start_to_close_s,
            heartbeat_s=self.heartbeat_s,
            initial_retry_s=self.initial_retry_s,
            max_attempts=self.max_attempts,
        )
