"""Target comparison of the recorded-incident format: whether an action the orchestrator took is the
one the truth names. Case-insensitive; a hostname compares by its first label, also as the asset
part of `<asset id>:<thing>` targets; an identity with or without its `DOMAIN\\` prefix; addresses
and networks as parsed values (IPv6 spellings, `/32`, IPv4-mapped forms)."""

from __future__ import annotations

from orchestrator.policy.targets import parse_network
from simulations.spec import ExpectedAction
from tools.actions import ActionKind, TargetKind

TARGET_KINDS: dict[ActionKind, TargetKind] = {
    ActionKind.ISOLATE_HOST: TargetKind.ASSET,
    ActionKind.RELEASE_HOST: TargetKind.ASSET,
    ActionKind.KILL_PROCESS: TargetKind.PROCESS,
    ActionKind.QUARANTINE_FILE: TargetKind.FILE,
    ActionKind.RESTORE_FILE: TargetKind.FILE,
    ActionKind.BLOCK_IP: TargetKind.IP,
    ActionKind.UNBLOCK_IP: TargetKind.IP,
    ActionKind.BLOCK_DOMAIN: TargetKind.DOMAIN,
    ActionKind.UNBLOCK_DOMAIN: TargetKind.DOMAIN,
    ActionKind.DISABLE_ACCOUNT: TargetKind.IDENTITY,
    ActionKind.ENABLE_ACCOUNT: TargetKind.IDENTITY,
    ActionKind.RESET_CREDENTIALS: TargetKind.IDENTITY,
    ActionKind.REVOKE_SESSIONS: TargetKind.IDENTITY,
    ActionKind.REMOVE_PERSISTENCE: TargetKind.ARTEFACT,
    # not spec kinds (no truth names them), but executed runs report them
    ActionKind.PATCH: TargetKind.ASSET,
    ActionKind.UNPATCH: TargetKind.ASSET,
}


def same_target(kind: ActionKind, a: str, b: str) -> bool:
    """Whether `a` and `b` name the same target for an action of `kind`."""
    match TARGET_KINDS[kind]:
        case TargetKind.ASSET:
            return _host(a) == _host(b)
        case TargetKind.PROCESS | TargetKind.FILE | TargetKind.ARTEFACT:
            host_a, _, thing_a = a.partition(":")
            host_b, _, thing_b = b.partition(":")
            return _host(host_a) == _host(host_b) and _fold(thing_a) == _fold(thing_b)
        case TargetKind.IDENTITY:
            return _same_identity(a, b)
        case TargetKind.IP:
            net_a, net_b = parse_network(a), parse_network(b)
            if net_a is None or net_b is None:
                return _fold(a) == _fold(b)
            return net_a == net_b
        case TargetKind.DOMAIN:
            return _fold(a).rstrip(".") == _fold(b).rstrip(".")


def action_in(kind: ActionKind, target: str, actions: list[ExpectedAction]) -> bool:
    """Whether (kind, target) is one of `actions`."""
    return any(a.kind == kind and same_target(kind, target, a.target) for a in actions)


def _fold(value: str) -> str:
    return value.strip().casefold()


def _host(value: str) -> str:
    return _fold(value).split(".", 1)[0]


def _same_identity(a: str, b: str) -> bool:
    domain_a, _, user_a = _fold(a).rpartition("\\")
    domain_b, _, user_b = _fold(b).rpartition("\\")
    if user_a != user_b:
        return False
    # With a prefix on both sides, the domains must agree (NetBIOS or DNS spelling alike).
    if domain_a and domain_b:
        return _host(domain_a) == _host(domain_b)
    return True
