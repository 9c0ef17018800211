"""`garrison rehearse`: stream recorded incidents' alerts into a running server's `/api/alerts`, as
OCSF Detection Findings, in their recorded order and spacing scaled by `speed`, so a team can
watch the live system (ingestion, grouping, workflows, Slack) handle a known attack end to end.

Each finding carries its recording's id as `metadata.correlation_uid`, so the alerts of one
recording become one incident, `live--<recorded id>` (with a random part after the first time),
which a server started with `--incidents` serves from that recording's twins. Alert times stay
as recorded: the grouping of a rehearsal is the corpus's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from orchestrator.ingest.shapes import alert_to_ocsf
from simulations.loader import LoadedIncident

MAX_WAIT_S = 60.0  # a recorded gap longer than this (after scaling) is cut to it


@dataclass
class RehearsalReport:
    sent: int = 0
    incidents: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)


def timeline(incidents: list[LoadedIncident]) -> list[tuple[float, dict[str, Any]]]:
    """(seconds after the first alert, OCSF finding) for every alert, in recorded order."""
    rows = [
        (alert.time, loaded.spec.id, index, loaded, alert)
        for loaded in incidents
        for index, alert in enumerate(loaded.spec.alerts)
    ]
    rows.sort(key=lambda row: (row[0], row[1], row[2]))
    if not rows:
        return []
    start = rows[0][0]
    return [
        (
            (at - start).total_seconds(),
            alert_to_ocsf(
                alert,
                loaded.spec.environment,
                event_uid_prefix=loaded.spec.id,
                correlation_uid=loaded.spec.id,
            ),
        )
        for at, _, _, loaded, alert in rows
    ]


async def rehearse(
    incidents: list[LoadedIncident],
    http: httpx.AsyncClient,
    speed: float,
    progress: Callable[[str], None] = lambda _line: None,
) -> RehearsalReport:
    """Post every alert at its scaled moment; a 429 is retried after its Retry-After."""
    report = RehearsalReport()
    began = time.monotonic()
    for offset, finding in timeline(incidents):
        delay = min(offset / speed - (time.monotonic() - began), MAX_WAIT_S)
        if delay > 0:
            await asyncio.sleep(delay)
        reply = await _post(http, finding)
        if reply.status_code == 202:
            body = reply.json()
            report.sent += body["accepted"]
            report.incidents.update(body["incidents"])
            progress(
                f"+{offset / speed:7.1f}s {finding['finding_info']['title'][:60]} -> "
                f"{', '.join(body['incidents'])}"
            )
        else:
            report.refused.append(f"{reply.status_code}: {reply.text[:200]}")
            progress(f"refused ({reply.status_code}): {reply.text[:200]}")
    return report


async def _post(http: httpx.AsyncClient, finding: dict[str, Any]) -> httpx.Response:
    reply = await http.post("/api/alerts", json=finding, params={"shape": "ocsf"})
    for _attempt in range(10):
        if reply.status_code != 429:
            break
        await asyncio.sleep(min(float(reply.headers.get("retry-after", "1")), 30.0))
        reply = await http.post("/api/alerts", json=finding, params={"shape": "ocsf"})
    return reply
