"""`garrison intel` as a user runs it (the command line in process, a real SQLite store): export
a finished incident as a STIX bundle, publish it to a served collection, and one clear line
(exit 2) for a wrong TLP, an unknown incident, a benign one or a missing collection."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import stix2
from typer.testing import CliRunner, Result

from orchestrator.cli import app
from orchestrator.intel.config import DEFAULT_COLLECTION
from orchestrator.store.intel import ObjectFilter
from orchestrator.store.repository import Store
from tests.orchestrator.intel.sharing import C2, environment_a, finished_incident
from tools.models import Category, Severity, Verdict


def garrison(tmp_path: Path, *args: str) -> Result:
    inventory = tmp_path / "inventory.json"
    inventory.write_text(environment_a().model_dump_json(), encoding="utf-8")
    env = {
        "GARRISON_DATABASE_URL": f"sqlite:///{tmp_path / 'g.db'}",
        "GARRISON_INVENTORY_FILE": str(inventory),
    }
    cleared = {k: None for k in os.environ if k.startswith("GARRISON_") and k not in env}
    return CliRunner().invoke(app, ["intel", *args], env={**cleared, **env})


async def seed(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    await finished_incident(store)
    await finished_incident(store, "inc-benign")
    await store.record_triage(
        "inc-benign", Verdict.BENIGN, Severity.LOW, Category.BENIGN_ACTIVITY, 0.8, None
    )
    await store.close()


async def collection_size(tmp_path: Path) -> int:
    store = await Store.open(f"sqlite:///{tmp_path / 'g.db'}")
    page = await store.intel.objects(str(DEFAULT_COLLECTION), ObjectFilter(limit=1000))
    await store.close()
    return len(page.objects)


def test_export_publish_and_refusals(tmp_path: Path) -> None:
    asyncio.run(seed(tmp_path))
    exported = garrison(tmp_path, "export", "inc-a1", "--tlp", "clear")
    assert exported.exit_code == 0, exported.output
    bundle = stix2.parse(exported.stdout, allow_custom=False)
    assert isinstance(bundle, stix2.Bundle)
    assert C2 in exported.stdout and "FIN07" not in exported.stdout

    published = garrison(tmp_path, "publish", "inc-a1", "--collection", "shared")
    assert published.exit_code == 0, published.output
    assert asyncio.run(collection_size(tmp_path)) == len(bundle.objects)
    again = garrison(tmp_path, "publish", "inc-a1")
    assert "0 object(s) added" in again.stdout

    for args, named in (
        (("export", "inc-a1", "--tlp", "purple"), "--tlp purple"),
        (("export", "nope"), "no incident nope"),
        (("export", "inc-benign"), "not malicious"),
        (("publish", "inc-a1", "--collection", "elsewhere"), "not a collection"),
        (("pull",), "no feeds"),
    ):
        refused = garrison(tmp_path, *args)
        assert refused.exit_code == 2, (args, refused.output)
        assert named in refused.stderr, refused.stderr
