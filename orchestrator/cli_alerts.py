"""`garrison alerts dead-letter list|retry` and `garrison rehearse`: what ingestion could not take,
and streaming recorded incidents into a running server's `/api/alerts`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from orchestrator.cli_common import fail, open_store, out, settings_or_exit

alerts_app = typer.Typer(help="Alerts ingestion: dead letters.", no_args_is_help=True)
dead_letter_app = typer.Typer(
    help="Alerts ingestion could not accept, kept with the reason.", no_args_is_help=True
)
alerts_app.add_typer(dead_letter_app, name="dead-letter")


@dead_letter_app.command("list")
def dead_letter_list(
    show_all: Annotated[bool, typer.Option("--all", help="Include retried ones.")] = False,
    limit: int = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List dead letters (open ones unless --all), oldest first."""

    async def run() -> None:
        async with open_store(settings_or_exit()) as store:
            letters = await store.intake.dead_letters(None if show_all else "open", limit)
        if as_json:
            rows = [
                {
                    "id": d.id,
                    "received_at": d.received_at.isoformat(),
                    "channel": d.channel,
                    "shape": d.shape,
                    "reason": d.reason,
                    "status": d.status,
                    "attempts": d.attempts,
                    "alert_id": d.alert_id,
                    "body": d.body,
                }
                for d in letters
            ]
            print(json.dumps(rows, indent=2))
            return
        table = Table("id", "received", "from", "status", "tries", box=None)
        table.add_column("reason", overflow="fold")
        for d in letters:
            table.add_row(
                str(d.id),
                d.received_at.isoformat(timespec="seconds"),
                Text(d.channel),
                d.status,
                str(d.attempts),
                Text(d.reason),  # names attacker-influenced fields: never markup
            )
        out.print(table)

    asyncio.run(run())


@dead_letter_app.command("retry")
def dead_letter_retry(
    letter_ids: Annotated[list[int], typer.Argument(help="Dead-letter ids.")],
    shape: Annotated[str | None, typer.Option(help="Read the kept records as this shape.")] = None,
) -> None:
    """Normalise dead letters again and ingest them; the server's dispatcher starts their
    incidents. A letter that still cannot be accepted stays open with the new reason."""
    from orchestrator.ingest.dead_letters import retry_dead_letter
    from orchestrator.ingest.normalised import Shape
    from orchestrator.ingest.pipeline import Ingestor
    from orchestrator.policy.model import PolicyError, load_policy

    settings = settings_or_exit()
    try:
        chosen = Shape(shape) if shape else None
    except ValueError:
        fail(f"--shape {shape}: shapes are {', '.join(s.value for s in Shape)}")
    try:
        policy = load_policy(settings.policy_file)
    except PolicyError as error:
        fail(str(error))

    async def run() -> int:
        failed = 0
        async with open_store(settings) as store:
            ingest = Ingestor(store, policy.ingest)
            for letter_id in letter_ids:
                letter = await store.intake.dead_letter(letter_id)
                if letter is None:
                    out.print(f"{letter_id}: no such dead letter")
                    failed += 1
                    continue
                outcome = await retry_dead_letter(store, ingest, letter, chosen)
                verdict = "accepted as" if outcome.accepted else "still refused:"
                out.print(f"{letter_id}: {verdict} {outcome.detail}", markup=False)
                failed += not outcome.accepted
            await ingest.aclose()
        return 1 if failed else 0

    raise typer.Exit(asyncio.run(run()))


def rehearse(
    paths: Annotated[list[Path], typer.Argument(help="Recorded incident folders.")],
    speed: Annotated[
        float, typer.Option(min=0.001, help="Divide the recorded gaps between alerts by this.")
    ] = 60.0,
    url: Annotated[str, typer.Option(help="The running server.")] = "http://127.0.0.1:8080",
    token: Annotated[
        str | None,
        typer.Option(envvar="GARRISON_INGEST_TOKEN", help="A bearer token with the ingest scope."),
    ] = None,
) -> None:
    """Stream recorded incidents' alerts into a running server's /api/alerts, as OCSF.

    The alerts go in their recorded order and spacing scaled by --speed, so a team can watch the
    live system handle a known attack. Start the server with --incidents PATH to serve the same
    recordings' twins."""
    import httpx

    from simulations.loader import load_all
    from simulations.rehearse import rehearse as stream

    if not token:
        fail("a token with the ingest scope is required: --token or GARRISON_INGEST_TOKEN")
    loaded = load_all(paths)
    if loaded.problems:
        fail("; ".join(str(p) for p in loaded.problems))

    async def run() -> int:
        headers = {"authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
            try:
                report = await stream(
                    loaded.incidents, http, speed, lambda line: out.print(line, markup=False)
                )
            except httpx.HTTPError as error:
                fail(f"{url}: {type(error).__name__}: {error}")
        out.print(
            f"sent {report.sent} alert(s) into {len(report.incidents)} incident(s): "
            f"{', '.join(sorted(report.incidents))}; refused {len(report.refused)}",
            markup=False,
        )
        return 1 if report.refused else 0

    raise typer.Exit(asyncio.run(run()))
