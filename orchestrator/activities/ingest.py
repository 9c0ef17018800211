"""The pull-mode activity: `ingest.poll` runs one bounded poll of one source (see
`orchestrator/ingest/pollers/base.py`) with the feeds, sink and dead-letter callback the
composition root injected. Vendor errors become retry decisions in one place (`vendor_call`):
a 429 retries after its Retry-After; the sink's `Backpressure` retries after its delay."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from orchestrator.activities.errors import vendor_call
from orchestrator.ingest.normalised import Normalised, Shape
from orchestrator.ingest.pollers.base import AlertFeed, DeadLetter, Normaliser, poll_once
from orchestrator.ingest.pollers.falcon import FalconAlertFeed
from orchestrator.ingest.pollers.graph import GraphAlertFeed
from orchestrator.ingest.pollers.models import PollInput, PollResult, PollSource
from orchestrator.ingest.pollers.schedules import configured_sources
from orchestrator.ingest.sink import AlertSink, Backpressure
from orchestrator.observability.logs import protected
from orchestrator.settings import PollSettings
from orchestrator.store import poll_cursors
from orchestrator.store.repository import Store
from tools.edr.crowdstrike import CrowdStrikeSettings
from tools.identity.entra import EntraSettings
from tools.vendor_settings import load_vendor_settings


def normalise_shape(record: Mapping[str, Any], shape: Shape) -> Normalised:
    """Ingestion's own mapping (imported here, not at module load: the shapes are large)."""
    from orchestrator.ingest.shapes import normalise

    return normalise(record, shape)


class PollActivities:
    def __init__(
        self,
        store: Store,
        sink: AlertSink,
        dead_letter: DeadLetter,
        feeds: Mapping[PollSource, AlertFeed],
        *,
        normalise: Normaliser = normalise_shape,
    ) -> None:
        self.cursors = poll_cursors.StoreCursors(store)
        self.sink = sink
        self.dead_letter = dead_letter
        self.feeds = dict(feeds)
        self.normalise = normalise

    @activity.defn(name="ingest.poll")
    async def poll(self, request: PollInput) -> PollResult:
        feed = self.feeds.get(request.source)
        if feed is None:
            raise ApplicationError(
                f"{request.source.value}: not configured on this worker",
                type="PermanentToolError",
                non_retryable=True,
            )
        try:
            return await vendor_call(
                poll_once(
                    feed,
                    request,
                    cursors=self.cursors,
                    sink=self.sink,
                    dead_letter=self.dead_letter,
                    normalise=self.normalise,
                    now=datetime.now(UTC),
                )
            )
        except Backpressure as error:
            raise ApplicationError(
                f"sink: {error.reason}",
                type="Backpressure",
                next_retry_delay=timedelta(seconds=error.retry_after_s),
            ) from error

    async def aclose(self) -> None:
        for feed in self.feeds.values():
            await feed.aclose()


def build_poll_feeds(settings: PollSettings) -> dict[PollSource, AlertFeed]:
    """A feed per configured source, from the vendor's settings (`VendorConfigError` names the
    missing variables)."""
    feeds: dict[PollSource, AlertFeed] = {}
    for source in configured_sources(settings):
        match source:
            case PollSource.FALCON:
                feeds[source] = FalconAlertFeed(
                    protected(load_vendor_settings(CrowdStrikeSettings))
                )
            case PollSource.GRAPH:
                feeds[source] = GraphAlertFeed(protected(load_vendor_settings(EntraSettings)))
    return feeds


async def build_poll_activities(
    settings: PollSettings, store: Store, sink: AlertSink, dead_letter: DeadLetter
) -> PollActivities:
    """What the composition root registers on a worker (with `AlertPollWorkflow`); close it with
    `aclose` at shutdown. Creates the `poll_cursors` table if it is missing."""
    await poll_cursors.create_table(store)
    return PollActivities(store, sink, dead_letter, build_poll_feeds(settings))
