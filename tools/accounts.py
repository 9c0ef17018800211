"""One account, however a log spells it: the canonical identity value type.

Windows and its neighbours name one account many ways: `CORP\\alice` (the NetBIOS domain of
logon events), `alice@CORP.LOCAL` (Kerberos), `corp.local\\alice` (DNS domain), a bare `alice`
(Sysmon on some builds, Linux), and importers that glue a Kerberos event's domain to its UPN
(`corp.local\\alice@corp.local`). Compared as strings these are four accounts; an analyst sees one.
`Account` parses every form to (name, domain) and `AccountBook` matches it against the
inventory's identities, so that one person is one target and the inventory's facts about it
(privileged, protected) follow every spelling.

Some names are not people at all: the operating system's own principals (SYSTEM, LOCAL SERVICE,
NETWORK SERVICE, ANONYMOUS LOGON, the per-session DWM-n and UMFD-n), virtual service accounts,
machine accounts (`NAME$`), and krbtgt, whose key signs every ticket of the domain. Nobody
disables them: containment of a host is isolation, of a stolen krbtgt key a reset. They are
recognised by SID where the event gives one, and by name in the English spelling Windows writes
in the Security log's fields whatever the display language (the fields are not localised).

Pure string work: safe in workflow code (the risk policy uses it) and in tools.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class AccountKind(StrEnum):
    PERSON = "person"  # a user, an admin or a service account a person created: containable
    MACHINE = "machine"  # a computer's domain account (`NAME$`): contained by isolating the host
    BUILTIN = "builtin"  # the operating system's own principals: never disabled nor reset
    KEY = "key"  # krbtgt: a secret, not a login; contained by resetting its key, never disabled


# Principals of the operating system, by the name Windows writes in event fields (lowercase).
BUILTIN_NAMES: frozenset[str] = frozenset(
    {
        "system", "localsystem", "local system", "local service", "localservice",
        "network service", "networkservice", "anonymous logon", "anonymous", "nobody",
        "iusr", "defaultaccount", "wdagutilityaccount", "trustedinstaller", "everyone",
        "authenticated users", "interactive", "network", "service", "batch", "null sid",
        "-", "", "4294967295", "unset",
    }
)  # fmt: skip
# Per-session principals: Desktop Window Manager and User-Mode Font Driver hosts.
SESSION_PRINCIPAL = re.compile(r"^(dwm|umfd)-\d+$")
# Domains that hold only built-in principals: any account "in" them is the system's own.
BUILTIN_DOMAINS: frozenset[str] = frozenset(
    {
        "nt authority", "nt service", "window manager", "font driver host", "iis apppool",
        "nt virtual machine", "builtin", "autorite nt", "nt-autorität",
    }
)  # fmt: skip
KEY_ACCOUNT = re.compile(r"^krbtgt(_\d+)?$")

# Well-known SIDs (exact), and SID prefixes whose every member is a built-in principal.
BUILTIN_SIDS: frozenset[str] = frozenset(
    {
        "s-1-0-0", "s-1-1-0", "s-1-2-0", "s-1-2-1", "s-1-3-0", "s-1-3-1", "s-1-5-1", "s-1-5-2",
        "s-1-5-3", "s-1-5-4", "s-1-5-6", "s-1-5-7", "s-1-5-9", "s-1-5-10", "s-1-5-11",
        "s-1-5-12", "s-1-5-13", "s-1-5-14", "s-1-5-15", "s-1-5-17", "s-1-5-18", "s-1-5-19",
        "s-1-5-20", "s-1-5-113", "s-1-5-114",
    }
)  # fmt: skip
BUILTIN_SID_PREFIXES: tuple[str, ...] = (
    "s-1-5-32-",  # BUILTIN groups
    "s-1-5-80-",  # NT SERVICE\<service> virtual accounts
    "s-1-5-82-",  # IIS application pool identities
    "s-1-5-83-",  # Hyper-V virtual machines
    "s-1-5-90-",  # Window Manager (DWM-n)
    "s-1-5-96-",  # Font Driver Host (UMFD-n)
)
_DOMAIN_SID_RID = re.compile(r"^s-1-5-21-\d+-\d+-\d+-(\d+)$")
KEY_RID = 502  # krbtgt's relative id in every domain
RC4_HMAC = 0x17  # the Kerberos ticket encryption offline cracking wants (Kerberoasting)

_QUOTES = "\"' \t\r\n"
_VALID = re.compile(r"^[^\x00-\x1f\\/@\[\]:;|=,+*?<>\"]{1,256}$")


def netbios_of(domain: str | None) -> str | None:
    """`corp.local` -> `corp`; `CORP` -> `corp` (the first label, lowercased)."""
    if not domain:
        return None
    first = domain.strip().lower().split(".", 1)[0]
    return first or None


def sid_kind(sid: str | None) -> AccountKind | None:
    """What a SID says about its account, when it says anything."""
    text = (sid or "").strip().lower()
    if not text.startswith("s-1-"):
        return None
    if text in BUILTIN_SIDS or text.startswith(BUILTIN_SID_PREFIXES):
        return AccountKind.BUILTIN
    rid = _DOMAIN_SID_RID.match(text)
    if rid and int(rid.group(1)) == KEY_RID:
        return AccountKind.KEY
    return None


@dataclass(frozen=True, slots=True)
class Account:
    """An account as (name, domain), both lowercased; `domain` as written (NetBIOS or DNS), None
    when the log gave none. Compare with `same_as` (the domain's NetBIOS label, and a missing
    domain matches any); `canonical` is the `netbios\\name` spelling."""

    name: str
    domain: str | None = None
    sid: str | None = None

    @classmethod
    def parse(
        cls, value: str | None, domain: str | None = None, sid: str | None = None
    ) -> Account | None:
        """Any spelling: `DOMAIN\\user`, `domain.fqdn\\user`, `user@domain.fqdn`, `user@DOMAIN`,
        `domain.fqdn\\user@domain.fqdn`, bare `user`; `domain` (a separate DomainName field)
        fills in when the value names none. None for an empty value or one no log writes for
        an account; "-" and well-known SIDs parse (they are accounts, just not people)."""
        text = (value or "").strip(_QUOTES)
        sid_text = (sid or "").strip(_QUOTES).lower() or None
        if text.lower().startswith("s-1-") and sid_text is None:
            return cls(name=text.lower(), domain=None, sid=text.lower())
        written_domain: str | None = None
        if "\\" in text:
            written_domain, text = text.rsplit("\\", 1)
        if "@" in text:
            text, upn_domain = text.rsplit("@", 1)
            # the UPN's DNS domain says more than a glued-on prefix (`corp.local\\a@corp.local`)
            if upn_domain.strip() and (not written_domain or "." in upn_domain):
                written_domain = upn_domain
        name = text.strip(_QUOTES).lower()
        if name in ("", "-") and not written_domain:
            return cls(name="-", sid=sid_text) if text.strip() == "-" else None
        if not _VALID.match(name or "-"):
            return None
        chosen = (written_domain or domain or "").strip(_QUOTES).lower().rstrip(".")
        if chosen in ("", "-"):
            chosen = ""
        return cls(name=name or "-", domain=chosen or None, sid=sid_text)

    @property
    def netbios(self) -> str | None:
        return netbios_of(self.domain)

    @property
    def kind(self) -> AccountKind:
        by_sid = sid_kind(self.sid) or sid_kind(self.name)
        if by_sid is not None:
            return by_sid
        if KEY_ACCOUNT.match(self.name):
            return AccountKind.KEY
        if (
            self.name in BUILTIN_NAMES
            or SESSION_PRINCIPAL.match(self.name)
            or (self.domain or "") in BUILTIN_DOMAINS
        ):
            return AccountKind.BUILTIN
        if self.name.endswith("$"):
            return AccountKind.MACHINE
        return AccountKind.PERSON

    @property
    def is_person(self) -> bool:
        return self.kind is AccountKind.PERSON

    @property
    def canonical(self) -> str:
        netbios = self.netbios
        return f"{netbios}\\{self.name}" if netbios else self.name

    def same_as(self, other: Account, aliases: dict[str, str] | None = None) -> bool:
        """Equal names, and equal domains when both carry one (NetBIOS or DNS alike)."""
        if self.name != other.name:
            return False
        mine, theirs = _domain_key(self.domain, aliases), _domain_key(other.domain, aliases)
        return mine is None or theirs is None or mine == theirs


def _domain_key(domain: str | None, aliases: dict[str, str] | None) -> str | None:
    if not domain:
        return None
    lowered = domain.strip().lower()
    if aliases and lowered in aliases:
        return aliases[lowered]
    return netbios_of(lowered)


def parse_account(value: str | None, domain: str | None = None) -> Account | None:
    return Account.parse(value, domain)


def account_kind(value: str | None) -> AccountKind:
    """The kind of a spelled account; an empty or unparseable one counts as built-in (it is
    nobody to contain)."""
    account = Account.parse(value)
    return account.kind if account is not None else AccountKind.BUILTIN


def is_person(value: str | None) -> bool:
    """Whether a spelled account can be a person's (never SYSTEM, ANONYMOUS LOGON, a machine
    account or krbtgt)."""
    return account_kind(value) is AccountKind.PERSON


def identity_key(value: str) -> str:
    """The name part of any spelling, lowercased: what ids compare on with or without domain."""
    account = Account.parse(value)
    return account.name if account is not None else value.strip().lower().rsplit("\\", 1)[-1]


def same_account(a: str, b: str) -> bool:
    first, second = Account.parse(a), Account.parse(b)
    return first is not None and second is not None and first.same_as(second)


class AccountBook:
    """The inventory's identities (and the owners of its assets), matched whatever the
    spelling. A DNS domain (`corp.local`) is known as its NetBIOS name when the inventory's
    hostnames use it and its identities use one NetBIOS domain, or when their first labels
    agree."""

    def __init__(self, identity_ids: Iterable[str], dns_domains: Iterable[str] = ()) -> None:
        self._by_name: dict[str, list[tuple[Account, str]]] = {}
        netbios: set[str] = set()
        for raw in identity_ids:
            account = Account.parse(raw)
            if account is None:
                continue
            entries = self._by_name.setdefault(account.name, [])
            if all(known.lower() != raw.strip().lower() for _, known in entries):
                entries.append((account, raw.strip()))
            if account.domain and "." not in account.domain:
                netbios.add(account.domain)
        self.aliases: dict[str, str] = {}
        for dns in {d.strip().lower().rstrip(".") for d in dns_domains if d and d.strip()}:
            first = netbios_of(dns) or dns
            if first in netbios:
                self.aliases[dns] = first
            elif len(netbios) == 1:
                self.aliases[dns] = next(iter(netbios))

    def match(self, account: Account) -> list[tuple[Account, str]]:
        """The inventory's entries for this account, best spelling first (`netbios\\name`)."""
        found = [
            (known, raw)
            for known, raw in self._by_name.get(account.name, [])
            if known.same_as(account, self.aliases)
        ]
        return sorted(found, key=lambda entry: _spelling_rank(*entry))

    def canonical(self, account: Account) -> str:
        """`netbios\\name`, the NetBIOS name from the inventory's aliases where it has one."""
        key = _domain_key(account.domain, self.aliases)
        return f"{key}\\{account.name}" if key else account.name

    def resolve(self, value: str | None, domain: str | None = None) -> str | None:
        """The inventory's id for the account where one matches (its `netbios\\name` spelling
        when the inventory holds only an odd one, such as a glued UPN); else the canonical
        spelling. None for an empty value."""
        account = Account.parse(value, domain)
        if account is None:
            return None
        matches = self.match(account)
        if account.domain is None and len({self.canonical(k) for k, _ in matches}) > 1:
            return account.name  # a bare name two domains share: better unresolved than wrong
        if matches:
            known, raw = matches[0]
            return raw if _spelling_rank(known, raw) == 0 else self.canonical(known)
        return self.canonical(account)

    def qualify(self, value: str | None, *context_domains: str | None) -> str | None:
        """The inventory's id of an account, a bare name given the domain it was used in.

        A name with a domain resolves as `resolve` does. A bare name (`/user:alice` on a command
        line) is the inventory's one account of that name; among several, the one in the first
        context domain that has it; with none, `context\\name` in the first context domain
        given (the acting account's, the host's). None when nothing says which account it is:
        a bare name is never a target of its own (no directory finds `alice`, or finds the
        wrong one)."""
        account = Account.parse(value)
        if account is None:
            return None
        if account.domain is not None:
            return self.resolve(value)
        keys = [k for d in context_domains if (k := _domain_key(d, self.aliases))]
        found = {self.canonical(known): raw for known, raw in self.match(account)}
        if len(found) == 1:
            return next(iter(found.values()))
        for key in keys:
            for canonical, raw in found.items():
                if canonical.split("\\", 1)[0] == key:
                    return raw
        if found or not keys:
            return None
        return f"{keys[0]}\\{account.name}"

    def knows_domain(self, domain: str | None) -> bool:
        """Whether a domain is the estate's: one its identities use, or an alias of one."""
        key = _domain_key(domain, self.aliases)
        if key is None:
            return False
        return key in self.aliases.values() or any(
            _domain_key(known.domain, self.aliases) == key
            for entries in self._by_name.values()
            for known, _ in entries
        )


def _spelling_rank(account: Account, raw: str) -> int:
    """0 for a plain `domain\\name` or `name` id, 1 for any other spelling of the same account."""
    text = raw.strip().lower()
    return 0 if text in (account.canonical, account.name) or text == _plain(account) else 1


def _plain(account: Account) -> str:
    return f"{account.domain}\\{account.name}" if account.domain else account.name


# --- command lines -----------------------------------------------------------------------------

# Arguments that hand a program an account's secret: with one of these on the line, the account
# named beside it is used (its password or hash is in the attacker's hands), not just named.
_SECRET_ARG = re.compile(
    r"(?:^|\s)(?:[/-](?:p|pass|password|rc4|ntlm|aes128|aes256|hash|hashes|ticket)[:=\s]\s*\S"
    r"|-(?:hashes|password)\s+\S|:[0-9a-f]{32}\b)",
    re.I,
)
# Where a command line names an account, and what the form means: `runs` (the program runs as
# it), `secret` (used when the line also hands over a password or hash), `named` (only named).
_NAMED: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\brunas(?:\.exe)?\b[^\n]*?/(?:user|u):\s*\"?([^\s\"]+)", re.I), "runs"),
    (re.compile(r"(?:^|\s)/(?:user|u):\s*\"?([^\s\"/]+)", re.I), "secret"),
    (re.compile(r"\bpsexec(?:64)?(?:\.exe)?\b[^\n]*?\s-u\s+\"?([^\s\"]+)", re.I), "secret"),
    (re.compile(r"-Credential\s+(?:\(\s*)?\"?'?([^\s\"'()$]+)", re.I), "secret"),
    (re.compile(r"\bnet1?(?:\.exe)?\s+user\s+\"?([^\s\"/]+)", re.I), "named"),
)
_DOMAIN_ARG = re.compile(r"(?:^|\s)/domain:\s*\"?([^\s\"]+)", re.I)


@dataclass(frozen=True)
class CommandAccount:
    account: Account
    used: bool  # the command runs as it or hands over its secret, beyond naming it


def command_accounts(cmd_line: str | None) -> list[CommandAccount]:
    """Accounts an attacker's command line names: `runas /user:X` and any `/user:X`, `-u X`
    or `-Credential X` given with a password or hash are used; `net user X`, or `/user:X`
    alone (auditpol's filter, a query), are only mentioned."""
    text = (cmd_line or "")[:8_192]
    if not text:
        return []
    secret = bool(_SECRET_ARG.search(text))
    domain_arg = _DOMAIN_ARG.search(text)
    domain = domain_arg.group(1) if domain_arg else None
    found: dict[Account, bool] = {}
    for pattern, form in _NAMED:
        for match in pattern.finditer(text):
            value = match.group(1).strip("'\"")
            if value.startswith(("$", "%")) or value.lower().startswith(("get-", "new-")):
                continue  # a variable or a cmdlet: the account is not on the line
            account = Account.parse(value, domain if "\\" not in value else None)
            if account is None or account.name in ("*", "/domain", "/add"):
                continue
            used = form == "runs" or (form == "secret" and secret)
            found[account] = found.get(account, False) or used
    return [CommandAccount(account, used) for account, used in found.items()]
