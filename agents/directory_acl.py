"""Replication rights granted on a directory object: a DCSync backdoor (T1222.001, T1098).

An attacker with write access to the domain root's security descriptor grants an account of
theirs the replication extended rights (DS-Replication-Get-Changes, -Get-Changes-All,
-Get-Changes-In-Filtered-Set): that account can then replicate every secret of the domain
(DCSync) whenever it likes, from anywhere, without touching a domain controller's disk. The ACE
stays until removed: it is persistence, on the directory object, and its removal is
`remove_persistence` of `<DC asset id>:<object DN>`.

The domain controller records the change as Security 5136 on `nTSecurityDescriptor`: the old
descriptor deleted, the new one added, by the subject account. A grant is counted when:
- an ACE giving one of the replication rights (`REPLICATION_RIGHTS`, by GUID) to a principal is in
  the added descriptor and not in the descriptor deleted just before it on the same object (an
  unchanged ACE, an existing sync account's, is not new);
- the principal is not a domain controller group (Enterprise Read-only DCs, Domain Controllers,
  Read-only DCs, Enterprise DCs: their replication is the directory's own);
- the subject is an account the investigation holds compromised.
"""

from __future__ import annotations

import re
from datetime import timedelta

from agents.persistence.attribution import Artefact, Attacker, short_account
from agents.telemetry import HostTelemetry
from tools.results import SystemEvent

DIRECTORY_CHANGE = 5136
SECURITY_DESCRIPTOR = "ntsecuritydescriptor"
REPLICATION_RIGHTS = frozenset(
    {
        "1131f6aa-9c07-11d1-f79f-00c04fc2dcd2",  # DS-Replication-Get-Changes
        "1131f6ad-9c07-11d1-f79f-00c04fc2dcd2",  # DS-Replication-Get-Changes-All
        "89e95b76-444d-4c62-991a-0facbeda640c",  # DS-Replication-Get-Changes-In-Filtered-Set
    }
)
# domain controller groups: Enterprise Read-only DCs (498), Domain Controllers (516), Read-only
# DCs (521) by RID; Enterprise Domain Controllers by alias
DC_GROUP_RIDS = frozenset({"498", "516", "521"})
DC_ALIASES = frozenset({"ed", "dd", "s-1-5-9"})
PAIRED_WITHIN = timedelta(seconds=5)  # a change's deletion and addition are recorded together
# an object ACE: (OA;flags;rights;object type GUID;inherited object type GUID;trustee)
OBJECT_ACE = re.compile(r"\(OA;[^;]*;[^;]*;([0-9a-f-]{36});[^;]*;([^)]+)\)", re.I)


def replication_grants(telemetry: HostTelemetry, attacker: Attacker) -> list[Artefact]:
    """The objects on this host's directory where a compromised account granted replication
    rights (see the module docstring), one artefact per object."""
    changes = sorted((e for e in telemetry.system if _descriptor_change(e)), key=lambda e: e.time)
    found: dict[str, Artefact] = {}
    for index, added in enumerate(changes):
        if not (added.detail or "").lower().endswith(" added") or not added.name:
            continue
        if short_account(added.user) not in attacker.accounts:
            continue
        before = _deleted_before(changes[:index], added)
        if before is None:
            continue
        new = _replication_trustees(added.command) - _replication_trustees(before.command)
        if not new:
            continue
        target = f"{telemetry.host}:{added.name}"
        why = f"replication rights granted to {', '.join(sorted(new)[:3])} by {added.user}"
        found.setdefault(
            target.lower(),
            Artefact(target, f"DCSync rights on {added.name} on {telemetry.host}", why),
        )
    return list(found.values())


def _descriptor_change(event: SystemEvent) -> bool:
    detail = (event.detail or "").lower()
    return event.event_id == DIRECTORY_CHANGE and detail.startswith(SECURITY_DESCRIPTOR + " ")


def _deleted_before(earlier: list[SystemEvent], added: SystemEvent) -> SystemEvent | None:
    for event in reversed(earlier):
        if added.time - event.time > PAIRED_WITHIN:
            return None
        if (event.detail or "").lower().endswith(" deleted") and (
            (event.name or "").lower() == (added.name or "").lower()
        ):
            return event
    return None


def _replication_trustees(descriptor: str | None) -> set[str]:
    trustees: set[str] = set()
    for right, trustee in OBJECT_ACE.findall(descriptor or ""):
        who = trustee.strip().lower()
        if right.lower() not in REPLICATION_RIGHTS or who in DC_ALIASES:
            continue
        if who.startswith("s-1-5-21-") and who.rsplit("-", 1)[-1] in DC_GROUP_RIDS:
            continue
        trustees.add(who.upper() if who.startswith("s-") else who)
    return trustees
