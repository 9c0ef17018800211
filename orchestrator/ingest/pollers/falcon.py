"""CrowdStrike Falcon's Alerts API v2, walked in `updated_timestamp` order: a query for composite
ids (`GET /alerts/queries/alerts/v2`, FQL over the window, `sort=updated_timestamp.asc`), then
their entities (`POST /alerts/entities/alerts/v2`). Pages after the first follow the query's
`after` token, a search-after position that does not shift when an alert already read is updated
meanwhile (offsets would). The entities come back in any order: they are put back in the query's.

Auth is the adapter's: OAuth2 client credentials (`GARRISON_CROWDSTRIKE_*`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from orchestrator.ingest.normalised import Shape
from orchestrator.ingest.pollers.base import FeedRecord, RequestBudget, Window
from orchestrator.ingest.pollers.cursor import query_bound
from orchestrator.ingest.pollers.models import PollSource
from tools.edr.crowdstrike import CrowdStrikeSettings
from tools.edr.oauth import ClientCredentialsAuth
from tools.errors import PermanentToolError
from tools.http import RateBudget, raise_for_status, send, tls_context

VENDOR = "crowdstrike"
QUERY = "/alerts/queries/alerts/v2"
ENTITIES = "/alerts/entities/alerts/v2"
MAX_IDS = 1000  # entities per request


class FalconAlertFeed:
    source = PollSource.FALCON
    shape = Shape.FALCON

    def __init__(
        self, settings: CrowdStrikeSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        base = settings.base_url.rstrip("/")
        auth = ClientCredentialsAuth(
            f"{base}/oauth2/token", settings.client_id, settings.client_secret, VENDOR
        )
        self._budget = RateBudget(settings.rate_per_minute)
        self._client = httpx.AsyncClient(
            verify=tls_context(),
            base_url=base,
            auth=auth,
            transport=transport,
            timeout=httpx.Timeout(settings.timeout_s),
            headers={"Accept": "application/json"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def pages(
        self, window: Window, page_size: int, budget: RequestBudget
    ) -> AsyncIterator[list[FeedRecord]]:
        fql = f"updated_timestamp:<='{window.until}'"
        if window.since.at is not None:
            fql = f"updated_timestamp:>='{query_bound(window.since.at)}'+{fql}"
        params: dict[str, Any] = {
            "filter": fql,
            "sort": "updated_timestamp.asc",
            "limit": min(page_size, MAX_IDS),
        }
        while budget.take(2):  # the ids, then their entities
            body = await self._get(params)
            ids = [i for i in body.get("resources") or [] if isinstance(i, str)]
            if not ids:
                return
            yield await self._entities(ids)
            after = ((body.get("meta") or {}).get("pagination") or {}).get("after")
            if not after or len(ids) < params["limit"]:
                return
            params = {**params, "after": after}
            params.pop("offset", None)

    async def _get(self, params: dict[str, Any]) -> dict[str, Any]:
        response = await send(
            self._client, "GET", QUERY, vendor=VENDOR, budget=self._budget, params=params
        )
        return _json_object(response)

    async def _entities(self, ids: list[str]) -> list[FeedRecord]:
        response = await send(
            self._client,
            "POST",
            ENTITIES,
            vendor=VENDOR,
            budget=self._budget,
            json={"composite_ids": ids},
            check=False,
        )
        if response.status_code == 404:
            return []  # every one of them was deleted since the query
        raise_for_status(response, VENDOR)
        found: dict[str, dict[str, Any]] = {}
        for entity in _json_object(response).get("resources") or []:
            if isinstance(entity, dict) and isinstance(entity.get("composite_id"), str):
                found[entity["composite_id"]] = entity
        # An id the query named but the entities call did not return was deleted meanwhile.
        return [_record(found[i]) for i in ids if i in found]


def _record(entity: dict[str, Any]) -> FeedRecord:
    updated = entity.get("updated_timestamp")
    return FeedRecord(
        body=entity,
        id=str(entity["composite_id"]),
        at=updated if isinstance(updated, str) else None,
    )


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as error:
        raise PermanentToolError(f"{VENDOR}: {response.request.url.path}: not JSON") from error
    if not isinstance(body, dict):
        raise PermanentToolError(f"{VENDOR}: {response.request.url.path}: not a JSON object")
    return body
