"""The ids a patch carries to a vendor, checked before they reach a script's command line or a
query string: they come from attacker-influenced alerts."""

from __future__ import annotations

import re

from tools.actions import CVE_ID, REMEDIATION_ID
from tools.errors import PermanentToolError

_CVE = re.compile(CVE_ID)
_REMEDIATION = re.compile(REMEDIATION_ID)


def checked(vendor: str, cve: str, remediation: str | None = None) -> tuple[str, str]:
    """The CVE id (upper case) and the remediation id; a permanent error naming the bad one."""
    cve = cve.strip().upper()
    if not _CVE.fullmatch(cve):
        raise PermanentToolError(f"{vendor}: {cve[:60]!r} is not a CVE id")
    fix = (remediation or "").strip()
    if remediation is not None and not _REMEDIATION.fullmatch(fix):
        raise PermanentToolError(f"{vendor}: {fix[:60]!r} is not a remediation id")
    return cve, fix
