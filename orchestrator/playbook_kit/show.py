"""`garrison playbook show`: the graph as Mermaid text (LangGraph's own `draw_mermaid`), as an
image drawn offline (LangGraph's `draw_png` through pygraphviz, or the `graphviz` package's `dot`
for SVG; LangGraph's Mermaid-to-PNG calls a web service and is not used), and the actions the
playbook may propose with their inverses."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

from orchestrator.playbook_kit.loading import KitError
from playbooks.base import Playbook, PlaybookDeps
from tools.actions import sample_action


def drawable(playbook: Playbook) -> Any:
    """The compiled graph's drawable form (no dependencies are needed to draw it)."""
    graph = playbook.build(PlaybookDeps(agents=None, playbook=playbook))  # type: ignore[arg-type]
    return graph.compile().get_graph()


def mermaid(playbook: Playbook) -> str:
    return drawable(playbook).draw_mermaid()


def action_rows(playbook: Playbook) -> list[tuple[str, str]]:
    """(kind, inverse or `irreversible`) for every kind the playbook may propose."""
    rows = []
    for kind in sorted(playbook.allowed_actions):
        inverse = sample_action(kind).inverse()
        rows.append((kind.value, inverse.kind.value if inverse else "irreversible"))
    return rows


def render(playbook: Playbook, target: Path) -> None:
    """Draw the graph to `target` (.png or .svg) offline, or say what to install."""
    fmt = target.suffix.lstrip(".").lower()
    if fmt not in ("png", "svg"):
        raise KitError(f"{target}: draw to a .png or .svg file")
    graph = drawable(playbook)
    if fmt == "png":
        try:
            graph.draw_png(str(target))  # LangGraph's renderer, through pygraphviz
            return
        except ImportError:
            pass
    if shutil.which("dot") is not None and importlib.util.find_spec("graphviz") is not None:
        _dot(graph, target)
        return
    raise KitError(
        f"no offline renderer for {fmt}: install Graphviz (`apt-get install graphviz`, then"
        " `pip install pygraphviz` or `pip install graphviz`); `garrison playbook show NAME`"
        " prints the Mermaid text, which GitHub and most editors draw"
    )


def _dot(graph: Any, target: Path) -> None:
    import graphviz  # type: ignore[import-not-found]  # optional: pip install graphviz

    dot = graphviz.Digraph()
    for node in graph.nodes:
        dot.node(node)
    for edge in graph.edges:
        dot.edge(edge.source, edge.target, style="dashed" if edge.conditional else "solid")
    target.write_bytes(dot.pipe(format=target.suffix.lstrip(".")))
