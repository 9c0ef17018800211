"""How fast `POST /slack/interactions` answers hostile and genuine requests, over loopback HTTP.

Scenario S1 wants forged or malformed requests refused within 50 ms and Slack wants every click
acknowledged within 3 s. This prints p50/p95/max per kind of request, next to `GET /healthz` in
the same run as the baseline (what any request costs on this machine).

    .venv/bin/python -m scripts.bench_slack_ingress [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import httpx
from temporalio.client import Client

from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.approvals.service import ApprovalService
from orchestrator.server.app import ServerDeps, SlackRuntime, create_app
from orchestrator.server.tokens import ApiTokens
from orchestrator.slack.emulator import slack_emulator
from orchestrator.slack.notifier import SlackNotifier
from orchestrator.slack.webapi import SlackWebClient
from orchestrator.store.repository import Store
from tests.slack.stack import (
    ALICE,
    BOT_TOKEN,
    CHANNEL,
    DIRECTORY,
    ONCALL_GROUP,
    SECRET,
    click_body,
    signed_headers,
)
from tools.emulators.serve import serve

Case = Callable[[int], tuple[bytes, dict[str, str]]]


def cases() -> dict[str, Case]:
    def genuine(n: int) -> tuple[bytes, dict[str, str]]:
        # An unknown approval: acknowledged, then refused in the background (no Temporal needed).
        body = click_body(f"apr-bench-{n}", "0" * 64, user=ALICE, action_ts=f"{n}.000001")
        return body, signed_headers(body)

    def forged(n: int) -> tuple[bytes, dict[str, str]]:
        body = click_body("apr-x", "0" * 64, user=ALICE, action_ts=f"{n}.1")
        return body, signed_headers(body, secret="not-" + SECRET)

    def stale(n: int) -> tuple[bytes, dict[str, str]]:
        body = click_body("apr-x", "0" * 64, user=ALICE, action_ts=f"{n}.2")
        return body, signed_headers(body, skew_s=-400)

    def huge_timestamp(n: int) -> tuple[bytes, dict[str, str]]:
        body = click_body("apr-x", "0" * 64, user=ALICE, action_ts=f"{n}.3")
        return body, {**signed_headers(body), "x-slack-request-timestamp": "9" * 5000}

    def oversized(_n: int) -> tuple[bytes, dict[str, str]]:
        body = b"payload=" + b"a" * (2 * 1024 * 1024)
        return body, signed_headers(body)

    return {
        "genuine click (ack)": genuine,
        "forged signature": forged,
        "stale timestamp": stale,
        "5000-digit timestamp": huge_timestamp,
        "2 MB body": oversized,
    }


def summary(name: str, samples: list[float], statuses: set[int]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return (
        f"{name:24} n={len(samples):4}  p50={statistics.median(ordered) * 1000:6.2f} ms"
        f"  p95={p95 * 1000:6.2f} ms  max={ordered[-1] * 1000:6.2f} ms  status={sorted(statuses)}"
    )


async def main(requests: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = await Store.open(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        directory = ApproverDirectory.model_validate(DIRECTORY)
        fake = slack_emulator(BOT_TOKEN, usergroups={ONCALL_GROUP: []})
        async with serve(fake) as slack_url:
            client = SlackWebClient(slack_url, BOT_TOKEN, min_interval_s=0)
            notifier = SlackNotifier(client, store, directory, CHANNEL)
            deps = ServerDeps(
                store=store,
                approvals=ApprovalService(cast(Client, None), store, directory, "garrison-agent"),
                tokens=ApiTokens(),
                slack=SlackRuntime(SECRET, notifier),
            )
            async with serve(create_app(deps)) as url, httpx.AsyncClient(base_url=url) as http:
                baseline: list[float] = []
                for _ in range(requests):
                    started = time.perf_counter()
                    await http.get("/healthz")
                    baseline.append(time.perf_counter() - started)
                print(summary("GET /healthz (baseline)", baseline, {200}))
                for name, make in cases().items():
                    samples: list[float] = []
                    statuses: set[int] = set()
                    count = requests if name != "2 MB body" else max(10, requests // 10)
                    for n in range(count):
                        body, headers = make(n)
                        started = time.perf_counter()
                        answer = await http.post(
                            "/slack/interactions", content=body, headers=headers
                        )
                        samples.append(time.perf_counter() - started)
                        statuses.add(answer.status_code)
                    print(summary(name, samples, statuses))
                await deps.tasks.wait()
            await client.aclose()
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    asyncio.run(main(parser.parse_args().requests))
