"""An incident as a STIX 2.1 bundle (`garrison intel export INCIDENT`), built with the `stix2`
library and marked with one TLP 2.0 marking chosen by the sharing policy.

The bundle holds: the producing organisation (`identity`); one `indicator` per released
address, domain, hash or account, `malicious-activity` at confidence 85 when the response
contained it (a block, a quarantine, a disabled account), `anomalous-activity` at 50 when an
alert of the incident only named it; one `attack-pattern` per ATT&CK technique (with its
`mitre-attack` external reference and kill-chain phase); `sighting`s of each indicator and
technique in this organisation (first and last seen, count); a `course-of-action` saying what
the response did and proposed; `relationship`s (indicator indicates technique, course of action
mitigates technique); and a `report` that refers to them all. Ids are UUIDv5 of the incident and
the object, times are the incident's own: exporting the same incident twice gives the same
bundle, and publishing it twice adds nothing. No free text from the alerts is copied, and the
incident's id appears only hashed into the object ids.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from stix2 import (
    AttackPattern,
    Bundle,
    CourseOfAction,
    ExternalReference,
    Identity,
    Indicator,
    KillChainPhase,
    Relationship,
    Report,
    Sighting,
)

from agents.knowledge import technique_tactic
from orchestrator.intel.entities import (
    Candidate,
    Inventory,
    ObservableKind,
    candidates,
    released,
)
from orchestrator.intel.markings import tlp_marking
from orchestrator.intel.policy import SharingPolicy, Tlp
from tools.actions import ActionKind
from tools.models import Alert, Category, Environment, Severity, Verdict

NAMESPACE = uuid.UUID("7d0c6a52-3c38-4b61-9a4e-0f6e8b7a2c11")  # Garrison's own STIX namespace
CONTAINED_CONFIDENCE = 85
NAMED_CONFIDENCE = 50
_ATTACK_URL = "https://attack.mitre.org/techniques/"
_HOST_TARGETED = {ActionKind.ISOLATE_HOST, ActionKind.KILL_PROCESS, ActionKind.REMOVE_PERSISTENCE}


class ActionState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ActionKind
    target: str
    executed: bool  # False: proposed (pending, denied or not yet decided)


class IncidentEvidence(BaseModel):
    """What an export is built from: a finished incident of the store
    (`orchestrator.intel.sources.from_store`) or a recorded incident (`from_recording`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    incident_id: str
    verdict: Verdict | None = None
    category: Category | None = None
    severity: Severity | None = None
    opened_at: AwareDatetime
    closed_at: AwareDatetime | None = None
    alerts: list[Alert] = Field(default_factory=list)
    actions: list[ActionState] = Field(default_factory=list)
    techniques: list[str] = Field(default_factory=list)  # beyond the alerts' own tags


class ExportError(Exception):
    """The incident cannot be exported (not malicious, nothing to say); names why."""


def build_bundle(
    evidence: IncidentEvidence, environment: Environment, policy: SharingPolicy, tlp: Tlp
) -> Bundle:
    if evidence.verdict is not Verdict.MALICIOUS:
        raise ExportError(
            f"incident {evidence.incident_id} is not malicious "
            f"(verdict {evidence.verdict.value if evidence.verdict else 'none yet'}): "
            "only attacks are shared"
        )
    ids = _Ids(evidence.incident_id)
    marking = tlp_marking(tlp)
    first, last = _window(evidence)
    common = {"object_marking_refs": [marking.id], "created": first, "modified": last}
    producer = Identity(
        id=f"identity--{uuid.uuid5(NAMESPACE, 'org:' + policy.organisation)}",
        name=policy.organisation,
        identity_class="organization",
        object_marking_refs=[marking.id],
        created=first,
        modified=first,
    )
    made = {**common, "created_by_ref": producer.id}
    inventory = Inventory(environment)
    kept = [
        c
        for c in candidates(
            evidence.alerts, [(a.kind, a.target) for a in evidence.actions], inventory
        )
        if released(c, policy, tlp)
    ]
    techniques = _techniques(evidence)
    patterns = {t: _attack_pattern(t, ids, made) for t in techniques}
    indicators = [(c, _indicator(c, ids, made)) for c in kept]
    objects: list[object] = [marking, producer, *patterns.values()]
    for candidate, indicator in indicators:
        objects.append(indicator)
        objects.append(_sighting(indicator.id, candidate.alerts, first, last, ids, made, producer))
        named = {t for a in candidate.alerts for t in _alert_techniques(a)} or set(techniques)
        for technique in sorted(named & set(patterns)):
            objects.append(_relation(indicator.id, "indicates", patterns[technique].id, ids, made))
    for technique, pattern in patterns.items():
        seen = [a for a in evidence.alerts if technique in _alert_techniques(a)]
        objects.append(_sighting(pattern.id, seen, first, last, ids, made, producer))
    course = CourseOfAction(
        id=ids.of("course-of-action", "response"),
        name=f"Response to a {_category(evidence)} intrusion",
        description=_response_text(evidence, kept, policy, tlp),
        **made,
    )
    objects.append(course)
    objects += [_relation(course.id, "mitigates", p.id, ids, made) for p in patterns.values()]
    report = Report(
        id=ids.of("report", "incident"),
        name=f"Garrison incident {ids.short}: {_category(evidence)}",
        description=(
            f"A {evidence.severity.value if evidence.severity else 'unrated'} "
            f"{_category(evidence)} intrusion seen by {policy.organisation}: "
            f"{len(evidence.alerts)} alert(s), {len(indicators)} shared indicator(s), "
            f"{len(patterns)} technique(s)."
        ),
        report_types=["threat-report"],
        published=last,
        object_refs=[o.id for o in objects[2:]],  # type: ignore[attr-defined]
        **made,
    )
    objects.append(report)
    return Bundle(objects=objects, id=ids.of("bundle", f"{tlp.value}"))


class _Ids:
    def __init__(self, incident_id: str) -> None:
        self.incident = incident_id
        self.short = str(uuid.uuid5(NAMESPACE, "incident:" + incident_id))[:8]

    def of(self, stix_type: str, name: str) -> str:
        return f"{stix_type}--{uuid.uuid5(NAMESPACE, f'{self.incident}|{stix_type}|{name}')}"


def _window(evidence: IncidentEvidence) -> tuple[datetime, datetime]:
    times = [a.time for a in evidence.alerts]
    first = min([evidence.opened_at, *times])
    last = max([evidence.closed_at or evidence.opened_at, *times])
    return first, last


def _category(evidence: IncidentEvidence) -> str:
    return (evidence.category.value if evidence.category else "unclassified").replace("_", " ")


def _alert_techniques(alert: Alert) -> set[str]:
    return {a.technique.strip().upper() for a in alert.attacks if _technique_id(a.technique)}


def _technique_id(value: str) -> bool:
    head, _, sub = value.strip().upper().partition(".")
    return len(head) == 5 and head[0] == "T" and head[1:].isdigit() and (not sub or sub.isdigit())


def _techniques(evidence: IncidentEvidence) -> list[str]:
    found = {t for a in evidence.alerts for t in _alert_techniques(a)}
    found |= {t.strip().upper() for t in evidence.techniques if _technique_id(t)}
    return sorted(found)


def _attack_pattern(technique: str, ids: _Ids, made: dict[str, Any]) -> AttackPattern:
    tactic = technique_tactic(technique)
    return AttackPattern(
        id=ids.of("attack-pattern", technique),
        name=technique,
        external_references=[
            ExternalReference(
                source_name="mitre-attack",
                external_id=technique,
                url=_ATTACK_URL + technique.replace(".", "/") + "/",
            )
        ],
        kill_chain_phases=(
            [KillChainPhase(kill_chain_name="mitre-attack", phase_name=tactic)] if tactic else None
        ),
        **made,
    )


def stix_pattern(candidate: Candidate) -> str:
    value = candidate.value.replace("\\", "\\\\").replace("'", "\\'")
    match candidate.kind:
        case ObservableKind.SHA256:
            return f"[file:hashes.'SHA-256' = '{value}']"
        case ObservableKind.ACCOUNT:
            return f"[user-account:account_login = '{value}']"
        case _:
            return f"[{candidate.kind.value}:value = '{value}']"


def _indicator(candidate: Candidate, ids: _Ids, made: dict[str, Any]) -> Indicator:
    pattern = stix_pattern(candidate)
    return Indicator(
        id=ids.of("indicator", pattern),
        name=f"{candidate.kind.value} {candidate.value}",
        indicator_types=["malicious-activity" if candidate.contained else "anomalous-activity"],
        confidence=CONTAINED_CONFIDENCE if candidate.contained else NAMED_CONFIDENCE,
        pattern=pattern,
        pattern_type="stix",
        valid_from=made["created"],
        **made,
    )


def _sighting(
    ref: str,
    alerts: list[Alert],
    first: datetime,
    last: datetime,
    ids: _Ids,
    made: dict[str, Any],
    producer: Identity,
) -> Sighting:
    times = [a.time for a in alerts] or [first, last]
    return Sighting(
        id=ids.of("sighting", ref),
        sighting_of_ref=ref,
        first_seen=min(times),
        last_seen=max(times),
        count=max(1, len(alerts)),
        where_sighted_refs=[producer.id],
        **made,
    )


def _relation(source: str, kind: str, target: str, ids: _Ids, made: dict[str, Any]) -> Relationship:
    return Relationship(
        id=ids.of("relationship", f"{source}|{kind}|{target}"),
        relationship_type=kind,
        source_ref=source,
        target_ref=target,
        **made,
    )


def _response_text(
    evidence: IncidentEvidence, kept: list[Candidate], policy: SharingPolicy, tlp: Tlp
) -> str:
    """What was done and proposed, naming a target only when it is shared in this bundle (or is
    a host the policy releases); every other target is said by its kind alone."""
    shared = {c.value for c in kept}
    hosts = policy.releases("hosts", tlp)
    lines = []
    for action in evidence.actions:
        target = action.target.strip()
        if action.kind in _HOST_TARGETED or action.kind is ActionKind.QUARANTINE_FILE:
            host, _, thing = target.partition(":")
            named = hosts and action.kind is ActionKind.ISOLATE_HOST
            target = host if named else "an internal host"
            if thing and thing.lower() in shared:
                target += f" (file {thing.lower()})"
        elif target.lower() not in shared and target not in shared:
            target = "an internal " + ("account" if "account" in action.kind.value else "target")
        state = "done" if action.executed else "proposed"
        lines.append(f"{action.kind.value.replace('_', ' ')} {target}: {state}")
    return "\n".join(dict.fromkeys(lines)) or "No containment was needed."
