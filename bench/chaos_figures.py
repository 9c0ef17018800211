"""The chaos run's figures from what each party recorded (pure functions, `bench/chaos.py` gathers
the inputs): the emulators' `/_ledger` transitions, the store's action ledger and tickets, the
Jira comments, the audit log's timestamps and the processes' logs.

Attribution. The emulators are shared by every incident, so their transitions name a vendor's
object (a Falcon device id, an Okta login, a PAN-OS address object, a Jira issue), not an
incident. Each transition is matched to an effective execution in the store's ledger (an action
`succeeded` or `rolled_back`, not found `already_in_state`; a rollback's inverse too) of a kind
that vendor operation carries out, on the same object, first come first served. A transition
that no execution is left to back is a change Garrison applied beyond its ledger: a duplicate.
Jira's `create_issue` names its incident by label (`garrison-<key>`), so tickets are counted per
incident directly; a comment posted twice is the same `[garrison:<incident>:<n>]` marker twice
among an issue's comments.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote, unquote_plus

from orchestrator.store.records import ActionRecord, ActionStatus
from tools.actions import Action, ActionKind
from tools.firewall.targets import object_name
from tools.journal import StateChange
from tools.models import Environment

EXECUTED = frozenset({ActionStatus.SUCCEEDED, ActionStatus.ROLLED_BACK})
K = ActionKind
# (vendor, the emulator's op) -> the action kinds that op carries out
VENDOR_KINDS: dict[tuple[str, str], frozenset[ActionKind]] = {
    ("crowdstrike", "contain"): frozenset({K.ISOLATE_HOST}),
    ("crowdstrike", "lift_containment"): frozenset({K.RELEASE_HOST}),
    ("crowdstrike", "kill"): frozenset({K.KILL_PROCESS}),
    ("crowdstrike", "reg_delete"): frozenset({K.REMOVE_PERSISTENCE}),
    ("crowdstrike", "rm"): frozenset({K.REMOVE_PERSISTENCE, K.QUARANTINE_FILE}),
    ("crowdstrike", "unrelease"): frozenset({K.QUARANTINE_FILE}),
    ("crowdstrike", "release"): frozenset({K.RESTORE_FILE}),
    ("panos", "set"): frozenset({K.BLOCK_IP, K.BLOCK_DOMAIN}),
    ("panos", "delete"): frozenset({K.UNBLOCK_IP, K.UNBLOCK_DOMAIN}),
    ("okta", "suspend"): frozenset({K.DISABLE_ACCOUNT}),
    ("okta", "unsuspend"): frozenset({K.ENABLE_ACCOUNT}),
    ("okta", "reset_password"): frozenset({K.RESET_CREDENTIALS}),
    ("okta", "clear_sessions"): frozenset({K.REVOKE_SESSIONS}),
}
EDR_KINDS = frozenset(
    k for (v, _), kinds in VENDOR_KINDS.items() if v == "crowdstrike" for k in kinds
)
FIREWALL_KINDS = frozenset({K.BLOCK_IP, K.UNBLOCK_IP, K.BLOCK_DOMAIN, K.UNBLOCK_DOMAIN})
TICKETING = "jira"
LABEL_PREFIX = "garrison-"
# How an emulator's deliberate drop (`reset_after_apply`) shows in its log: raised by the vendor
# app, or, under an emulator's response-rewriting middleware (Okta's), as uvicorn's complaint.
INTENDED_DROPS = (
    "DroppedConnection: emulated connection drop",
    "RuntimeError: Response content shorter than Content-Length",
)
MARKER = re.compile(r"\[garrison:([^\]\s]+)\]")


@dataclass(frozen=True)
class VendorChange:
    """One effective transition an emulator applied, with the request that applied it."""

    vendor: str
    op: str
    target: str
    at: datetime
    body: str = ""  # the request's body (decoded form for PAN-OS), where the object may be named

    @property
    def text(self) -> str:
        return f"{self.target} {self.body}"


@dataclass(frozen=True)
class Execution:
    """An effective vendor change the store's ledger says Garrison made."""

    incident: str
    kind: ActionKind
    target: str  # as the ledger has it
    subject: str  # the object as the vendor names it (`subject_of`)
    at: datetime


@dataclass
class Attribution:
    journals: dict[str, list[StateChange]] = field(default_factory=dict)  # incident -> changes
    duplicates: list[VendorChange] = field(default_factory=list)  # backed by no execution


def vendor_changes(ledgers: Mapping[str, Mapping[str, Any]]) -> list[VendorChange]:
    """Every transition of every emulator's `/_ledger?writes=1`, in time order."""
    changes: list[VendorChange] = []
    for vendor, ledger in ledgers.items():
        bodies = {int(r["seq"]): str(r.get("body", "")) for r in ledger.get("requests", [])}
        for t in ledger.get("transitions", []):
            body = bodies.get(int(t["request"]), "")
            changes.append(
                VendorChange(
                    vendor,
                    str(t["op"]),
                    str(t["target"]),
                    datetime.fromisoformat(str(t["at"])),
                    unquote_plus(body) if vendor == "panos" else body,
                )
            )
    return sorted(changes, key=lambda c: c.at)


def falcon_device_id(host: str, inventory: Environment) -> str:
    """The id the CrowdStrike emulator gives a host's device (`crowdstrike_world._Seeder`)."""
    wanted = host.lower()
    asset = next(
        (a for a in inventory.assets if wanted in (a.id.lower(), (a.hostname or "").lower())), None
    )
    name = (asset.hostname or asset.id) if asset is not None else host
    return hashlib.sha256(name.partition(".")[0].lower().encode()).hexdigest()[:32]


def subject_of(action: Action, inventory: Environment) -> str:
    """How the vendor names the object an action changes."""
    if action.kind in EDR_KINDS:
        return falcon_device_id(action.asset_id or action.target, inventory)
    if action.kind in FIREWALL_KINDS:
        return object_name(action.target.strip().lower())
    return action.target.rpartition("\\")[2].split("@")[0].strip().lower()  # an account


def _names(change: VendorChange, subject: str) -> bool:
    if change.vendor == "crowdstrike":  # a device id, or `<device id>_<sha256>` (quarantine)
        return change.target.split("_")[0] == subject
    if change.vendor == "panos":  # the address object in the xpath or the element set
        return re.search(rf"[\"']{re.escape(subject)}[\"']", change.text) is not None
    return change.target.split("@")[0].lower() == subject  # an Okta login


def executions(
    actions: Mapping[str, Sequence[ActionRecord]], inventory: Environment
) -> list[Execution]:
    """The effective changes the ledger records, a rollback's inverse included."""
    found: list[Execution] = []
    for incident, records in actions.items():
        for record in records:
            if record.status not in EXECUTED:
                continue
            applied = [record.action] if not record.already_in_state else []
            if record.status is ActionStatus.ROLLED_BACK and record.inverse is not None:
                applied.append(record.inverse)
            found += [
                Execution(incident, a.kind, a.target, subject_of(a, inventory), record.created_at)
                for a in applied
            ]
    return sorted(found, key=lambda e: e.at)


def attribute(changes: Iterable[VendorChange], done: Sequence[Execution]) -> Attribution:
    """Each containment transition to the execution that backs it (module docstring)."""
    result = Attribution()
    free = list(done)
    for change in changes:
        kinds = VENDOR_KINDS.get((change.vendor, change.op))
        if change.vendor == TICKETING:
            continue
        match = next(
            (e for e in free if kinds and e.kind in kinds and _names(change, e.subject)), None
        )
        if match is None:
            result.duplicates.append(change)
            continue
        free.remove(match)
        result.journals.setdefault(match.incident, []).append(
            StateChange(op=match.kind.value, target=match.target, at=change.at)
        )
    return result


def ticket_opens(changes: Iterable[VendorChange]) -> dict[str, list[VendorChange]]:
    """Jira `create_issue` transitions by the incident their label names."""
    found: dict[str, list[VendorChange]] = {}
    for change in changes:
        if change.vendor != TICKETING or change.op != "create_issue":
            continue
        labels = [x for x in change.target.split(",") if x.startswith(LABEL_PREFIX)]
        incident = unquote(labels[0][len(LABEL_PREFIX) :]) if labels else f"?{change.target}"
        found.setdefault(incident, []).append(change)
    return found


def ticket_journals(opens: Mapping[str, Sequence[VendorChange]]) -> dict[str, list[StateChange]]:
    return {
        incident: [StateChange(op="open_ticket", target=c.target, at=c.at) for c in changes]
        for incident, changes in opens.items()
    }


def comment_figures(
    changes: Iterable[VendorChange], comments: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """Comments posted twice: a marker seen twice among the issues' comments, the same text twice
    on one issue, and the same body (`<issue>#<digest>`) added twice according to Jira's ledger.
    `duplicates` is the largest of the three (one comment posted twice shows in each)."""
    markers: Counter[str] = Counter()
    unmarked = same_text = 0
    for texts in comments.values():
        same_text += len(texts) - len(set(texts))  # e.g. a closing note (unmarked) twice
        for text in texts:
            found = MARKER.findall(text)
            markers.update(found)
            unmarked += not found
    bodies = Counter(c.target for c in changes if c.vendor == TICKETING and c.op == "add_comment")
    twice = {m: n for m, n in markers.items() if n > 1}
    same_body = {t: n for t, n in bodies.items() if n > 1}
    return {
        "comments": sum(len(t) for t in comments.values()),
        "markers": len(markers),
        "unmarked": unmarked,
        "duplicate_markers": sum(n - 1 for n in twice.values()),
        "duplicate_bodies": sum(n - 1 for n in same_body.values()),
        "duplicate_texts": same_text,
        "duplicates": max(
            sum(n - 1 for n in twice.values()), sum(same_body.values()) - len(same_body), same_text
        ),
        "examples": sorted(twice)[:5] + sorted(same_body)[:5],
    }


def change_counts(changes: Iterable[VendorChange]) -> dict[str, dict[str, int]]:
    """Effective vendor changes per vendor, by op."""
    counts: dict[str, Counter[str]] = {}
    for change in changes:
        counts.setdefault(change.vendor, Counter())[change.op] += 1
    return {v: dict(sorted(c.items())) for v, c in sorted(counts.items())}


def recovery(kills: Sequence[Mapping[str, Any]], progress: Sequence[float]) -> list[dict[str, Any]]:
    """Per kill: `back_s`, the killed process answering again, and `recovery_s`, from the kill to
    the first progress (an audit entry: an activity completed, a decision, a close) at or after
    that; None when nothing happened after it."""
    ordered = sorted(progress)
    shown: list[dict[str, Any]] = []
    for kill in kills:
        at, back = float(kill["at"]), kill.get("back_at")
        since = at if back is None else max(at, float(back))
        after = next((p for p in ordered if p >= since), None)
        shown.append(
            {
                **kill,
                "back_s": None if back is None else round(float(back) - at, 2),
                "recovery_s": None if after is None else round(after - at, 2),
            }
        )
    return shown


def log_findings(logs: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """`database is locked` and tracebacks in each process's log; `intended` counts the
    emulators' own, raised to drop a connection on purpose (`reset_after_apply`)."""
    return {
        name: {
            "database_is_locked": text.count("database is locked"),
            "tracebacks": text.count("Traceback (most recent call last)"),
            "intended": sum(text.count(drop) for drop in INTENDED_DROPS),
        }
        for name, text in sorted(logs.items())
    }
