"""Sharing between two Garrisons over real HTTP on loopback: A's TAXII 2.1 server (uvicorn, its
store), the OASIS TC's client (`taxii2-client`) publishing to it and B's `pull` reading from it,
and B's triage agent (the real graph, in-memory twins, the store-backed shared intelligence)
deciding differently once it has read A's indicator."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from pydantic import HttpUrl
from taxii2client.v21 import ApiRoot, Collection, as_pages

from agents.deps import AgentDeps
from agents.models import TriageInput, TriageResult
from agents.triage.graph import run_triage
from orchestrator.intel.config import Feed, IntelConfig, TaxiiFeed
from orchestrator.intel.export import build_bundle
from orchestrator.intel.feeds import _Bearer, pull_all
from orchestrator.intel.policy import Tlp
from orchestrator.intel.sources import from_store
from orchestrator.store.intel import ObjectFilter
from orchestrator.store.repository import Store
from simulations.backends import memory_backends
from tests.orchestrator.intel.sharing import (
    C2,
    SHARED,
    GarrisonA,
    beacon_alert,
    environment_a,
    finished_incident,
    garrison_a,
)
from tools.intel.shared import SharedThreatIntel
from tools.models import (
    Alert,
    Asset,
    AssetKind,
    Category,
    Criticality,
    Environment,
    Severity,
    Verdict,
)

TAXII = "application/taxii+json;version=2.1"


def environment_b() -> Environment:
    return Environment(
        assets=[
            Asset(
                id="WS42",
                hostname="WS42.globex.example",
                kind=AssetKind.WORKSTATION,
                criticality=Criticality.LOW,
                ips=["10.9.0.42"],
            ),
        ],
        internal_networks=["10.0.0.0/8"],
    )


async def triage_b(store: Store, alert: Alert) -> TriageResult:
    read, _ = memory_backends(environment_b(), [])
    tools = dataclasses.replace(read, intel=SharedThreatIntel(read.intel, store.intel))
    return await run_triage(AgentDeps(tools=tools), TriageInput(incident_id="b-1", alerts=[alert]))


async def published_objects(a: GarrisonA) -> list[dict[str, Any]]:
    await finished_incident(a.store)
    bundle = build_bundle(await from_store(a.store, "inc-a1"), environment_a(), a.config, Tlp.GREEN)
    return json.loads(bundle.serialize())["objects"]


async def collection(a: GarrisonA, token: str) -> Collection:
    """The client is synchronous: its requests run in a thread, the server in this loop."""

    def find() -> Collection:
        root = ApiRoot(a.api_root, auth=_Bearer(token))
        return next(c for c in root.collections if c.alias == "shared")

    return await asyncio.to_thread(find)


def headers(token: str | None, **more: str) -> dict[str, str]:
    out = {"accept": TAXII, **more}
    if token:
        out["authorization"] = f"Bearer {token}"
    return out


async def test_an_indicator_a_publishes_turns_bs_benign_triage_malicious(tmp_path: Path) -> None:
    store_b = await Store.open(f"sqlite:///{tmp_path / 'b.db'}")
    async with garrison_a(tmp_path) as a:
        objects = await published_objects(a)
        text = json.dumps(objects)
        assert C2 in text and "FIN07" not in text and "jdoe" not in text and "10.20." not in text
        shared = await collection(a, "tok-pub")
        status = await asyncio.to_thread(shared.add_objects, {"objects": objects})
        assert (status.status, status.success_count) == ("complete", len(objects))
        await asyncio.to_thread(status.refresh)  # GET .../status/{id}/: the POST's status kept
        assert (status.status, status.total_count) == ("complete", len(objects))

        # B sees a low connection from its workstation: nothing to worry about, alone
        alert = beacon_alert("b-1", "WS42", "10.9.0.42", Severity.LOW, None)
        before = await triage_b(store_b, alert)
        assert before.verdict is Verdict.BENIGN

        feeds = [
            Feed(
                name="garrison-a",
                taxii=TaxiiFeed(
                    url=HttpUrl(a.api_root),
                    collection="shared",
                    token_env="A_TAXII_TOKEN",
                ),
            )
        ]
        [pulled] = await pull_all(IntelConfig(feeds=feeds), store_b, {"A_TAXII_TOKEN": "tok-b"})
        assert pulled.error is None and pulled.read == len(objects) and pulled.indicators == 1
        [again] = await pull_all(IntelConfig(feeds=feeds), store_b, {"A_TAXII_TOKEN": "tok-b"})
        assert (again.error, again.read) == (None, 0)  # from the last `added` it reached

    after = await triage_b(store_b, alert)
    await store_b.close()
    assert after.verdict is Verdict.MALICIOUS
    assert after.category is Category.COMMAND_AND_CONTROL
    assert any(C2 in line and "shared:garrison-a" in line for line in after.rationale)


async def test_pages_follow_next_and_added_after(tmp_path: Path) -> None:
    async with garrison_a(tmp_path) as a:
        objects = await published_objects(a)
        await a.store.intel.add_objects(str(SHARED.id), objects[:5])
        await asyncio.sleep(0.01)
        await a.store.intel.add_objects(str(SHARED.id), objects[5:])
        reader = await collection(a, "tok-b")
        pages = cast(
            list[dict[str, Any]],
            await asyncio.to_thread(lambda: list(as_pages(reader.get_objects, per_request=2))),
        )
        assert [len(p.get("objects", [])) for p in pages[:-1]] == [2] * (len(pages) - 1)
        assert [o["id"] for p in pages for o in p["objects"]] == [o["id"] for o in objects]
        first = (await a.store.intel.objects(str(SHARED.id), ObjectFilter(limit=5))).objects
        stamp = first[-1].added_at.isoformat().replace("+00:00", "Z")
        later = cast(dict[str, Any], await asyncio.to_thread(reader.get_objects, added_after=stamp))
        assert [o["id"] for o in later["objects"]] == [o["id"] for o in objects[5:]]
        manifest = cast(dict[str, Any], await asyncio.to_thread(reader.get_manifest, limit=3))
        assert manifest["more"] is True and len(manifest["objects"]) == 3
        assert {"id", "date_added", "version", "media_type"} <= set(manifest["objects"][0])


async def test_tokens_without_the_scope_or_the_collection_are_refused(tmp_path: Path) -> None:
    async with garrison_a(tmp_path) as a, httpx.AsyncClient(base_url=a.url) as http:
        objects_url = f"/taxii2/garrison/collections/{SHARED.alias}/objects/"
        assert (await http.get("/taxii2/", headers=headers(None))).status_code == 401
        assert (await http.get("/taxii2/", headers=headers("nope"))).status_code == 401
        refused = await http.get(objects_url, headers=headers("tok-siem"))
        assert refused.status_code == 403 and "intel:read" in refused.json()["description"]
        assert (await http.get(objects_url, headers=headers("tok-stranger"))).status_code == 404
        listing = await http.get("/taxii2/garrison/collections/", headers=headers("tok-stranger"))
        assert listing.status_code == 200 and listing.json() == {}
        body = json.dumps({"objects": await published_objects(a)})
        post = await http.post(
            objects_url, content=body, headers=headers("tok-b", **{"content-type": TAXII})
        )
        assert post.status_code == 403 and "intel:write" in post.json()["description"]
        mine = await http.get("/taxii2/garrison/collections/", headers=headers("tok-b"))
        [info] = mine.json()["collections"]
        assert (info["can_read"], info["can_write"]) == (True, False)
        assert mine.headers["content-type"] == TAXII


@pytest.mark.parametrize(
    ("body", "content_type", "status", "named"),
    [
        (b"{not json", TAXII, 400, "not JSON"),
        (b'{"type": "bundle"}', TAXII, 422, "no `objects` list"),
        (b'{"objects": []}', TAXII, 422, "empty"),
        (b'{"objects": [42]}', TAXII, 422, "objects[0] (not an object)"),
        (
            json.dumps(
                {
                    "objects": [
                        {
                            "type": "indicator",
                            "spec_version": "2.1",
                            "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
                            "created": "2026-01-01T00:00:00Z",
                            "modified": "2026-01-01T00:00:00Z",
                            "pattern": "[ipv4-addr:value = '198.51.100.1'",
                            "pattern_type": "stix",
                            "valid_from": "2026-01-01T00:00:00Z",
                        }
                    ]
                }
            ).encode(),
            TAXII,
            422,
            "objects[0] (indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f)",
        ),
        (b'{"objects": [{"type": "indicator", "spec_version": "2.0"}]}', TAXII, 422, "2.1"),
        (b'{"objects": []}', "application/json", 415, "application/taxii+json"),
    ],
)
async def test_a_malformed_envelope_is_a_4xx_naming_the_problem(
    tmp_path: Path, body: bytes, content_type: str, status: int, named: str
) -> None:
    async with garrison_a(tmp_path) as a, httpx.AsyncClient(base_url=a.url) as http:
        answer = await http.post(
            f"/taxii2/garrison/collections/{SHARED.id}/objects/",
            content=body,
            headers=headers("tok-pub", **{"content-type": content_type}),
        )
        assert answer.status_code == status
        assert named in answer.json()["description"]
        assert answer.json()["http_status"] == str(status)
        page = await a.store.intel.objects(str(SHARED.id), ObjectFilter())
        assert page.objects == []


async def test_bad_query_and_media_type_are_refused(tmp_path: Path) -> None:
    async with garrison_a(tmp_path) as a, httpx.AsyncClient(base_url=a.url) as http:
        url = f"/taxii2/garrison/collections/{SHARED.alias}/objects/"
        xml = await http.get(url, headers={**headers("tok-b"), "accept": "application/xml"})
        assert xml.status_code == 406
        for query, named in (
            ("limit=abc", "limit"),
            ("limit=0", "limit"),
            ("added_after=yesterday", "added_after"),
            ("match[version]=middle", "match[version]"),
            ("color=red", "color"),
        ):
            answer = await http.get(f"{url}?{query}", headers=headers("tok-b"))
            assert answer.status_code == 400 and named in answer.json()["description"], query


async def test_an_envelope_over_the_api_roots_limit_is_413(tmp_path: Path) -> None:
    async with garrison_a(tmp_path) as a, httpx.AsyncClient(base_url=a.url) as http:
        answer = await http.post(
            f"/taxii2/garrison/collections/{SHARED.alias}/objects/",
            content=b" " * (1024 * 1024 + 1),
            headers=headers("tok-pub", **{"content-type": TAXII}),
        )
        assert answer.status_code == 413
        assert "body larger than 1048576 bytes" in answer.text
