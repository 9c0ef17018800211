"""A Garrison playbook as a CACAO v2.0 document: one action step per graph node, an if-condition
(two ways) or switch-condition (more) step per conditional edge, a parallel step where a node fans
out, the start and end steps, the Garrison agent, one target per kind of thing the playbook may act
on, and the entity lists its nodes read as external variables. Garrison's facts travel in the
`EXTENSION_ID` extension (docs/cacao.md): identifiers are derived from the playbook id and the
node names, so exporting twice writes the same document."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from langgraph.graph import END, START, StateGraph

from playbooks.base import Playbook, PlaybookDeps
from playbooks.cacao import EXTENSION_ID, EXTENSION_SCHEMA, EXTENSION_VERSION, GARRISON_IDENTITY
from playbooks.cacao.document import CacaoError, check_document
from playbooks.cacao.mapping import ENTITY_VARIABLES, TARGET_CATEGORY, inverse_kind
from tools.actions import sample_action

AGENT_ID = "security-category--7d4c0b8e-2a61-4f0e-b1b8-0e9d5a3c6f21"
EPOCH = "2026-01-01T00:00:00.000Z"  # fixed: the document is a pure function of the playbook
_NAMESPACE = uuid.UUID("3c0f6a52-1d7e-4b8a-9e25-6a4d2f1b7c90")


def step_id(playbook_id: str, kind: str, name: str) -> str:
    return f"{kind}--{uuid.uuid5(_NAMESPACE, f'{playbook_id}/{kind}/{name}')}"


def export_cacao(playbook: Playbook, tiers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The CACAO document of `playbook`; `tiers` are the deployment's approval tiers (the policy's
    `tiers`), carried for the reader: the policy still decides every proposal at run time."""
    graph = playbook.build(PlaybookDeps(agents=None, playbook=playbook))  # type: ignore[arg-type]
    workflow = _Workflow(playbook.id, graph).steps()
    targets = _targets(playbook)
    document: dict[str, Any] = {
        "type": "playbook",
        "spec_version": "cacao-2.0",
        "id": step_id(playbook.id, "playbook", playbook.id),
        "name": playbook.title,
        "description": f"Garrison playbook {playbook.id}: {playbook.title}",
        "playbook_types": ["remediation"],
        "playbook_activities": ["analyze-collected-data", "contain-system"],
        "created_by": GARRISON_IDENTITY,
        "created": EPOCH,
        "modified": EPOCH,
        "labels": sorted(c.value for c in playbook.categories) or ["garrison"],
        "playbook_variables": dict(ENTITY_VARIABLES) | _router_variables(workflow),
        "workflow_start": step_id(playbook.id, "start", START),
        "workflow": workflow,
        "agent_definitions": {
            AGENT_ID: {
                "type": "security-category",
                "name": "Garrison",
                "description": "Garrison proposes; its policy gate and approvers decide",
                "category": ["soar"],
            }
        },
        "extension_definitions": {
            EXTENSION_ID: {
                "type": "extension-definition",
                "name": "garrison-playbook",
                "description": "Garrison graph nodes, routers, action kinds, inverses, tiers",
                "created_by": GARRISON_IDENTITY,
                "schema": EXTENSION_SCHEMA,
                "version": EXTENSION_VERSION,
            }
        },
        "playbook_extensions": {
            EXTENSION_ID: {
                "playbook_id": playbook.id,
                "title": playbook.title,
                "categories": sorted(c.value for c in playbook.categories),
                "allowed_actions": sorted(k.value for k in playbook.allowed_actions),
                "inverses": {k.value: inverse_kind(k) for k in sorted(playbook.allowed_actions)},
                "irreversible": sorted(k.value for k in playbook.irreversible),
                "approval_tiers": dict(tiers or {}),
            }
        },
    }
    if targets:
        document["target_definitions"] = targets
    check_document(document, f"export of {playbook.id}")
    return document


def _targets(playbook: Playbook) -> dict[str, Any]:
    kinds = sorted({sample_action(k).target_kind for k in playbook.allowed_actions})
    return {
        step_id(playbook.id, "security-category", kind.value): {
            "type": "security-category",
            "name": f"{kind.value} targets",
            "description": f"the {kind.value}s Garrison may act on, from the incident's entities",
            "category": [TARGET_CATEGORY[kind]],
        }
        for kind in kinds
    }


def _router_variables(workflow: dict[str, Any]) -> dict[str, Any]:
    names = {
        step["step_extensions"][EXTENSION_ID]["router"]["variable"]
        for step in workflow.values()
        if "router" in step.get("step_extensions", {}).get(EXTENSION_ID, {})
    }
    return {
        name: {
            "type": "string",
            "description": "the step a Garrison router chose",
            "external": True,
        }
        for name in sorted(names)
    }


class _Workflow:
    def __init__(self, playbook_id: str, graph: StateGraph[Any]) -> None:
        self.pid = playbook_id
        self.graph = graph
        if getattr(graph, "waiting_edges", None):
            raise CacaoError(f"{playbook_id}: edges that wait on several nodes have no CACAO form")

    def id_of(self, node: str) -> str:
        if node == END:
            return step_id(self.pid, "end", END)
        return step_id(self.pid, "action", node)

    def steps(self) -> dict[str, Any]:
        steps: dict[str, Any] = {
            step_id(self.pid, "start", START): {
                "type": "start",
                "name": "start",
                "on_completion": self._next(START, steps_out := {}),
            },
            self.id_of(END): {"type": "end", "name": "end"},
        }
        for name, spec in self.graph.nodes.items():
            function = getattr(getattr(spec.runnable, "func", None), "func", None)
            doc = ((function.__doc__ if function else None) or "").strip().splitlines()
            about = doc[0] if doc else f"Garrison step {name}"
            steps[self.id_of(name)] = {
                "type": "action",
                "name": name,
                "description": about,
                "commands": [{"type": "manual", "command": f"Garrison node {name}: {about}"}],
                "agent": AGENT_ID,
                "on_completion": self._next(name, steps_out),
                "step_extensions": {EXTENSION_ID: {"node": {"playbook": self.pid, "name": name}}},
            }
        return steps | steps_out

    def _next(self, node: str, extra: dict[str, Any]) -> str:
        plain = sorted(dst for src, dst in self.graph.edges if src == node)
        branches = self.graph.branches.get(node, {})
        if (branches and plain) or len(branches) > 1:
            raise CacaoError(f"{self.pid}: node {node} has both edges and branches")
        if branches:
            ((branch_name, branch),) = branches.items()
            return self._branch(node, branch_name, branch, extra)
        if not plain:
            raise CacaoError(f"{self.pid}: node {node} leads nowhere")
        if len(plain) == 1:
            return self.id_of(plain[0])
        fan = step_id(self.pid, "parallel", node)
        extra[fan] = {
            "type": "parallel",
            "name": f"after {node}",
            "next_steps": [self.id_of(d) for d in plain],
        }
        return fan

    def _branch(self, node: str, name: str, branch: Any, extra: dict[str, Any]) -> str:
        if not branch.ends:
            raise CacaoError(
                f"{self.pid}: the router after {node} names no destinations"
                " (pass them to add_conditional_edges)"
            )
        ends = [str(e) for e in dict.fromkeys(branch.ends.values())]
        variable = f"__route_after_{node}__"
        ext = {EXTENSION_ID: {"router": {"playbook": self.pid, "node": node, "branch": name,
                                         "variable": variable}}}  # fmt: skip
        if len(ends) == 2:
            sid = step_id(self.pid, "if-condition", node)
            extra[sid] = {
                "type": "if-condition",
                "name": f"route after {node}",
                "condition": f"{variable}:value = '{ends[0]}'",
                "on_true": self.id_of(ends[0]),
                "on_false": self.id_of(ends[1]),
                "step_extensions": ext,
            }
            return sid
        sid = step_id(self.pid, "switch-condition", node)
        extra[sid] = {
            "type": "switch-condition",
            "name": f"route after {node}",
            "switch": f"{variable}:value",
            "cases": {end: self.id_of(end) for end in ends},
            "step_extensions": ext,
        }
        return sid
