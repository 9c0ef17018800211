"""Enumeration by an implant: malicious discovery, where an admin's own enumeration is not.

Discovery alerts weigh little on purpose (every admin script and inventory agent enumerates), so
an implant that only enumerates sessions, domain users or groups scored benign. What separates
the two is who runs the enumeration, not the command:
- the enumerating process, or one of its ancestors, runs from a folder where hand-copied tools
  and droppers land (Desktop, Downloads, Documents, Public, PerfLogs, a temp folder, the root of
  ProgramData or of a roaming profile): installed software does not live there;
- an ancestor carries strong command-line tradecraft (an encoded command, a download cradle, a
  credential tool).
Ancestors are read from their own records only: some EDRs name just the parent's file in the
child's record (Falcon's ParentBaseFileName), so a folder read from there would make the verdict
depend on the vendor. An implant started before the recording still has a record: the one its
child's Sysmon record describes (`tools.telemetry.unrecorded_parents`), as every EDR keeps the
parent's own record (Falcon's ProcessRollup2 by its id, Defender's DeviceProcessEvents).
An admin's `net user /domain` from a shell that explorer started shows neither, and stays benign.

The category then stays discovery when nothing else is seen (`nodes._category`): the labelling
rules call for a ticket, no containment.
"""

from __future__ import annotations

import re

from agents.estate import in_drop_folder
from agents.knowledge import cmdline_indicators, image_name, technique_tactic
from agents.telemetry import HostTelemetry, alert_records
from tools.models import Alert
from tools.results import ProcessEvent

STRONG_TRADECRAFT = 3.0
MAX_DEPTH = 8

# Folders besides the drop folders where no installer puts a program: temp folders, and the
# roots of ProgramData and of a roaming profile (vendors install into a subfolder of their own).
IMPLANT_FOLDERS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\\(windows\\)?temp\\", re.I),
    re.compile(r"\\appdata\\local\\temp\\", re.I),
    re.compile(r"\\programdata\\[^\\]+$", re.I),
    re.compile(r"\\appdata\\roaming\\[^\\]+$", re.I),
)

# Enumeration as an analyst recognises it on a command line: sessions, users, groups, trusts,
# domain controllers, services of another host, and the usual enumeration tools.
ENUMERATION: tuple[re.Pattern[str], ...] = (
    re.compile(r"\bnet1?(\.exe)?\"?\s+(session|user|group|localgroup|view|accounts)\b", re.I),
    re.compile(r"\bnltest(\.exe)?\b.*/(dclist|domain_trusts|dsgetdc|trusted_domains)", re.I),
    re.compile(r"\b(adfind|sharphound|seatbelt|bloodhound|adrecon)\b", re.I),
    re.compile(r"\bwhoami(\.exe)?\"?\s+/(all|groups|priv)\b", re.I),
    re.compile(r"\b(dsquery|qwinsta|quser)(\.exe)?\b", re.I),
    re.compile(r"\bsc(\.exe)?\"?\s+\\\\\S+\s+(query|qc)\b", re.I),
    re.compile(r"\b(get-net\w+|get-domain\w*|find-localadminaccess|invoke-userhunter)\b", re.I),
)


def in_implant_folder(path: str | None) -> bool:
    text = (path or "").replace("/", "\\")
    return in_drop_folder(text) or any(p.search(text) for p in IMPLANT_FOLDERS)


def is_enumeration(alert: Alert) -> bool:
    """The alert is about enumeration: its techniques are discovery, or its process enumerates."""
    tactics = {technique_tactic(a.technique) or (a.tactic or "").lower() for a in alert.attacks}
    process = alert.entities.process
    cmd = (process.cmd_line or "")[:8_192] if process is not None else ""
    return (bool(tactics) and tactics <= {"discovery"}) or any(p.search(cmd) for p in ENUMERATION)


def implant_discovery(telemetry: HostTelemetry, alerts: list[Alert]) -> list[str]:
    """Enumeration alerts whose process an implant runs (see the module docstring)."""
    found: list[str] = []
    for alert in alerts:
        if not is_enumeration(alert):
            continue
        for record in alert_records(alert, telemetry):
            why = _implant_origin(telemetry, record)
            if why is not None:
                found.append(
                    f"{telemetry.host}:{record.pid} {image_name(record.image)} enumerates "
                    f"for an implant: {why}"
                )
                break
    return found


def _implant_origin(telemetry: HostTelemetry, record: ProcessEvent) -> str | None:
    if in_implant_folder(record.image):
        return f"{image_name(record.image)} runs from a folder no installer uses"
    current: ProcessEvent | None = record
    seen: set[int] = set()
    for _ in range(MAX_DEPTH):
        if current is None:
            return None
        parent = telemetry.process(current.parent_pid)
        if parent is None or parent.pid is None or parent.pid in seen:
            return None
        if in_implant_folder(parent.image):
            return f"started under {image_name(parent.image)}, run from a folder no installer uses"
        seen.add(parent.pid)
        if sum(w for w, _ in cmdline_indicators(parent.cmd_line)) >= STRONG_TRADECRAFT:
            return f"started under {image_name(parent.image)} ({parent.pid}) with tradecraft"
        current = parent
    return None
