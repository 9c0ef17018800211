"""Patching through CrowdStrike Falcon: the fix is applied by Real Time Response's admin
`runscript` running one cloud script of the RTR script library (`garrison-patch`, its text in
docs/vendors/crowdstrike.md) with `-Action apply|revert -Cve <id> -Remediation <id>`, and
verified by Falcon Spotlight (`GET /spotlight/combined/vulnerabilities/v1`), which lists the
host's vulnerability records by CVE with their status (`open`, `reopen`, `closed`).

Falcon has no endpoint that installs an update by itself (Spotlight only reports); Falcon for IT
and Falcon Fusion workflows can, but are not used here.
"""

from __future__ import annotations

from typing import Any

SPOTLIGHT = "/spotlight/combined/vulnerabilities/v1"
OPEN = frozenset({"open", "reopen"})


def spotlight_params(device_id: str, cve: str) -> dict[str, Any]:
    """The host's open records of one CVE."""
    fql = f"aid:'{device_id}'+cve.id:'{cve}'+status:['open','reopen']"
    return {"filter": fql, "limit": 10, "facet": "cve"}


def is_open(resources: list[Any], cve: str) -> bool:
    return any(
        isinstance(r, dict)
        and str(r.get("status", "")).lower() in OPEN
        and str((r.get("cve") or {}).get("id", "")).upper() == cve
        for r in resources
    )


def runscript(script: str, verb: str, cve: str, remediation: str) -> str:
    """An RTR `runscript` command string (the cloud script's own parameters inside
    `-CommandLine`)."""
    return (
        f'runscript -CloudFile="{script}" '
        f'-CommandLine="-Action {verb} -Cve {cve} -Remediation {remediation}"'
    )
