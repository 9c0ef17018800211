"""Which playbook handles an incident: a declarative routing file, checked on load.

The file (`playbooks/routing.yaml`, or the one `GARRISON_PLAYBOOK_ROUTING` names) lists routes in
order and a default. A route names a playbook and conditions on the incident: its category, the
ATT&CK techniques of its alerts (`T1566` also matches `T1566.001`), its severity, the kinds of its
assets. Every condition a route states must hold (any value of a list may match); the first route
that holds wins, the default otherwise. A mistake (an unknown playbook, category, severity, asset
kind or key, a malformed technique, a route with no condition) is a `RoutingError` naming the file
and the line.

A playbook that is neither built in nor an installed entry point can be declared in the file
itself, by module and attribute (`playbooks: {beacon_containment:
"playbooks.beacon_containment.graph:PLAYBOOK"}`), so that a new playbook runs with no file edited
but its own package and the routing file; the registry imports it when the file is loaded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tools.models import AssetKind, Category, Severity
from tools.yaml_safe import SafeLoader

ROUTING_ENV = "GARRISON_PLAYBOOK_ROUTING"
DEFAULT_ROUTING_FILE = Path(__file__).resolve().parent / "routing.yaml"
TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")
# A declared playbook's import path: a dotted module, a colon, an attribute.
IMPORT_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_LINE = "__line__"
_E = TypeVar("_E", Category, Severity, AssetKind)
_SINGULAR = {"categories": "category", "severities": "severity", "asset_kinds": "asset kind"}
_CONDITIONS = ("categories", "techniques", "severities", "asset_kinds")


class RoutingError(ValueError):
    """The routing file is unreadable or wrong: the message names the file and the line."""


@dataclass(frozen=True)
class RouteQuery:
    """What the orchestrator knows of an incident when it routes it."""

    category: Category
    techniques: tuple[str, ...] = ()
    severity: Severity | None = None
    asset_kinds: frozenset[AssetKind] = frozenset()


@dataclass(frozen=True)
class Route:
    playbook: str
    line: int
    categories: frozenset[Category] = frozenset()
    techniques: tuple[str, ...] = ()
    severities: frozenset[Severity] = frozenset()
    asset_kinds: frozenset[AssetKind] = frozenset()

    def matches(self, query: RouteQuery) -> bool:
        if self.categories and query.category not in self.categories:
            return False
        if self.techniques and not any(
            _technique_matches(want, have) for want in self.techniques for have in query.techniques
        ):
            return False
        if self.severities and query.severity not in self.severities:
            return False
        return not self.asset_kinds or bool(self.asset_kinds & query.asset_kinds)


@dataclass(frozen=True)
class Routing:
    path: Path
    default: str
    routes: tuple[Route, ...] = field(default_factory=tuple)
    # Playbooks the file declares itself: id -> "module:attribute", and the line declaring them.
    declared: dict[str, str] = field(default_factory=dict)
    declared_line: int = 0

    def resolve(self, query: RouteQuery) -> str:
        """The playbook id of the first route that holds, else the default."""
        return next((r.playbook for r in self.routes if r.matches(query)), self.default)

    def playbook_ids(self) -> set[str]:
        return {self.default, *(r.playbook for r in self.routes)}


def _technique_matches(want: str, have: str) -> bool:
    have = have.strip().upper()
    return have == want or have.startswith(want + ".")


def routing_path() -> Path:
    """The deployment's routing file (`GARRISON_PLAYBOOK_ROUTING`), else the built-in one."""
    override = os.environ.get(ROUTING_ENV, "").strip()
    return Path(override) if override else DEFAULT_ROUTING_FILE


class _LineLoader(SafeLoader):
    """Safe YAML whose mappings remember the line they start on."""


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping[_LINE] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def load_routing(path: Path, known_playbooks: Collection[str]) -> Routing:
    """The routing file at `path`, every playbook id checked against `known_playbooks`."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)  # noqa: S506
    except OSError as problem:
        raise RoutingError(f"{path}: cannot read the playbook routing: {problem}") from None
    except yaml.YAMLError as problem:
        mark = getattr(problem, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise RoutingError(f"{where}: not valid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise RoutingError(f"{path}:1: expected a mapping with 'default' and 'routes'")
    top: dict[str, Any] = raw
    _no_unknown_keys(path, top, {"version", "default", "routes", "playbooks"})
    if top.get("version", 1) != 1:
        raise RoutingError(f"{path}:{top[_LINE]}: version {top['version']!r}: only 1 is known")
    declared, declared_line = _declared(path, top, known_playbooks)
    known_playbooks = [*known_playbooks, *declared]
    default = top.get("default")
    if not isinstance(default, str) or not default:
        raise RoutingError(f"{path}:{top[_LINE]}: 'default' must name a playbook")
    _known_playbook(path, top[_LINE], default, known_playbooks)
    routes = top.get("routes") or []
    if not isinstance(routes, list):
        raise RoutingError(f"{path}:{top[_LINE]}: 'routes' must be a list")
    return Routing(
        path=path,
        default=default,
        routes=tuple(_route(path, r, top[_LINE], known_playbooks) for r in routes),
        declared=declared,
        declared_line=declared_line,
    )


def _declared(
    path: Path, top: dict[str, Any], known: Collection[str]
) -> tuple[dict[str, str], int]:
    """The file's own `playbooks:` (id -> "module:attribute"), checked for form, not imported."""
    raw = top.get("playbooks")
    if raw is None:
        return {}, 0
    if not isinstance(raw, dict):
        raise RoutingError(f"{path}:{top[_LINE]}: 'playbooks' must map ids to module:attribute")
    line: int = raw[_LINE]
    declared: dict[str, str] = {}
    for playbook, where in raw.items():
        if playbook == _LINE:
            continue
        if not isinstance(where, str) or not IMPORT_PATH.match(where):
            raise RoutingError(
                f"{path}:{line}: playbook {playbook!r}: {where!r} is not module:attribute"
                " (e.g. playbooks.my_playbook.graph:PLAYBOOK)"
            )
        if playbook in known:
            raise RoutingError(f"{path}:{line}: playbook {playbook!r} is already registered")
        declared[str(playbook)] = where
    return declared, line


def _route(path: Path, raw: Any, parent_line: int, known: Collection[str]) -> Route:
    if not isinstance(raw, dict):
        raise RoutingError(f"{path}:{parent_line}: a route must be a mapping, not {raw!r}")
    line: int = raw[_LINE]
    _no_unknown_keys(path, raw, {"playbook", *_CONDITIONS})
    playbook = raw.get("playbook")
    if not isinstance(playbook, str) or not playbook:
        raise RoutingError(f"{path}:{line}: a route must name its 'playbook'")
    _known_playbook(path, line, playbook, known)
    if not any(raw.get(c) for c in _CONDITIONS):
        raise RoutingError(
            f"{path}:{line}: route to {playbook!r} has no condition"
            f" ({', '.join(_CONDITIONS)}); use 'default' for the catch-all"
        )
    techniques = tuple(t.upper() for t in _strings(path, line, raw, "techniques"))
    for technique in techniques:
        if not TECHNIQUE.match(technique):
            raise RoutingError(
                f"{path}:{line}: technique {technique!r} is not an ATT&CK id (T1234 or T1234.001)"
            )
    return Route(
        playbook=playbook,
        line=line,
        categories=_enums(path, line, raw, "categories", Category),
        techniques=techniques,
        severities=_enums(path, line, raw, "severities", Severity),
        asset_kinds=_enums(path, line, raw, "asset_kinds", AssetKind),
    )


def _strings(path: Path, line: int, raw: dict[str, Any], key: str) -> list[str]:
    value = raw.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise RoutingError(f"{path}:{line}: {key!r} must be a list of names")
    for item in value:
        if not isinstance(item, str):
            raise RoutingError(f"{path}:{line}: {key!r}: {item!r} is not a name")
    return value


def _enums(path: Path, line: int, raw: dict[str, Any], key: str, kind: type[_E]) -> frozenset[_E]:
    found: set[_E] = set()
    for value in _strings(path, line, raw, key):
        try:
            found.add(kind(value))
        except ValueError:
            known = ", ".join(k.value for k in kind)
            raise RoutingError(
                f"{path}:{line}: unknown {_SINGULAR[key]} {value!r} (known: {known})"
            ) from None
    return frozenset(found)


def _known_playbook(path: Path, line: int, playbook: str, known: Iterable[str]) -> None:
    ids = sorted(known)
    if playbook not in ids:
        raise RoutingError(
            f"{path}:{line}: unknown playbook {playbook!r} (registered: {', '.join(ids)})"
        )


def _no_unknown_keys(path: Path, raw: dict[str, Any], allowed: set[str]) -> None:
    for key in raw:
        if key != _LINE and key not in allowed:
            raise RoutingError(
                f"{path}:{raw[_LINE]}: unknown key {key!r} (expected: {', '.join(sorted(allowed))})"
            )
