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
child's Sysmon record describes (`tools.parents`), as every EDR keeps the
parent's own record (Falcon's ProcessRollup2 by its id, Defender's DeviceProcessEvents).
An implant that started nothing in the window (it queries LDAP itself) has no process record at
all: its own connections still name its full path, in every EDR.
An admin's `net user /domain` from a shell that explorer started shows neither, and stays benign.

Enumeration is an alert tagged only with discovery, a command line that enumerates, or an alert
whose evidence is a file left by querying the directory (the ADSI schema cache, `paths.yaml`),
which triage also reads as discovery whatever its rule's tag (`scoring.assess_alert`).

The category then stays discovery when nothing else is seen (`scoring.incident_category`): the
labelling rules call for a ticket, no containment.
"""

from __future__ import annotations

import re

from agents.estate import in_drop_folder
from agents.knowledge import (
    cmdline_indicators,
    image_name,
    is_directory_query_trace,
    technique_tactic,
)
from agents.telemetry import WINDOW, HostTelemetry, alert_records
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
    """The alert is about enumeration: its techniques are discovery, its process enumerates, or
    its evidence is a file left by querying the directory (`paths.yaml`)."""
    tactics = {technique_tactic(a.technique) or (a.tactic or "").lower() for a in alert.attacks}
    process = alert.entities.process
    cmd = (process.cmd_line or "")[:8_192] if process is not None else ""
    return (
        (bool(tactics) and tactics <= {"discovery"})
        or any(p.search(cmd) for p in ENUMERATION)
        or saw_a_directory_query(alert)
    )


def saw_a_directory_query(alert: Alert) -> bool:
    """The alert's evidence is a file a program leaves by querying the directory (the ADSI
    schema cache, `paths.yaml`): what it saw is enumeration, even when its rule is tagged as a
    C2 technique (a tool that speaks LDAP is typical of implants, its queries are no channel);
    a C2 contact, when there is one, is proven by the connections, not by this file."""
    file = alert.entities.file
    return file is not None and is_directory_query_trace(file.path)


def implant_discovery(telemetry: HostTelemetry, alerts: list[Alert]) -> list[str]:
    """Enumeration alerts whose process an implant runs (see the module docstring)."""
    found: list[str] = []
    for alert in alerts:
        if not is_enumeration(alert):
            continue
        records = alert_records(alert, telemetry)
        for record in records:
            why = _implant_origin(telemetry, record)
            if why is not None:
                found.append(
                    f"{telemetry.host}:{record.pid} {image_name(record.image)} enumerates "
                    f"for an implant: {why}"
                )
                break
        if not records and (image := _unrecorded_implant(telemetry, alert)) is not None:
            found.append(
                f"{telemetry.host} {image_name(image)} enumerates for an implant: it runs from "
                f"a folder no installer uses (its start is not recorded; its connections name it)"
            )
    return found


def _unrecorded_implant(telemetry: HostTelemetry, alert: Alert) -> str | None:
    """The image of an alerting process that has no record here (it started before the window
    and started nothing in it), as its own connections name it, when it runs from an implant
    folder. Every EDR names the connecting process's full path (Sysmon's Image, Falcon's
    ContextImageFileName, Defender's InitiatingProcessFolderPath)."""
    process = alert.entities.process
    name = image_name(process.name) if process is not None else ""
    if process is None or not name:
        return None
    for conn in telemetry.connections:
        if image_name(conn.image) != name or abs(conn.time - alert.time) > WINDOW:
            continue
        if process.pid is not None and conn.pid not in (None, process.pid):
            continue
        if in_implant_folder(conn.image):
            return conn.image
    return None


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
