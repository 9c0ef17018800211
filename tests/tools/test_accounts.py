"""The canonical account: every spelling a log writes, the built-in principals by SID and by name,
matching against the inventory, and the accounts an attacker's command line names."""

from __future__ import annotations

import pytest

from tools.accounts import (
    Account,
    AccountBook,
    AccountKind,
    account_kind,
    command_accounts,
    identity_key,
    is_person,
    same_account,
)
from tools.names import same_identity

# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "name", "domain"),
    [
        ("CONTOSO\\alice", "alice", "contoso"),
        ("contoso.local\\Alice", "alice", "contoso.local"),
        ("alice@CONTOSO.LOCAL", "alice", "contoso.local"),
        ("alice@CONTOSO", "alice", "contoso"),
        ("contoso.local\\alice@contoso.local", "alice", "contoso.local"),  # a glued Kerberos UPN
        ("CONTOSO\\alice@CONTOSO", "alice", "contoso"),
        ("alice", "alice", None),
        ('  "CONTOSO\\alice" ', "alice", "contoso"),
        ("NT AUTHORITY\\ANONYMOUS LOGON", "anonymous logon", "nt authority"),
        ("first.last@sub.contoso.local", "first.last", "sub.contoso.local"),
    ],
)
def test_every_spelling_parses_to_name_and_domain(
    spelling: str, name: str, domain: str | None
) -> None:
    account = Account.parse(spelling)
    assert account is not None
    assert (account.name, account.domain) == (name, domain)


def test_a_separate_domain_field_fills_in_only_when_the_value_names_none() -> None:
    assert Account.parse("alice", "CONTOSO") == Account("alice", "contoso")
    assert Account.parse("alice@contoso.local", "CONTOSO.LOCAL") == Account(
        "alice", "contoso.local"
    )
    assert Account.parse("OTHER\\alice", "CONTOSO") == Account("alice", "other")
    assert Account.parse("alice", "-") == Account("alice", None)


@pytest.mark.parametrize("junk", ["", "   ", None, "a\x00b", "x" * 300, "a*b"])
def test_empty_or_impossible_values_are_no_account(junk: str | None) -> None:
    assert Account.parse(junk) is None


def test_spellings_of_one_account_are_the_same_and_others_are_not() -> None:
    assert same_account("CONTOSO\\alice", "alice@contoso.local")
    assert same_account("contoso.local\\alice@contoso.local", "CONTOSO\\Alice")
    assert same_account("alice", "CONTOSO\\alice")  # a bare name matches any domain
    assert not same_account("CONTOSO\\alice", "FABRIKAM\\alice")
    assert not same_account("CONTOSO\\alice", "CONTOSO\\alicia")
    assert same_identity("contoso.local\\alice@contoso.local", "CONTOSO\\alice")
    assert identity_key("alice@CONTOSO.LOCAL") == identity_key("CONTOSO\\Alice") == "alice"


def test_canonical_spelling_is_netbios_backslash_name() -> None:
    for spelling in ("alice@CONTOSO.LOCAL", "contoso.local\\alice@contoso.local", "CONTOSO\\alice"):
        account = Account.parse(spelling)
        assert account is not None and account.canonical == "contoso\\alice"


# --- well-known principals -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "kind"),
    [
        ("NT AUTHORITY\\SYSTEM", AccountKind.BUILTIN),
        ("SYSTEM", AccountKind.BUILTIN),
        ("LocalSystem", AccountKind.BUILTIN),
        ("NT AUTHORITY\\LOCAL SERVICE", AccountKind.BUILTIN),
        ("NETWORK SERVICE", AccountKind.BUILTIN),
        ("NT AUTHORITY\\ANONYMOUS LOGON", AccountKind.BUILTIN),
        ("ANONYMOUS LOGON", AccountKind.BUILTIN),
        ("Window Manager\\DWM-1", AccountKind.BUILTIN),
        ("DWM-12", AccountKind.BUILTIN),
        ("Font Driver Host\\UMFD-0", AccountKind.BUILTIN),
        ("NT SERVICE\\MSSQLSERVER", AccountKind.BUILTIN),
        ("IIS APPPOOL\\DefaultAppPool", AccountKind.BUILTIN),
        ("IUSR", AccountKind.BUILTIN),
        ("-", AccountKind.BUILTIN),
        ("S-1-5-18", AccountKind.BUILTIN),
        ("S-1-5-7", AccountKind.BUILTIN),
        ("S-1-5-90-0-1", AccountKind.BUILTIN),
        ("CONTOSO\\WS07$", AccountKind.MACHINE),
        ("ws07$@contoso.local", AccountKind.MACHINE),
        ("krbtgt", AccountKind.KEY),
        ("CONTOSO\\krbtgt", AccountKind.KEY),
        ("krbtgt_12345", AccountKind.KEY),  # a read-only DC's krbtgt
        ("S-1-5-21-1004336348-1177238915-682003330-502", AccountKind.KEY),
        ("CONTOSO\\alice", AccountKind.PERSON),
        ("svc_sql", AccountKind.PERSON),
        ("system.admin", AccountKind.PERSON),
        ("anonymous.user@contoso.local", AccountKind.PERSON),
        ("S-1-5-21-1004336348-1177238915-682003330-1105", AccountKind.PERSON),
    ],
)
def test_principals_by_name_and_by_sid(spelling: str, kind: AccountKind) -> None:
    assert account_kind(spelling) is kind
    assert is_person(spelling) is (kind is AccountKind.PERSON)


def test_a_sid_field_outranks_the_name() -> None:
    anonymous = Account.parse("whatever", None, "S-1-5-7")
    assert anonymous is not None and anonymous.kind is AccountKind.BUILTIN
    assert account_kind(None) is AccountKind.BUILTIN  # nobody to contain


# --- the inventory -----------------------------------------------------------------------------


def book() -> AccountBook:
    return AccountBook(
        ["contoso\\alice", "contoso\\svc_sql", "fabrikam\\bob", "contoso\\bob"], ["contoso.local"]
    )


def test_every_spelling_resolves_to_the_inventory_id() -> None:
    accounts = book()
    for spelling in ("alice", "alice@CONTOSO.LOCAL", "contoso.local\\alice@contoso.local"):
        assert accounts.resolve(spelling) == "contoso\\alice"
    assert accounts.resolve("SVC_SQL@contoso.local") == "contoso\\svc_sql"


def test_unknown_accounts_keep_a_canonical_spelling() -> None:
    accounts = book()
    assert accounts.resolve("eve@CONTOSO.LOCAL") == "contoso\\eve"
    assert accounts.resolve("contoso.local\\eve@contoso.local") == "contoso\\eve"
    assert accounts.resolve("eve") == "eve"
    assert accounts.resolve("") is None


def test_a_bare_name_two_domains_share_stays_unresolved() -> None:
    accounts = book()
    assert accounts.resolve("bob") == "bob"
    assert accounts.resolve("FABRIKAM\\bob") == "fabrikam\\bob"
    assert accounts.resolve("bob@contoso.local") == "contoso\\bob"


def test_a_bare_name_is_qualified_with_the_domain_it_was_used_in() -> None:
    accounts = book()
    assert accounts.qualify("alice") == "contoso\\alice"  # the inventory's only alice
    assert accounts.qualify("bob", "FABRIKAM") == "fabrikam\\bob"  # two bobs: the context's
    assert accounts.qualify("bob") is None  # two bobs, no context: nobody to act on
    assert accounts.qualify("eve", None, "contoso.local") == "contoso\\eve"
    assert accounts.qualify("eve") is None  # unknown and bare: no directory finds `eve`
    assert accounts.qualify("eve@fabrikam.example", "contoso") == "fabrikam\\eve"


def test_the_estate_domains_are_those_of_its_identities_and_their_aliases() -> None:
    accounts = book()
    assert accounts.knows_domain("CONTOSO") and accounts.knows_domain("contoso.local")
    assert accounts.knows_domain("fabrikam")
    assert not accounts.knows_domain("JVX81Q") and not accounts.knows_domain(None)


def test_a_dns_domain_maps_to_the_inventory_netbios_name_when_they_differ() -> None:
    accounts = AccountBook(["corp\\alice"], ["ad.example.com"])
    assert accounts.resolve("alice@AD.EXAMPLE.COM") == "corp\\alice"
    assert accounts.resolve("ad.example.com\\alice@ad.example.com") == "corp\\alice"


def test_an_odd_inventory_spelling_is_found_but_reported_canonically() -> None:
    accounts = AccountBook(["contoso.local\\carol@contoso.local"], ["contoso.local"])
    assert accounts.resolve("CONTOSO\\carol") == "contoso\\carol"


# --- command lines -----------------------------------------------------------------------------


def _used(cmd: str) -> dict[str, bool]:
    return {c.account.canonical: c.used for c in command_accounts(cmd)}


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        ("runas /user:CONTOSO\\admin cmd.exe", {"contoso\\admin": True}),
        ("runas.exe /netonly /user:admin@contoso.local powershell", {"contoso\\admin": True}),
        ("Rubeus.exe asktgt /user:bob /rc4:0123456789abcdef0123456789abcdef /ptt", {"bob": True}),
        ("Rubeus.exe asktgt /user:bob /domain:contoso.local /aes256:00ff", {"contoso\\bob": True}),
        ("net use \\\\fs1\\c$ /user:CONTOSO\\carol Passw0rd!", {"contoso\\carol": False}),
        ("net use \\\\fs1\\c$ /user:CONTOSO\\carol /p:Passw0rd!", {"contoso\\carol": True}),
        ("PsExec64.exe \\\\ws2 -u contoso\\dave -p S3cret cmd", {"contoso\\dave": True}),
        ("psexec \\\\ws2 -u contoso\\dave cmd", {"contoso\\dave": False}),
        ("net user erin /domain", {"erin": False}),
        ("net1 user erin NewPass1 /add", {"erin": False}),
        ("auditpol.exe /set /user:frank /category:Logon /success:disable", {"frank": False}),
        ("Enter-PSSession -ComputerName ws2 -Credential CONTOSO\\gina", {"contoso\\gina": False}),
        ("Invoke-Command -Credential $cred -ScriptBlock {whoami}", {}),
        ("Invoke-Command -Credential (Get-Credential) -ScriptBlock {whoami}", {}),
        ("whoami /all", {}),
        ("", {}),
    ],
)
def test_command_lines_name_accounts_and_say_when_they_use_them(
    cmd: str, expected: dict[str, bool]
) -> None:
    assert _used(cmd) == expected
