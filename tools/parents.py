"""Parents a process's record describes but whose own start was not read or not recorded.

An implant starts long before the enumeration it runs: a recording cut around the alerts, or an
EDR read of minutes around them, holds the child (`net user`) and not the parent's start. Where
the vendor says in the child's record what the parent is (Sysmon's ParentImage and
ParentCommandLine, Defender's InitiatingProcessFolderPath and InitiatingProcessCommandLine), the
parent gets a record from that; Falcon's process events name only the parent's file, so its
parent is known only by its own record.
"""

from __future__ import annotations

from datetime import datetime

from tools.results import ProcessEvent


def _host(name: str) -> str:
    return name.strip().lower().split(".", 1)[0]


def unrecorded_parents(processes: list[ProcessEvent]) -> list[ProcessEvent]:
    """The parents that children name but whose own start is not among `processes` (it came
    before the recording or the read window): one record each, from what the child's record says
    of its parent (image, command line, account, Sysmon's ParentProcessGuid), stamped with the
    first child's start, by which time the parent ran.

    Every EDR keeps the parent's own record (Falcon's ProcessRollup2 found by its id, Defender's
    DeviceProcessEvents), so a window that cut it off is no reason to know an implant only by its
    file name. Only a child that carries its parent's command line makes one; a child whose
    parent pid has a record started at or before it has a known parent already."""
    known: dict[tuple[str, int], list[datetime]] = {}
    guids = {p.guid.lower() for p in processes if p.guid}
    for p in processes:
        if p.pid is not None:
            known.setdefault((_host(p.host), p.pid), []).append(p.time)
    made: list[ProcessEvent] = []
    for child in sorted(processes, key=lambda p: p.time):  # the first child stamps its parent
        if child.parent_pid is None or not child.parent_cmd_line or not child.parent_image:
            continue
        if child.parent_guid and child.parent_guid.lower() in guids:
            continue
        key = (_host(child.host), child.parent_pid)
        if any(start <= child.time for start in known.get(key, [])):
            continue
        made.append(
            ProcessEvent(
                time=child.time,
                host=child.host,
                pid=child.parent_pid,
                name=child.parent_image.replace("/", "\\").rsplit("\\", 1)[-1] or None,
                image=child.parent_image,
                cmd_line=child.parent_cmd_line,
                user=child.parent_user,
                guid=child.parent_guid,
            )
        )
        known.setdefault(key, []).append(child.time)
        if child.parent_guid:
            guids.add(child.parent_guid.lower())
    return made
