"""Inputs and results of a poll: what the schedule starts `AlertPollWorkflow` with, and what the
`ingest.poll` activity reports. Settings, never secrets: credentials stay in the worker."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class PollSource(StrEnum):
    """A vendor alert API Garrison polls."""

    FALCON = "falcon"  # CrowdStrike Falcon Alerts API v2
    GRAPH = "graph"  # Microsoft Graph security alerts_v2 (Defender XDR)


class PollInput(BaseModel):
    """One poll of one source, bounded by pages and requests."""

    model_config = ConfigDict(frozen=True)

    source: PollSource
    page_size: int = Field(default=500, ge=1, le=1000)
    max_pages: int = Field(default=10, ge=1)
    max_requests: int = Field(default=50, ge=1)
    # The first poll of a source reads alerts updated this long ago; 0 reads them all.
    initial_lookback_s: int = Field(default=86_400, ge=0)
    # Only alerts last updated at least this long ago are read: the vendor's index settles and
    # clocks disagree; a later poll reads the rest.
    settle_s: int = Field(default=30, ge=0)
    activity_timeout_s: int = Field(default=300, ge=1)
    max_attempts: int = Field(default=5, ge=1)


class PollResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: PollSource
    pages: int = 0
    requests: int = 0
    fetched: int = 0  # records new to the cursor
    accepted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    cursor: str | None = None  # the instant read up to (the vendor's text), after the poll
    exhausted: bool = False  # stopped by max_pages or max_requests with more to read
