"""`json_depth_exceeds` at its edges: the count that skips the scan for ordinary bodies never
lets a body nested past the limit through, and brackets inside strings never count."""

from __future__ import annotations

import json

from orchestrator.ingest.limits import MAX_DEPTH, json_depth_exceeds


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_the_limit_itself_passes_and_one_more_level_is_refused() -> None:
    assert not json_depth_exceeds(nested(MAX_DEPTH))
    assert json_depth_exceeds(nested(MAX_DEPTH + 1))
    assert json_depth_exceeds('{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1))


def test_many_brackets_side_by_side_are_not_depth() -> None:
    wide = json.dumps([[i] for i in range(500)])  # 501 opening brackets, depth 2
    assert not json_depth_exceeds(wide)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"cmd": "[" * 500, "title": "{" * 500, "list": nested(3)})
    assert not json_depth_exceeds(text)
    deep_inside_a_string = json.dumps({"payload": nested(MAX_DEPTH + 10)})
    assert not json_depth_exceeds(deep_inside_a_string)
