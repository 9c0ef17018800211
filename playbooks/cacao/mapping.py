"""The documented mapping between CACAO and Garrison (docs/cacao.md).

Commands: an `openc2-http` command's JSON content (OpenC2 Language Specification v1.0 action and
target) maps to one Garrison action kind (`OPENC2_ACTIONS`); `manual` and other commands propose
nothing: they are for a human and the summary lists them.

Values: a literal, or a CACAO variable reference `__name__:value`. A playbook variable with a
`value` is a constant; an `external` one is bound to the incident's entities, by its type
(`ipv4-addr`/`ipv6-addr` -> the investigation's attacker IPs, `sha256-hash`/`hash` -> malicious
file hashes) or else by its name (`host`, `device`, `asset` -> compromised assets; `user`,
`account`, `identity` -> compromised identities; `domain` -> attacker domains). Garrison also
sets runtime variables the conditions may read: `__verdict__`, `__category__`,
`__isolation_refused__` (`true` when an isolation was denied or expired).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from agents.models import InvestigationReport, OutcomeStatus
from playbooks.base import PlaybookState
from tools.actions import ActionKind, TargetKind, sample_action

REFERENCE = re.compile(r"^(__[A-Za-z0-9_]+__):value$")

# (OpenC2 action, OpenC2 target type) -> Garrison action kind
OPENC2_ACTIONS: dict[tuple[str, str], ActionKind] = {
    ("deny", "ipv4_net"): ActionKind.BLOCK_IP,
    ("deny", "ipv6_net"): ActionKind.BLOCK_IP,
    ("contain", "ipv4_net"): ActionKind.BLOCK_IP,
    ("deny", "domain_name"): ActionKind.BLOCK_DOMAIN,
    ("contain", "domain_name"): ActionKind.BLOCK_DOMAIN,
    ("contain", "device"): ActionKind.ISOLATE_HOST,
    ("restore", "device"): ActionKind.RELEASE_HOST,
    ("allow", "ipv4_net"): ActionKind.UNBLOCK_IP,
    ("allow", "domain_name"): ActionKind.UNBLOCK_DOMAIN,
    ("contain", "file"): ActionKind.QUARANTINE_FILE,
    ("delete", "file"): ActionKind.QUARANTINE_FILE,
}

# the CACAO security-category vocabulary entry for the things Garrison acts on
TARGET_CATEGORY: dict[TargetKind, str] = {
    TargetKind.ASSET: "edr",
    TargetKind.PROCESS: "edr",
    TargetKind.FILE: "edr",
    TargetKind.ARTEFACT: "edr",
    TargetKind.IP: "firewall",
    TargetKind.DOMAIN: "firewall",
    TargetKind.IDENTITY: "iam",
}

ENTITY_VARIABLES: dict[str, dict[str, Any]] = {
    "__compromised_assets__": {
        "type": "string",
        "description": "hosts the investigation found compromised",
        "external": True,
    },
    "__compromised_identities__": {
        "type": "string",
        "description": "accounts the investigation found compromised",
        "external": True,
    },
    "__attacker_ips__": {
        "type": "ipv4-addr",
        "description": "attacker IP addresses the investigation found",
        "external": True,
    },
    "__attacker_domains__": {
        "type": "string",
        "description": "attacker domains the investigation found",
        "external": True,
    },
}


def inverse_kind(kind: ActionKind) -> str | None:
    inverse = sample_action(kind).inverse()
    return inverse.kind.value if inverse is not None else None


def openc2_kind(command: Mapping[str, Any]) -> tuple[ActionKind, Any] | None:
    """The Garrison kind of an `openc2-http` command and its OpenC2 target value, or None."""
    if command.get("type") != "openc2-http" or not isinstance(command.get("content"), str):
        return None
    try:
        content = json.loads(command["content"])
    except json.JSONDecodeError:
        return None
    target = content.get("target") if isinstance(content, dict) else None
    if not isinstance(target, dict) or len(target) != 1:
        return None
    ((target_type, value),) = target.items()
    kind = OPENC2_ACTIONS.get((str(content.get("action")), target_type))
    return None if kind is None else (kind, _target_value(target_type, value))


def _target_value(target_type: str, value: Any) -> Any:
    if target_type == "device" and isinstance(value, dict):
        return value.get("hostname") or value.get("device_id")
    if target_type == "file" and isinstance(value, dict):
        return (value.get("hashes") or {}).get("sha256") or value.get("path")
    return value


def bind(name: str, variable: Mapping[str, Any], state: PlaybookState) -> list[str]:
    """The values of a playbook variable for this incident."""
    if "value" in variable and not variable.get("external"):
        return [str(variable["value"])]
    runtime = runtime_variables(state)
    if name in runtime:
        return [runtime[name]]
    report: InvestigationReport | None = state.get("report")
    if report is None:
        return []
    kind = str(variable.get("type", "string"))
    lowered = name.lower()
    if kind in ("ipv4-addr", "ipv6-addr") or "ip" in lowered.strip("_").split("_"):
        return list(report.attacker_ips)
    if kind in ("sha256-hash", "hash"):
        return list(report.malicious_sha256)
    for words, values in (
        (("host", "device", "asset"), report.compromised_assets),
        (("user", "account", "identit"), report.compromised_identities),
        (("domain",), report.attacker_domains),
    ):
        if any(w in lowered for w in words):
            return list(values)
    return [str(variable["value"])] if "value" in variable else []


def runtime_variables(state: PlaybookState) -> dict[str, str]:
    report = state.get("report")
    triage = state["triage"]
    refused = any(
        o.action.kind is ActionKind.ISOLATE_HOST
        and o.status in (OutcomeStatus.DENIED, OutcomeStatus.EXPIRED)
        for o in state.get("outcomes", [])
    )
    verdict = report.verdict if report is not None else triage.verdict
    return {
        "__verdict__": verdict.value,
        "__category__": triage.category.value,
        "__isolation_refused__": "true" if refused else "false",
    }


def resolve(
    value: Any, variables: Mapping[str, Mapping[str, Any]], state: PlaybookState
) -> list[str]:
    """A command's target value: the bound values of a variable reference, else the literal."""
    if isinstance(value, str):
        match = REFERENCE.match(value.strip())
        if match:
            name = match.group(1)
            return bind(name, variables.get(name, {"type": "string", "external": True}), state)
        return [value] if value.strip() else []
    return [str(value)] if value is not None else []
