"""Bounds on what one ingestion request may carry, checked before anything is parsed or stored."""

from __future__ import annotations

import re

MAX_BODY_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_BATCH = 1_000

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def json_depth_exceeds(text: str, limit: int = MAX_DEPTH) -> bool:
    """True when the JSON text nests objects and arrays deeper than `limit` (strings skipped).

    A linear scan, so a hostile body is refused before `json.loads` recurses into it. A text with
    no more opening brackets than `limit`, inside strings or not, cannot nest deeper: the usual
    body is answered by two counts in C, without the scan.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False
