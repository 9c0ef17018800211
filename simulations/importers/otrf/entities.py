"""What an analyst reads off one normalised event: host, user, process, addresses, file."""

from __future__ import annotations

import ipaddress
import re

from orchestrator.ingest.grouping import is_system_account
from orchestrator.ingest.shapes.values import basename
from simulations.importers.otrf.auditd import SOURCE as AUDIT_SOURCE
from simulations.importers.otrf.events import Event, first
from tools.models import AlertEntities, FileRef, ProcessRef

__all__ = ["basename", "entities", "is_system_account", "user_of"]


def entities(event: Event) -> AlertEntities:
    """What an analyst reads off one matching event: host, user, process, addresses, file."""
    image = first(event, "Image", "SourceImage", "NewProcessName", "ProcessName", "Application")
    pid = _pid(first(event, "ProcessId", "SourceProcessId", "NewProcessId", "ProcessID"))
    cmd = first(event, "CommandLine", "HostApplication")
    process = ProcessRef(pid=pid, name=basename(image), cmd_line=cmd) if (image or cmd) else None
    path = first(event, "TargetFilename", "ImageLoaded")
    sha256 = _sha256(first(event, "Hashes", "Hash"))
    if sha256 and not path:
        path = image
    src = first(event, "SourceIp", "SourceAddress", "IpAddress")
    return AlertEntities(
        host=event.get("host") if isinstance(event.get("host"), str) else None,  # type: ignore[arg-type]
        user=user_of(event),
        process=process,
        src_ip=src if src and _is_address(src) else None,
        dst_ip=first(event, "DestinationIp", "DestAddress"),
        domain=first(event, "QueryName", "DestinationHostname"),
        file=FileRef(path=path, sha256=sha256) if (path or sha256) else None,
    )


def user_of(event: Event) -> str | None:
    """`domain\\user` in lower case, preferring a person over SYSTEM and machine accounts; on a
    Linux audit record, the login user's name (`User`, from auditd's enriched `AUID=`)."""
    if event.get("event_source") == AUDIT_SOURCE:
        name = first(event, "User")
        return name.lower() if name and name != "unset" else None
    candidates: list[str] = []
    for name in ("User", "SourceUser"):
        value = first(event, name)
        if value and "\\" in value:
            candidates.append(value)
    for prefix in ("Subject", "Target"):
        user = first(event, f"{prefix}UserName")
        domain = first(event, f"{prefix}DomainName")
        if user and domain:
            candidates.append(f"{domain}\\{user}")
    people = [c for c in candidates if not is_system_account(c)]
    chosen = (people or candidates or [None])[0]
    return chosen.lower() if chosen else None


def _pid(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value, 16) if value.lower().startswith("0x") else int(value)
    except ValueError:
        return None


def _sha256(hashes: str | None) -> str | None:
    match = re.search(r"SHA256=([0-9A-Fa-f]{64})", hashes or "")
    return match.group(1).lower() if match else None


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
