"""Find, read and validate recorded incidents (`shared/spec/recorded-incident-v1.md`).

`load_all` never raises on a malformed incident: every defect becomes a `Problem` naming the file
and the field, so the `simulate` command can report someone else's broken folder in one line each
instead of a traceback. The telemetry is checked by one streaming pass, never loaded whole.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from simulations.spec import INCIDENT_ID_PATTERN, SCHEMA, RecordedIncident

INCIDENT_FILE = "incident.json"
TELEMETRY_FILE = "telemetry.jsonl.gz"
REQUIRED_EVENT_FIELDS = ("@timestamp", "host", "event_source")
_ID_RE = re.compile(INCIDENT_ID_PATTERN)


@dataclass(frozen=True)
class Problem:
    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}"


class IncidentError(Exception):
    """A folder that does not follow the format; carries every problem found in it."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class LoadedIncident:
    folder: Path
    spec: RecordedIncident

    @property
    def telemetry_path(self) -> Path:
        return self.folder / TELEMETRY_FILE

    def telemetry(self) -> Iterator[dict[str, object]]:
        """Stream the recorded events in file order (nothing when the file is absent)."""
        if not self.telemetry_path.is_file():
            return
        with gzip.open(self.telemetry_path, "rt", encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    event = json.loads(line)
                    if isinstance(event, dict):
                        yield event


@dataclass
class LoadResult:
    incidents: list[LoadedIncident] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def discover(paths: list[Path]) -> list[Path]:
    """Incident folders: each path is one (it holds incident.json) or a folder of them."""
    found: list[Path] = []
    for path in paths:
        if (path / INCIDENT_FILE).is_file() or not path.is_dir():
            found.append(path)
            continue
        children = sorted(
            p for p in path.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))
        )
        # A sub-folder without incident.json is reported, not skipped: it may be a broken incident.
        found.extend(children or [path])
    return found


def load_incident(folder: Path) -> RecordedIncident:
    """The validated incident in `folder`; raises `IncidentError` listing every problem."""
    spec, problems = _check(folder)
    if problems or spec is None:
        raise IncidentError(problems)
    return spec


def load_all(paths: list[Path]) -> LoadResult:
    result = LoadResult()
    for folder in discover(paths):
        spec, problems = _check(folder)
        result.problems.extend(problems)
        if spec is not None and not problems:
            result.incidents.append(LoadedIncident(folder=folder, spec=spec))
    return result


def _check(folder: Path) -> tuple[RecordedIncident | None, list[Problem]]:
    spec, problems = _read_spec(folder)
    if spec is None:
        return None, problems
    incident_file = str(folder / INCIDENT_FILE)
    if spec.id != folder.name:
        problems.append(
            Problem(
                incident_file, "id", f"{spec.id!r} differs from the folder name {folder.name!r}"
            )
        )
    lines, telemetry_problems = _check_telemetry(folder / TELEMETRY_FILE)
    problems.extend(telemetry_problems)
    for i, alert in enumerate(spec.alerts):
        for j, row in enumerate(alert.evidence):
            if row < 0 or row >= lines:
                problems.append(
                    Problem(
                        incident_file,
                        f"alerts[{i}].evidence[{j}]",
                        f"line {row} is beyond the telemetry ({lines} lines)",
                    )
                )
    return spec, problems


def _read_spec(folder: Path) -> tuple[RecordedIncident | None, list[Problem]]:
    path = folder / INCIDENT_FILE
    where = str(path)
    if not path.is_file():
        return None, [Problem(where, "", "missing (not a recorded incident folder)")]
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        return None, [
            Problem(where, "", f"bad JSON at line {error.lineno} col {error.colno}: {error.msg}")
        ]
    except (OSError, UnicodeDecodeError) as error:
        return None, [Problem(where, "", f"unreadable: {error}")]
    if not isinstance(raw, dict):
        return None, [Problem(where, "", "top level must be a JSON object")]
    if raw.get("schema") != SCHEMA:
        return None, [Problem(where, "schema", f"expected {SCHEMA!r}, got {raw.get('schema')!r}")]
    problems: list[Problem] = []
    raw_id = raw.get("id")
    if isinstance(raw_id, str) and not _ID_RE.match(raw_id):
        problems.append(Problem(where, "id", f"{raw_id!r} does not match {INCIDENT_ID_PATTERN}"))
    try:
        spec = RecordedIncident.model_validate(raw)
    except ValidationError as error:
        for detail in error.errors():
            field_path = format_loc(detail["loc"])
            if field_path == "id" and problems:
                continue  # already reported in plain words above
            problems.append(Problem(where, field_path, detail["msg"]))
        return None, problems
    return spec, problems


def format_loc(loc: tuple[int | str, ...]) -> str:
    """`("alerts", 3, "entities", "host")` -> `alerts[3].entities.host`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or "[" in str(part):
            continue  # validator/union tags pydantic adds to the location
        else:
            out += f".{part}" if out else str(part)
    return out


def _check_telemetry(path: Path) -> tuple[int, list[Problem]]:
    """Number of lines and the problems of the telemetry file (0 lines when it is absent)."""
    if not path.exists():
        return 0, []
    where = str(path)
    problems: list[Problem] = []
    count = 0
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for count, line in enumerate(lines, start=1):
                problem = _check_event(line)
                if problem is not None and len(problems) < 5:
                    problems.append(Problem(where, f"line {count - 1}", problem))
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as error:
        problems.append(Problem(where, "", f"unreadable gzip: {error}"))
    return count, problems


def _check_event(line: str) -> str | None:
    try:
        event = json.loads(line)
    except json.JSONDecodeError as error:
        return f"not JSON ({error.msg} at col {error.colno})"
    if not isinstance(event, dict):
        return "not a JSON object"
    missing = [name for name in REQUIRED_EVENT_FIELDS if name not in event]
    if missing:
        return f"missing {', '.join(missing)}"
    return None
