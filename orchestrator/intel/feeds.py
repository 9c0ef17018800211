"""`garrison intel pull`: read the partners' feeds of the intelligence file into the store's
shared indicators, which triage then consults (`tools/intel/shared.py`).

A TAXII 2.1 feed is read with the OASIS TC's client (`taxii2-client`, synchronous on `requests`,
so run in a worker thread): the API root's collection named by id, alias or title, its objects
page by page (`next`), from the `X-TAXII-Date-Added-Last` the previous pull reached
(`added_after`). A MISP feed (MISP's feed format: `manifest.json` naming each event by uuid with
its timestamp, and one `<uuid>.json` per event) is read over httpx: only events whose timestamp
changed since the last pull. How far each feed was read is kept in the store (`intel_feeds`),
after its indicators are: a pull cut short reads the rest next time, and reads nothing twice
that it kept. One failing feed is reported and the others are still read.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import requests
from requests.auth import AuthBase
from taxii2client.exceptions import TAXIIServiceException
from taxii2client.v21 import ApiRoot, as_pages

from orchestrator.intel.config import Feed, IntelConfig, MispFeed, TaxiiFeed
from orchestrator.intel.indicators import from_misp_event, from_stix
from orchestrator.store.repository import Store

PAGE = 500
MAX_OBJECTS = 50_000  # per TAXII feed and pull
MAX_EVENTS = 1_000  # per MISP feed and pull
TIMEOUT_S = 30.0
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class PullResult:
    source: str
    read: int = 0  # STIX objects or MISP events read
    indicators: int = 0  # indicators kept
    error: str | None = None


class FeedError(Exception):
    """A feed could not be read; the message names the feed and why."""


class _Bearer(AuthBase):
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


async def pull_all(
    config: IntelConfig,
    store: Store,
    environ: Mapping[str, str],
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[PullResult]:
    results = []
    for feed in config.feeds:
        try:
            results.append(await pull_feed(feed, store, environ, transport))
        except FeedError as error:
            results.append(PullResult(feed.source, error=str(error)))
    return results


async def pull_feed(
    feed: Feed,
    store: Store,
    environ: Mapping[str, str],
    transport: httpx.AsyncBaseTransport | None = None,
) -> PullResult:
    if feed.taxii is not None:
        token = environ.get(feed.taxii.token_env) if feed.taxii.token_env else None
        if feed.taxii.token_env and not token:
            raise FeedError(f"{feed.source}: ${feed.taxii.token_env} is not set")
        return await _pull_taxii(feed, feed.taxii, store, token)
    assert feed.misp is not None
    return await _pull_misp(feed, feed.misp, store, transport)


async def _pull_taxii(feed: Feed, taxii: TaxiiFeed, store: Store, token: str | None) -> PullResult:
    cursor = await store.intel.feed_cursor(feed.source) or {}
    try:
        objects, last = await asyncio.to_thread(
            _read_taxii, taxii, token, cursor.get("added_after")
        )
    except (requests.RequestException, TAXIIServiceException, ValueError) as error:
        raise FeedError(f"{feed.source}: {_one_line(error)}") from None
    kept = await store.intel.keep_indicators(from_stix(objects, feed.name))
    if last is not None:
        await store.intel.save_feed_cursor(feed.source, {"added_after": last})
    return PullResult(feed.source, read=len(objects), indicators=kept)


def _read_taxii(
    taxii: TaxiiFeed, token: str | None, added_after: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    root = ApiRoot(str(taxii.url), auth=_Bearer(token) if token else None)
    try:
        wanted = taxii.collection
        collection = next((c for c in root.collections if wanted in (c.id, c.alias, c.title)), None)
        if collection is None:
            raise FeedError(f"no collection {wanted!r} at {taxii.url} for this token")
        added: list[str] = []

        def note_added(response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
            if stamp := response.headers.get("X-TAXII-Date-Added-Last"):
                added.append(stamp)

        root._conn.session.hooks["response"].append(note_added)  # type: ignore[attr-defined]
        filters = {"added_after": added_after} if added_after else {}
        objects: list[dict[str, Any]] = []
        for envelope in as_pages(collection.get_objects, per_request=PAGE, **filters):
            objects += envelope.get("objects", [])
            if len(objects) >= MAX_OBJECTS:
                break
        return objects, max(added) if added else added_after
    finally:
        root.close()


async def _pull_misp(
    feed: Feed, misp: MispFeed, store: Store, transport: httpx.AsyncBaseTransport | None
) -> PullResult:
    base = str(misp.url).rstrip("/") + "/"
    seen: dict[str, Any] = dict(
        (await store.intel.feed_cursor(feed.source) or {}).get("events", {})
    )
    async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT_S) as http:
        manifest = await _get_json(http, base + "manifest.json", feed)
        if not isinstance(manifest, dict):
            raise FeedError(f"{feed.source}: manifest.json is not an object of events")
        changed = [
            (uid, entry.get("timestamp"))
            for uid, entry in manifest.items()
            if _UUID.match(str(uid))
            and isinstance(entry, dict)
            and str(entry.get("timestamp")) != str(seen.get(uid))
        ][:MAX_EVENTS]
        kept = 0
        for uid, stamp in changed:
            event = await _get_json(http, f"{base}{uid}.json", feed)
            if isinstance(event, dict):
                kept += await store.intel.keep_indicators(from_misp_event(event, feed.name))
            seen[uid] = stamp
    await store.intel.save_feed_cursor(feed.source, {"events": seen})
    return PullResult(feed.source, read=len(changed), indicators=kept)


async def _get_json(http: httpx.AsyncClient, url: str, feed: Feed) -> Any:
    try:
        response = await http.get(url)
    except httpx.HTTPError as error:
        raise FeedError(f"{feed.source}: {url}: {_one_line(error)}") from None
    if response.status_code != 200:
        raise FeedError(f"{feed.source}: {url}: HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise FeedError(f"{feed.source}: {url}: not JSON") from None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300] or type(error).__name__
