"""Credit for incidents imported from OCSF: their `source`, and `ATTRIBUTION-OCSF.md` beside them.

The page is rebuilt from the `source` of every imported incident in the output folder, so a later
import into the same folder keeps the earlier ones credited; the OTRF importer's `ATTRIBUTION.md`
is left alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from simulations.importers.ocsf.findings import Finding
from simulations.importers.ocsf.labels import SourceNote
from simulations.loader import IncidentError, discover, load_incident
from simulations.spec import RecordedIncident

DATASET_PREFIX = "OCSF import of "
ATTRIBUTION_FILE = "ATTRIBUTION-OCSF.md"


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source(
    note: SourceNote, findings_path: Path, events_path: Path | None, findings: list[Finding]
) -> dict[str, object]:
    """The incident's `source`: the files (pinned by digest), the products, licence and credit."""
    products = sorted({f.product for f in findings})
    ref = f"{findings_path.name} sha256:{file_digest(findings_path)} lines {_lines(findings)}"
    if events_path is not None:
        ref += f"; {events_path.name} sha256:{file_digest(events_path)}"
    rules = sorted(
        {
            f"{f.alert.rule.name} ({f.alert.rule.uid}) by {f.alert.rule.author or 'unknown'}"
            for f in findings
        }
    )
    return {
        "dataset": f"{DATASET_PREFIX}{findings_path.name} ({', '.join(products)})",
        "ref": ref,
        "commit": None,
        "license": note.license,
        "attribution": f"{note.credit.strip()} Analytics: {'; '.join(rules)}",
    }


def write_attribution(out: Path) -> Path:
    """`out/ATTRIBUTION-OCSF.md` for every incident in `out` that was imported from OCSF."""
    incidents = []
    for folder in discover([out]):
        try:
            incident = load_incident(folder)
        except IncidentError:
            continue  # not ours to judge here: `garrison corpus check` reports broken folders
        if incident.source.dataset.startswith(DATASET_PREFIX):
            incidents.append(incident)
    path = out / ATTRIBUTION_FILE
    path.write_text(render(incidents), encoding="utf-8")
    return path


def render(incidents: Iterable[RecordedIncident]) -> str:
    ordered = sorted(incidents, key=lambda i: i.id)
    rules = sorted(
        {(a.rule.name, a.rule.uid, a.rule.author or "unknown") for i in ordered for a in i.alerts}
    )
    lines = [
        "# Attribution: incidents imported from OCSF",
        "",
        "These recorded incidents were made by `garrison corpus import-ocsf` from OCSF findings",
        "and events; OCSF events were mapped to Sysmon and Windows Security field names. Each",
        "incident keeps its origin in `source`.",
        "",
        "| incident | dataset | files | licence |",
        "|---|---|---|---|",
        *(
            f"| `{i.id}` | {_cell(i.source.dataset)} | {_cell(i.source.ref)}"
            f" | {_cell(i.source.license)} |"
            for i in ordered
        ),
        "",
        "## Credit",
        "",
        *(f"- `{i.id}`: {i.source.attribution}" for i in ordered),
        "",
        "## Analytics",
        "",
        "| rule id | title | author |",
        "|---|---|---|",
        *(f"| `{uid}` | {_cell(name)} | {_cell(author)} |" for name, uid, author in rules),
    ]
    return "\n".join(lines) + "\n"


def _lines(findings: list[Finding]) -> str:
    """`3-5, 9`: the findings' line numbers as ranges."""
    numbers = sorted(f.line for f in findings)
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
