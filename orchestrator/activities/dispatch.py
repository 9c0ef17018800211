"""Typed dispatch of an action to the responder that performs it, and of the state read that
verifies it. One `match` per direction, exhaustive over the action union."""

from __future__ import annotations

from typing import assert_never

from tools.actions import (
    Action,
    BlockDomain,
    BlockIp,
    DisableAccount,
    EnableAccount,
    IsolateHost,
    KillProcess,
    Patch,
    QuarantineFile,
    ReleaseHost,
    RemovePersistence,
    ResetCredentials,
    RestoreFile,
    RevokeSessions,
    UnblockDomain,
    UnblockIp,
    Unpatch,
)
from tools.edr.base import PatchResponder
from tools.errors import PermanentToolError, UnsupportedActionError
from tools.results import Change
from tools.toolsets import ResponseTools


def split_target(target: str) -> tuple[str, str]:
    """`<asset id>:<thing>` -> (asset id, thing)."""
    asset, sep, rest = target.partition(":")
    if not sep or not asset or not rest:
        raise PermanentToolError(f"target {target!r} must be written <asset id>:<value>")
    return asset, rest


def _pid(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise PermanentToolError(f"{value!r} is not a process id") from None


def _patcher(tools: ResponseTools, action: Patch | Unpatch) -> PatchResponder:
    """The EDR as a patcher, or a clear refusal naming what to do instead."""
    if isinstance(tools.edr, PatchResponder):
        return tools.edr
    raise UnsupportedActionError(
        f"{type(tools.edr).__name__} cannot {action.kind.value}: apply {action.remediation} for"
        f" {action.cve} on {action.target} by hand (the incident's ticket carries the task)"
    )


async def apply(tools: ResponseTools, action: Action) -> Change:
    match action:
        case IsolateHost(target=host):
            return await tools.edr.isolate_host(host)
        case ReleaseHost(target=host):
            return await tools.edr.release_host(host)
        case KillProcess(target=target):
            host, pid = split_target(target)
            return await tools.edr.kill_process(host, _pid(pid))
        case QuarantineFile(target=target):
            return await tools.edr.quarantine_file(*split_target(target))
        case RestoreFile(target=target):
            return await tools.edr.restore_file(*split_target(target))
        case RemovePersistence(target=target):
            return await tools.edr.remove_persistence(*split_target(target))
        case BlockIp(target=ip):
            return await tools.firewall.block_ip(ip, comment="garrison")
        case UnblockIp(target=ip):
            return await tools.firewall.unblock_ip(ip)
        case BlockDomain(target=domain):
            return await tools.firewall.block_domain(domain, comment="garrison")
        case UnblockDomain(target=domain):
            return await tools.firewall.unblock_domain(domain)
        case DisableAccount(target=identity):
            return await tools.identity.disable_account(identity)
        case EnableAccount(target=identity):
            return await tools.identity.enable_account(identity)
        case ResetCredentials(target=identity):
            return await tools.identity.reset_credentials(identity)
        case RevokeSessions(target=identity):
            return await tools.identity.revoke_sessions(identity)
        case Patch(target=host, cve=cve, remediation=fix):
            return await _patcher(tools, action).apply_patch(host, cve, fix)
        case Unpatch(target=host, cve=cve, remediation=fix):
            return await _patcher(tools, action).revert_patch(host, cve, fix)
        case _:
            assert_never(action)


async def in_desired_state(tools: ResponseTools, action: Action) -> bool | None:
    """Whether the vendor already shows the action's end state; None when it cannot be read
    (a credential reset or a session revocation leaves no state to check)."""
    match action:
        case IsolateHost(target=host):
            return await tools.edr.is_contained(host)
        case ReleaseHost(target=host):
            return not await tools.edr.is_contained(host)
        case KillProcess(target=target):
            host, pid = split_target(target)
            return not await tools.edr.is_process_running(host, _pid(pid))
        case QuarantineFile(target=target):
            return await tools.edr.is_file_quarantined(*split_target(target))
        case RestoreFile(target=target):
            return not await tools.edr.is_file_quarantined(*split_target(target))
        case RemovePersistence(target=target):
            return not await tools.edr.is_persistence_present(*split_target(target))
        case BlockIp(target=ip):
            return await tools.firewall.is_ip_blocked(ip)
        case UnblockIp(target=ip):
            return not await tools.firewall.is_ip_blocked(ip)
        case BlockDomain(target=domain):
            return await tools.firewall.is_domain_blocked(domain)
        case UnblockDomain(target=domain):
            return not await tools.firewall.is_domain_blocked(domain)
        case DisableAccount(target=identity):
            return not await tools.identity.is_enabled(identity)
        case EnableAccount(target=identity):
            return await tools.identity.is_enabled(identity)
        case ResetCredentials() | RevokeSessions():
            return None
        case Patch(target=host, cve=cve):
            return not await _patcher(tools, action).is_vulnerable(host, cve)
        case Unpatch(target=host, cve=cve):
            return await _patcher(tools, action).is_vulnerable(host, cve)
        case _:
            assert_never(action)
