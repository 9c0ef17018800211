"""The agents decide by rules that generalise: no identifier of a recording, host or account of
the committed corpus (simulations/incidents) appears in the agents' code or their knowledge files.
A rule that names `pandalab` or `WORKSTATION5` scores on the corpus and on nothing else.

The identifiers are collected from every incident's environment and truth (asset ids, hostnames
and owners; identity ids, split into domain and account; indicator domains and addresses; the
incident ids), without the names every Windows estate has (SYSTEM, Administrator, krbtgt...) and
tokens too short to be specific; then every `.py` and `.yaml` file under agents/ is searched for
them, case-insensitively, as whole words.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INCIDENTS = ROOT / "simulations" / "incidents"
SEARCHED = (ROOT / "agents",)
SUFFIXES = (".py", ".yaml", ".yml")
MIN_LENGTH = 4
# Names of every Windows estate, not of one recording.
GENERIC = frozenset(
    {
        "system", "administrator", "localhost", "krbtgt", "guest", "defaultaccount",
        "wdagutilityaccount", "nt authority", "local service", "network service",
        "anonymous logon", "localsystem", "builtin", "workgroup", "domain", "local", "users",
        "public", "windows", "admin", "user", "service",
    }
)  # fmt: skip


def _identity_parts(identity: str) -> Iterator[str]:
    parts = [part.rstrip("$") for part in re.split(r"[\\@]", identity)]
    if not any(part.strip().lower() in GENERIC for part in parts):
        yield identity  # `nt authority\krbtgt` is every domain's, not one recording's
    yield from parts


def corpus_identifiers(incidents: Path = INCIDENTS) -> dict[str, str]:
    """Identifier (lower case) -> the incident it was first seen in."""
    found: dict[str, str] = {}

    def add(values: Iterable[str | None], incident: str) -> None:
        for value in values:
            token = (value or "").strip().lower()
            if len(token) >= MIN_LENGTH and token not in GENERIC:
                found.setdefault(token, incident)

    for path in sorted(incidents.glob("*/incident.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        incident = document["id"]
        add([incident], incident)
        environment = document.get("environment") or {}
        for asset in environment.get("assets", []):
            add([asset.get("id"), asset.get("hostname"), asset.get("owner")], incident)
        for identity in environment.get("identities", []):
            add(_identity_parts(identity["id"]), incident)
        compromised = (document.get("truth") or {}).get("compromised") or {}
        add(compromised.get("assets", []), incident)
        for identity in compromised.get("identities", []):
            add(_identity_parts(identity), incident)
        indicators = compromised.get("indicators") or {}
        add(indicators.get("domains", []) + indicators.get("ips", []), incident)
    return found


def _pattern(tokens: Iterable[str]) -> re.Pattern[str]:
    words = "|".join(re.escape(t) for t in sorted(tokens, key=len, reverse=True))
    # a whole word: not inside a longer name, address or path component
    return re.compile(rf"(?<![\w.\-])(?:{words})(?![\w\-]|\.\w)", re.I)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def hits(identifiers: dict[str, str], roots: Iterable[Path] = SEARCHED) -> list[str]:
    pattern = _pattern(identifiers)
    found = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.suffix not in SUFFIXES or not path.is_file():
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                for match in pattern.finditer(line):
                    token = match.group(0).lower()
                    found.append(
                        f"{_shown(path)}:{number}: {match.group(0)!r} (from {identifiers[token]})"
                    )
    return found


def test_no_corpus_identifier_in_the_agents_code_or_knowledge() -> None:
    identifiers = corpus_identifiers()
    assert len(identifiers) > 100  # the corpus was read

    assert hits(identifiers) == []


def test_the_search_finds_an_identifier_as_a_word_and_only_as_a_word(tmp_path: Path) -> None:
    incident = tmp_path / "incidents" / "lab-case-1"
    incident.mkdir(parents=True)
    (incident / "incident.json").write_text(
        json.dumps(
            {
                "id": "lab-case-1",
                "environment": {
                    "assets": [{"id": "BOX042", "hostname": "box042.corp.example"}],
                    "identities": [{"id": "CORPX\\jane.roe"}, {"id": "nt authority\\system"}],
                },
                "truth": {"compromised": {"indicators": {"domains": ["evil.example"]}}},
            }
        ),
        encoding="utf-8",
    )
    code = tmp_path / "agents"
    code.mkdir()
    (code / "rules.py").write_text(
        "HOSTS = ('box042',)  # a rule keyed on a host\n"
        "SKIP = 'jane.roe.backup'  # a longer name: not the account\n"
        "X = 'Corpx\\\\Admin'\n"
        "SYSTEM = 'nt authority\\\\system'  # every estate has it\n",
        encoding="utf-8",
    )

    identifiers = corpus_identifiers(tmp_path / "incidents")
    found = hits(identifiers, [code])

    assert "system" not in identifiers and "nt authority" not in identifiers
    assert [f.split(": ", 1)[1].split(" (")[0] for f in found] == ["'box042'", "'Corpx'"]
