"""The store's threat intelligence on SQLite and Postgres: TAXII objects kept per version (a
repeated publication adds nothing), pages that follow `seq` and `added_after`, the last, first or
every version; shared indicators refreshed by a feed's later word and expired ones not returned;
feed cursors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from orchestrator.store import Store
from orchestrator.store.intel import ObjectFilter, VersionMatch
from tools.intel.base import SharedIndicator
from tools.models import Indicator, IndicatorKind
from tools.results import ReputationVerdict

T0 = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)


def obj(stix_id: str, modified: str) -> dict[str, str]:
    return {"type": "indicator", "id": stix_id, "modified": modified}


async def test_objects_are_kept_per_version_and_paged(store: Store) -> None:
    intel = store.intel
    first = [
        obj("indicator--a", "2031-01-01T00:00:00Z"),
        obj("indicator--b", "2031-01-01T00:00:00.1Z"),
    ]
    assert await intel.add_objects("c", first, at=T0) == [True, True]
    assert await intel.add_objects("c", first, at=T0) == [False, False]
    newer = [obj("indicator--a", "2031-01-02T00:00:00.000Z")]
    assert await intel.add_objects("c", newer, at=T0 + timedelta(seconds=1)) == [True]
    await intel.add_objects("other", first, at=T0)

    last = await intel.objects("c", ObjectFilter())
    assert [(o.stix_id, o.version[:10]) for o in last.objects] == [
        ("indicator--b", "2031-01-01"),
        ("indicator--a", "2031-01-02"),
    ]
    earliest = await intel.objects(
        "c", ObjectFilter(version=VersionMatch.FIRST, ids=("indicator--a",))
    )
    assert [o.version[:10] for o in earliest.objects] == ["2031-01-01"]
    page = await intel.objects("c", ObjectFilter(version=VersionMatch.ALL, limit=2))
    assert page.more and len(page.objects) == 2
    rest = await intel.objects(
        "c", ObjectFilter(version=VersionMatch.ALL, after_seq=page.objects[-1].seq)
    )
    assert (rest.more, [o.stix_id for o in rest.objects]) == (False, ["indicator--a"])
    after = await intel.objects("c", ObjectFilter(version=VersionMatch.ALL, added_after=T0))
    assert [o.version[:10] for o in after.objects] == ["2031-01-02"]


async def test_shared_indicators_take_a_feeds_latest_word_and_expire(store: Store) -> None:
    def shared(
        verdict: ReputationVerdict, value: str, until: datetime | None = None
    ) -> SharedIndicator:
        return SharedIndicator(
            kind=IndicatorKind.DOMAIN, value=value, source="p", verdict=verdict, valid_until=until
        )

    await store.intel.keep_indicators([shared(ReputationVerdict.SUSPICIOUS, "Bad.Example")])
    await store.intel.keep_indicators([shared(ReputationVerdict.MALICIOUS, "bad.example")])
    gone = datetime.now(UTC) - timedelta(days=1)
    await store.intel.keep_indicators([shared(ReputationVerdict.MALICIOUS, "old.example", gone)])
    found = await store.intel.shared(Indicator(kind=IndicatorKind.DOMAIN, value="BAD.example"))
    assert [s.verdict for s in found] == [ReputationVerdict.MALICIOUS]
    assert await store.intel.shared(Indicator(kind=IndicatorKind.DOMAIN, value="old.example")) == []
    assert await store.intel.shared(Indicator(kind=IndicatorKind.IP, value="bad.example")) == []

    assert await store.intel.feed_cursor("taxii:p") is None
    await store.intel.save_feed_cursor("taxii:p", {"added_after": "x"})
    await store.intel.save_feed_cursor("taxii:p", {"added_after": "y"})
    assert await store.intel.feed_cursor("taxii:p") == {"added_after": "y"}
