"""SigmaHQ rules compiled once to SQLite WHERE conditions, and the JSON cache that keeps them.

`load_rules(path, cache_dir)` reads the rules (a tarball such as `sigma-rules.tar.gz`, a folder of
`.yml`, or one `.yml`), and returns the cached `RuleSet` when one exists for the same rule bytes and
toolchain, else compiles: each file is parsed by pySigma (`SigmaCollection`) and converted by the
SQLite backend under the Sysmon pipeline (generic categories to Sysmon EventIDs) followed by the
Windows log-source pipeline (services and PowerShell categories to `Channel`/`EventID`), as
`sigma convert -t sqlite -p sysmon -p windows-logsources` does; `product: linux` rules under a
pipeline of their own over the Linux audit records (keyword searches included). A rule that fails
to parse or convert is counted by reason and skipped. Each compiled rule keeps what an alert
needs, the rule author included (Detection Rule License 1.1), its log source as written, the
condition, and the fields the condition reads so the engine can give them columns.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError
from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.conditions import ConditionNOT, ConditionOR, ConditionValueExpression
from sigma.conversion.deferred import DeferredQueryExpression
from sigma.conversion.state import ConversionState
from sigma.pipelines.sysmon import sysmon_pipeline
from sigma.pipelines.windows import windows_logsource_pipeline
from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddConditionTransformation
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import SigmaFieldReference, SigmaString

CACHE_FORMAT = 2  # bump when compiling changes: old cache files then no longer match (2: Linux)
RAW_LINE = "raw_line"  # a Linux audit record's text: what keyword searches match
DEFAULT_CACHE = Path("~/.cache/garrison/sigma")
CACHE_ENV = "GARRISON_SIGMA_CACHE"
TOOLCHAIN = (
    "pysigma",
    "pysigma-backend-sqlite",
    "pysigma-pipeline-sysmon",
    "pysigma-pipeline-windows",
)
RULE_SUFFIXES = (".yml", ".yaml")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogSource(_Model):
    """The rule's `logsource` as written (before the pipelines rewrite it)."""

    product: str | None = None
    category: str | None = None
    service: str | None = None


class CompiledRule(_Model):
    id: str
    title: str
    level: str
    tags: list[str]
    author: str
    logsource: LogSource
    where: str  # SQLite condition over a table with one column per event field
    fields: list[str]  # field names the condition reads, after the pipelines' mappings
    path: str  # file inside the rules tarball or folder


class RuleSet(_Model):
    """The compiled rules of one rules file, as cached."""

    key: str
    toolchain: dict[str, str]
    files: int
    rules: list[CompiledRule]
    failures: dict[str, int]  # rules skipped, counted by reason (exception class)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


@dataclass(frozen=True)
class Loaded:
    """A rule set and how it was obtained (for the command line and the benchmark)."""

    rules: RuleSet
    cached: bool
    seconds: float
    cache_file: Path | None


@dataclass(frozen=True)
class Skipped:
    """A rule that did not compile, and why (the exception class)."""

    reason: str


RuleFile = tuple[str, bytes]  # (path inside the rules source, YAML bytes)
Converter = Callable[[RuleFile], list[CompiledRule | Skipped]]


def cache_dir_from(environ: Mapping[str, str], given: Path | None = None) -> Path:
    """The cache folder: `given`, else `$GARRISON_SIGMA_CACHE`, else `~/.cache/garrison/sigma`.

    Takes the environment as an argument: only composition roots (the command line) read it.
    """
    chosen = given or (Path(environ[CACHE_ENV]) if environ.get(CACHE_ENV) else DEFAULT_CACHE)
    return chosen.expanduser()


def load_rules(
    path: Path, cache_dir: Path | None = None, convert: Converter | None = None
) -> Loaded:
    """The compiled rules of `path`, from `cache_dir` when cached there, else compiled (and cached).

    `convert` compiles one rule file (default: pySigma, see `PySigmaConverter`); a test passes a
    counting one to see that a cached load compiles nothing.
    """
    started = time.perf_counter()
    toolchain = {name: version(name) for name in TOOLCHAIN}
    key = cache_key(path, toolchain)
    cache_file = cache_dir / f"rules-{key}.json" if cache_dir else None
    if cache_file and (cached := _read_cache(cache_file)):
        return Loaded(cached, True, time.perf_counter() - started, cache_file)
    files = read_rule_files(path)
    compiled = compile_rules(files, convert or PySigmaConverter())
    result = RuleSet(
        key=key,
        toolchain=toolchain,
        files=len(files),
        rules=compiled.compiled,
        failures=dict(sorted(compiled.failures.items())),
    )
    if cache_file:
        write_atomically(cache_file, result.model_dump_json().encode())
    return Loaded(result, False, time.perf_counter() - started, cache_file)


def _read_cache(cache_file: Path) -> RuleSet | None:
    """The cached rule set, or None when absent or unreadable (then it is compiled again)."""
    try:
        return RuleSet.model_validate_json(cache_file.read_bytes())
    except (OSError, ValidationError):
        return None


def read_rule_files(path: Path) -> list[RuleFile]:
    """The `.yml` files of a rules tarball, a folder (recursively) or one file, by path."""
    if path.is_dir():
        found = [
            (p.relative_to(path).as_posix(), p.read_bytes())
            for p in path.rglob("*")
            if p.suffix in RULE_SUFFIXES and p.is_file()
        ]
    elif tarfile.is_tarfile(path):
        found = list(_tar_members(path))
    else:
        found = [(path.name, path.read_bytes())]
    return sorted(found)


def _tar_members(path: Path) -> Iterator[RuleFile]:
    with tarfile.open(path) as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(RULE_SUFFIXES):
                data = tar.extractfile(member)
                if data is not None:
                    yield member.name, data.read()


def cache_key(path: Path, toolchain: dict[str, str]) -> str:
    """sha256 of the rules file's bytes (of each file's path and bytes for a folder), and the
    pySigma version.

    The backend and pipeline versions and `CACHE_FORMAT` are folded in as well: any of them
    changes the compiled conditions.
    """
    if path.is_file():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    else:
        outer = hashlib.sha256()
        for name, data in read_rule_files(path):
            outer.update(f"{name}\0{hashlib.sha256(data).hexdigest()}\n".encode())
        digest = outer.hexdigest()
    tools = json.dumps([toolchain, CACHE_FORMAT], sort_keys=True).encode()
    return f"{digest}-pysigma{toolchain['pysigma']}-{hashlib.sha256(tools).hexdigest()[:12]}"


@dataclass
class Compiled:
    compiled: list[CompiledRule]
    failures: Counter[str]


def compile_rules(files: Iterable[RuleFile], convert: Converter) -> Compiled:
    """Every rule of `files` that converts; the others counted by reason, never raised."""
    result = Compiled([], Counter())
    for rule_file in files:
        try:
            outcomes = convert(rule_file)
        # A file that does not parse (YAML or Sigma errors) counts as one skipped rule.
        except Exception as error:
            outcomes = [Skipped(type(error).__name__)]
        for outcome in outcomes:
            if isinstance(outcome, Skipped):
                result.failures[outcome.reason] += 1
            else:
                result.compiled.append(outcome)
    return result


class UnsupportedRule(Exception):
    """A rule the engine cannot run: correlation or filter rules, no id, an unexpected query."""


OR_CHUNK = 200  # terms per parenthesised OR group: SQLite's expression depth limit is 1000


class TwoValuedSqliteBackend(sqliteBackend):
    """pySigma's SQLite backend with Sigma's two-valued logic and bounded expression depth.

    In SQL a comparison on an absent field (NULL) is unknown, and `NOT unknown` is unknown, so a
    filter such as `not (CommandLine endswith X)` would drop every event without a CommandLine;
    in Sigma the comparison is false and the negation true. Negations are therefore written
    `NOT coalesce((...), 0)`: below a NOT only AND, OR and negations already made two-valued
    remain, whose unknown result can only mean false. Long value lists (hash or emoji lists of
    thousands of terms) are split into parenthesised groups that keep the parse tree shallow.
    Booleans are compared as the text events carry (`Initiated: 'true'`): SQLite's bare `true`
    is the number 1.
    """

    bool_values: ClassVar[dict[bool, str]] = {True: "'true'", False: "'false'"}

    def convert_condition_not(
        self, cond: ConditionNOT, state: ConversionState
    ) -> str | DeferredQueryExpression | None:
        arg = cond.args[0]
        if arg is None:
            return None
        expr = self.convert_condition(arg, state)
        if expr is None or isinstance(expr, DeferredQueryExpression):
            return expr.negate() if isinstance(expr, DeferredQueryExpression) else None
        return f"{self.not_token} coalesce(({expr}), 0)"

    def convert_condition_or(
        self, cond: ConditionOR, state: ConversionState
    ) -> str | DeferredQueryExpression | None:
        if len(cond.args) <= OR_CHUNK:
            return super().convert_condition_or(cond, state)
        groups = [
            super(TwoValuedSqliteBackend, self).convert_condition_or(
                ConditionOR(cond.args[i : i + OR_CHUNK], cond.source), state
            )
            for i in range(0, len(cond.args), OR_CHUNK)
        ]
        return f" {self.or_token} ".join(f"({g})" for g in groups if isinstance(g, str))


class LinuxSqliteBackend(TwoValuedSqliteBackend):
    """The backend for `product: linux` rules: keyword searches (values bound to no field, as the
    auditd rules write `'|all': ['dd', 'if=']`) match the record's text, `raw_line` (the audit
    reader keeps it), as a substring, case-insensitively like the rest."""

    def convert_condition_val_str(
        self, cond: ConditionValueExpression, state: ConversionState
    ) -> str | DeferredQueryExpression:
        value = cond.value
        if not isinstance(value, SigmaString):
            raise UnsupportedRule(f"keyword of type {type(value).__name__}")
        text = self.convert_value_str(value, state, no_quote=True)
        return f"{RAW_LINE} LIKE '%{text}%' ESCAPE '\\'"


def linux_pipeline() -> ProcessingPipeline:
    """Linux `process_creation` rules read process fields that the audit reader puts on EXECVE
    records (`simulations.importers.otrf.auditd`): the rule matches those records only."""
    return ProcessingPipeline(
        name="Garrison: Linux process creation from auditd EXECVE records",
        priority=10,
        items=[
            ProcessingItem(
                identifier="linux_process_creation_execve",
                transformation=AddConditionTransformation({"type": "EXECVE"}),
                rule_conditions=[LogsourceCondition(product="linux", category="process_creation")],
            )
        ],
    )


class PySigmaConverter:
    """One rule file to compiled rules with the SQLite backend and the Sysmon + Windows pipelines.

    The pipelines are composed in priority order (both 10, Sysmon first: its categories become
    the `sysmon` service that the Windows pipeline then maps to the Sysmon channel). Linux rules
    go through `LinuxSqliteBackend` and `linux_pipeline` instead (no Windows mapping applies).
    """

    def __init__(self) -> None:
        self.backend = TwoValuedSqliteBackend(
            processing_pipeline=sysmon_pipeline() + windows_logsource_pipeline()
        )
        # pySigma types the backend's pipeline argument as its dict form; the object is taken too.
        linux: Any = linux_pipeline()
        self.linux = LinuxSqliteBackend(processing_pipeline=linux)
        # What the backend puts before the condition; stripped, never executed.
        self.prefix = f"SELECT * FROM {self.backend.table} WHERE "  # noqa: S608

    def __call__(self, rule_file: RuleFile) -> list[CompiledRule | Skipped]:
        name, data = rule_file
        outcomes: list[CompiledRule | Skipped] = []
        for rule in SigmaCollection.from_yaml(data).rules:
            try:
                outcomes.append(self.compile(name, rule))
            # pySigma raises more than SigmaError on unusual rules (NotImplementedError,
            # TypeError); one bad rule is skipped and counted, never the whole run.
            except Exception as error:
                outcomes.append(Skipped(type(error).__name__))
        return outcomes

    def compile(self, name: str, rule: object) -> CompiledRule:
        if not isinstance(rule, SigmaRule) or rule.id is None:
            raise UnsupportedRule(f"{name}: not a detection rule with an id")
        logsource = LogSource(
            product=rule.logsource.product,
            category=rule.logsource.category,
            service=rule.logsource.service,
        )  # read before conversion: the pipelines rewrite it
        linux = logsource.product == "linux"
        backend = self.linux if linux else self.backend
        queries = [str(q) for q in backend.convert_rule(rule)]
        if not queries or not all(q.startswith(self.prefix) for q in queries):
            raise UnsupportedRule(f"{name}: unexpected query {queries!r:.80}")
        conditions = [q[len(self.prefix) :] for q in queries]
        return CompiledRule(
            id=str(rule.id),
            title=rule.title,
            level=rule.level.name.lower() if rule.level else "informational",  # level is optional
            tags=[str(t) for t in rule.tags],
            author=rule.author or "unknown",
            logsource=logsource,
            where=conditions[0]
            if len(conditions) == 1
            else " OR ".join(f"({c})" for c in conditions),
            fields=sorted(
                set(_fields(rule.detection.detections.values())) | ({RAW_LINE} if linux else set())
            ),
            path=name,
        )


def _fields(detections: Iterable[SigmaDetection]) -> Iterator[str]:
    """Field names read by the detections, field references (`|fieldref`) included."""
    for detection in detections:
        for item in detection.detection_items:
            if isinstance(item, SigmaDetection):
                yield from _fields([item])
            elif isinstance(item, SigmaDetectionItem) and item.field:
                yield item.field
                for value in item.value:
                    if isinstance(value, SigmaFieldReference):
                        yield value.field


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename: readers see all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(data)
        tmp.flush()
        os.fsync(tmp.fileno())
    try:
        os.replace(tmp.name, path)
    except OSError:
        Path(tmp.name).unlink(missing_ok=True)
        raise
