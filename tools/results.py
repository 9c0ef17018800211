"""Typed answers of the capabilities: what readers return and what responders report."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import Field

from tools.models import Frozen, LongText, ShortText

_E = TypeVar("_E")


class EventList(list[_E]):
    """A telemetry read's events, oldest first, saying whether the read was cut: `truncated`
    when the source held more events in the window than the read's limit let it return (the
    vendor's query stopped at its `take`/`limit`), so the events end before the window does.
    A plain list from a reader that does not say is judged by its length (`was_truncated`)."""

    def __init__(self, events: Iterable[_E] = (), *, truncated: bool = False) -> None:
        super().__init__(events)
        self.truncated = truncated


def mapped_rows(
    rows: list[dict[str, Any]], mapper: Callable[[dict[str, Any]], _E | None], limit: int
) -> EventList[_E]:
    """A vendor query's rows as events, cut as the query was: by the raw rows it returned against
    its limit, since rows the mapper skips (another action type) still counted toward the limit."""
    return EventList(
        [e for e in map(mapper, rows) if e is not None], truncated=len(rows) >= limit > 0
    )


def was_truncated(events: list[_E], limit: int) -> bool:
    """Whether a read of at most `limit` events left some out: as the reader says, else when it
    returned as many as it was allowed."""
    said = getattr(events, "truncated", None)
    return said if isinstance(said, bool) else len(events) >= limit > 0


class HostInfo(Frozen):
    id: ShortText
    hostname: ShortText | None = None
    ips: list[ShortText] = Field(default_factory=list)
    os: ShortText | None = None
    contained: bool = False


class ProcessEvent(Frozen):
    time: datetime
    host: ShortText
    pid: int | None = None
    name: ShortText | None = None
    image: ShortText | None = None
    cmd_line: LongText | None = None
    parent_pid: int | None = None
    parent_image: ShortText | None = None
    # what the child's record says of its parent (Sysmon's ParentCommandLine and ParentUser,
    # Defender's InitiatingProcessCommandLine and InitiatingProcessAccount*); Falcon's process
    # events name only the parent's file, its own record says the rest
    parent_cmd_line: LongText | None = None
    parent_user: ShortText | None = None
    user: ShortText | None = None
    sha256: ShortText | None = None
    # Sysmon's ProcessGuid and ParentProcessGuid: one process exactly, where pids are reused
    guid: ShortText | None = None
    parent_guid: ShortText | None = None


class NetworkConnection(Frozen):
    time: datetime
    host: ShortText | None = None
    pid: int | None = None
    image: ShortText | None = None
    src_ip: ShortText | None = None
    src_port: int | None = None
    dst_ip: ShortText | None = None
    dst_port: int | None = None
    domain: ShortText | None = None
    protocol: ShortText | None = None
    process_guid: ShortText | None = None


class LogonEvent(Frozen):
    time: datetime
    host: ShortText
    user: ShortText | None = None
    logon_type: int | None = None
    src_ip: ShortText | None = None
    success: bool = True
    # who asked for the logon (Security `Subject*`): the session whose process logged on
    subject: ShortText | None = None
    # the account whose credentials the new session presents on the network: a NewCredentials
    # logon's (type 9, `runas /netonly`, pass-the-hash) `TargetOutbound*`; None when it is `user`
    outbound_user: ShortText | None = None


class AccountEvent(Frozen):
    """An event that names accounts by role (`tools/account_fields.yaml`): a Kerberos ticket, an
    NTLM validation, an account created or changed, a share accessed, a Linux login. Accounts
    are spelled `domain\\name` or `name` as the event gave them."""

    time: datetime
    host: ShortText | None = None
    source: ShortText
    event_id: int | None = None
    actors: tuple[ShortText, ...] = ()  # who did it (a ticket's requester)
    targets: tuple[ShortText, ...] = ()  # whom it was done to
    services: tuple[ShortText, ...] = ()  # a service ticket's account
    logons: tuple[ShortText, ...] = ()  # who authenticated
    success: bool = True
    encryption: int | None = None  # Kerberos ticket encryption type (0x17: RC4-HMAC)
    src_ip: ShortText | None = None


class RegistryEvent(Frozen):
    """A registry value written or a key created/deleted (Sysmon 12/13/14)."""

    time: datetime
    host: ShortText
    pid: int | None = None
    image: ShortText | None = None
    operation: ShortText | None = None  # SetValue, CreateKey, DeleteValue, RenameKey...
    key: ShortText  # the full value path, hives as HKLM/HKU/HKCR (`HKLM\\...\\Run\\Updater`)
    details: LongText | None = None  # the data written, for a SetValue
    user: ShortText | None = None
    process_guid: ShortText | None = None


class FileEvent(Frozen):
    """A file created (Sysmon 11)."""

    time: datetime
    host: ShortText
    pid: int | None = None
    image: ShortText | None = None
    path: ShortText
    user: ShortText | None = None
    process_guid: ShortText | None = None


class SystemEvent(Frozen):
    """A Windows event the other reads do not cover, with the fields the agents use: a scheduled
    task registered or updated (Security 4698/4702), a service installed (System 7045, Security
    4697), a directory object's attribute value added or deleted (Security 5136: `name` the
    object's DN, `detail` "<attribute> added|deleted", `command` the value), a WMI subscription
    part created (Sysmon 19 filter, 20 consumer, 21 binding), a thread
    created in another process (Sysmon 8) or a handle to another process opened (Sysmon 10).
    Persistence is registered by a service on the attacker's behalf (the Task Scheduler writes
    the task file, services.exe the service key): these records name what was registered and
    who asked for it."""

    time: datetime
    host: ShortText
    event_id: int
    pid: int | None = None  # the acting process (the source of a Sysmon 8/10)
    image: ShortText | None = None
    user: ShortText | None = None  # who registered, installed or created it
    name: ShortText | None = None  # task, service, WMI filter or consumer name
    command: LongText | None = None  # what it runs: task action, ImagePath, consumer destination
    target_pid: int | None = None  # the process a Sysmon 8/10 reached into
    target_image: ShortText | None = None
    access: ShortText | None = None  # GrantedAccess of a Sysmon 10
    # a binding's filter, a consumer's type, a service's start type, a Sysmon 10's CallTrace
    detail: ShortText | None = None
    process_guid: ShortText | None = None  # the acting process's, where the source records it


class ReputationVerdict(StrEnum):
    MALICIOUS = "malicious"
    SUSPICIOUS = "suspicious"
    HARMLESS = "harmless"
    INTERNAL = "internal"
    UNKNOWN = "unknown"


class Reputation(Frozen):
    indicator: ShortText
    verdict: ReputationVerdict
    score: int = Field(default=0, ge=0, le=100)
    sources: list[ShortText] = Field(default_factory=list)
    # CVE ids the source ties to the indicator (an exploit sample's, a scanner address's)
    vulnerabilities: list[ShortText] = Field(default_factory=list, max_length=20)


class AccountInfo(Frozen):
    id: ShortText
    enabled: bool = True
    privileged: bool = False


class Change(Frozen):
    """What a responder did: `applied` is False when the target was already in that state."""

    applied: bool
    detail: ShortText = ""


class TicketState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Ticket(Frozen):
    id: ShortText
    key: ShortText
    title: ShortText
    state: TicketState = TicketState.OPEN
    comments: list[LongText] = Field(default_factory=list)
