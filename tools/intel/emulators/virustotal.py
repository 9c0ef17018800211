"""An emulator of the VirusTotal API v3 reputation reads (`/ip_addresses`, `/domains`, `/files`).

It is seeded from a recorded environment and its telemetry, and it knows nothing malicious unless
a test seeds verdicts: every valid IP has an object with no detections (VirusTotal answers for any
address), the domains and file hashes the recording saw exist with no detections, and everything
else is a 404 NotFoundError. So a simulation over the emulator is UNKNOWN about everything external
by default, as honest as the in-memory twin. Auth and error bodies are VirusTotal's.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp

from tools.emulators.base import EmulatorState, FaultMiddleware
from tools.intel.virustotal import LastAnalysisStats
from tools.models import Environment
from tools.telemetry import Telemetry

EMULATOR_API_KEY = "emulator-virustotal-key"
_HASH = re.compile(r"^(?:[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64})$")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _object(kind: str, object_id: str, stats: LastAnalysisStats, reputation: int) -> JSONResponse:
    collection = {"ip_address": "ip_addresses", "domain": "domains", "file": "files"}[kind]
    return JSONResponse(
        {
            "data": {
                "id": object_id,
                "type": kind,
                "links": {"self": f"https://www.virustotal.com/api/v3/{collection}/{object_id}"},
                "attributes": {
                    "last_analysis_stats": stats.model_dump(),
                    "reputation": reputation,
                    "total_votes": {"harmless": 0, "malicious": 0},
                },
            }
        }
    )


class _Catalogue:
    """What this VirusTotal knows: objects by id, with seeded stats and community reputation."""

    def __init__(
        self,
        events: Iterable[Mapping[str, Any]],
        verdicts: Mapping[str, LastAnalysisStats],
        reputations: Mapping[str, int],
    ) -> None:
        telemetry = Telemetry.from_events(events)
        seen = {p.sha256.lower() for p in telemetry.processes if p.sha256}
        seen |= {c.domain.lower().rstrip(".") for c in telemetry.connections if c.domain}
        self.stats: dict[str, LastAnalysisStats] = dict.fromkeys(seen, LastAnalysisStats())
        self.stats.update({k.strip().lower(): v for k, v in verdicts.items()})
        self.reputations = {k.strip().lower(): v for k, v in reputations.items()}

    def lookup(self, key: str) -> tuple[LastAnalysisStats, int] | None:
        if key not in self.stats and key not in self.reputations:
            return None
        return self.stats.get(key, LastAnalysisStats()), self.reputations.get(key, 0)


class _Quota:
    """The public API's per-minute quota, when the emulator is built with one."""

    def __init__(self, per_minute: int | None) -> None:
        self.per_minute = per_minute
        self.calls: deque[float] = deque()

    def exceeded(self) -> bool:
        if self.per_minute is None:
            return False
        now = time.monotonic()
        while self.calls and now - self.calls[0] >= 60:
            self.calls.popleft()
        if len(self.calls) >= self.per_minute:
            return True
        self.calls.append(now)
        return False


def build_emulator(
    environment: Environment,
    events: Iterable[Mapping[str, Any]],
    state: EmulatorState,
    *,
    verdicts: Mapping[str, LastAnalysisStats] | None = None,
    reputations: Mapping[str, int] | None = None,
    api_key: str = EMULATOR_API_KEY,
    quota_per_minute: int | None = None,
) -> ASGIApp:
    """`verdicts` seeds `last_analysis_stats` by indicator (an IP, a domain or a hash) and
    `reputations` the community score; nothing else is ever judged. The environment is not
    consulted: VirusTotal knows nothing of it, which is the point."""
    del environment
    catalogue = _Catalogue(events, verdicts or {}, reputations or {})
    quota = _Quota(quota_per_minute)
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    def refused(key: str | None) -> JSONResponse | None:
        if not key:
            return _error(401, "AuthenticationRequiredError", "X-Apikey header is missing")
        if key != api_key:
            return _error(401, "WrongCredentialsError", "Wrong API key")
        if quota.exceeded():
            return _error(429, "QuotaExceededError", "Quota exceeded")
        return None

    @app.get("/api/v3/ip_addresses/{ip}")
    async def get_ip_address(
        ip: str, x_apikey: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        if (answer := refused(x_apikey)) is not None:
            return answer
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return _error(400, "InvalidArgumentError", f'"{ip}" is not a valid IP address')
        stats, reputation = catalogue.lookup(address.compressed) or (LastAnalysisStats(), 0)
        return _object("ip_address", address.compressed, stats, reputation)

    @app.get("/api/v3/domains/{domain}")
    async def get_domain(
        domain: str, x_apikey: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        if (answer := refused(x_apikey)) is not None:
            return answer
        key = domain.lower().rstrip(".")
        found = catalogue.lookup(key)
        if found is None:
            return _error(404, "NotFoundError", f'Domain "{domain}" not found')
        return _object("domain", key, *found)

    @app.get("/api/v3/files/{file_id}")
    async def get_file(
        file_id: str, x_apikey: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        if (answer := refused(x_apikey)) is not None:
            return answer
        key = file_id.lower()
        if not _HASH.match(key):
            return _error(400, "InvalidArgumentError", f'"{file_id}" is not a valid file id')
        found = catalogue.lookup(key)
        if found is None:
            return _error(404, "NotFoundError", f'File "{file_id}" not found')
        return _object("file", key, *found)

    return FaultMiddleware(app, state)
