"""Consequential actions: one class per kind, discriminated on `kind`, each knowing its inverse.

The kinds are those of the recorded-incident format. Agents and playbooks only ever *propose*
these; the workflow's policy gate decides and an orchestrator activity executes them.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from tools.models import ShortText


class ActionKind(StrEnum):
    ISOLATE_HOST = "isolate_host"
    RELEASE_HOST = "release_host"
    KILL_PROCESS = "kill_process"
    QUARANTINE_FILE = "quarantine_file"
    RESTORE_FILE = "restore_file"
    BLOCK_IP = "block_ip"
    UNBLOCK_IP = "unblock_ip"
    BLOCK_DOMAIN = "block_domain"
    UNBLOCK_DOMAIN = "unblock_domain"
    DISABLE_ACCOUNT = "disable_account"
    ENABLE_ACCOUNT = "enable_account"
    RESET_CREDENTIALS = "reset_credentials"
    REVOKE_SESSIONS = "revoke_sessions"
    REMOVE_PERSISTENCE = "remove_persistence"
    # Not kinds of the recorded-incident format (spec v1 has no patching): Garrison's own, so
    # they stay out of SCORED_KINDS and a recorded incident's truth cannot name them.
    PATCH = "patch"
    UNPATCH = "unpatch"


# The kinds the recorded-incident format scores (inverses are bookkeeping, not responses).
# `patch` is not one: spec v1's action table has no patching, an incident's truth may only name
# the table's kinds, and the spec is a contract other people write incidents in. A patch is
# executed and audited like any action, but the scorecard neither rewards nor penalises it.
SCORED_KINDS: frozenset[ActionKind] = frozenset(
    {
        ActionKind.ISOLATE_HOST,
        ActionKind.KILL_PROCESS,
        ActionKind.QUARANTINE_FILE,
        ActionKind.BLOCK_IP,
        ActionKind.BLOCK_DOMAIN,
        ActionKind.DISABLE_ACCOUNT,
        ActionKind.RESET_CREDENTIALS,
        ActionKind.REVOKE_SESSIONS,
        ActionKind.REMOVE_PERSISTENCE,
    }
)


class TargetKind(StrEnum):
    ASSET = "asset"
    PROCESS = "process"
    FILE = "file"
    IP = "ip"
    DOMAIN = "domain"
    IDENTITY = "identity"
    ARTEFACT = "artefact"


class _Action(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    target: ShortText

    @property
    def target_kind(self) -> TargetKind:
        raise NotImplementedError

    @property
    def asset_id(self) -> str | None:
        """The asset an action lands on, for targets written `<asset id>:<thing>`."""
        if self.target_kind in (TargetKind.PROCESS, TargetKind.FILE, TargetKind.ARTEFACT):
            return self.target.split(":", 1)[0]
        if self.target_kind is TargetKind.ASSET:
            return self.target
        return None

    def inverse(self) -> Action | None:
        return None


class IsolateHost(_Action):
    kind: Literal[ActionKind.ISOLATE_HOST] = ActionKind.ISOLATE_HOST

    @property
    def target_kind(self) -> TargetKind:
        return TargetKind.ASSET

    def inverse(self) -> Action:
        return ReleaseHost(target=self.target)


class ReleaseHost(_Action):
    kind: Literal[ActionKind.RELEASE_HOST] = ActionKind.RELEASE_HOST

    @property
    def target_kind(self) -> TargetKind:
        return TargetKind.ASSET

    def inverse(self) -> Action:
        return IsolateHost(target=self.target)


class KillProcess(_Action):
    """Target `<asset id>:<pid>`. Irreversible: a killed process has no inverse."""

    kind: Literal[ActionKind.KILL_PROCESS] = ActionKind.KILL_PROCESS

    @property
    def target_kind(self) -> TargetKind:
        return TargetKind.PROCESS


class QuarantineFile(_Action):
    """Target `<asset id>:<sha256 or path>`."""

    kind: Literal[ActionKind.QUARANTINE_FILE] = ActionKind.QUARANTINE_FILE

    @property
    def target_kind(self) -> TargetKind:
        return TargetKind.FILE

    def inverse(self) -> Action:
        return RestoreFile(target=self.target)


class RestoreFile(_Action):
    kind: Literal[ActionKind.RESTORE_FILE] = ActionKind.RESTORE_FILE

    @property
    def target_kind(self) -> TargetKind:
        return TargetKind.FILE

    def inverse(self) -> Action:
        return QuarantineFile(target=self.target)


class BlockIp(_Action):
    """Target an IPv4/IPv6 address or a CIDR."""

    kind: Literal[ActionKind.BLOCK_IP] = ActionKind.BLOCK_IP

    @property
    def target_kind(self) -> TargetKind:
        return TargetKind.IP

    def inverse(self) -> Action:
        return UnblockIp(target=self.target)


class UnblockIp(_Action):
    kind: Literal[ActionKind.UNBLOCK_IP] = ActionKind.UNBLOCK_IP

    @property
    def target_kind(self) -> TargetKind:
        return TargetKind.IP

    def inverse(self) -> Action:
        return BlockIp(target=self.target)


class BlockDomain(_Action):
    kind: Literal[ActionKind.BLOCK_DOMAIN] = ActionKind.BLOCK_DOMAIN

    @property
    def target_kind(self) -> TargetKind:
        return TargetKind.DOMAIN

    def inverse(self) -> Action:
        return UnblockDomain(target=self.target)


class UnblockDomain(_Action):
    kind: Literal[ActionKind.UNBLOCK_DOMAIN] = ActionKind.UNBLOCK_DOMAIN

    @property
    def target_kind(self) -> TargetKind:
        return TargetKind.DOMAIN

    def inverse(self) -> Action:
        return BlockDomain(target=self.target)


class DisableAccount(_Action):
    kind: Literal[ActionKind.DISABLE_ACCOUNT] = ActionKind.DISABLE_ACCOUNT

    @property
    def target_kind(self) -> TargetKind:
        return TargetKind.IDENTITY

    def inverse(self) -> Action:
        return EnableAccount(target=self.target)


class EnableAccount(_Action):
    kind: Literal[ActionKind.ENABLE_ACCOUNT] = ActionKind.ENABLE_ACCOUNT

    @property
    def target_kind(self) -> TargetKind:
        return TargetKind.IDENTITY

    def inverse(self) -> Action:
        return DisableAccount(target=self.target)


class ResetCredentials(_Action):
    kind: Literal[ActionKind.RESET_CREDENTIALS] = ActionKind.RESET_CREDENTIALS

    @property
    def target_kind(self) -> TargetKind:
        return TargetKind.IDENTITY


class RevokeSessions(_Action):
    kind: Literal[ActionKind.REVOKE_SESSIONS] = ActionKind.REVOKE_SESSIONS

    @property
    def target_kind(self) -> TargetKind:
        return TargetKind.IDENTITY


class RemovePersistence(_Action):
    """Target `<asset id>:<artefact>` (a run key, service or scheduled task name)."""

    kind: Literal[ActionKind.REMOVE_PERSISTENCE] = ActionKind.REMOVE_PERSISTENCE

    @property
    def target_kind(self) -> TargetKind:
        return TargetKind.ARTEFACT


# A CVE id as MITRE writes it; remediation ids are a vendor update (`KB5008212`), a package
# version (`pkg:log4j-core@2.17.1`) or a named mitigation (`mitigation:log4j-nolookups`).
CVE_ID = r"^CVE-\d{4}-\d{4,7}$"
REMEDIATION_ID = (
    r"^(KB\d{6,8}|pkg:[A-Za-z0-9._+-]{1,64}@[A-Za-z0-9._+-]{1,32}|mitigation:[a-z0-9._-]{1,64})$"
)


class Patch(_Action):
    """Install a vendor update, or apply a mitigation, on an asset (target: the asset id) for
    an exploited vulnerability. Its inverse uninstalls the update or reverts the mitigation,
    when the remediation can be undone (`reversible`, from the knowledge that chose it:
    `agents/knowledge_base/vulnerabilities.yaml`); an uninstall re-opens the hole it closed."""

    kind: Literal[ActionKind.PATCH] = ActionKind.PATCH
    cve: str = Field(pattern=CVE_ID)
    remediation: str = Field(pattern=REMEDIATION_ID)
    reversible: bool = True

    @property
    def target_kind(self) -> TargetKind:
        return TargetKind.ASSET

    def inverse(self) -> Action | None:
        if not self.reversible:
            return None
        return Unpatch(target=self.target, cve=self.cve, remediation=self.remediation)


class Unpatch(_Action):
    """Uninstall the update or revert the mitigation a `patch` applied."""

    kind: Literal[ActionKind.UNPATCH] = ActionKind.UNPATCH
    cve: str = Field(pattern=CVE_ID)
    remediation: str = Field(pattern=REMEDIATION_ID)

    @property
    def target_kind(self) -> TargetKind:
        return TargetKind.ASSET

    def inverse(self) -> Action:
        return Patch(target=self.target, cve=self.cve, remediation=self.remediation)


Action = Annotated[
    IsolateHost
    | ReleaseHost
    | KillProcess
    | QuarantineFile
    | RestoreFile
    | BlockIp
    | UnblockIp
    | BlockDomain
    | UnblockDomain
    | DisableAccount
    | EnableAccount
    | ResetCredentials
    | RevokeSessions
    | RemovePersistence
    | Patch
    | Unpatch,
    Field(discriminator="kind"),
]

ACTION_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)


def parse_action(kind: str, target: str, **parameters: str) -> Action:
    """Build a typed action from its kind, target and (for a patch: `cve`, `remediation`) its
    parameters; raises pydantic's ValidationError."""
    return ACTION_ADAPTER.validate_python({"kind": kind, "target": target, **parameters})


# The parameters a kind needs beyond its target, with placeholder values (`sample_action`).
_SAMPLE_PARAMETERS: dict[ActionKind, dict[str, str]] = {
    ActionKind.PATCH: {"cve": "CVE-2000-0001", "remediation": "KB0000001"},
    ActionKind.UNPATCH: {"cve": "CVE-2000-0001", "remediation": "KB0000001"},
}


def sample_action(kind: ActionKind | str) -> Action:
    """An action of `kind` with placeholder target and parameters: what tools that reason about
    kinds (their target kind, whether they have an inverse) build to ask the kind itself."""
    return parse_action(kind, "x", **_SAMPLE_PARAMETERS.get(ActionKind(kind), {}))


def business_key(incident_id: str, action: Action) -> str:
    """The idempotency key of a side effect: `<incident>:<action kind>:<target>`, and for a
    patch `:<cve>:<remediation>` after it (two fixes on one host are two side effects)."""
    key = f"{incident_id}:{action.kind.value}:{action.target.lower()}"
    if isinstance(action, Patch | Unpatch):
        key += f":{action.cve.lower()}:{action.remediation.lower()}"
    return key


def action_hash(incident_id: str, action: Action, policy_version: str) -> str:
    """What an approval binds to: incident, action kind, target, parameters and policy version."""
    body = {
        "incident": incident_id,
        "action": action.model_dump(mode="json"),
        "policy_version": policy_version,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
