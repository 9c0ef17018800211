"""How names recorded by different sources are compared: hosts by first label, identities with
or without their domain.
"""

from __future__ import annotations

from tools.accounts import Account


def host_key(name: str) -> str:
    """`PRD01.pandalab.com`, `prd01` and `PRD01` all compare as `prd01`."""
    return name.strip().split(".", 1)[0].lower()


def same_host(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and host_key(a) == host_key(b)


def identity_key(name: str) -> tuple[str | None, str]:
    """`CONTOSO\\alice`, `contoso.local\\Alice`, `alice@contoso.local` and the glued
    `contoso.local\\alice@contoso.local` -> ("contoso", "alice"); a bare `alice` has no domain
    (`tools.accounts` parses every spelling)."""
    account = Account.parse(name)
    if account is None:
        return None, name.strip().lower()
    return account.netbios, account.name


def same_identity(a: str, b: str) -> bool:
    """Equal users, and equal domains when both names carry one."""
    domain_a, user_a = identity_key(a)
    domain_b, user_b = identity_key(b)
    if user_a != user_b:
        return False
    return domain_a is None or domain_b is None or domain_a == domain_b
