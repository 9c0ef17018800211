"""The shared domain vocabulary: alerts, assets, identities, indicators, incidents and verdicts.

Alerts follow the recorded-incident format (a flat subset of an OCSF 1.x Detection Finding). Every
string inside an alert is attacker-influenced data: these models validate its shape and bound its
size, they never interpret it.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Attacker-influenced strings are bounded so one alert can never blow a payload or a model context.
ShortText = Annotated[str, StringConstraints(max_length=1_024)]
LongText = Annotated[str, StringConstraints(max_length=16_384)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Severity(StrEnum):
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class Verdict(StrEnum):
    MALICIOUS = "malicious"
    BENIGN = "benign"


class Category(StrEnum):
    CREDENTIAL_ACCESS = "credential_access"
    LATERAL_MOVEMENT = "lateral_movement"
    EXECUTION = "execution"
    PERSISTENCE = "persistence"
    DEFENSE_EVASION = "defense_evasion"
    COMMAND_AND_CONTROL = "command_and_control"
    EXFILTRATION = "exfiltration"
    INITIAL_ACCESS = "initial_access"
    DISCOVERY = "discovery"
    IMPACT = "impact"
    BENIGN_ACTIVITY = "benign_activity"


class AssetKind(StrEnum):
    WORKSTATION = "workstation"
    SERVER = "server"
    DOMAIN_CONTROLLER = "domain_controller"
    NETWORK_DEVICE = "network_device"
    CLOUD_RESOURCE = "cloud_resource"


class Criticality(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class IdentityKind(StrEnum):
    USER = "user"
    ADMIN = "admin"
    SERVICE = "service"


class Asset(Frozen):
    id: ShortText
    hostname: ShortText | None = None
    kind: AssetKind
    criticality: Criticality
    ips: list[ShortText] = Field(default_factory=list)
    os: ShortText | None = None
    owner: ShortText | None = None


class Identity(Frozen):
    id: ShortText
    kind: IdentityKind
    privileged: bool = False


class Environment(Frozen):
    """What the organisation knows about itself: its inventory, networks and never-touch list."""

    assets: list[Asset] = Field(default_factory=list)
    identities: list[Identity] = Field(default_factory=list)
    internal_networks: list[ShortText] = Field(default_factory=list)
    protected: list[ShortText] = Field(default_factory=list)


class RuleRef(Frozen):
    uid: ShortText
    name: ShortText
    author: ShortText | None = None


class AttackRef(Frozen):
    technique: ShortText
    tactic: ShortText | None = None


class ProcessRef(Frozen):
    pid: int | None = None
    name: ShortText | None = None
    cmd_line: LongText | None = None


class FileRef(Frozen):
    path: ShortText | None = None
    sha256: ShortText | None = None


class AlertEntities(Frozen):
    host: ShortText | None = None
    user: ShortText | None = None
    process: ProcessRef | None = None
    src_ip: ShortText | None = None
    dst_ip: ShortText | None = None
    domain: ShortText | None = None
    file: FileRef | None = None


class Alert(Frozen):
    """A detection as it arrived. All of its text is untrusted."""

    uid: ShortText
    time: datetime
    title: ShortText
    severity: Severity
    product: ShortText
    rule: RuleRef
    attacks: list[AttackRef] = Field(default_factory=list)
    entities: AlertEntities = Field(default_factory=AlertEntities)
    evidence: list[int] = Field(default_factory=list)


class IndicatorKind(StrEnum):
    IP = "ip"
    DOMAIN = "domain"
    SHA256 = "sha256"


class Indicator(Frozen):
    kind: IndicatorKind
    value: ShortText


class IncidentStatus(StrEnum):
    OPEN = "open"
    TRIAGED = "triaged"
    RESPONDING = "responding"
    CLOSED = "closed"


class Incident(Frozen):
    id: ShortText
    group_key: ShortText
    title: ShortText
    status: IncidentStatus = IncidentStatus.OPEN
    alert_uids: list[ShortText] = Field(default_factory=list)
    verdict: Verdict | None = None
    severity: Severity | None = None
    category: Category | None = None


def is_ip(value: str) -> bool:
    """True for an IPv4/IPv6 address or network (a CIDR)."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def in_networks(ip: str, networks: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for network in networks:
        try:
            if address in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False
