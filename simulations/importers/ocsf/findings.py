"""OCSF Detection Findings (class 2004) and Security Findings (2001) read as alerts, per line.

Each line of the findings file is one finding, read by `orchestrator.ingest.shapes.ocsf`
(`read_finding`, shared with live ingestion; its docstring says where each alert field comes
from). The importer adds what a corpus needs: the line, the related events' uids (the evidence,
filled once the telemetry is cut) and the product label for the attribution.

A later line with the uid of an earlier finding and `activity_id` 2 (Update) or 3 (Close) is the
same finding's lifecycle and is skipped; any other repeated uid is an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from orchestrator.ingest.grouping import is_system_account
from orchestrator.ingest.shapes.ocsf import FINDING_CLASSES, SEVERITY_IDS, read_finding
from simulations.importers.ocsf.fields import Json, integer, obj, text
from simulations.importers.ocsf.reader import json_lines, note, where
from simulations.loader import Problem
from tools.models import Alert

__all__ = ["FINDING_CLASSES", "SEVERITY_IDS", "Finding", "parse_finding", "read_findings"]
LIFECYCLE = {2, 3}  # finding activity_id Update, Close


@dataclass(frozen=True)
class Finding:
    """One finding as an alert (its `evidence` is filled once the telemetry is cut)."""

    line: int
    alert: Alert
    related_events: tuple[str, ...]
    product: str  # "name (vendor) version", for the attribution

    @property
    def time(self) -> datetime:
        return self.alert.time

    @property
    def people(self) -> list[str]:
        """The users that can link this finding to others: not SYSTEM, not machine accounts."""
        user = self.alert.entities.user
        return [user] if user and not is_system_account(user) else []


def read_findings(path: Path, problems: list[Problem]) -> Iterator[tuple[Json, Finding]]:
    """Each finding with its raw object, streaming; defects are added to `problems`."""
    first_line: dict[str, int] = {}
    for number, raw in json_lines(path, problems):
        finding, errors = parse_finding(raw, number)
        for field_path, message in errors:
            note(problems, path, Problem(where(path, number), field_path, message))
        if finding is None:
            continue
        uid = finding.alert.uid
        if uid in first_line:
            if integer(raw, "activity_id") not in LIFECYCLE:
                note(
                    problems,
                    path,
                    Problem(
                        where(path, number),
                        "finding_info.uid",
                        f"{uid!r} repeats the finding of line {first_line[uid]}",
                    ),
                )
            continue
        first_line[uid] = number
        yield raw, finding


def parse_finding(raw: Json, line: int) -> tuple[Finding | None, list[tuple[str, str]]]:
    """The finding of one line, or None and the (field, problem) pairs that prevent it."""
    read, errors = read_finding(raw)
    if read is None:
        return None, [(e.path, e.problem) for e in errors]
    finding = Finding(
        line=line, alert=read.alert, related_events=read.related_events, product=_product(raw)
    )
    return finding, []


def _product(raw: Json) -> str:
    product = obj(raw, "metadata.product")
    name = text(product, "name") or text(product, "vendor_name") or "unknown product"
    vendor = text(product, "vendor_name")
    version = text(product, "version")
    label = f"{name} ({vendor})" if vendor and vendor != name else name
    return f"{label} {version}" if version else label
