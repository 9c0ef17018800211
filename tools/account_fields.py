"""Which accounts an event names, and what each did in it: field meanings per event type, as data.

A Windows Security event names up to three accounts in different roles: a 4769 names the
requester of a service ticket (`TargetUserName`) and the account it was requested for
(`ServiceName`), whose RC4 ticket is what Kerberoasting cracks offline; a 4720 names the admin
who created an account (`Subject*`) and the account created (`Target*`). Taking "the user" of
such an event loses the one that matters. The table of which field means what, per source and
event id, is data (`account_fields.yaml`), validated when loaded; this module applies it, and
`tools.accounts.command_accounts` reads the accounts an attacker's command line names.

Everything here reads attacker-influenced text: values are parsed to `Account`, never
interpreted beyond that.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from tools.accounts import RC4_HMAC, Account
from tools.results import AccountEvent
from tools.yaml_safe import safe_load

FIELDS_FILE = Path(__file__).with_name("account_fields.yaml")
_MAX_VALUE = 1_024


class Meaning(StrEnum):
    ACTOR = "actor"
    TARGET = "target"
    SERVICE = "service"
    LOGON = "logon"


@dataclass(frozen=True)
class Mention:
    """One account an event names, in one role."""

    meaning: Meaning
    account: Account
    failure: bool = False  # the event records a refusal: the account did not get in


@dataclass(frozen=True)
class AccountSpec:
    name: str
    domain: str | None = None
    sid: str | None = None


@dataclass(frozen=True)
class EventRule:
    roles: tuple[tuple[Meaning, tuple[AccountSpec, ...]], ...]
    failure: bool = False


@dataclass(frozen=True)
class LinePattern:
    pattern: re.Pattern[str]
    meaning: Meaning
    failure: bool = False


@dataclass(frozen=True)
class FieldMeanings:
    """The validated table: `rules[source][event id or "*"]`, and syslog line patterns."""

    version: str
    rules: Mapping[str, Mapping[str, EventRule]]
    lines: tuple[LinePattern, ...]
    separate: Mapping[str, frozenset[str]]

    def rule(self, source: str | None, number: int | None) -> EventRule | None:
        table = self.rules.get(source or "")
        if table is None:
            return None
        return table.get(str(number)) if str(number) in table else table.get("*")

    def read_elsewhere(self, source: str | None, number: int | None) -> bool:
        """Events typed by another read (processes, logons), not as account events."""
        ids = self.separate.get(source or "", frozenset())
        return "*" in ids or str(number) in ids


def load_meanings(path: Path = FIELDS_FILE) -> FieldMeanings:
    """Parse and check the table: unknown meanings, undefined account spellings and patterns
    without an `account` group are refused, naming the entry."""
    document = safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError(f"{path}: not a mapping")
    specs = {
        str(key): AccountSpec(
            name=str(value["name"]),
            domain=value.get("domain"),
            sid=value.get("sid"),
        )
        for key, value in dict(document.get("accounts") or {}).items()
    }
    rules: dict[str, dict[str, EventRule]] = {}
    for source, events in dict(document.get("events") or {}).items():
        for number, entry in dict(events).items():
            roles: list[tuple[Meaning, tuple[AccountSpec, ...]]] = []
            for key, names in dict(entry).items():
                if key == "failure":
                    continue
                try:
                    meaning = Meaning(key)
                except ValueError:
                    raise ValueError(
                        f"{path}: {source} {number}: unknown meaning {key!r}"
                    ) from None
                missing = [n for n in names if n not in specs]
                if missing:
                    raise ValueError(f"{path}: {source} {number}: undefined accounts {missing}")
                roles.append((meaning, tuple(specs[n] for n in names)))
            rule = EventRule(roles=tuple(roles), failure=bool(entry.get("failure", False)))
            rules.setdefault(str(source), {})[str(number)] = rule
    lines: list[LinePattern] = []
    for entry in document.get("syslog") or []:
        pattern = re.compile(str(entry["pattern"]))
        if "account" not in pattern.groupindex:
            raise ValueError(f"{path}: syslog pattern {pattern.pattern!r} has no account group")
        lines.append(LinePattern(pattern, Meaning(entry["meaning"]), bool(entry.get("failure"))))
    separate = {
        str(source): frozenset(str(n) for n in numbers)
        for source, numbers in dict(document.get("read_elsewhere") or {}).items()
    }
    return FieldMeanings(str(document["version"]), rules, tuple(lines), separate)


@lru_cache(maxsize=1)
def meanings() -> FieldMeanings:
    return load_meanings()


# --- events ------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool | Mapping | list):
        return None
    text = str(value).strip()[:_MAX_VALUE]
    return None if text.lower() in ("", "-", "null", "none", "(empty)") else text


def source_of(flat: Mapping[str, Any], declared: str | None) -> str | None:
    """The table's source name: Zeek's Kerberos and NTLM logs, auditd and syslog are told
    apart by their fields when the recording declares no more than `zeek` or a file name."""
    if "request_type" in flat and "client" in flat:
        return "zeek_kerberos"
    if "username" in flat and "domainname" in flat and ("id.orig_h" in flat or "uid" in flat):
        return "zeek_ntlm"
    if "auid" in flat or "AUID" in flat:
        return "auditd"
    message, program = flat.get("message"), str(flat.get("program", flat.get("process", "")))
    if isinstance(message, str) and ("sshd" in message or "sshd" in program):
        return "syslog"
    return declared


def _spelling(spec: AccountSpec, flat: Mapping[str, Any]) -> Account | None:
    value = _text(flat.get(spec.name))
    if value is None:
        return None
    domain = _text(flat.get(spec.domain)) if spec.domain else None
    sid = _text(flat.get(spec.sid)) if spec.sid else None
    if value.lower().startswith("cn="):  # a directory DN (MemberName): CN=name,...,DC=corp,DC=local
        parts = [p.split("=", 1) for p in re.split(r"(?<!\\),", value) if "=" in p]
        cn = next((v for k, v in parts if k.strip().lower() == "cn"), None)
        dcs = [v for k, v in parts if k.strip().lower() == "dc"]
        value, domain = cn or value, ".".join(dcs) or domain
    elif "/" in value and "\\" not in value and "@" not in value:  # Zeek: `alice/CORP.LOCAL`
        name, _, realm = value.partition("/")
        value = f"{name}@{realm}" if realm and "." in realm else name
    if value.isdigit():  # a bare uid: nobody the inventory names
        return None
    return Account.parse(value, domain, sid)


def mentions(flat: Mapping[str, Any], source: str | None, number: int | None) -> list[Mention]:
    """The accounts a flattened event names, each with its meaning, in table order."""
    table = meanings()
    found: list[Mention] = []
    source = source_of(flat, source)
    if source == "syslog":
        message = str(flat.get("message", ""))[:4_096]
        for line in table.lines:
            match = line.pattern.search(message)
            account = Account.parse(match.group("account")) if match else None
            if account is not None:
                found.append(Mention(line.meaning, account, line.failure))
        return found
    rule = table.rule(source, number)
    if rule is None:
        return found
    for meaning, specs in rule.roles:
        for spec in specs:
            account = _spelling(spec, flat)
            if account is not None and all(
                not (m.meaning is meaning and m.account.same_as(account)) for m in found
            ):
                found.append(Mention(meaning, account, rule.failure))
    return found


def spelled(account: Account) -> str:
    """The account as one string that `Account.parse` reads back (SID aside)."""
    return f"{account.domain}\\{account.name}" if account.domain else account.name


def to_account_event(
    flat: Mapping[str, Any],
    source: str | None,
    number: int | None,
    time: Any,
    host: str | None,
) -> AccountEvent | None:
    """An event of the table that no other read types (not a process, not a logon), else None."""
    source = source_of(flat, source)
    if time is None or meanings().read_elsewhere(source, number):
        return None
    found = mentions(flat, source, number)
    if not found:
        return None

    def role(meaning: Meaning) -> tuple[str, ...]:
        # a well-known SID ("-" as its name) is no account to list
        return tuple([spelled(m.account) for m in found if m.meaning is meaning][:10])

    return AccountEvent(
        time=time,
        host=host,
        source=source or "unknown",
        event_id=number,
        actors=role(Meaning.ACTOR),
        targets=role(Meaning.TARGET),
        services=role(Meaning.SERVICE),
        logons=role(Meaning.LOGON),
        success=not any(m.failure for m in found) and not _refused(flat),
        encryption=_encryption(flat),
        src_ip=_address(flat),
    )


def _refused(flat: Mapping[str, Any]) -> bool:
    """A Kerberos or NTLM event whose result code is not 0 (`Status` 0x6 unknown principal,
    0xC000006A bad password...): nothing was issued or validated."""
    status = _text(flat.get("Status"))
    if status is None:
        return False
    try:
        return int(status, 16 if status.lower().startswith("0x") else 10) != 0
    except ValueError:
        return False


def _encryption(flat: Mapping[str, Any]) -> int | None:
    value = _text(flat.get("TicketEncryptionType")) or _text(flat.get("cipher"))
    if value is None:
        return None
    lowered = value.lower()
    if lowered.startswith("rc4"):
        return RC4_HMAC
    try:
        return int(lowered, 16) if lowered.startswith("0x") else int(lowered)
    except ValueError:
        return None


def _address(flat: Mapping[str, Any]) -> str | None:
    value = _text(flat.get("IpAddress")) or _text(flat.get("id.orig_h")) or _text(flat.get("addr"))
    if value and value.lower().startswith("::ffff:"):
        value = value[7:]
    return value
