"""`garrison playbook import`: a CACAO document becomes a playbook package whose graph.py runs it
(`playbooks.cacao.interpret`), after the schema check and a compile of the graph it builds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from orchestrator.playbook_kit.loading import KitError
from playbooks.base import Playbook, PlaybookDeps
from playbooks.cacao.document import CacaoError

DOCUMENT = "playbook.cacao.json"
GRAPH = '''"""{title}

Imported from a CACAO v2.0 document ({document}); `playbooks.cacao.interpret` builds the graph
from it. Edit the document, or export it again with `garrison playbook export ID --cacao`.
"""

from __future__ import annotations

from pathlib import Path

from playbooks.cacao.interpret import load_cacao_playbook

PLAYBOOK = load_cacao_playbook(Path(__file__).with_name("{document}"), {playbook_id!r})
'''


def load_checked(file: Path, playbook_id: str | None = None) -> Playbook:
    from playbooks.cacao.interpret import load_cacao_playbook

    try:
        playbook = load_cacao_playbook(file, playbook_id)
        playbook.build(PlaybookDeps(agents=None, playbook=playbook)).compile()  # type: ignore[arg-type]
    except CacaoError as error:
        raise KitError(str(error)) from None
    except ValueError as error:  # LangGraph refuses the graph the document describes
        raise KitError(f"{file}: the workflow does not make a graph: {error}") from None
    return playbook


def write_package(
    file: Path, directory: Path, playbook_id: str | None = None
) -> tuple[Path, Playbook]:
    if not file.is_file():
        raise KitError(f"{file}: no such file")
    playbook = load_checked(file, playbook_id)
    package = directory / playbook.id
    if package.exists():
        raise KitError(f"{package} exists: import under another id with --id")
    package.mkdir(parents=True)
    shutil.copyfile(file, package / DOCUMENT)
    (package / "__init__.py").write_text("", encoding="utf-8")
    title = json.loads(file.read_text(encoding="utf-8"))["name"].replace('"', "'")
    (package / "graph.py").write_text(
        GRAPH.format(title=title, document=DOCUMENT, playbook_id=playbook.id), encoding="utf-8"
    )
    return package, playbook
