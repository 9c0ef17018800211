"""Where a source was read up to: the last update instant seen (the vendor's own text, to its
full precision) and the ids of the alerts seen at exactly that instant.

A record is new unless it is older than the instant, or at the instant with an id already seen.
Queries ask for `>=` the instant, so alerts sharing it with those read (cut at a page or poll
boundary) are read next time, and the ones already read are dropped here: nothing is skipped,
nothing repeated.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

_INSTANT = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")

Instant = tuple[datetime, int]


def instant(text: str) -> Instant:
    """(whole second, nanoseconds) of an ISO-8601 instant with any number of fractional digits:
    exact at the vendors' precision (Falcon writes nanoseconds, Graph 100 ns ticks), and sortable.
    Raises ValueError for anything else."""
    match = _INSTANT.match(text.strip())
    if match is None:
        raise ValueError(f"not an ISO-8601 instant: {text[:40]!r}")
    whole, fraction, zone = match.groups()
    second = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone)).astimezone(UTC)
    return second, int(((fraction or "") + "0" * 9)[:9])


def query_bound(text: str) -> str:
    """The instant rounded down to milliseconds, as both vendors' filters take it: a lower bound
    that never passes over the instant itself."""
    second, nanos = instant(text)
    return f"{second.strftime('%Y-%m-%dT%H:%M:%S')}.{nanos // 1_000_000:03d}Z"


def iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Cursor(BaseModel):
    """`at` None: from the beginning of the vendor's retention."""

    model_config = ConfigDict(frozen=True)

    at: str | None = None
    ids: tuple[str, ...] = ()

    def covers(self, at: str, record_id: str) -> bool:
        """Whether a record updated `at` was already read."""
        if self.at is None:
            return False
        mine, theirs = instant(self.at), instant(at)
        return theirs < mine or (theirs == mine and record_id in self.ids)

    def advance(self, at: str, record_id: str) -> Cursor:
        """The cursor after reading a record updated `at` (never moves backwards)."""
        if self.at is None or instant(at) > instant(self.at):
            return Cursor(at=at, ids=(record_id,))
        if instant(at) == instant(self.at) and record_id not in self.ids:
            return Cursor(at=self.at, ids=(*self.ids, record_id))
        return self
