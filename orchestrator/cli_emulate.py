"""`garrison emulate`: serve vendors' API emulators for rehearsals, demos and tests.

Several vendors at once, each on its own port, seeded from one world made of several recorded
incidents; every port also answers `GET /_ledger` and `GET|PUT|DELETE /_faults`
(`tools.emulators.control`). It prints the variables that point Garrison's adapters at the
emulators and, with `--write-json`, writes them (and the merged inventory) to a file.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.cli_common import err, fail

if TYPE_CHECKING:
    from tools.emulators.base import EmulatorFaults
    from tools.emulators.fleet import EmulatorSeed, ServedEmulator
    from tools.vendor_spec import VendorSpec

SCHEMA = "garrison.emulators/1"


def emulate(
    vendor_names: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[VENDOR]...",
            help="Vendors to serve; none: one per capability, as `simulate --backends emulated`.",
        ),
    ] = None,
    port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, help="The first vendor's port, the next ones follow; 0: free ports."
        ),
    ] = 8080,
    host: str = "127.0.0.1",
    incident: Annotated[
        list[Path] | None,
        typer.Option(help="Seed from this recorded incident (or folder of them); repeatable."),
    ] = None,
    all_incidents: Annotated[
        bool, typer.Option("--all", help="Seed from every committed recorded incident.")
    ] = False,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="[VENDOR:]KNOBS, e.g. 'jira:down' or 'fail_5xx=2;reset_after_apply=contain' "
            "(every vendor); repeatable. Change them later with PUT /_faults."
        ),
    ] = None,
    write_json: Annotated[
        Path | None,
        typer.Option(
            "--write-json",
            help="Write the vendors' URLs and variables here (and the merged inventory beside).",
        ),
    ] = None,
) -> None:
    """Serve vendors' emulators (for rehearsals, demos and tests), each on its own port with
    `GET /_ledger` and `GET|PUT|DELETE /_faults`."""
    specs = _specs(vendor_names or [])
    faults = _faults(fault or [], specs)
    paths = list(incident or [])
    if all_incidents:
        import simulations

        paths.append(Path(simulations.__file__).parent / "incidents")
    seed, recorded = _seed(paths)
    if port and port + len(specs) - 1 > 65535:
        fail(f"--port {port}: {len(specs)} vendors need ports up to {port + len(specs) - 1}")
    try:
        asyncio.run(_serve(specs, seed, recorded, host, port, faults, write_json))
    except OSError as error:
        fail(f"cannot serve on {host}: {error.strerror or error}")


def _specs(names: list[str]) -> list[VendorSpec]:
    from tools.vendors import DEFAULT_EMULATED, UnknownVendor, vendor

    try:
        specs = [vendor(name) for name in (names or list(DEFAULT_EMULATED.values()))]
    except UnknownVendor as error:
        fail(str(error.args[0]))
    twice = sorted({s.name for s in specs if specs.count(s) > 1})
    if twice:
        fail(f"vendor {twice[0]!r} named twice")
    return specs


def _faults(texts: list[str], specs: list[VendorSpec]) -> dict[str, EmulatorFaults]:
    """`VENDOR:KNOBS` for one vendor, `KNOBS` for every vendor served."""
    from tools.emulators.base import EmulatorFaults

    served = {spec.name for spec in specs}
    knobs: dict[str, list[str]] = {name: [] for name in served}
    for text in texts:
        name, sep, rest = text.partition(":")
        if sep and name.strip().lower() not in served:
            fail(f"--fault {text!r}: {name.strip()!r} is not a vendor served here")
        for target in [name.strip().lower()] if sep else sorted(served):
            knobs[target].append(rest if sep else text)
    parsed: dict[str, EmulatorFaults] = {}
    for name, parts in knobs.items():
        try:
            parsed[name] = EmulatorFaults.parse(";".join(parts))
        except ValueError as error:
            fail(f"--fault for {name}: {error}")
    return parsed


def _seed(paths: list[Path]) -> tuple[EmulatorSeed, list[str]]:
    from simulations.loader import load_all
    from tools.emulators.fleet import EmulatorSeed, merge_seeds

    if not paths:
        return EmulatorSeed(), []
    loaded = load_all(paths)
    if loaded.problems:
        fail("; ".join(str(p) for p in loaded.problems))
    if not loaded.incidents:
        fail("no recorded incident under " + ", ".join(str(p) for p in paths))
    seeds = [
        EmulatorSeed(
            environment=one.spec.environment,
            events=list(one.telemetry()),
            alerts=list(one.spec.alerts),
        )
        for one in loaded.incidents
    ]
    return merge_seeds(seeds), [one.spec.id for one in loaded.incidents]


async def _serve(
    specs: list[VendorSpec],
    seed: EmulatorSeed,
    recorded: list[str],
    host: str,
    port: int,
    faults: dict[str, EmulatorFaults],
    write_json: Path | None,
) -> None:
    from tools.emulators.fleet import serve_fleet, vendors_env

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serve_fleet(specs, seed, host=host, first_port=port, faults=faults) as served:
        env = vendors_env(served)
        if write_json is not None:
            try:
                env |= _write(write_json, served, env, seed, recorded)
            except OSError as error:
                fail(f"--write-json {write_json}: {error.strerror or error}")
        _announce(served, env, len(recorded))
        await stop.wait()
    err.print("emulators stopped", markup=False)


def _write(
    path: Path,
    served: list[ServedEmulator],
    env: dict[str, str],
    seed: EmulatorSeed,
    recorded: list[str],
) -> dict[str, str]:
    """The file, written whole (a watcher never reads half of it), and the inventory beside it
    when a recording seeded the world. Returns the variables it adds."""
    added: dict[str, str] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    if recorded:
        inventory = path.with_name(f"{path.stem}.inventory.json")
        _write_whole(inventory, seed.environment.model_dump_json(indent=2))
        added["GARRISON_INVENTORY_FILE"] = str(inventory.resolve())
    document = {
        "schema": SCHEMA,
        "pid": os.getpid(),
        "incidents": recorded,
        "vendors": [emulator.describe() for emulator in served],
        "env": env | added,
    }
    _write_whole(path, json.dumps(document, indent=2) + "\n")
    return added


def _write_whole(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def _announce(served: list[ServedEmulator], env: dict[str, str], incidents: int) -> None:
    seeded = f", seeded from {incidents} recorded incident(s)" if incidents else ""
    for emulator in served:
        err.print(
            f"{emulator.spec.title} emulator on {emulator.base_url}{seeded}"
            f" (GET {emulator.base_url}/_ledger, GET|PUT {emulator.base_url}/_faults)",
            markup=False,
            highlight=False,
        )
    err.print("point Garrison's adapters at them with:", markup=False)
    for name, value in env.items():
        err.print(f"export {name}={value}", markup=False, highlight=False)
