"""Agent graphs compiled once per process, per topology.

Compiling a LangGraph graph (its channels, its schema's type hints) cost more than the rules it
runs on a small incident, and every triage, investigation and remediation compiled its own. The
topology depends only on whether a model is configured; what varies per run (the tools of the
incident, the retry budget of its reads, the model) is in the nodes `make_nodes(deps)` builds for
that run, which the compiled graph's steps call through the run's config. So a compiled graph
holds no state of any incident, and two runs at once each call their own nodes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from langchain_core.runnables import RunnableConfig

NODES = "garrison_nodes"  # the config key of the run's own nodes

Node = Callable[[Any], Awaitable[dict[str, Any]]]


class GraphStep(Protocol):
    """A node of a compiled graph: LangGraph hands it the run's config."""

    def __call__(self, state: Any, config: RunnableConfig) -> Awaitable[dict[str, Any]]: ...


def step(name: str) -> GraphStep:
    """A graph step that runs the node `name` of the run (`with_nodes`)."""

    async def run(state: Any, config: RunnableConfig) -> dict[str, Any]:
        nodes: Mapping[str, Node] = config.get("configurable", {})[NODES]
        return await nodes[name](state)

    run.__name__ = name
    return run


def with_nodes(nodes: Mapping[str, Node]) -> RunnableConfig:
    """The config of one run: the nodes its steps call."""
    return {"configurable": {NODES: nodes}}
