"""A hung provider, through the real `langchain-openai` client: a loopback server that accepts
connections and never answers. Each question costs at most `GARRISON_MODEL_MAX_ATTEMPTS`
requests of `GARRISON_MODEL_TIMEOUT_S` each (the client's own retries are off: without that it
would retry each attempt twice more), then the deterministic answer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from agents.seam import ask_structured
from agents.triage.prompts import ModelVerdict
from orchestrator.model_loading import load_models
from orchestrator.model_settings import ModelSettings
from orchestrator.settings import GarrisonSettings

pytest.importorskip("langchain_openai")


async def test_a_provider_that_never_answers_costs_two_bounded_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connections: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)  # read nothing, answer nothing, keep it open

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    models = ModelSettings.model_validate(
        {"base_url": f"http://127.0.0.1:{port}/v1", "timeout_s": 0.5, "max_attempts": 2}
    )
    settings = GarrisonSettings.model_validate(
        {"data_dir": tmp_path, "model": "openai:hung", "models": models}
    )
    agent_models = load_models(settings)
    assert agent_models is not None
    client = agent_models.for_incident("inc-1", "triage")
    assert client is not None
    started = time.monotonic()
    try:
        answer = await ask_structured(client, ModelVerdict, "classify", {"alert": "x"})
    finally:
        server.close()
        for writer in connections:
            writer.close()
    assert answer is None
    assert time.monotonic() - started < 5.0
    assert len(connections) == 2 and client.ledger.calls == 2
    assert all("no answer within" in e or "Timeout" in e for e in client.ledger.events)


async def test_a_failing_provider_is_retried_by_the_seam_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """503 at once, every time: two requests in all (the client's own retries would make six)."""
    requests: list[bytes] = []

    async def overloaded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n")
             if line.lower().startswith(b"content-length:")),
            0,
        )  # fmt: skip
        await reader.readexactly(length)
        requests.append(head)
        body = b'{"error": {"message": "overloaded"}}'
        writer.write(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(overloaded, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    models = ModelSettings.model_validate(
        {"base_url": f"http://127.0.0.1:{port}/v1", "timeout_s": 30, "max_attempts": 2}
    )
    settings = GarrisonSettings.model_validate(
        {"data_dir": tmp_path, "model": "openai:overloaded", "models": models}
    )
    agent_models = load_models(settings)
    assert agent_models is not None
    client = agent_models.for_incident("inc-1", "triage")
    assert client is not None
    try:
        answer = await ask_structured(client, ModelVerdict, "classify", {"alert": "x"})
    finally:
        server.close()
    assert answer is None
    assert len(requests) == 2 and client.ledger.calls == 2
