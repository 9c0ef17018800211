"""The registry of playbooks: the built-in ones (an explicit tuple) and those other packages
declare under the `garrison.playbooks` entry point group; and the routing from an incident to one
of them (`playbooks/routing.py`, the file `GARRISON_PLAYBOOK_ROUTING` names or the built-in one).

The API other modules rely on: `registered_playbooks()`, `get_playbook(id)`, `playbook_for(...)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path

from playbooks.base import Playbook
from playbooks.command_and_control.graph import PLAYBOOK as COMMAND_AND_CONTROL
from playbooks.credential_access.graph import PLAYBOOK as CREDENTIAL_ACCESS
from playbooks.defense_evasion.graph import PLAYBOOK as DEFENSE_EVASION
from playbooks.discovery.graph import PLAYBOOK as DISCOVERY
from playbooks.execution.graph import PLAYBOOK as EXECUTION
from playbooks.exfiltration.graph import PLAYBOOK as EXFILTRATION
from playbooks.hands_on_keyboard.graph import PLAYBOOK as HANDS_ON_KEYBOARD
from playbooks.impact.graph import PLAYBOOK as IMPACT
from playbooks.initial_access.graph import PLAYBOOK as INITIAL_ACCESS
from playbooks.lateral_movement.graph import PLAYBOOK as LATERAL_MOVEMENT
from playbooks.persistence.graph import PLAYBOOK as PERSISTENCE
from playbooks.phishing.graph import PLAYBOOK as PHISHING
from playbooks.routing import RouteQuery, Routing, RoutingError, load_routing, routing_path
from playbooks.triage_only.graph import PLAYBOOK as TRIAGE_ONLY
from tools.models import AssetKind, Category, Severity

ENTRY_POINT_GROUP = "garrison.playbooks"
BUILT_IN: tuple[Playbook, ...] = (
    COMMAND_AND_CONTROL,
    CREDENTIAL_ACCESS,
    DEFENSE_EVASION,
    DISCOVERY,
    EXECUTION,
    EXFILTRATION,
    HANDS_ON_KEYBOARD,
    IMPACT,
    INITIAL_ACCESS,
    LATERAL_MOVEMENT,
    PERSISTENCE,
    PHISHING,
    TRIAGE_ONLY,
)


class UnknownPlaybook(KeyError):
    pass


class PlaybookLoadError(RuntimeError):
    """An entry point that does not load, is not a `Playbook`, or reuses a registered id."""


@cache
def registered_playbooks() -> tuple[Playbook, ...]:
    """The built-in playbooks, then the entry points' in the order of their names."""
    found = list(BUILT_IN)
    ids = {p.id for p in found}
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value)):
        where = f"entry point {point.name!r} ({point.value}) of group {ENTRY_POINT_GROUP}"
        try:
            playbook = point.load()
        except Exception as problem:  # an outside package's import error, whatever it is
            raise PlaybookLoadError(f"{where}: cannot load: {problem!r}") from problem
        if not isinstance(playbook, Playbook):
            raise PlaybookLoadError(f"{where}: is a {type(playbook).__name__}, not a Playbook")
        if playbook.id in ids:
            raise PlaybookLoadError(f"{where}: playbook id {playbook.id!r} is already registered")
        ids.add(playbook.id)
        found.append(playbook)
    return tuple(found)


def get_playbook(playbook_id: str) -> Playbook:
    """A registered playbook, or one the routing file declares (`playbooks:` in it)."""
    for playbook in registered_playbooks():
        if playbook.id == playbook_id:
            return playbook
    routing = current_routing()
    if playbook_id in routing.declared:
        return _import_declared(routing, playbook_id)
    raise UnknownPlaybook(playbook_id)


def _import_declared(routing: Routing, playbook_id: str) -> Playbook:
    where = routing.declared[playbook_id]
    module_name, _, attribute = where.partition(":")
    at = f"{routing.path}:{routing.declared_line}: playbook {playbook_id!r} ({where})"
    try:
        playbook = getattr(import_module(module_name), attribute)
    except Exception as problem:  # the author's module: whatever its import raises
        raise RoutingError(f"{at}: cannot load: {problem!r}") from problem
    if not isinstance(playbook, Playbook):
        raise RoutingError(f"{at}: is a {type(playbook).__name__}, not a Playbook")
    if playbook.id != playbook_id:
        raise RoutingError(f"{at}: its id is {playbook.id!r}, not {playbook_id!r}")
    return playbook


@cache
def _routing_at(path: Path, mtime_ns: int) -> Routing:
    routing = load_routing(path, [p.id for p in registered_playbooks()])
    for playbook_id in routing.declared:  # a broken declaration is found when the file is read
        _import_declared(routing, playbook_id)
    return routing


def current_routing(path: Path | None = None) -> Routing:
    """The routing file, checked (`RoutingError` naming the file and line when it is wrong)."""
    path = path or routing_path()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = -1  # load_routing reports the unreadable file
    return _routing_at(path, mtime)


def playbook_for(
    category: Category,
    *,
    techniques: Iterable[str] = (),
    severity: Severity | None = None,
    asset_kinds: Iterable[AssetKind] = (),
    routing: Routing | None = None,
) -> Playbook:
    """The playbook the routing file names for an incident of this category (and techniques,
    severity, asset kinds): its first route that holds, else its default."""
    query = RouteQuery(
        category=category,
        techniques=tuple(techniques),
        severity=severity,
        asset_kinds=frozenset(asset_kinds),
    )
    return get_playbook((routing or current_routing()).resolve(query))
