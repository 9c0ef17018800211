"""Model usage is the store's, not a worker's: what one process's calls cost (per incident and
role, through the real `langchain-openai` client against the canned server on loopback) is read
back by a fresh process over the same database, whose budget keeps counting from there, and
`/metrics` shows the same figures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from agents.model_client import AgentModels
from agents.narrative import NarrativeFacts, write_narrative
from agents.seam import ask_structured
from agents.triage.prompts import ModelVerdict
from orchestrator.activities.model_use import restore_usage, save_usage
from orchestrator.model_loading import load_models
from orchestrator.model_settings import ModelSettings
from orchestrator.observability.metrics import STORE_REGISTRY, refresh_from_store
from orchestrator.settings import GarrisonSettings
from orchestrator.store.repository import Store
from tests.models.openai_server import build_app
from tools.emulators.serve import serve

pytest.importorskip("langchain_openai")

FACTS = NarrativeFacts(verdict="malicious", confidence=0.9, category="execution", severity="high")


async def requests_served(base: str) -> int:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{base}/v1/requests")).json()["requests"]


@asynccontextmanager
async def process(
    tmp_path: Path, base: str, max_calls: int = 24
) -> AsyncIterator[tuple[Store, AgentModels]]:
    """One worker process's store connection and models (nothing shared with another)."""
    models = ModelSettings.model_validate(
        {"base_url": f"{base}/v1", "max_calls_per_incident": max_calls, "price_input_per_mtok": 3}
    )
    settings = GarrisonSettings.model_validate(
        {"data_dir": tmp_path, "model": "openai:canned", "models": models}
    )
    loaded = load_models(settings)
    assert loaded is not None
    store = await Store.open(f"sqlite:///{tmp_path / 'garrison.db'}")
    try:
        yield store, loaded
    finally:
        await store.close()


async def test_usage_and_budget_survive_a_worker_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    async with serve(build_app()) as base:
        async with process(tmp_path, base) as (store, models):
            await restore_usage(store, models, "inc-1")  # nothing stored yet: a fresh ledger
            triage = models.for_incident("inc-1", "triage")
            summaries = models.for_incident("inc-1", "summaries")
            assert triage is not None and summaries is not None
            assert await ask_structured(triage, ModelVerdict, "classify", {"a": 1}) is not None
            assert await write_narrative(summaries, FACTS) is not None
            await save_usage(store, models, "inc-1")
            before = models.ledger("inc-1")
        served = await requests_served(base)
        assert served == 2

        # A restarted worker: new memory, the same database, a cap the first process reached.
        async with process(tmp_path, base, max_calls=2) as (store, models):
            await restore_usage(store, models, "inc-1")
            after = models.ledger("inc-1")
            assert (after.calls, after.input_tokens, after.output_tokens) == (
                before.calls,
                before.input_tokens,
                before.output_tokens,
            )
            assert after.roles.keys() == {"triage", "summaries"}
            assert after.cost_usd == pytest.approx(before.cost_usd) and after.cost_usd > 0
            summaries = models.for_incident("inc-1", "summaries")
            assert summaries is not None
            assert await write_narrative(summaries, FACTS) is None  # the cap holds across it
            assert any("call cap reached" in e for e in after.events)
            assert await requests_served(base) == served

            rows = {row.role: row for row in await store.model_use.usage_of("inc-1")}
            await refresh_from_store(store)
            for role in ("triage", "summaries"):
                sample = STORE_REGISTRY.get_sample_value
                labels = {"role": role, "direction": "input"}
                assert sample("garrison_model_tokens", labels) == rows[role].input_tokens
                assert sample("garrison_model_calls", {"role": role}) == rows[role].calls
                assert rows[role].input_tokens > 0


async def test_a_worker_that_saw_the_incident_earlier_never_lowers_what_another_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker A asks, worker B asks more for the same incident, then A again: A starts from
    B's figures (its own memory is stale), and what it saves only adds to them."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    async with (
        serve(build_app()) as base,
        process(tmp_path, base) as (store_a, models_a),
        process(tmp_path, base) as (store_b, models_b),
    ):
        for store, models in ((store_a, models_a), (store_b, models_b), (store_a, models_a)):
            await restore_usage(store, models, "inc-1")
            summaries = models.for_incident("inc-1", "summaries")
            assert summaries is not None
            facts = FACTS.model_copy(update={"confidence": models.ledger("inc-1").calls / 10})
            assert await write_narrative(summaries, facts) is not None  # a new question each
            await save_usage(store, models, "inc-1")
        [row] = await store_a.model_use.usage_of("inc-1")
        assert row.role == "summaries" and row.calls == 3 == await requests_served(base)
