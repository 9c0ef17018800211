"""`garrison emulate` as an operator rehearsing an outage runs it: one real process serving
CrowdStrike, Okta and Jira seeded from two recorded incidents, each on its own port; the real
vendor adapters act on them over loopback HTTP; `/_ledger` shows every change from outside and
`/_faults` takes a vendor down, or fails its next calls, while it runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulations.loader import load_all
from tools.edr.emulators.defender_world import DefenderWorld
from tools.emulators.fleet import EmulatorSeed, merge_seeds, serve_fleet
from tools.errors import TransientToolError
from tools.models import Environment
from tools.vendors import vendor

ROOT = Path(__file__).parents[2]
INCIDENTS = [
    ROOT / "simulations" / "incidents" / "otrf-lsass-comsvcs-prd01",
    ROOT / "simulations" / "incidents" / "otrf-covenant-dcsync-ws5",
]
VENDORS = ("crowdstrike", "okta", "jira")


def _recorded_alert_uids() -> set[str]:
    uids: set[str] = set()
    for folder in INCIDENTS:
        uids |= {a["uid"] for a in json.loads((folder / "incident.json").read_text())["alerts"]}
    return uids


def _inventory(path: str) -> Environment:
    return Environment.model_validate_json(Path(path).read_text(encoding="utf-8"))


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GARRISON_")}


@pytest.fixture(scope="module")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The running `garrison emulate` process; yields the JSON file it wrote."""
    written = tmp_path_factory.mktemp("emulate") / "emulators.json"
    incidents = [arg for folder in INCIDENTS for arg in ("--incident", str(folder))]
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "emulate", *VENDORS, "--port", "0",
         *incidents, "--write-json", str(written)],
        env=_clean_env(),
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not written.exists():
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the emulators never wrote their file"
            time.sleep(0.1)
        yield json.loads(written.read_text(encoding="utf-8")) | {"_process": process}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "emulators stopped" in stderr
    assert "Traceback" not in stderr


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def _served(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in doc["vendors"] if v["vendor"] == name)


def _adapter(doc: dict[str, Any], name: str, environment: Environment | None = None) -> Any:
    spec = vendor(name)
    return spec.adapter(
        spec.emulator_settings(_served(doc, name)["base_url"]), environment or Environment()
    )


async def test_three_vendors_on_their_own_ports_seeded_from_two_incidents(
    emulators: dict[str, Any], http: httpx.AsyncClient
) -> None:
    ports = {v["vendor"]: v["port"] for v in emulators["vendors"]}
    assert set(ports) == set(VENDORS)
    assert len(set(ports.values())) == 3
    env = emulators["env"]
    assert env["GARRISON_VENDORS"] == "edr=crowdstrike,identity=okta,ticketing=jira"
    assert env["GARRISON_JIRA_BASE_URL"] == _served(emulators, "jira")["base_url"]
    inventory = _inventory(env["GARRISON_INVENTORY_FILE"])
    assert {"PRD01", "MORDORDC", "WORKSTATION5"} <= {a.id for a in inventory.assets}

    edr, identity = _adapter(emulators, "crowdstrike"), _adapter(emulators, "okta")
    try:
        # One world: hosts and people of both recordings.
        assert await edr.find_host("PRD01") is not None
        assert await edr.find_host("WORKSTATION5") is not None
        assert await identity.get_account("pandalab\\pedro.gustavo") is not None
        assert await identity.get_account("theshire\\pgustavo") is not None
    finally:
        await edr.aclose()
        await identity.aclose()

    # Falcon's Alerts API v2 serves both recordings' alerts (pull mode reads them).
    falcon = _served(emulators, "crowdstrike")["base_url"]
    token = await http.post(
        f"{falcon}/oauth2/token",
        data={
            "client_id": env["GARRISON_CROWDSTRIKE_CLIENT_ID"],
            "client_secret": env["GARRISON_CROWDSTRIKE_CLIENT_SECRET"],
        },
    )
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    ids = await http.get(f"{falcon}/alerts/queries/alerts/v2?limit=500", headers=bearer)
    assert ids.status_code == 200
    assert ids.json()["meta"]["pagination"]["total"] == len(_recorded_alert_uids())
    entities = await http.post(
        f"{falcon}/alerts/entities/alerts/v2",
        json={"composite_ids": ids.json()["resources"]},
        headers=bearer,
    )
    hosts = {e["device"]["hostname"] for e in entities.json()["resources"]}
    assert {"PRD01", "MORDORDC"} <= hosts


async def test_ledger_and_faults_over_http_while_it_runs(
    emulators: dict[str, Any], http: httpx.AsyncClient
) -> None:
    jira, okta = _served(emulators, "jira"), _served(emulators, "okta")
    ticketing, identity = _adapter(emulators, "jira"), _adapter(emulators, "okta")
    try:
        # The next two calls to Jira fail, then it answers again.
        put = await http.put(jira["faults_url"], json={"fail_5xx": 2})
        assert put.status_code == 200 and put.json()["fail_5xx"] == 2
        for _ in range(2):
            with pytest.raises(TransientToolError):
                await ticketing.open_ticket("rehearsal-1", "Rehearsal", "opened during a fault")
        ticket = await ticketing.open_ticket("rehearsal-1", "Rehearsal", "opened after it")
        await ticketing.comment(ticket.id, "one comment")
        assert (await http.get(jira["faults_url"])).json()["fail_5xx"] == 0

        # Okta down (the `--fault` syntax works too) until lifted: every call a 503.
        assert (await http.put(okta["faults_url"], content=b"down")).json()["down"] is True
        for _ in range(3):
            with pytest.raises(TransientToolError):
                await identity.disable_account("theshire\\pgustavo")
        assert (await http.delete(okta["faults_url"])).json()["down"] is False
        assert (await identity.disable_account("theshire\\pgustavo")).applied is True
        assert (await identity.disable_account("theshire\\pgustavo")).applied is False
    finally:
        await ticketing.aclose()
        await identity.aclose()

    ledger = (await http.get(jira["ledger_url"])).json()
    assert ledger["vendor"] == "jira"
    assert ledger["answers"]["503"] == 2
    assert [t["op"] for t in ledger["transitions"]] == ["create_issue", "add_comment"]
    created = next(r for r in ledger["requests"] if r["changes"] == ["create_issue"])
    assert (created["method"], created["status"]) == ("POST", 201)
    assert "rehearsal-1" in ledger["transitions"][0]["target"]

    okta_ledger = (await http.get(okta["ledger_url"])).json()
    assert okta_ledger["answers"]["503"] == 3
    assert [t["op"] for t in okta_ledger["transitions"]] == ["suspend"]
    writes = (await http.get(okta["ledger_url"], params={"writes": "1"})).json()["requests"]
    assert writes and all(r["method"] != "GET" or r["changes"] for r in writes)
    assert len(writes) < len(okta_ledger["requests"])
    later = (await http.get(okta["ledger_url"], params={"since": writes[-1]["seq"]})).json()
    assert all(r["seq"] > writes[-1]["seq"] for r in later["requests"])


async def test_defender_serves_the_recordings_alerts_on_graph() -> None:
    """What `garrison emulate defender --incident A --incident B` serves: Graph's alerts_v2 lists
    both recordings' alerts (the EDR emulators used to start with none)."""
    seed = merge_seeds(
        EmulatorSeed(one.spec.environment, list(one.telemetry()), list(one.spec.alerts))
        for one in load_all(INCIDENTS).incidents
    )
    world = DefenderWorld()
    async with (
        serve_fleet([vendor("defender")], seed) as [served],
        httpx.AsyncClient(timeout=10) as http,
    ):
        token = await http.post(
            f"{served.base_url}/{world.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": world.client_id,
                "client_secret": world.client_secret,
            },
        )
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        page = await http.get(f"{served.base_url}/v1.0/security/alerts_v2?$top=2000")
        assert page.status_code == 200
        assert len(page.json()["value"]) == len(_recorded_alert_uids())
        ledger = await http.get(f"{served.base_url}/_ledger")
        assert [r["path"] for r in ledger.json()["requests"]] == [
            f"/{world.tenant_id}/oauth2/v2.0/token",
            "/v1.0/security/alerts_v2",
        ]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"explode": 1}, "unknown knob 'explode'"),
        ({"down": True, "fail_5xx": -1}, "fail_5xx"),
        ("{not json", "not JSON"),
        ("latency_ms", "is not <knob>=<value>"),
        ([1, 2], "a JSON object"),
    ],
)
async def test_bad_knobs_are_refused_and_change_nothing(
    emulators: dict[str, Any], http: httpx.AsyncClient, body: object, needle: str
) -> None:
    url = _served(emulators, "crowdstrike")["faults_url"]
    before = (await http.get(url)).json()
    if isinstance(body, str):
        answer = await http.put(url, content=body.encode())
    else:
        answer = await http.put(url, json=body)
    assert answer.status_code == 422
    assert needle in answer.json()["error"]
    assert (await http.get(url)).json() == before
    assert (await http.post(url)).status_code == 405


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["emulate", "acme"], "unknown vendor 'acme'"),
        (["emulate", "jira", "--fault", "jira:explode=1"], "unknown knob 'explode'"),
        (["emulate", "jira", "--fault", "panos:down"], "'panos' is not a vendor served here"),
        (["emulate", "jira", "jira"], "named twice"),
        (["emulate", "jira", "--incident", "/nonexistent/x"], "/nonexistent/x"),
        (["emulate", "jira", "--port", "0", "--write-json", "/proc/x/e.json"], "--write-json"),
    ],
)
def test_emulate_refuses_bad_arguments_in_one_line(args: list[str], needle: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
