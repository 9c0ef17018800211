"""The grouping rule: same host or same user, each record at most `window` after its group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.ingest.grouping import DEFAULT_WINDOW, Record, group

T0 = datetime(2023, 8, 18, 8, 0, tzinfo=UTC)


def at(minutes: float, host: str | None = None, user: str | None = None) -> Record:
    return Record.of(T0 + timedelta(minutes=minutes), [host], [user])


def members(records: list[Record], window: timedelta = DEFAULT_WINDOW) -> list[list[int]]:
    return [g.members for g in group(records, window)]


def test_group_joins_a_record_exactly_one_window_later() -> None:
    assert members([at(0, "PRD01"), at(30, "PRD01")]) == [[0, 1]]


def test_group_splits_a_record_just_past_the_window() -> None:
    late = Record.of(T0 + DEFAULT_WINDOW + timedelta(milliseconds=1), ["PRD01"], [])
    assert members([at(0, "PRD01"), late]) == [[0], [1]]


def test_group_window_bounds_the_gap_not_the_span() -> None:
    [chain] = group([at(0, "PRD01"), at(25, "PRD01"), at(50, "PRD01"), at(75, "PRD01")])
    assert chain.members == [0, 1, 2, 3]
    assert (chain.start, chain.end) == (T0, T0 + timedelta(minutes=75))


def test_group_shared_user_links_two_hosts() -> None:
    records = [at(0, "WS5", "pandalab\\pedro"), at(5, "WS6", "PANDALAB\\Pedro")]
    [both] = group(records)
    assert both.members == [0, 1]
    assert both.hosts == ["WS5", "WS6"]
    assert both.users == ["pandalab\\pedro"]


def test_group_unrelated_entities_stay_apart_at_the_same_time() -> None:
    records = [at(0, "WS5", "pandalab\\pedro"), at(0, "WS6", "pandalab\\nora"), at(1, "WS5")]
    assert members(records) == [[0, 2], [1]]


def test_group_a_record_sharing_with_two_groups_merges_them() -> None:
    records = [
        at(0, "WS5", "pandalab\\pedro"),
        at(1, "WS6", "pandalab\\nora"),
        at(2, "WS6", "pandalab\\pedro"),  # pedro on WS6: one incident across both hosts
    ]
    [merged] = group(records)
    assert merged.members == [0, 1, 2]
    assert merged.hosts == ["WS5", "WS6"]
    assert merged.users == ["pandalab\\pedro", "pandalab\\nora"]


def test_group_names_compare_loosely() -> None:
    records = [
        at(0, "PRD01.pandalab.com", "PANDALAB\\Pedro.Gustavo"),
        at(1, "prd01"),
        at(2, "IT01", "pedro.gustavo@pandalab.com"),
    ]
    assert members(records) == [[0, 1, 2]]


def test_group_records_without_entities_stay_alone() -> None:
    assert members([at(0), at(0), at(1, "PRD01")]) == [[0], [1], [2]]


def test_group_orders_records_by_time_not_input() -> None:
    records = [at(40, "PRD01"), at(0, "PRD01"), at(20, "PRD01"), at(100, "PRD01")]
    groups = group(records)
    assert [g.members for g in groups] == [[1, 2, 0], [3]]
    assert [g.start for g in groups] == [T0, T0 + timedelta(minutes=100)]


def test_group_window_is_configurable() -> None:
    records = [at(0, "PRD01"), at(10, "PRD01")]
    assert members(records, timedelta(minutes=5)) == [[0], [1]]
    assert members(records, timedelta(minutes=10)) == [[0, 1]]


def test_group_refuses_a_negative_window() -> None:
    with pytest.raises(ValueError, match="negative"):
        group([at(0, "PRD01")], timedelta(minutes=-1))
