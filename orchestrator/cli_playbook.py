"""`garrison playbook new|list|show|validate|dry-run|export|import`: the playbook authors' kit
(orchestrator/playbook_kit, playbooks/cacao). Light to import like every `cli*` module: LangGraph,
the agents and the playbooks are imported inside the commands."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from orchestrator.cli_common import fail, out

if TYPE_CHECKING:
    from orchestrator.playbook_kit.loading import LoadedPlaybook

playbook_app = typer.Typer(
    help="Playbook authoring: scaffold, list, show, validate, dry-run, test, CACAO export/import.",
    no_args_is_help=True,
)

NAME_HELP = "A registered playbook id, a playbook folder, its graph.py, or a CACAO .json file."


def _load(ref: str) -> LoadedPlaybook:
    from orchestrator.playbook_kit.loading import KitError, load_playbook

    try:
        return load_playbook(ref)
    except KitError as error:
        fail(str(error))


@playbook_app.command("new")
def playbook_new(
    name: Annotated[str, typer.Argument(help="The playbook id: lower case, digits and _.")],
    directory: Annotated[Path, typer.Option("--dir", help="Where playbook packages live.")] = Path(
        "playbooks"
    ),
    tests: Annotated[Path, typer.Option(help="Where its test goes.")] = Path("tests/playbooks"),
    category: Annotated[str, typer.Option(help="The incident category it handles.")] = (
        "command_and_control"
    ),
) -> None:
    """Scaffold a playbook package (graph.py, README.md, __init__.py) and its pytest test."""
    from orchestrator.playbook_kit.loading import KitError
    from orchestrator.playbook_kit.scaffold import scaffold
    from tools.models import Category

    try:
        chosen = Category(category)
    except ValueError:
        fail(f"no category {category!r}: one of {', '.join(c.value for c in Category)}")
    try:
        made = scaffold(name, directory, tests, chosen)
    except KitError as error:
        fail(str(error))
    for path in made.files:
        out.print(f"wrote {path}", markup=False, highlight=False)
    out.print(
        f"next: edit {made.package / 'graph.py'}, then `garrison playbook validate {made.package}`",
        markup=False,
        highlight=False,
    )


@playbook_app.command("list")
def playbook_list() -> None:
    """The registered playbooks, their categories and the action kinds they may propose."""
    from playbooks.registry import registered_playbooks

    table = Table("id", "categories", "may propose", "title", box=None)
    for playbook in registered_playbooks():
        table.add_row(
            playbook.id,
            ", ".join(sorted(c.value for c in playbook.categories)),
            ", ".join(sorted(k.value for k in playbook.allowed_actions)) or "-",
            playbook.title,
        )
    out.print(table)


@playbook_app.command("show")
def playbook_show(
    name: Annotated[str, typer.Argument(help=NAME_HELP)],
    png: Annotated[Path | None, typer.Option("--png", help="Also draw the graph here.")] = None,
    svg: Annotated[Path | None, typer.Option("--svg", help="Also draw the graph here.")] = None,
) -> None:
    """The graph as Mermaid (and PNG/SVG when an offline renderer is installed) and its actions."""
    from orchestrator.playbook_kit.loading import KitError
    from orchestrator.playbook_kit.show import action_rows, mermaid, render

    playbook = _load(name).playbook
    out.print(f"{playbook.id}: {playbook.title}", markup=False, highlight=False)
    out.print("categories: " + ", ".join(sorted(c.value for c in playbook.categories)))
    print(mermaid(playbook))
    table = Table("may propose", "inverse", box=None)
    for kind, inverse in action_rows(playbook):
        table.add_row(kind, inverse)
    out.print(table if playbook.allowed_actions else "may propose: nothing")
    for target in (png, svg):
        if target is not None:
            try:
                render(playbook, target)
            except KitError as error:
                fail(str(error))
            out.print(f"wrote {target}", markup=False, highlight=False)


@playbook_app.command("validate")
def playbook_validate(
    path: Annotated[
        Path | None,
        typer.Argument(help="A playbook folder, graph.py or CACAO .json; default: all registered."),
    ] = None,
) -> None:
    """Check a playbook: it imports and compiles, its action kinds exist, irreversible kinds are
    declared, it imports no vendor or orchestrator module, its state is checkpointable. Exit 1
    with one `file:line: problem` line each."""
    from orchestrator.playbook_kit.validate import validate_cacao, validate_path
    from playbooks.registry import registered_playbooks

    if path is not None and not path.exists():
        fail(f"{path}: no such file or folder")
    if path is None:
        targets = [_load(p.id).file for p in registered_playbooks()]
        paths = [t.parent for t in targets if t is not None]
    else:
        paths = [path]
    problems = [
        p for target in paths
        for p in (validate_cacao(target) if target.suffix == ".json" else validate_path(target))
    ]  # fmt: skip
    for problem in problems:
        out.print(str(problem), markup=False, highlight=False)
    if problems:
        raise typer.Exit(1)
    out.print(f"ok: {', '.join(str(p) for p in paths)}", markup=False, highlight=False)


@playbook_app.command("dry-run")
def playbook_dry_run(
    name: Annotated[str, typer.Argument(help=NAME_HELP)],
    incident: Annotated[str, typer.Argument(help="A recorded incident folder, or its id.")],
    approvals: Annotated[
        str, typer.Option(help="How approvals are answered: approve, deny or expire.")
    ] = "approve",
    corpus: Annotated[
        Path | None, typer.Option(help="Where incident ids are looked up (the committed corpus).")
    ] = None,
) -> None:
    """Run a playbook on a recorded incident with the in-memory twins and print every proposal
    with the policy's decision (risk, approval tier); nothing is executed."""
    from orchestrator.playbook_kit.dryrun import (
        DEFAULT_CORPUS,
        Approvals,
        dry_run,
        expected_coverage,
        find_incident,
    )
    from orchestrator.playbook_kit.loading import KitError

    try:
        mode = Approvals(approvals)
    except ValueError:
        fail(f"--approvals {approvals!r}: approve, deny or expire")
    playbook = _load(name).playbook
    try:
        loaded = find_incident(incident, corpus or DEFAULT_CORPUS)
    except KitError as error:
        fail(str(error))
    run = asyncio.run(dry_run(playbook, loaded, mode))
    triage = run.triage
    out.print(
        f"{loaded.spec.id}: triage {triage.verdict.value} {triage.category.value}"
        f" ({triage.confidence:.2f}); playbook {playbook.id}; approvals {mode.value}",
        markup=False,
        highlight=False,
    )
    table = Table("round", "action", "target", "decision", "risk", "tier", "graph told", box=None)
    for number, decided in enumerate(run.rounds, 1):
        for d in decided:
            table.add_row(
                str(number),
                d.proposal.action.kind.value,
                d.proposal.action.target,
                d.decision.outcome.value,
                str(d.decision.risk),
                d.decision.tier or "-",
                d.outcome.value,
            )
    out.print(table if run.decisions else "no proposals")
    hit, missed = expected_coverage(run)
    out.print(f"expected actions proposed: {len(hit)} of {len(hit) + len(missed)}")
    for line in missed:
        out.print(f"  missed: {line}", markup=False, highlight=False)
    out.print(run.summary if run.finished else "did not finish", markup=False, highlight=False)


@playbook_app.command("test")
def playbook_test(
    name: Annotated[str, typer.Argument(help=NAME_HELP)],
    incidents: Annotated[
        list[str] | None,
        typer.Argument(help="Incident folders or ids; default: the corpus's of its categories."),
    ] = None,
    approvals: Annotated[str, typer.Option(help="approve, deny or expire.")] = "approve",
) -> None:
    """Dry-run a playbook on many recorded incidents and score it: the expected actions it
    proposed on each. Exit 1 when one was missed."""
    from orchestrator.playbook_kit.dryrun import (
        DEFAULT_CORPUS,
        Approvals,
        dry_run,
        expected_coverage,
        find_incident,
        incidents_for,
    )
    from orchestrator.playbook_kit.loading import KitError

    try:
        mode = Approvals(approvals)
    except ValueError:
        fail(f"--approvals {approvals!r}: approve, deny or expire")
    playbook = _load(name).playbook
    try:
        chosen = (
            [find_incident(i, DEFAULT_CORPUS) for i in incidents]
            if incidents
            else incidents_for(playbook)
        )
    except KitError as error:
        fail(str(error))
    if not chosen:
        fail(f"no recorded incident of {playbook.id}'s categories: name some")

    async def run_all() -> list[tuple[str, list[str], list[str], int]]:
        rows = []
        for loaded in chosen:
            run = await dry_run(playbook, loaded, mode)
            hit, missed = expected_coverage(run)
            rows.append((loaded.spec.id, hit, missed, len(run.decisions)))
        return rows

    table = Table("incident", "expected proposed", "proposals", "missed", box=None)
    missed_any = False
    for incident_id, hit, missed, proposals in asyncio.run(run_all()):
        missed_any = missed_any or bool(missed)
        table.add_row(
            incident_id, f"{len(hit)}/{len(hit) + len(missed)}", str(proposals), "; ".join(missed)
        )
    out.print(table)
    if missed_any:
        raise typer.Exit(1)


@playbook_app.command("export")
def playbook_export(
    name: Annotated[str, typer.Argument(help=NAME_HELP)],
    cacao: Annotated[bool, typer.Option("--cacao", help="As OASIS CACAO v2.0 JSON.")] = False,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Default: stdout.")] = None,
) -> None:
    """Write a playbook as a CACAO v2.0 document (Garrison's facts in its extension)."""
    from orchestrator.policy.model import load_policy
    from playbooks.cacao.document import CacaoError
    from playbooks.cacao.export import export_cacao

    if not cacao:
        fail("say the format: --cacao (the only one so far)")
    playbook = _load(name).playbook
    tiers = {str(k): v.model_dump(mode="json") for k, v in load_policy().tiers.items()}
    try:
        document = export_cacao(playbook, tiers)
    except CacaoError as error:
        fail(str(error))
    text = json.dumps(document, indent=2) + "\n"
    if output is None:
        print(text, end="")
        return
    output.write_text(text, encoding="utf-8")
    out.print(f"wrote {output}", markup=False, highlight=False)


@playbook_app.command("import")
def playbook_import(
    file: Annotated[Path, typer.Argument(help="A CACAO v2.0 playbook (.json).")],
    directory: Annotated[Path, typer.Option("--dir", help="Where playbook packages live.")] = Path(
        "playbooks"
    ),
    playbook_id: Annotated[str | None, typer.Option("--id", help="Its Garrison id.")] = None,
) -> None:
    """Check a CACAO playbook against the schema, build its graph, and write it as a playbook
    package that runs the document (graph.py loads playbook.cacao.json)."""
    from orchestrator.playbook_kit.cacao_files import write_package
    from orchestrator.playbook_kit.loading import KitError

    try:
        package, playbook = write_package(file, directory, playbook_id)
    except KitError as error:
        fail(str(error))
    out.print(
        f"wrote {package}: playbook {playbook.id}, may propose"
        f" {', '.join(sorted(k.value for k in playbook.allowed_actions)) or 'nothing'}",
        markup=False,
        highlight=False,
    )
