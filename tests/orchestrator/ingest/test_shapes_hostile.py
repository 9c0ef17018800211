"""Hostile input: whatever JSON arrives, normalising it either gives an alert or raises
`NormaliseError`, nothing else. Each fixture record is mutated at every path it has (each value
replaced by junk of every JSON type, deleted, or deeply nested), and random JSON is thrown at
every shape; the seed is printed so a failure can be replayed."""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ingest.shapes import NormaliseError, Shape, normalise, split_batch

FIXTURES = Path(__file__).parent / "fixtures"
SEED = 20240607
JUNK: list[Any] = [
    None,
    True,
    0,
    -1,
    2**70,
    1e308,
    -1.5,
    "",
    " ",
    "x" * 70_000,
    "\u0000\ud7ff\U0001f600",
    "2024-13-45T99:99:99Z",
    "0x" + "f" * 40,
    "9" * 5000,
    [],
    [None],
    [[[]]],
    [{"a": [1, {"b": None}]}],
    {},
    {"": {"": {}}},
    {"@odata.type": "#microsoft.graph.security.processEvidence", "processId": "x"},
]


def nested(depth: int) -> Any:
    value: Any = "deep"
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


def records() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(FIXTURES.glob("*.json")):
        for record in split_batch(json.loads(path.read_text(encoding="utf-8"))):
            found.append((path.stem, dict(record)))
    return found


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*prefix, key)
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield (*prefix, i)
            yield from paths(child, (*prefix, i))


def replaced(value: Any, path: tuple[Any, ...], new: Any, delete: bool = False) -> Any:
    copy = json.loads(json.dumps(value))
    node = copy
    for step in path[:-1]:
        node = node[step]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = new
    return copy


def check(record: Any, shape: Shape | None) -> None:
    with contextlib.suppress(NormaliseError):
        normalise(record, shape)


@pytest.mark.parametrize(("name", "record"), records(), ids=[n for n, _ in records()])
def test_every_mutation_of_a_fixture_gives_an_alert_or_a_normalise_error(
    name: str, record: dict[str, Any]
) -> None:
    rng = random.Random(f"{SEED}:{name}")
    print(f"seed {SEED}:{name}")
    for path in paths(record):
        check(replaced(record, path, None, delete=True), None)
        for junk in [*rng.sample(JUNK, 6), nested(200)]:
            mutated = replaced(record, path, junk)
            check(mutated, None)
            check(mutated, Shape(name))


def random_json(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 6 or roll < 0.4:
        return rng.choice(JUNK[:14])
    if roll < 0.7:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["id", "uid", "time", "result", "alert", "properties", "hits", "value",
            "kibana.alert.uuid", "class_uid", "finding_info", "event_type", "severity",
            "evidence", "rule", "device"]  # fmt: skip
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randint(0, 6))}


def test_random_json_never_escapes_as_anything_but_a_normalise_error() -> None:
    rng = random.Random(SEED)
    print(f"seed {SEED}")
    for _ in range(1500):
        body = random_json(rng)
        try:
            batch = split_batch(body)
        except NormaliseError:
            continue
        for record in batch:
            for shape in (None, *Shape):
                check(record, shape)


@pytest.mark.parametrize("shape", [None, *Shape])
def test_non_objects_are_refused_by_normalise(shape: Shape | None) -> None:
    for junk in JUNK:
        if isinstance(junk, dict):
            continue
        with pytest.raises(NormaliseError):
            normalise(junk, shape)  # type: ignore[arg-type]
