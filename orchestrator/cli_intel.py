"""`garrison intel`: share what an incident taught (`export` a STIX 2.1 bundle, `publish` it to
one of the TAXII collections `garrison server` serves) and read what partners share (`pull` the
TAXII collections and MISP feeds of the intelligence file into the store). docs/intel.md."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.cli_common import fail, open_store, out, settings_or_exit

if TYPE_CHECKING:
    from orchestrator.intel.config import IntelConfig
    from orchestrator.intel.policy import Tlp
    from orchestrator.settings import GarrisonSettings
    from orchestrator.store.repository import Store

intel_app = typer.Typer(
    help="Threat-intelligence sharing (STIX 2.1, TAXII 2.1, MISP feeds).", no_args_is_help=True
)

TlpOption = Annotated[
    str | None,
    typer.Option("--tlp", help="clear, green, amber, amber+strict or red (default: the policy's)."),
]


def _config(settings: GarrisonSettings) -> IntelConfig:
    from orchestrator.intel.config import IntelConfig
    from orchestrator.intel.policy import PolicyError

    try:
        return IntelConfig.load(settings.intel_file)
    except PolicyError as error:
        fail(str(error))


def _tlp(raw: str | None, config: IntelConfig) -> Tlp:
    from orchestrator.intel.policy import Tlp

    if raw is None:
        return config.default_tlp
    try:
        return Tlp(raw.strip().lower())
    except ValueError:
        fail(f"--tlp {raw}: one of {', '.join(t.value for t in Tlp)}")


async def _bundle_json(store: Store, settings: GarrisonSettings, incident: str, tlp: Tlp) -> str:
    from orchestrator.intel.export import ExportError, build_bundle
    from orchestrator.intel.sources import NoSuchIncident, from_store
    from orchestrator.vendor_backends import BackendConfigError, load_inventory
    from tools.models import Environment

    config = _config(settings)
    environment = Environment()
    if settings.inventory_file is not None:
        try:
            environment = load_inventory(settings.inventory_file)
        except BackendConfigError as error:
            fail(str(error))
    try:
        evidence = await from_store(store, incident)
        return build_bundle(evidence, environment, config, tlp).serialize(pretty=True)
    except (NoSuchIncident, ExportError) as error:
        fail(str(error))


@intel_app.command("export")
def export(
    incident: Annotated[str, typer.Argument(help="The incident's id.")],
    tlp: TlpOption = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the bundle here (default: stdout).")
    ] = None,
) -> None:
    """Export a malicious incident's indicators, techniques, sightings and response as a STIX 2.1
    bundle, marked and filtered by the sharing policy (GARRISON_INTEL_FILE)."""
    settings = settings_or_exit()
    if settings.intel_file is None and settings.inventory_file is None:
        fail(
            "GARRISON_INVENTORY_FILE is required: without the inventory nothing tells the "
            "organisation's own hosts and accounts from the attacker's"
        )
    level = _tlp(tlp, _config(settings))

    async def run() -> str:
        async with open_store(settings) as store:
            return await _bundle_json(store, settings, incident, level)

    text = asyncio.run(run())
    if out_file is None:
        sys.stdout.write(text + "\n")
        return
    try:
        out_file.write_text(text + "\n", encoding="utf-8")
    except OSError as error:
        fail(f"{out_file}: {error}")
    out.print(f"{out_file}: TLP:{level.value.upper()} bundle of incident {incident}", markup=False)


@intel_app.command("publish")
def publish(
    incident: Annotated[str, typer.Argument(help="The incident's id.")],
    collection: Annotated[
        str, typer.Option("--collection", help="The collection's alias or id.")
    ] = "shared",
    tlp: TlpOption = None,
) -> None:
    """Export the incident and add the bundle's objects to one of the TAXII collections that
    `garrison server` serves (kept in the store; publishing twice adds nothing)."""
    import json

    settings = settings_or_exit()
    config = _config(settings)
    found = config.collection(collection)
    if found is None:
        fail(f"--collection {collection}: not a collection of the intelligence file")
    if settings.inventory_file is None:
        fail("GARRISON_INVENTORY_FILE is required to tell internal entities from the attacker's")
    level = _tlp(tlp, config)

    async def run() -> list[bool]:
        async with open_store(settings) as store:
            text = await _bundle_json(store, settings, incident, level)
            return await store.intel.add_objects(str(found.id), json.loads(text)["objects"])

    added = asyncio.run(run())
    out.print(
        f"{found.alias}: {sum(added)} object(s) added, {len(added) - sum(added)} already there",
        markup=False,
    )


@intel_app.command("pull")
def pull() -> None:
    """Read the partners' TAXII collections and MISP feeds of the intelligence file into the
    store, where enrichment and triage consult them."""
    from orchestrator.intel.feeds import pull_all

    settings = settings_or_exit()
    config = _config(settings)
    if not config.feeds:
        fail("no feeds: add them to the intelligence file (GARRISON_INTEL_FILE, docs/intel.md)")

    async def run() -> int:
        async with open_store(settings) as store:
            results = await pull_all(config, store, os.environ)
        for r in results:
            if r.error:
                out.print(f"{r.source}: failed: {r.error}", markup=False)
            else:
                out.print(f"{r.source}: {r.read} read, {r.indicators} indicator(s)", markup=False)
        return 1 if any(r.error for r in results) else 0

    raise typer.Exit(asyncio.run(run()))
