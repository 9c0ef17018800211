"""Microsoft Graph security alerts_v2 (Defender XDR), walked in `lastUpdateDateTime` order.

Graph's `@odata.nextLink` pages by `$skip`: when an alert already read is updated between two
pages it moves to the end, the later pages shift, and one alert would be passed over. So each
page is a fresh query from the position reached (`lastUpdateDateTime ge <instant>`), and the
alerts already read at that instant are dropped; `@odata.nextLink` is followed only when a whole
page held nothing new (more alerts share one instant than a page holds).

Microsoft documents `$filter`, `$top`, `$skip` and `$count` for alerts_v2 but not `$orderby`; the
poll sends `$orderby=lastUpdateDateTime asc` and refuses a page that is out of that order
(`OutOfOrder`) rather than skip alerts. Auth is the Graph app registration of Entra ID
(`GARRISON_ENTRA_*`, permission SecurityAlert.Read.All).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from orchestrator.ingest.normalised import Shape
from orchestrator.ingest.pollers.base import FeedRecord, RequestBudget, Window
from orchestrator.ingest.pollers.cursor import Cursor, instant, query_bound
from orchestrator.ingest.pollers.models import PollSource
from tools.errors import PermanentToolError
from tools.http import RateBudget, send, tls_context
from tools.identity.entra import EntraAuth, EntraSettings

VENDOR = "graph"
ALERTS = "/v1.0/security/alerts_v2"
MAX_TOP = 2000


class GraphAlertFeed:
    source = PollSource.GRAPH
    shape = Shape.GRAPH

    def __init__(
        self, settings: EntraSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._base = settings.base_url.rstrip("/")
        self._budget = RateBudget(settings.rate_per_minute)
        self._client = httpx.AsyncClient(
            verify=tls_context(),
            auth=EntraAuth(settings),
            transport=transport,
            timeout=httpx.Timeout(settings.timeout_s),
            headers={"Accept": "application/json"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def pages(
        self, window: Window, page_size: int, budget: RequestBudget
    ) -> AsyncIterator[list[FeedRecord]]:
        top = min(page_size, MAX_TOP)
        reached, next_link = window.since, None
        while budget.take():
            url = next_link or self._query(reached, window.until, top)
            body = await self._get(url)
            records = [_record(v) for v in body.get("value") or [] if isinstance(v, dict)]
            if not records:
                return
            yield records
            before = reached
            for record in records:
                if _placed_in(record, window.until):
                    assert record.id is not None and record.at is not None
                    if not reached.covers(record.at, record.id):
                        reached = reached.advance(record.at, record.id)
            link = body.get("@odata.nextLink")
            if not isinstance(link, str):
                return  # the window is read
            # Nothing new on a full page: step over the run of alerts sharing one instant.
            next_link = link if reached == before else None

    def _query(self, reached: Cursor, until: str, top: int) -> str:
        clauses = [f"lastUpdateDateTime le {until}"]
        if reached.at is not None:
            clauses.insert(0, f"lastUpdateDateTime ge {query_bound(reached.at)}")
        params = {
            "$filter": " and ".join(clauses),
            "$orderby": "lastUpdateDateTime asc",
            "$top": str(top),
        }
        return str(httpx.URL(self._base + ALERTS, params=params))

    async def _get(self, url: str) -> dict[str, Any]:
        response = await send(self._client, "GET", url, vendor=VENDOR, budget=self._budget)
        try:
            body = response.json()
        except ValueError as error:
            raise PermanentToolError(f"{VENDOR}: {ALERTS}: not JSON") from error
        if not isinstance(body, dict):
            raise PermanentToolError(f"{VENDOR}: {ALERTS}: not a JSON object")
        return body


def _record(alert: dict[str, Any]) -> FeedRecord:
    alert_id, updated = alert.get("id"), alert.get("lastUpdateDateTime")
    return FeedRecord(
        body=alert,
        id=alert_id if isinstance(alert_id, str) and alert_id else None,
        at=updated if isinstance(updated, str) else None,
    )


def _placed_in(record: FeedRecord, until: str) -> bool:
    if record.id is None or record.at is None:
        return False
    try:
        return instant(record.at) <= instant(until)
    except ValueError:
        return False
