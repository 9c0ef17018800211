"""`python -m bench.app_server --port P --data-dir D --tokens F`: the alerts API as
`tests/orchestrator/ingest/test_alerts_api.py` builds it (FastAPI app, SQLite store, `Ingestor`
with the default grouping rules) in a process of its own, without Temporal: the dispatcher is not
running, so this measures ingestion up to the commit. `bench.ingest --server app` runs it, for
comparison with `garrison server` and for profiling (`--profile`) without Temporal in the way.
SIGTERM stops it cleanly, so a profiler wrapping it writes its output."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.approvals.service import ApprovalService
from orchestrator.composition import open_store
from orchestrator.ingest.pipeline import Ingestor
from orchestrator.policy.model import IngestRules
from orchestrator.server.app import ServerDeps, create_app
from orchestrator.server.tokens import ApiTokens
from orchestrator.settings import GarrisonSettings


class _Server(uvicorn.Server):
    """uvicorn without its signal capture (it would re-raise SIGTERM before the store closes)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(port: int, data_dir: Path, tokens: Path) -> None:
    store = await open_store(GarrisonSettings(data_dir=data_dir))
    ingest = Ingestor(store, IngestRules())
    deps = ServerDeps(
        store=store,
        approvals=ApprovalService(None, store, ApproverDirectory(groups={}), "garrison-agent"),  # type: ignore[arg-type]
        tokens=ApiTokens.load(tokens),
        ingest=ingest,
    )
    # uvicorn binds the port itself: connections accepted on a socket handed in (`sockets=`) lost
    # TCP_NODELAY here, and every keep-alive request then waited ~40 ms for a delayed ACK.
    config = uvicorn.Config(
        create_app(deps),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
    )
    server = _Server(config)

    def stop() -> None:
        server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        await server.serve()
    finally:
        await deps.aclose()
        await ingest.aclose()
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="the alerts API without Temporal")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--tokens", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.data_dir, args.tokens))


if __name__ == "__main__":
    main()
