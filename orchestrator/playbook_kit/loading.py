"""Finding a playbook from what an author types: a registered id, a playbook package folder (its
`graph.py`), a Python file defining `PLAYBOOK`, or a CACAO JSON document. Loading never raises
anything but `KitError`, whose message names the file and line of the problem."""

from __future__ import annotations

import importlib.util
import inspect
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from playbooks.base import Playbook


class KitError(Exception):
    """A playbook the kit cannot load or use; the message is one line for the author."""


@dataclass(frozen=True)
class LoadedPlaybook:
    playbook: Playbook
    file: Path | None  # the module that defines it (None for a CACAO document)
    module: ModuleType | None = None


def load_playbook(ref: str | Path) -> LoadedPlaybook:
    path = Path(ref)
    if path.suffix == ".json":
        return _load_cacao(path)
    if path.is_dir():
        path = path / "graph.py"
        if not path.is_file():
            raise KitError(f"{ref}: a playbook folder holds graph.py, and this one does not")
    if path.suffix == ".py":
        if not path.is_file():
            raise KitError(f"{path}: no such file")
        module = import_file(path)
        return LoadedPlaybook(playbook_of(module, path), path.resolve(), module)
    return _registered(str(ref))


def _registered(playbook_id: str) -> LoadedPlaybook:
    from playbooks.registry import UnknownPlaybook, get_playbook, registered_playbooks

    try:
        playbook = get_playbook(playbook_id)
    except UnknownPlaybook:
        known = ", ".join(p.id for p in registered_playbooks())
        raise KitError(
            f"no playbook {playbook_id!r}: not a registered id ({known}), a folder, a .py or a"
            " CACAO .json file"
        ) from None
    module = sys.modules.get(getattr(playbook.build, "__module__", ""), None)
    source = inspect.getsourcefile(playbook.build) if module is not None else None
    return LoadedPlaybook(playbook, Path(source) if source else None, module)


def _load_cacao(path: Path) -> LoadedPlaybook:
    from playbooks.cacao.document import CacaoError
    from playbooks.cacao.interpret import load_cacao_playbook

    try:
        return LoadedPlaybook(load_cacao_playbook(path), None)
    except CacaoError as error:
        raise KitError(str(error)) from None


def import_file(path: Path) -> ModuleType:
    """Import a playbook module from its file, under a name of its own (a folder outside the
    `playbooks` package need not be importable); an error names the line that raised it."""
    dotted = _dotted_name(path)
    if dotted is not None:
        try:
            return importlib.import_module(dotted)
        except SyntaxError as error:
            raise KitError(f"{error.filename or path}:{error.lineno}: {error.msg}") from None
        except Exception as error:  # the author's module raised while importing: say where
            raise KitError(f"{where(error, path)}: {type(error).__name__}: {error}") from None
    name = f"garrison_playbook_{path.resolve().parent.name}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise KitError(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        sys.modules.pop(name, None)
        raise KitError(f"{error.filename or path}:{error.lineno}: {error.msg}") from None
    except Exception as error:  # the author's module raised while importing: say where
        sys.modules.pop(name, None)
        raise KitError(f"{where(error, path)}: {type(error).__name__}: {error}") from None
    return module


def _dotted_name(path: Path) -> str | None:
    """`playbooks.x.graph` for a module inside a package importable from `sys.path` (its classes
    are then the ones the checkpoint allow-list holds), else None."""
    path = path.resolve()
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    roots = {Path(entry or ".").resolve() for entry in sys.path}
    if len(parts) < 2 or folder not in roots:
        return None
    spec = importlib.util.find_spec(parts[0])
    origin = Path(spec.origin).resolve().parent if spec and spec.origin else None
    return ".".join(parts) if origin == folder / parts[0] else None


def where(error: BaseException, path: Path) -> str:
    """`file:line` of the deepest frame of `error` in `path` (else its deepest frame)."""
    frames = traceback.extract_tb(error.__traceback__)
    mine = [f for f in frames if Path(f.filename).resolve() == path.resolve()]
    frame = (mine or frames or [None])[-1]
    return f"{frame.filename}:{frame.lineno}" if frame is not None else str(path)


def playbook_of(module: ModuleType, path: Path) -> Playbook:
    playbook = getattr(module, "PLAYBOOK", None)
    if not isinstance(playbook, Playbook):
        raise KitError(f"{path}:1: defines no PLAYBOOK = Playbook(...)")
    return playbook
