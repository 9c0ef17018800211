"""NUL bytes at the edge, on SQLite and on PostgreSQL (which cannot store them in text): a raw NUL
in a body is a 400 kept as a dead letter with the NUL escaped, an alert with a NUL in any field is
refused naming the field, and nothing answers 5xx or a 429 that would make the sender retry
forever. Found by `bench.fuzz_api --database-url postgresql://...`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.approvals.service import ApprovalService
from orchestrator.ingest.pipeline import Ingestor
from orchestrator.policy.model import IngestRules
from orchestrator.server.app import ServerDeps, create_app
from orchestrator.server.tokens import ApiTokens, TokenEntry, digest
from orchestrator.store.repository import Store
from tools.emulators.serve import serve

HEADERS = {"authorization": "Bearer tok-siem", "content-type": "application/json"}


def alert(name: str, **fields: object) -> dict[str, object]:
    return {
        "uid": name,
        "time": "2026-12-01T09:00:00Z",
        "title": "Suspicious LSASS access",
        "severity": "high",
        "product": "test-edr",
        "rule": {"uid": "r-lsass", "name": "LSASS access"},
        **fields,
    }


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def http(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    url = (
        f"sqlite:///{tmp_path / 'g.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    store = await Store.open(url)
    ingest = Ingestor(store, IngestRules())
    deps = ServerDeps(
        store=store,
        approvals=ApprovalService(None, store, ApproverDirectory(groups={}), "agent"),  # type: ignore[arg-type]
        tokens=ApiTokens(tokens={"siem": TokenEntry(digest=digest("tok-siem"), scopes=["ingest"])}),
        ingest=ingest,
    )
    async with serve(create_app(deps)) as base, httpx.AsyncClient(base_url=base) as client:
        yield client
    await deps.aclose()
    await ingest.aclose()
    await store.close()


async def test_nul_bytes_are_refused_naming_where_and_never_a_5xx(http: httpx.AsyncClient) -> None:
    raw = await http.post("/api/alerts", content=b"[\x00", headers=HEADERS)
    assert raw.status_code == 400 and "not JSON" in raw.text

    for field, value in [("title", "t\u0000"), ("product", "edr\u0000"), ("uid", "\u0000")]:
        one = await http.post(
            "/api/alerts", json=alert(f"n-{field}", **{field: value}), headers=HEADERS
        )
        assert one.status_code == 422, one.text
        assert f"{field}: contains a NUL character" in one.text

    nested = alert("n-host", entities={"host": "WS\u000001"})
    batch = await http.post(
        "/api/alerts", content=json.dumps([alert("ok-1"), nested]), headers=HEADERS
    )
    assert batch.status_code == 202, batch.text
    body = batch.json()
    assert body["accepted"] == 1
    assert body["rejected"][0]["problem"] == "entities.host: contains a NUL character (U+0000)"
