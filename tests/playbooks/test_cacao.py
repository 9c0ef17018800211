"""CACAO v2.0: every built-in playbook exports to a schema-valid document that imports back to the
same graph and proposes the same actions; a third-party document written from the
specification's examples runs on a recorded incident; bad documents are refused with the path."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.playbook_kit.testing import assert_proposes, proposals_of, run_on_incident
from playbooks.base import Playbook, PlaybookDeps
from playbooks.cacao.document import CacaoError, read_document, schema_problems
from playbooks.cacao.export import export_cacao
from playbooks.cacao.interpret import playbook_from_cacao
from playbooks.registry import get_playbook, registered_playbooks
from tools.actions import ActionKind

THIRD_PARTY = Path(__file__).parent / "data" / "cacao-contain-c2-beacon.json"
C2_INCIDENT = "otrf-empire-vbs-c2-ws5"
DANGLING = "end--5e264187-6a53-4b3e-b6c5-fe4d8b2d6999"


def shape(playbook: Playbook) -> dict[str, Any]:
    graph = playbook.build(PlaybookDeps(agents=None, playbook=playbook))  # type: ignore[arg-type]
    return {
        "nodes": sorted(graph.nodes),
        "edges": sorted((str(a), str(b)) for a, b in graph.edges),
        "branches": {
            str(src): {name: sorted(map(str, b.ends or {})) for name, b in spec.items()}
            for src, spec in graph.branches.items()
        },
        "mermaid": graph.compile().get_graph().draw_mermaid(),
        "facts": (playbook.id, playbook.title, playbook.categories, playbook.allowed_actions,
                  playbook.irreversible),
    }  # fmt: skip


@pytest.mark.parametrize("playbook", registered_playbooks(), ids=lambda p: p.id)
def test_export_then_import_gives_the_same_graph(playbook: Playbook) -> None:
    document = export_cacao(playbook)
    assert schema_problems(document) == []
    imported = playbook_from_cacao(json.loads(json.dumps(document)))

    assert shape(imported) == shape(playbook)
    assert export_cacao(imported) == document  # and again: a fixed point


async def test_imported_built_in_proposes_what_the_original_does() -> None:
    original = get_playbook("hands_on_keyboard")
    imported = playbook_from_cacao(export_cacao(original))

    before = await run_on_incident(original, C2_INCIDENT)
    after = await run_on_incident(imported, C2_INCIDENT)

    assert proposals_of(after) == proposals_of(before) != set()
    assert after.summary == before.summary


def test_export_carries_garrison_facts_in_the_extension() -> None:
    document = export_cacao(get_playbook("credential_access"), {"standard": {"sla_s": 900}})
    (extension,) = document["playbook_extensions"].values()
    (definition,) = document["extension_definitions"].values()

    assert definition["name"] == "garrison-playbook"
    assert extension["inverses"]["isolate_host"] == "release_host"
    assert extension["inverses"]["revoke_sessions"] is None
    assert "revoke_sessions" in extension["irreversible"]
    assert extension["approval_tiers"] == {"standard": {"sla_s": 900}}
    kinds = {step["type"] for step in document["workflow"].values()}
    assert kinds == {"start", "action", "if-condition", "end"}


async def test_third_party_document_runs_on_a_recorded_incident() -> None:
    document = read_document(THIRD_PARTY)
    assert "playbook_extensions" not in document  # nothing Garrison-specific in it

    run = await run_on_incident(THIRD_PARTY, C2_INCIDENT)

    assert run.finished
    assert_proposes(run, ActionKind.BLOCK_IP, "10.10.10.5")  # parallel branch, OpenC2 deny
    assert_proposes(run, ActionKind.ISOLATE_HOST, "WORKSTATION5")  # if-condition held
    assert "manual steps for a human: Notify the device owner" in run.summary


def _broken(edit: Any) -> dict[str, Any]:
    document = copy.deepcopy(read_document(THIRD_PARTY))
    edit(document)
    return document


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (lambda d: d.pop("workflow_start"), "workflow_start"),
        (lambda d: d.update(spec_version="cacao-1.0"), "$.spec_version"),
        (lambda d: d["workflow"].update({"step-1": {"type": "end"}}), "$.workflow"),
        (lambda d: d["workflow"][d["workflow_start"]].update(on_completion=DANGLING),
         "on_completion"),
        (lambda d: d["agent_definitions"].clear(), ".agent"),
    ],
    ids=["no-start", "version", "bad-step-id", "dangling-step", "undefined-agent"],
)  # fmt: skip
def test_invalid_documents_are_refused_with_the_path(edit: Any, where: str) -> None:
    with pytest.raises(CacaoError) as refused:
        playbook_from_cacao(_broken(edit), "doc.json")
    assert str(refused.value).startswith("doc.json: ")
    assert where in str(refused.value)


def test_condition_garrison_cannot_evaluate_is_refused_at_import() -> None:
    def edit(d: dict[str, Any]) -> None:
        step = d["workflow"]["if-condition--99b3f2e5-39b2-4e52-8319-1928c4d98165"]
        step["condition"] = "[ipv4-addr:value ISSUBSET '10.0.0.0/8']"

    with pytest.raises(CacaoError, match="is not one Garrison evaluates"):
        playbook_from_cacao(_broken(edit), "doc.json")
