"""`garrison audit`: verify the audit log's hash chain against its anchors, anchor its head now,
and show its newest entries.

`verify` exits 0 when the chain and every anchor hold ("N entries verified, M anchors matched,
head seq S"); 1 when they do not, naming the first bad seq and why (gap, inserted, prev_hash break,
hash mismatch, anchor mismatch, truncated), or when no anchor covers a non-empty chain (a cut tail
would then go unnoticed); 2 when it cannot run (no database, an unreadable anchor, a wrong
setting). Like every `cli*` module it is light to import: the store is imported by the commands.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from orchestrator.cli_common import err, fail, out, settings_or_exit

if TYPE_CHECKING:
    from orchestrator.settings import GarrisonSettings
    from orchestrator.store.audit import AnchorSource
    from orchestrator.store.records import AuditVerification
    from orchestrator.store.repository import Store

audit_app = typer.Typer(
    help="The audit log: verify its chain and anchors, anchor its head, show its tail.",
    no_args_is_help=True,
)

BROKEN = 1  # the chain or an anchor does not hold, or nothing anchors the chain


@audit_app.command("verify")
def verify(
    anchor_file: Annotated[
        Path | None,
        typer.Option(
            "--anchor-file",
            help="Anchors to check against instead of the configured anchor: a copy, or the "
            "lines exported from syslog (docs/operators.md).",
        ),
    ] = None,
    chain_only: Annotated[
        bool,
        typer.Option(
            "--chain-only", help="Check the chain alone; a cut or rewritten tail goes unnoticed."
        ),
    ] = False,
) -> None:
    """Walk the audit chain and its anchors; exit 1 naming the first bad sequence number."""
    settings = settings_or_exit()
    if anchor_file is not None and chain_only:
        fail("--anchor-file and --chain-only exclude each other")
    if anchor_file is not None and not anchor_file.is_file():
        fail(f"--anchor-file {anchor_file}: no such file")
    raise typer.Exit(asyncio.run(_verify(settings, anchor_file, chain_only)))


async def _verify(settings: GarrisonSettings, anchor_file: Path | None, chain_only: bool) -> int:
    from orchestrator.store.anchors import AnchorError

    source, where = _anchor_source(settings, anchor_file, chain_only)
    async with reading_store(settings) as store:
        try:
            result = await store.verify_audit(source)
        except AnchorError as error:
            fail(str(error))
    if not result.ok:
        err.print(
            f"audit log broken at seq {result.first_bad_seq}: {result.reason}",
            markup=False,
            highlight=False,
        )
        return BROKEN
    if source is not None and result.entries and not result.anchors_matched:
        err.print(
            f"{result.entries} entries verified, but no anchor in {where} covers them: a cut "
            "tail would go unnoticed (run `garrison audit anchor`, pass --anchor-file, or "
            "--chain-only)",
            markup=False,
            highlight=False,
        )
        return BROKEN
    out.print(f"{result.reason}{_unanchored(result)} ({where})", markup=False, highlight=False)
    return 0


def _unanchored(result: AuditVerification) -> str:
    after = result.entries - result.anchored_seq
    if not result.anchors_matched or after == 0:
        return ""
    return f"; {after} entries after the newest anchor (seq {result.anchored_seq})"


def _anchor_source(
    settings: GarrisonSettings, anchor_file: Path | None, chain_only: bool
) -> tuple[AnchorSource | None, str]:
    """What to verify against, and how to name it: the file given, or the configured anchor
    (a syslog anchor answers that it cannot be read back)."""
    from orchestrator import composition
    from orchestrator.settings import ConfigError, FileAnchorTarget
    from orchestrator.store.anchors import AuditAnchor, SyslogAnchor

    if chain_only:
        return None, "chain only"
    if anchor_file is not None:
        return AuditAnchor(anchor_file), f"anchors: file:{anchor_file}"
    try:
        target = composition.anchor_target(settings)
        if isinstance(target, FileAnchorTarget):
            return AuditAnchor(target.path), f"anchors: {target}"
        return SyslogAnchor(target, composition.store_key(settings)), f"anchors: {target}"
    except ConfigError as error:
        fail(str(error))


@audit_app.command("anchor")
def anchor() -> None:
    """Write the audit log's head to the anchor now (also done on a schedule, at shutdown, every
    GARRISON_AUDIT__ANCHOR_EVERY entries and at every incident close)."""
    settings = settings_or_exit()

    async def run() -> None:
        from orchestrator import composition
        from orchestrator.settings import ConfigError
        from orchestrator.store.anchors import AnchorError

        _require_database(settings)
        with database_errors(settings):
            try:
                store = await composition.open_store(settings)
            except ConfigError as error:
                fail(str(error))
            try:
                head = await store.anchor_now()
            except AnchorError as error:
                fail(str(error))
            finally:
                await store.close()
        sink = store.anchor
        if head is None or sink is None:
            out.print("the audit log is empty: nothing to anchor")
            return
        out.print(
            f"anchored head seq {head.seq} ({head.hash[:16]}) to {sink.description}",
            markup=False,
            highlight=False,
        )

    asyncio.run(run())


@audit_app.command("tail")
def tail(
    count: Annotated[
        int, typer.Option("-n", "--lines", min=1, max=10_000, help="How many entries.")
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show the newest audit entries, oldest first."""
    settings = settings_or_exit()

    async def run() -> None:
        async with reading_store(settings) as store:
            entries = await store.audit_tail(count)
        if as_json:
            print(json.dumps([e.model_dump(mode="json") for e in entries], indent=2))
            return
        table = Table("seq", "at", "type", "actor", "outcome", "incident", "target", box=None)
        for e in entries:
            # Actors, targets and outcomes can carry what an attacker sent: never markup.
            table.add_row(
                str(e.seq),
                e.at.isoformat(timespec="seconds"),
                Text(e.type),
                Text(e.actor),
                Text(e.outcome),
                Text(e.incident_id or "-"),
                Text(e.target or "-"),
            )
        out.print(table)

    asyncio.run(run())


@asynccontextmanager
async def reading_store(settings: GarrisonSettings) -> AsyncIterator[Store]:
    """The store without an anchor sink: reading the log needs no anchor, and must not create
    a database where there was none."""
    from orchestrator.store.repository import Store

    _require_database(settings)
    with database_errors(settings):
        store = await Store.open(settings.effective_database_url)
        try:
            yield store
        finally:
            await store.close()


def _require_database(settings: GarrisonSettings) -> None:
    from orchestrator.store.database import normalise_url

    try:
        url = normalise_url(settings.effective_database_url)
    except ValueError as error:
        fail(f"GARRISON_DATABASE_URL: {error}")
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        fail(f"no database at {url.database} (GARRISON_DATABASE_URL or GARRISON_DATA_DIR)")


@contextmanager
def database_errors(settings: GarrisonSettings) -> Iterator[None]:
    """A database that cannot be reached or read ends the command with one line."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    try:
        yield
    except (SQLAlchemyError, OSError) as error:
        cause = error.orig if isinstance(error, DBAPIError) else error
        lines = str(cause).strip().splitlines() or [type(cause).__name__]
        where = make_url(settings.effective_database_url).render_as_string(hide_password=True)
        fail(f"database {where}: {lines[0]}")
