"""`garrison corpus`: build recorded incidents from OTRF or OCSF data, and check a corpus.

`import-otrf` and `import-ocsf` are thin composition roots over the importers; `check` validates
every incident folder with the loader and the reviewed labels against them and against the
labelling rules of the format. Bad input ends with one line per problem (file, field path, what is
wrong) and exit status 2, never a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.cli_common import err, fail, out

if TYPE_CHECKING:  # imported where used: `garrison --help` loads this module
    from simulations.importers.otrf.alerts import HitSource
    from simulations.loader import Problem
    from simulations.spec import ExpectedAction, Truth

corpus_app = typer.Typer(
    help="Build and check the recorded-incident corpus.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9_-]{1,63}\.)+[a-z0-9-]{1,63}\.?$", re.IGNORECASE)


@corpus_app.command("import-otrf")
def import_otrf(
    datasets: Annotated[
        list[Path], typer.Argument(help="Folders of OTRF datasets, or dataset folders themselves.")
    ],
    rules: Annotated[
        Path,
        typer.Option(
            "--rules",
            help="Sigma rules run over the events: a tarball, a folder of .yml (or the folder "
            "holding sigma-rules.tar.gz and its licence).",
        ),
    ],
    labels: Annotated[
        list[Path] | None, typer.Option("--labels", help="Reviewed labels; repeatable.")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where the incident folders go.")
    ] = None,
    list_groups: Annotated[
        bool,
        typer.Option(
            "--list-groups",
            help="Print each recording's alert groups (key, time span, hosts, users, alerts, "
            "rules) and import nothing: what a labeller needs before any label exists.",
        ),
    ] = False,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Incident id to (re)build; repeatable.")
    ] = None,
    reference_hits: Annotated[
        bool,
        typer.Option(
            "--reference-hits",
            help="Use each recording's precomputed sigma_alerts.jsonl instead of running the "
            "rules (to check the engine against it).",
        ),
    ] = False,
    sigma_cache: Annotated[
        Path | None,
        typer.Option(help="Compiled-rules cache (default $GARRISON_SIGMA_CACHE or ~/.cache)."),
    ] = None,
    window: Annotated[
        float,
        typer.Option("--window", min=0, help="Minutes between related hits of one incident."),
    ] = 30.0,
) -> None:
    """Import labelled incidents from OTRF Security-Datasets recordings: Sigma rules run over the
    raw events (compiled once and cached), the matched events grouped into incidents by shared
    host or person within a window; each label names one group, the others are listed. With
    --list-groups, no label is read and nothing is written: each group is printed."""
    from simulations.importers.otrf.importer import LabelProblems, run

    if list_groups:
        _list_otrf_groups(datasets, _otrf_hits(rules, reference_hits, sigma_cache), window)
        return
    if not labels or out_dir is None:
        fail("--labels and --out are required to import (or --list-groups to list the groups)")
    plan = _otrf_plan(datasets, labels, set(only or []))
    hits = _otrf_hits(rules, reference_hits, sigma_cache)
    problems: list[str] = []
    for root, ids in plan:
        try:
            result = run(
                labels,
                root,
                out_dir,
                ids,
                _licence_folder(rules, root),
                hits,
                timedelta(minutes=window),
            )
        except LabelProblems as error:
            problems += error.problems
            result = error.result
        except (OSError, ValueError, KeyError) as error:
            fail(f"import from {root} failed: {_one_line(error)}")
        for line in result.unlabelled:
            err.print(f"unlabelled group: {line}", markup=False, highlight=False)
        for folder in result.written:
            out.print(str(folder), markup=False, highlight=False)
    if len(plan) > 1:
        _otrf_attribution(plan, labels, out_dir, rules)
    for problem in problems:
        err.print(f"label: {problem}", markup=False, highlight=False)
    if problems:
        raise typer.Exit(2)


@corpus_app.command("import-ocsf")
def import_ocsf(
    findings: Annotated[Path, typer.Argument(help="OCSF findings (2004/2001), JSON lines.")],
    labels: Annotated[Path, typer.Option("--labels", help="Reviewed labels of the groups.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where the incident folders go.")],
    events: Annotated[
        Path | None,
        typer.Option("--events", help="Raw events: OCSF event classes or flat Windows events."),
    ] = None,
    window: Annotated[
        float,
        typer.Option("--window", min=0, help="Minutes between related findings of one incident."),
    ] = 30.0,
) -> None:
    """Import labelled groups of OCSF findings (same host or user within a window) as incidents."""
    from simulations.importers.ocsf import InputError, run

    try:
        result = run(findings, events, labels, out_dir, timedelta(minutes=window))
    except InputError as error:
        for problem in error.problems:
            err.print(str(problem), markup=False, highlight=False)
        for group in error.groups:
            err.print(f"group: {group}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    except OSError as error:
        fail(f"{out_dir}: cannot write: {error.strerror or error}")
    for line in [*result.unlabelled, *result.notices]:
        err.print(line, markup=False, highlight=False)
    for incident, folder in zip(result.incidents, result.written, strict=True):
        lines = {row for alert in incident.alerts for row in alert.evidence}
        out.print(
            f"{folder} ({len(incident.alerts)} alerts, {len(lines)} evidence events)",
            markup=False,
            highlight=False,
        )
    if result.attribution is not None:
        out.print(f"attribution: {result.attribution}", markup=False, highlight=False)


@corpus_app.command("check")
def check(
    folder: Annotated[Path, typer.Argument(help="A folder of incident folders.")],
    labels: Annotated[
        list[Path] | None, typer.Option("--labels", help="Labels files to check; repeatable.")
    ] = None,
    datasets: Annotated[
        list[Path] | None,
        typer.Option("--datasets", help="OTRF dataset folders the labels must name; repeatable."),
    ] = None,
) -> None:
    """Validate every incident folder, the labels, and that incidents and labels pair up."""
    problems, incidents, entries = check_corpus(folder, labels or [], datasets or [])
    for problem in problems:
        err.print(str(problem), markup=False, highlight=False)
    files = len(labels or [])
    out.print(
        f"checked {incidents} incidents and {entries} labels in {files} file(s):"
        f" {len(problems)} problem(s)",
        markup=False,
        highlight=False,
    )
    raise typer.Exit(2 if problems else 0)


# --- the check ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelEntry:
    file: Path
    index: int
    id: str
    dataset: str | None
    truth: Truth

    @property
    def where(self) -> str:
        return f"incidents[{self.index}]"


def check_corpus(
    folder: Path, label_files: list[Path], datasets: list[Path]
) -> tuple[list[Problem], int, int]:
    """Every problem of the corpus in `folder` and its labels; the numbers of incident folders and
    labels seen."""
    from simulations.loader import INCIDENT_FILE, Problem, discover, load_all

    folders = discover([folder]) if folder.is_dir() else []
    loaded = load_all([folder]) if folders else None
    problems = (
        list(loaded.problems) if loaded else [Problem(str(folder), "", "no incident folders")]
    )
    entries: list[LabelEntry] = []
    for path in label_files:
        found, file_problems = read_label_entries(path)
        entries += found
        problems += file_problems
    problems += _label_problems(entries, datasets)
    labelled = {e.id: e for e in entries}
    if label_files:
        names = {p.name for p in folders}
        problems += [
            Problem(str(e.file), f"{e.where}.id", f"{e.id!r}: no incident folder in {folder}")
            for e in entries
            if e.id not in names
        ]
        problems += [
            Problem(str(p / INCIDENT_FILE), "id", f"{p.name!r} has no label")
            for p in folders
            if p.name not in labelled
        ]
    for incident in loaded.incidents if loaded else []:
        where = str(incident.folder / INCIDENT_FILE)
        label = labelled.get(incident.spec.id)
        if label is not None and label.truth == incident.spec.truth:
            continue  # its truth was checked as the label's
        if label is not None:
            message = f"differs from its label in {label.file} (import the incident again)"
            problems.append(Problem(where, "truth", message))
        problems += [Problem(where, f, m) for f, m in truth_problems(incident.spec.truth, "truth")]
    return problems, len(folders), len(entries)


def read_label_entries(path: Path) -> tuple[list[LabelEntry], list[Problem]]:
    """The labels of an OTRF or an OCSF labels file (an OCSF one has a top-level `source`)."""
    import yaml
    from pydantic import BaseModel, ValidationError

    from simulations.importers.ocsf.labels import OcsfLabelsFile
    from simulations.importers.otrf.labels import LabelsFile
    from simulations.loader import Problem, format_loc

    where = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        return [], [Problem(where, "", f"unreadable: {error.strerror or error}")]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        return [], [Problem(where, "", f"bad YAML{at}: {getattr(error, 'problem', error)}")]
    model: type[BaseModel] = (
        OcsfLabelsFile if isinstance(raw, dict) and "source" in raw else LabelsFile
    )
    try:
        parsed = model.model_validate(raw)
    except ValidationError as error:
        return [], [Problem(where, format_loc(d["loc"]), d["msg"]) for d in error.errors()]
    return [
        LabelEntry(path, i, label.id, getattr(label, "dataset", None), label.truth)
        for i, label in enumerate(getattr(parsed, "incidents", []))
    ], []


def _label_problems(entries: list[LabelEntry], datasets: list[Path]) -> list[Problem]:
    from simulations.loader import Problem

    problems: list[Problem] = []
    first: dict[str, LabelEntry] = {}
    for entry in entries:
        where = str(entry.file)
        if entry.id in first:
            other = first[entry.id]
            message = f"{entry.id!r} is also the id of {other.file} {other.where}"
            problems.append(Problem(where, f"{entry.where}.id", message))
        first.setdefault(entry.id, entry)
        if datasets and entry.dataset and _dataset_root(entry.dataset, datasets) is None:
            message = f"{entry.dataset!r} is in none of {', '.join(map(str, datasets))}"
            problems.append(Problem(where, f"{entry.where}.dataset", message))
        for field_path, message in truth_problems(entry.truth, f"{entry.where}.truth"):
            problems.append(Problem(where, field_path, message))
    return problems


def truth_problems(truth: Truth, at: str) -> list[tuple[str, str]]:
    """What the labelling rules of the format forbid in a valid-looking truth."""
    from simulations.matching import action_in
    from tools.models import Category, Verdict, is_ip

    found: list[tuple[str, str]] = []
    benign = truth.verdict is Verdict.BENIGN
    if benign != (truth.category is Category.BENIGN_ACTIVITY):
        found.append(
            (f"{at}.category", f"{truth.category.value} with verdict {truth.verdict.value}")
        )
    if benign:
        for name in ("expected_actions", "acceptable_actions"):
            if getattr(truth, name):
                found.append((f"{at}.{name}", "a benign incident has no actions"))
    for i, technique in enumerate(truth.techniques):
        if not TECHNIQUE.match(technique):
            found.append(
                (f"{at}.techniques[{i}]", f"{technique!r} is not an ATT&CK id (T1234.001)")
            )
    for i, ip in enumerate(truth.compromised.indicators.ips):
        if not is_ip(ip):
            found.append((f"{at}.compromised.indicators.ips[{i}]", f"{ip!r} is not an address"))
    for name in ("expected_actions", "acceptable_actions"):
        actions: list[ExpectedAction] = getattr(truth, name)
        for i, action in enumerate(actions):
            field_path = f"{at}.{name}[{i}].target"
            if problem := target_problem(action):
                found.append((field_path, problem))
            earlier = (
                actions[:i]
                if name == "expected_actions"
                else [*truth.expected_actions, *actions[:i]]
            )
            if action_in(action.kind, action.target, earlier):
                found.append((field_path, f"{action.kind.value} {action.target!r} is listed twice"))
    return found


def target_problem(action: ExpectedAction) -> str | None:
    """Why the target cannot be one of its kind (`<asset>:<pid>` for kill_process...), or None."""
    from simulations.matching import TARGET_KINDS
    from tools.actions import TargetKind
    from tools.models import is_ip

    target = action.target.strip()
    if not target:
        return "empty"
    match TARGET_KINDS[action.kind]:
        case TargetKind.PROCESS:
            asset, _, pid = target.partition(":")
            ok = bool(asset) and pid.isdigit()
            return None if ok else f"{target!r} is not <asset id>:<pid>"
        case TargetKind.FILE | TargetKind.ARTEFACT:
            asset, _, thing = target.partition(":")
            return None if asset and thing else f"{target!r} is not <asset id>:<what>"
        case TargetKind.IP:
            return None if is_ip(target) else f"{target!r} is not an IP address or network"
        case TargetKind.DOMAIN:
            return None if DOMAIN.match(target) else f"{target!r} is not a domain name"
        case TargetKind.ASSET | TargetKind.IDENTITY:
            return None if " " not in target else f"{target!r} holds a space"


# --- OTRF plumbing ------------------------------------------------------------------------------


def _otrf_hits(rules: Path, reference_hits: bool, sigma_cache: Path | None) -> HitSource:
    """The Sigma engine over --rules (compiled or from the cache), or the reference hits."""
    import os

    from simulations.importers.otrf.alerts import ReferenceHits
    from simulations.importers.otrf.importer import engine_hits
    from simulations.importers.sigma.rules import cache_dir_from

    if not rules.exists():
        fail(f"--rules {rules}: no such file or folder")
    if reference_hits:
        return ReferenceHits()
    bundled = rules / "sigma-rules.tar.gz"
    source = bundled if rules.is_dir() and bundled.is_file() else rules
    try:
        return engine_hits(source, cache_dir_from(os.environ, sigma_cache))
    except (OSError, ValueError) as error:
        fail(f"--rules {rules}: {_one_line(error)}")


def _list_otrf_groups(datasets: list[Path], hits: HitSource, window: float) -> None:
    """One line per alert group of every recording under `datasets` (fields split by " | ")."""
    from simulations.importers.otrf.listing import list_groups, recordings

    folders = [r for folder in datasets for r in recordings(folder)]
    if not folders:
        fail(f"no OTRF recording in {', '.join(map(str, datasets))}")
    for folder in folders:
        try:
            groups = list_groups(folder, hits, timedelta(minutes=window))
        except (OSError, ValueError, KeyError) as error:
            fail(f"listing {folder} failed: {_one_line(error)}")
        if not groups:
            out.print(f"{folder.name} | no Sigma hit", markup=False, highlight=False)
        for summary in groups:
            out.print(summary.line(), markup=False, highlight=False, soft_wrap=True)


def _otrf_plan(
    datasets: list[Path], labels: list[Path], only: set[str]
) -> list[tuple[Path, set[str]]]:
    """(folder of datasets, incident ids) per importer run; exits on a problem."""
    from simulations.importers.otrf.labels import read_labels
    from simulations.loader import Problem

    problems: list[Problem] = []
    by_root: dict[Path, set[str]] = {}
    for path in labels:
        entries, file_problems = read_label_entries(path)
        problems += file_problems
        if file_problems:
            continue
        for label in read_labels(path).incidents:
            index = next(e.index for e in entries if e.id == label.id)
            if only and label.id not in only:
                continue
            root = _dataset_root(label.dataset, datasets)
            if root is None:
                message = f"{label.dataset!r} is in none of {', '.join(map(str, datasets))}"
                problems.append(Problem(str(path), f"incidents[{index}].dataset", message))
                continue
            by_root.setdefault(root, set()).add(label.id)
    for problem in problems:
        err.print(str(problem), markup=False, highlight=False)
    if problems:
        raise typer.Exit(2)
    if not by_root:
        fail("no labelled incident to import")
    return sorted(by_root.items())


def _dataset_root(dataset: str, datasets: list[Path]) -> Path | None:
    """The folder holding `dataset`: a given folder that contains it, or the parent of a given
    folder that is it."""
    for folder in datasets:
        if (folder / dataset).is_dir():
            return folder
        if folder.name == dataset and folder.is_dir():
            return folder.parent
    return None


def _otrf_attribution(
    plan: list[tuple[Path, set[str]]], labels: list[Path], out_dir: Path, rules: Path | None
) -> None:
    """One `ATTRIBUTION.md` for the incidents of every run (each run writes only its own)."""
    from simulations.importers.otrf.attribution import recording, write_attribution
    from simulations.importers.otrf.labels import read_labels
    from simulations.loader import INCIDENT_FILE, load_incident

    every = [label for path in labels for label in read_labels(path).incidents]
    corpus = []
    for root, _ in plan:
        for label in every:
            if (out_dir / label.id / INCIDENT_FILE).is_file() and (root / label.dataset).is_dir():
                corpus.append(
                    (recording(label.id, root / label.dataset), load_incident(out_dir / label.id))
                )
    if not corpus:
        return
    root = plan[0][0]
    try:
        write_attribution(out_dir, corpus, root, _licence_folder(rules, root))
    except OSError as error:
        fail(f"{out_dir}: attribution not written: {_one_line(error)}")


def _licence_folder(rules: Path | None, root: Path) -> Path:
    """The folder holding the Sigma rules' licence: --rules (or the folder of a rules tarball), by
    default the `sigma-rules` folder beside the datasets."""
    from simulations.importers.otrf.importer import SIGMA_RULES

    if rules is None:
        return root.parent / SIGMA_RULES
    return rules if rules.is_dir() else rules.parent


def _one_line(error: BaseException) -> str:
    from pydantic import ValidationError

    from simulations.loader import format_loc

    if isinstance(error, ValidationError):
        return "; ".join(f"{format_loc(d['loc'])}: {d['msg']}" for d in error.errors())
    return " ".join(str(error).split()) or type(error).__name__
