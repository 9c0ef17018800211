"""The benchmark's figures: a printed table, the JSON document, the targets' verdicts and the
comparison with a baseline document."""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

TARGET_ALERTS_PER_S = 2_000.0
TARGET_P99_MS = 100.0
TARGET_STORM_WORKFLOWS = 50
REGRESSION = 0.20  # a figure worse than the baseline's by more than this is flagged


@dataclass
class RunFigures:
    name: str  # "c4-single", "c16-batch50", "storm"
    concurrency: int
    batch: int
    alerts: int  # sent
    accepted: int  # acknowledged with 202 (new alerts)
    requests: int  # answered 202
    wall_s: float
    alerts_per_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    throttled_429: int
    failures: int
    first_failure: str | None
    incidents: int  # distinct incident ids in the 202 answers
    signalled_s: float | None  # from the run's start until every alert was signalled
    unsignalled_left: int | None
    bench_cpu_s: float
    server_cpu_s: float
    server_main_thread_cpu_s: float
    server_other_threads_cpu_s: float
    temporal_cpu_s: float
    # The server's dispatcher during the run (`garrison_alert_deliveries_total`): signal-with-starts
    # of new incidents and signals of running ones; None when the server does not count them.
    workflow_starts: int | None = None
    workflow_signals: int | None = None


# Figures where more is better; every other compared figure is better when less.
HIGHER_IS_BETTER = {"alerts_per_s", "requests_per_s"}
COMPARED = ("alerts_per_s", "p50_ms", "p99_ms", "signalled_s")


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average_at_start": list(os.getloadavg()),
    }


def commit(root: Path) -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(  # noqa: S603 - a fixed argv, no shell
            ["git", *args],  # noqa: S607 - git from PATH, as a developer runs it
            cwd=root, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        return done.stdout.strip()

    return {"sha": git("rev-parse", "HEAD"), "subject": git("log", "-1", "--format=%s")}


def targets(runs: list[RunFigures], storm: dict[str, Any] | None) -> list[dict[str, Any]]:
    verdicts: list[dict[str, Any]] = []
    for run in runs:
        ok = run.alerts_per_s >= TARGET_ALERTS_PER_S and run.p99_ms <= TARGET_P99_MS
        verdicts.append(
            {
                "target": f"{run.name}: >= {TARGET_ALERTS_PER_S:,.0f} alerts/s accepted "
                f"with p99 <= {TARGET_P99_MS:.0f} ms",
                "measured": f"{run.alerts_per_s:,.0f} alerts/s, p99 {run.p99_ms:.1f} ms",
                "pass": ok and run.failures == 0,
            }
        )
    verdicts.extend(_by_batch(runs))
    if storm is not None:
        workflows = storm["workflows"]
        measured = workflows if workflows is not None else storm["incidents_in_answers"]
        what = "Temporal workflows" if workflows is not None else "incidents (no Temporal count)"
        verdicts.append(
            {
                "target": f"storm: <= {TARGET_STORM_WORKFLOWS} workflows",
                "measured": f"{measured} {what}",
                "pass": measured <= TARGET_STORM_WORKFLOWS,
            }
        )
    return verdicts


def _by_batch(runs: list[RunFigures]) -> list[dict[str, Any]]:
    """The issue's target read per sender: for each request size run at several concurrencies,
    whether it holds at every one of them (the runs above say which fell short)."""
    verdicts: list[dict[str, Any]] = []
    for batch in sorted({run.batch for run in runs}):
        same = [run for run in runs if run.batch == batch]
        if len(same) < 2:
            continue
        clients = ", ".join(str(run.concurrency) for run in same)
        ok = all(
            run.alerts_per_s >= TARGET_ALERTS_PER_S
            and run.p99_ms <= TARGET_P99_MS
            and run.failures == 0
            for run in same
        )
        size = "one alert" if batch == 1 else f"{batch} alerts"
        verdicts.append(
            {
                "target": f"requests of {size}, at {clients} clients each: "
                f">= {TARGET_ALERTS_PER_S:,.0f} alerts/s with p99 <= {TARGET_P99_MS:.0f} ms",
                "measured": "; ".join(
                    f"{run.name} {run.alerts_per_s:,.0f}/s p99 {run.p99_ms:.1f} ms" for run in same
                ),
                "pass": ok,
            }
        )
    return verdicts


def compare(document: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """One line per figure worse than the baseline's by more than REGRESSION."""
    before = {r["name"]: r for r in baseline.get("runs", [])}
    if baseline.get("storm"):
        before["storm"] = baseline["storm"]["run"]
    now = {r["name"]: r for r in document["runs"]}
    if document.get("storm"):
        now["storm"] = document["storm"]["run"]
    flagged: list[str] = []
    for name, run in now.items():
        old = before.get(name)
        if old is None:
            continue
        for key in COMPARED:
            a, b = old.get(key), run.get(key)
            if not _number(a) or not _number(b) or a == 0:
                continue
            change = (b - a) / a
            worse = -change if key in HIGHER_IS_BETTER else change
            if worse > REGRESSION:
                flagged.append(f"{name}.{key}: {a:,.1f} -> {b:,.1f} ({change:+.0%})")
    old_wf = (baseline.get("storm") or {}).get("workflows")
    new_wf = (document.get("storm") or {}).get("workflows")
    if isinstance(old_wf, int) and isinstance(new_wf, int) and new_wf > old_wf * (1 + REGRESSION):
        flagged.append(f"storm.workflows: {old_wf} -> {new_wf}")
    return flagged


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


def table(runs: list[RunFigures]) -> str:
    head = (
        f"{'run':<14}{'alerts/s':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'429s':>6}{'fail':>6}{'incid.':>8}{'signalled s':>13}"
        f"{'cpu bench/server/temporal s':>30}"
    )
    lines = [head, "-" * len(head)]
    for r in runs:
        signalled = "-" if r.signalled_s is None else f"{r.signalled_s:.1f}"
        cpu = f"{r.bench_cpu_s:.1f}/{r.server_cpu_s:.1f}/{r.temporal_cpu_s:.1f}"
        lines.append(
            f"{r.name:<14}{r.alerts_per_s:>10,.0f}{r.requests_per_s:>9,.0f}{r.p50_ms:>9.1f}"
            f"{r.p99_ms:>9.1f}{r.max_ms:>9.1f}{r.throttled_429:>6}{r.failures:>6}"
            f"{r.incidents:>8}{signalled:>13}{cpu:>30}"
        )
    return "\n".join(lines)


def as_json(run: RunFigures) -> dict[str, Any]:
    values = asdict(run).items()
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values}
