"""A CACAO v2.0 document as a Garrison playbook: a `StateGraph` built from its workflow.

Action steps that carry the Garrison extension's `node` run that node of the registered playbook
named there (only registered playbooks: a document never names code to load), and if-condition or
switch-condition steps carrying a `router` route with that playbook's router, so an exported
built-in imports back to the same graph. Other action steps propose the Garrison action kinds
their commands map to (`mapping.py`), parallel steps propose their branches' actions in one
round, and other conditions are evaluated over the playbook's variables. A document without the
Garrison extension investigates first and summarises last, like every built-in playbook.

Topology: START -> [investigate] -> the CACAO workflow's steps -> [summarise] -> END
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from langgraph.graph import END, START, StateGraph

from agents.models import ProposedAction
from playbooks.base import Playbook, PlaybookDeps, PlaybookState, propose
from playbooks.cacao import EXTENSION_ID
from playbooks.cacao.document import CacaoError, check_document, read_document
from playbooks.cacao.mapping import openc2_kind, resolve
from playbooks.common import investigate, summary_lines
from playbooks.registry import UnknownPlaybook, get_playbook
from tools.actions import ActionKind, TargetKind, parse_action, sample_action
from tools.models import Category

CONDITION = re.compile(r"^\[?\s*(__[A-Za-z0-9_]+__):value\s*(?:(=|!=)\s*'([^']*)')?\s*\]?$")
INVESTIGATE, SUMMARISE = "investigate", "summarise"


def load_cacao_playbook(path: Path, playbook_id: str | None = None) -> Playbook:
    return playbook_from_cacao(read_document(path), str(path), playbook_id)


def playbook_from_cacao(
    document: dict[str, Any], source: str = "CACAO document", playbook_id: str | None = None
) -> Playbook:
    check_document(document, source)
    plan = _Plan.of(document, source)
    return Playbook(
        id=playbook_id or plan.playbook_id,
        title=plan.title,
        categories=plan.categories,
        allowed_actions=plan.allowed,
        build=partial(_build, plan),
        irreversible=plan.irreversible,
    )


@dataclass
class _Plan:
    document: dict[str, Any]
    source: str
    garrison: dict[str, Any]
    playbook_id: str
    title: str
    categories: frozenset[Category]
    allowed: frozenset[ActionKind]
    irreversible: frozenset[ActionKind]
    names: dict[str, str] = field(default_factory=dict)  # step id -> node name

    @classmethod
    def of(cls, document: dict[str, Any], source: str) -> _Plan:
        garrison = document.get("playbook_extensions", {}).get(EXTENSION_ID, {})
        try:
            categories = frozenset(Category(c) for c in garrison.get("categories", []))
            declared = {ActionKind(k) for k in garrison.get("allowed_actions", [])}
            irreversible = frozenset(ActionKind(k) for k in garrison.get("irreversible", []))
        except ValueError as error:
            raise CacaoError(f"{source}: $.playbook_extensions.{EXTENSION_ID}: {error}") from None
        mapped = {
            found[0]
            for step in document["workflow"].values()
            for command in step.get("commands", [])
            if (found := openc2_kind(command)) is not None
        }
        allowed = frozenset(declared | mapped)
        if not garrison:
            irreversible = frozenset(k for k in allowed if sample_action(k).inverse() is None)
        plan = cls(
            document=document,
            source=source,
            garrison=garrison,
            playbook_id=garrison.get("playbook_id") or _slug(document["name"]),
            title=garrison.get("title") or document["name"],
            categories=categories,
            allowed=allowed,
            irreversible=irreversible,
        )
        plan.name_steps()
        plan.merge_parallel()
        plan.check_conditions()
        return plan

    def step(self, step_id: str) -> dict[str, Any]:
        return self.document["workflow"][step_id]

    def ext(self, step: dict[str, Any]) -> dict[str, Any]:
        return step.get("step_extensions", {}).get(EXTENSION_ID, {})

    def name_steps(self) -> None:
        taken = {INVESTIGATE, SUMMARISE} if not self.garrison else set()
        for step_id, step in self.document["workflow"].items():
            if step["type"] in ("start", "end") or "router" in self.ext(step):
                continue
            if step["type"] in ("while-condition", "playbook-action"):
                raise CacaoError(f"{self.source}: $.workflow.{step_id}: {step['type']} steps are"
                                 " not supported by Garrison's interpreter")  # fmt: skip
            node = self.ext(step).get("node", {}).get("name") or _slug(step.get("name") or step_id)
            while node in taken:
                node += "_"
            taken.add(node)
            self.names[step_id] = node

    def check_conditions(self) -> None:
        """Refuse, at import, a condition Garrison cannot evaluate (routers excepted)."""
        for step_id, step in self.document["workflow"].items():
            if step["type"] in ("if-condition", "switch-condition") and "router" not in self.ext(
                step
            ):
                _parsed(self, step_id)

    def merge_parallel(self) -> None:
        """A parallel step's branches run inside its node, in one round of proposals."""
        for step_id, step in self.document["workflow"].items():
            if step["type"] != "parallel":
                continue
            branches = step["next_steps"]
            joins = {self.step(b).get("on_completion") for b in branches}
            if (
                any(self.step(b)["type"] != "action" for b in branches)
                or joins == {None}
                or len(joins) != 1
            ):
                raise CacaoError(
                    f"{self.source}: $.workflow.{step_id}: Garrison runs a parallel step whose"
                    " branches are action steps that all continue at one step"
                )
            for branch in branches:
                self.names.pop(branch, None)

    def dest(self, step_id: str) -> str:
        step = self.step(step_id)
        if step["type"] == "end":
            return END if self.garrison else SUMMARISE
        if "router" in self.ext(step):
            raise CacaoError(f"{self.source}: $.workflow.{step_id}: a Garrison router step must"
                             " follow an action step")  # fmt: skip
        return self.names[step_id]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "step"


def _build(plan: _Plan, deps: PlaybookDeps) -> StateGraph[Any]:
    graph = StateGraph(PlaybookState)
    sources: dict[str, StateGraph[Any]] = {}

    def source(playbook_id: str) -> StateGraph[Any]:
        if playbook_id not in sources:
            try:
                registered = get_playbook(playbook_id)
            except UnknownPlaybook:
                raise CacaoError(f"{plan.source}: no registered playbook {playbook_id!r}") from None
            sources[playbook_id] = registered.build(deps)  # nodes bound to this playbook's deps
        return sources[playbook_id]

    workflow = plan.document["workflow"]
    first = plan.dest(workflow[plan.document["workflow_start"]]["on_completion"])
    if plan.garrison:
        graph.add_edge(START, first)
    else:
        graph.add_node(INVESTIGATE, partial(investigate, deps))
        graph.add_node(SUMMARISE, partial(_summarise, plan, deps))
        graph.add_edge(START, INVESTIGATE)
        graph.add_edge(INVESTIGATE, first)
        graph.add_edge(SUMMARISE, END)
    for step_id, node in plan.names.items():
        step = workflow[step_id]
        ref = plan.ext(step).get("node")
        if ref:
            graph.add_node(node, _node_of(source(ref["playbook"]), ref["name"], plan, step_id))
        elif step["type"] == "action":
            graph.add_node(node, partial(_act, plan, deps, [step_id]))
        elif step["type"] == "parallel":
            graph.add_node(node, partial(_act, plan, deps, _branches(plan, step_id)))
        else:
            graph.add_node(node, _noop)
        _wire(graph, plan, step_id, node, source)
    return graph


def _node_of(graph: StateGraph[Any], name: str, plan: _Plan, step_id: str) -> Any:
    if name not in graph.nodes:
        raise CacaoError(f"{plan.source}: $.workflow.{step_id}: no node {name!r} in its playbook")
    return graph.nodes[name].runnable


async def _noop(state: PlaybookState) -> dict[str, Any]:
    return {}


def _wire(
    graph: StateGraph[Any],
    plan: _Plan,
    step_id: str,
    node: str,
    source: Callable[[str], StateGraph[Any]],
) -> None:
    step = plan.step(step_id)
    if step["type"] == "parallel":
        graph.add_edge(node, plan.dest(plan.step(step["next_steps"][0])["on_completion"]))
        return
    if step["type"] in ("if-condition", "switch-condition"):
        test, ends = _condition(plan, step_id)
        graph.add_conditional_edges(node, test, ends)
        return
    nxt = step.get("on_completion") or step.get("on_success")
    if nxt is None:
        raise CacaoError(f"{plan.source}: $.workflow.{step_id}: no on_completion")
    router = plan.ext(plan.step(nxt)).get("router")
    if router:
        branch = source(router["playbook"]).branches.get(router["node"], {}).get(router["branch"])
        if branch is None:
            raise CacaoError(f"{plan.source}: $.workflow.{nxt}: no router {router['branch']!r}")
        graph.add_conditional_edges(node, branch.path, _router_ends(plan, nxt))
        return
    graph.add_edge(node, plan.dest(nxt))


def _router_ends(plan: _Plan, step_id: str) -> list[str]:
    step = plan.step(step_id)
    if step["type"] == "if-condition":
        return [plan.dest(step["on_true"]), plan.dest(step["on_false"])]
    return [plan.dest(s) for s in step["cases"].values()]


def _condition(plan: _Plan, step_id: str) -> tuple[Callable[[PlaybookState], str], list[str]]:
    step = plan.step(step_id)
    variables = plan.document.get("playbook_variables", {}) | step.get("step_variables", {})
    name, operator, literal = _parsed(plan, step_id)
    if step["type"] == "switch-condition":
        cases = {k: plan.dest(v) for k, v in step["cases"].items()}
        default = cases.get("default", next(iter(cases.values())))

        def switch(state: PlaybookState) -> str:
            values = resolve(f"{name}:value", variables, state)
            return next((cases[v] for v in values if v in cases), default)

        return switch, sorted(set(cases.values()))
    on_true = plan.dest(step["on_true"])
    otherwise = step.get("on_false") or step.get("on_completion")
    on_false = plan.dest(otherwise) if otherwise else (END if plan.garrison else SUMMARISE)

    def test(state: PlaybookState) -> str:
        values = resolve(f"{name}:value", variables, state)
        if operator == "=":
            holds = literal in values
        elif operator == "!=":
            holds = literal not in values
        else:
            holds = any(v and v.lower() != "false" for v in values)
        return on_true if holds else on_false

    return test, [on_true, on_false]


def _parsed(plan: _Plan, step_id: str) -> tuple[str, str | None, str | None]:
    step = plan.step(step_id)
    expression = step["condition"] if step["type"] == "if-condition" else step["switch"]
    match = CONDITION.match(expression.strip())
    if match is None:
        raise CacaoError(
            f"{plan.source}: $.workflow.{step_id}: condition {expression!r} is not one Garrison"
            " evaluates (`__name__:value`, `__name__:value = 'x'`, `__name__:value != 'x'`)"
        )
    name, operator, literal = match.groups()
    return name, operator, literal


def _branches(plan: _Plan, step_id: str) -> list[str]:
    return list(plan.step(step_id)["next_steps"])


async def _act(
    plan: _Plan, deps: PlaybookDeps, step_ids: list[str], state: PlaybookState
) -> dict[str, Any]:
    variables = plan.document.get("playbook_variables", {})
    proposals: dict[tuple[ActionKind, str], ProposedAction] = {}
    for step_id in step_ids:
        step = plan.step(step_id)
        why = (step.get("name") or step.get("description") or step_id)[:200]
        for command in step.get("commands", []):
            found = openc2_kind(command)
            if found is None:
                continue
            kind, value = found
            for target in _targets(kind, resolve(value, variables, state), state):
                action = parse_action(kind, target)
                proposals.setdefault(
                    (kind, target.lower()),
                    ProposedAction(action=action, rationale=why, evidence=[f"CACAO {step_id}"]),
                )
    return {"outcomes": propose(deps, list(proposals.values()))}


def _targets(kind: ActionKind, values: list[str], state: PlaybookState) -> list[str]:
    if sample_action(kind).target_kind is not TargetKind.FILE:
        return values
    report = state.get("report")
    hosts = report.compromised_assets if report is not None else []
    return [v if ":" in v else f"{host}:{v}" for v in values for host in hosts]


async def _summarise(plan: _Plan, deps: PlaybookDeps, state: PlaybookState) -> dict[str, Any]:
    manual = [
        step.get("name") or step_id
        for step_id, step in plan.document["workflow"].items()
        if any(c.get("type") == "manual" for c in step.get("commands", []))
    ]
    lines = [f"CACAO playbook {plan.document['name']}"]
    lines += summary_lines(state.get("report"), state.get("outcomes", []))
    if manual:
        lines.append("manual steps for a human: " + "; ".join(manual))
    return {"summary": "\n".join(lines)}
