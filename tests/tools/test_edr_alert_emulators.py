"""The EDR emulators' alert endpoints speak the vendors' shapes: Falcon's Alerts API v2 (FQL
window, sort, limit, offset and `after` paging, entities by composite id, behind OAuth2) and
Graph's alerts_v2 (`$filter`, `$orderby`, `$top`, `@odata.nextLink`, behind the bearer token),
seeded from an incident's alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from tests.tools.contracts.world import environment, events
from tools.edr.emulators.crowdstrike import build_emulator as falcon_emulator
from tools.edr.emulators.crowdstrike_world import FalconWorld
from tools.edr.emulators.defender import build_emulator as defender_emulator
from tools.edr.emulators.defender_world import DefenderWorld
from tools.emulators.base import EmulatorState
from tools.emulators.serve import serve
from tools.models import Alert, AlertEntities, RuleRef, Severity

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _alerts(n: int) -> list[Alert]:
    return [
        Alert(
            uid=f"rec:{i}",
            time=T0 + timedelta(seconds=i // 2),  # pairs share an instant
            title=f"alert {i}",
            severity=Severity.MEDIUM,
            product="sigma",
            rule=RuleRef(uid="r1", name="Rule"),
            entities=AlertEntities(host="PRD01", user="PANDALAB\\pedro"),
        )
        for i in range(n)
    ]


async def test_falcon_alerts_page_by_offset_and_after_in_update_order() -> None:
    world = FalconWorld()
    app = falcon_emulator(environment(), events(), EmulatorState(), _alerts(5))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as http:
        token = await http.post(
            "/oauth2/token",
            data={"client_id": world.client_id, "client_secret": world.client_secret},
        )
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        query = "/alerts/queries/alerts/v2"
        params = {
            "filter": "updated_timestamp:>='2024-01-01T00:00:01Z'",
            "sort": "updated_timestamp.asc",
            "limit": 2,
        }
        first = (await http.get(query, params=params)).json()
        assert first["meta"]["pagination"]["total"] == 3 and len(first["resources"]) == 2
        after = first["meta"]["pagination"]["after"]
        rest = (await http.get(query, params={**params, "after": after})).json()
        assert len(rest["resources"]) == 1 and "after" not in rest["meta"]["pagination"]
        by_offset = (await http.get(query, params={**params, "offset": 2})).json()
        assert by_offset["resources"] == rest["resources"]
        ids = first["resources"] + rest["resources"]
        entities = (
            await http.post("/alerts/entities/alerts/v2", json={"composite_ids": ids})
        ).json()
        assert [e["composite_id"] for e in entities["resources"]] == ids
        assert entities["resources"][0]["device"]["hostname"] == "PRD01"
        assert entities["resources"][0]["user_name"] == "pedro"
        assert (await http.get(query, params={"limit": 10001})).status_code == 400
        http.headers["Authorization"] = "Bearer nope"
        assert (await http.get(query)).status_code == 401


async def test_graph_alerts_v2_filter_orderby_and_next_link() -> None:
    world = DefenderWorld()
    app = defender_emulator(environment(), events(), EmulatorState(), _alerts(5))
    async with serve(app) as url, httpx.AsyncClient() as http:
        token = await http.post(
            f"{url}/{world.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": world.client_id,
                "client_secret": world.client_secret,
            },
        )
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        params = {
            "$filter": "lastUpdateDateTime ge 2024-01-01T00:00:01Z",
            "$orderby": "lastUpdateDateTime asc",
            "$top": "2",
        }
        page = (await http.get(f"{url}/v1.0/security/alerts_v2", params=params)).json()
        assert len(page["value"]) == 2 and "@odata.nextLink" in page
        last = (await http.get(page["@odata.nextLink"])).json()
        assert len(last["value"]) == 1 and "@odata.nextLink" not in last
        times = [a["lastUpdateDateTime"] for a in page["value"] + last["value"]]
        assert times == sorted(times)
        kinds = {e["@odata.type"] for e in page["value"][0]["evidence"]}
        assert "#microsoft.graph.security.deviceEvidence" in kinds
        assert "#microsoft.graph.security.userEvidence" in kinds
        bad = await http.get(f"{url}/v1.0/security/alerts_v2", params={"$filter": "title eq 'x'"})
        assert bad.status_code == 400
