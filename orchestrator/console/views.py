"""What the console's pages show, shaped from the store's records: the filters of the incidents
list, one incident's timeline, the countdowns of the approvals queue, refusals in words.

Pure functions over records (no I/O), so that they are tested without a server. Every string
that came from an alert or an agent stays a plain string here: the templates escape it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from urllib.parse import quote

from orchestrator.models import RefusalCode
from orchestrator.store.incident_filter import IncidentFilter
from orchestrator.store.records import (
    ActionRecord,
    ApprovalRecord,
    AuditRecord,
    IncidentRecord,
)
from tools.models import Alert, Category, IncidentStatus, Severity, Verdict

AGES = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7)} | {
    "30d": timedelta(days=30)
}
# Headlines of a refused decision; the service's own message follows, naming the specifics.
REFUSAL_WORDS = {
    RefusalCode.UNKNOWN: "There is no such approval request.",
    RefusalCode.DECIDED: "This request was already decided or has expired.",
    RefusalCode.SELF_APPROVAL: "You requested this action, so you cannot decide it.",
    RefusalCode.UNAUTHORISED: "You are not in an approver group that may decide this request.",
    RefusalCode.CHANGED: "The action changed after it was shown to you: nothing was decided.",
    RefusalCode.REFUSED: "The incident's workflow refused this decision.",
    RefusalCode.UNAVAILABLE: "Garrison could not reach its workflows: nothing was decided; retry.",
}
_E = TypeVar("_E", IncidentStatus, Verdict, Severity, Category)
MINE, UNASSIGNED = "mine", "unassigned"  # the assignee filter's two values besides a person
TIMELINE_KINDS = ("alert", "agent", "approval", "action", "rollback", "ticket", "other")


@dataclass(frozen=True)
class ListFilters:
    status: IncidentStatus | None = None
    verdict: Verdict | None = None
    severity: Severity | None = None
    category: Category | None = None
    age: str | None = None  # a key of AGES
    assignee: str | None = None  # MINE, UNASSIGNED or one of the people given to `parse`

    @classmethod
    def parse(cls, raw: dict[str, str], people: list[str] | None = None) -> ListFilters:
        """The filters of a query string; an unknown value is ignored (no filter), not an error.
        `people`: who the assignee filter may name besides MINE and UNASSIGNED."""

        def pick(kind: type[_E], key: str) -> _E | None:
            try:
                return kind(raw.get(key, ""))
            except ValueError:
                return None

        age = raw.get("age")
        assignee = raw.get("assignee")
        known = assignee in (MINE, UNASSIGNED) or assignee in (people or [])
        return cls(
            status=pick(IncidentStatus, "status"),
            verdict=pick(Verdict, "verdict"),
            severity=pick(Severity, "severity"),
            category=pick(Category, "category"),
            age=age if age in AGES else None,
            assignee=assignee if known else None,
        )

    def selected(self) -> dict[str, str]:
        """Each filter's chosen value, "" for any (the form's state)."""
        chosen = {
            "status": self.status,
            "verdict": self.verdict,
            "severity": self.severity,
            "category": self.category,
        }
        return {k: v.value if v else "" for k, v in chosen.items()} | {
            "age": self.age or "",
            "assignee": self.assignee or "",
        }

    def store_filter(self, now: datetime, user: str = "") -> IncidentFilter:
        """The store's filter; `user` (the signed-in analyst) is whom MINE means."""
        assignee = user if self.assignee == MINE else self.assignee
        return IncidentFilter(
            verdict=self.verdict,
            severity=self.severity,
            category=self.category,
            opened_after=now - AGES[self.age] if self.age else None,
            assignee=None if assignee == UNASSIGNED else assignee,
            unassigned=assignee == UNASSIGNED,
        )


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # one of TIMELINE_KINDS
    what: str
    who: str
    outcome: str


def audit_kind(event_type: str) -> str:
    head = event_type.split(".", 1)[0]
    if event_type == "response.rollback" or "rollback" in event_type:
        return "rollback"
    if head == "response" or head == "policy":
        return "action"
    if head in ("agent", "approval", "ticket", "alert"):
        return head
    return "other"


def timeline(alerts: list[Alert], audit: list[AuditRecord]) -> list[TimelineEntry]:
    """Alerts and the incident's audit trail, oldest first."""
    entries = [
        TimelineEntry(_aware(a.time), "alert", a.title, a.product, a.severity.value) for a in alerts
    ]
    entries += [TimelineEntry(e.at, audit_kind(e.type), e.type, e.actor, e.outcome) for e in audit]
    return sorted(entries, key=lambda e: e.at)


def rationale_of(audit: list[AuditRecord]) -> list[str]:
    """The triage's rationale lines, as its audit entry recorded them (newest triage)."""
    for entry in reversed(audit):
        if entry.type == "agent.triage":
            text = entry.detail.get("rationale")
            return [line for line in str(text).splitlines() if line] if text else []
    return []


def proposal_of(audit: list[AuditRecord], approval_id: str) -> tuple[str, list[str], bool] | None:
    """The rationale, evidence and model label an approval request was made with."""
    for entry in audit:
        if entry.type == "approval.requested" and entry.target == approval_id:
            detail = entry.detail
            evidence = str(detail.get("evidence") or "")
            return (
                str(detail.get("rationale") or ""),
                [e for e in evidence.splitlines() if e],
                bool(detail.get("rationale_from_model")),
            )
    return None


def countdown(deadline: datetime, now: datetime | None = None) -> str:
    left = int((deadline - (now or datetime.now(UTC))).total_seconds())
    if left <= 0:
        return "past its deadline"
    hours, rest = divmod(left, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"


def temporal_link(base: str | None, namespace: str, incident_id: str) -> str | None:
    """The Temporal Web UI's page of the incident's workflow (its id made safe for a path)."""
    if not base:
        return None
    workflow = quote(f"incident-{incident_id}", safe="")
    return f"{base.rstrip('/')}/namespaces/{quote(namespace, safe='')}/workflows/{workflow}"


@dataclass(frozen=True)
class IncidentPage:
    incident: IncidentRecord
    alerts: list[Alert]
    actions: list[ActionRecord]
    approvals: list[ApprovalRecord]
    audit: list[AuditRecord]
    ticket_id: str | None
    temporal_url: str | None


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)
