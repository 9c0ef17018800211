"""The grouping rule that turns a stream of detections into incident candidates. Pure: no I/O.

A record is a detection's time plus the hosts and users it names. Records are taken in time order
(ties by input order); a record joins an open group when it shares a host or a user with the group
and comes at most `window` after the group's latest record, the boundary included. A record that
shares entities with several open groups merges them: it is the evidence that they are one incident.
A record that shares nothing, or comes later than `window` after every group it shares an entity
with, opens a new group. So the window bounds the gap between consecutive related records, not a
group's total span, and two groups never share an entity within `window` of each other.

Hosts compare by their first label, case-insensitively (`PRD01.pandalab.com` is `prd01`); users
case-insensitively, `DOMAIN\\user` and `user@domain.tld` alike. Callers pass only identities that
stand for a person or a service: SYSTEM or a machine account (`HOST$`) names no one and would join
every host's detections into one group. Live ingestion (`pipeline.py`) groups incoming
alerts with it, keyed durably in the store; both corpus importers group with it too: the OCSF
importer its findings, the OTRF importer the events its Sigma rules matched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tools.names import host_key, identity_key

DEFAULT_WINDOW = timedelta(minutes=30)
SYSTEM_DOMAINS = {"nt authority", "window manager", "font driver host", "nt service"}


@dataclass(frozen=True)
class Record:
    """One detection as the rule sees it: when, and which hosts and users it names."""

    time: datetime
    hosts: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()

    @classmethod
    def of(cls, time: datetime, hosts: Iterable[str | None], users: Iterable[str | None]) -> Record:
        return cls(time, frozenset(h for h in hosts if h), frozenset(u for u in users if u))


@dataclass
class Group:
    """Records that form one incident candidate; `members` index the input, in time order."""

    start: datetime
    end: datetime
    members: list[int] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)  # as first spelled, in order of appearance
    users: list[str] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)

    @classmethod
    def opened_by(cls, index: int, record: Record) -> Group:
        fresh = cls(start=record.time, end=record.time)
        fresh.add(index, record)
        return fresh

    def add(self, index: int, record: Record) -> None:
        self.members.append(index)
        self.start, self.end = min(self.start, record.time), max(self.end, record.time)
        self._extend(sorted(record.hosts), sorted(record.users))
        self.keys |= entity_keys(record)

    def absorb(self, other: Group) -> None:
        self.members = sorted([*self.members, *other.members])
        self.start, self.end = min(self.start, other.start), max(self.end, other.end)
        self._extend(other.hosts, other.users)
        self.keys |= other.keys

    def _extend(self, hosts: Iterable[str], users: Iterable[str]) -> None:
        for host in hosts:
            if all(host_key(host) != host_key(h) for h in self.hosts):
                self.hosts.append(host)
        for user in users:
            if all(user_key(user) != user_key(u) for u in self.users):
                self.users.append(user)


def group(records: Sequence[Record], window: timedelta = DEFAULT_WINDOW) -> list[Group]:
    """The groups of `records` under the rule above, ordered by their first record."""
    if window < timedelta(0):
        raise ValueError("the grouping window cannot be negative")
    order = sorted(range(len(records)), key=lambda i: (records[i].time, i))
    groups: list[Group] = []
    for index in order:
        record = records[index]
        keys = entity_keys(record)
        linked = [g for g in groups if g.keys & keys and record.time - g.end <= window]
        if not linked:
            groups.append(Group.opened_by(index, record))
            continue
        target, *others = linked
        for other in others:
            target.absorb(other)
            groups.remove(other)
        target.add(index, record)
    return sorted(groups, key=lambda g: (g.start, g.members[0]))


def describe(g: Group, noun: str = "findings") -> str:
    """`host PRD01, 2023-08-18 08:56:35-09:00:08Z, 22 findings, users pandalab\\pedro`."""
    start, end = g.start, g.end
    span = f"{start:%Y-%m-%d %H:%M:%S}-{end:%H:%M:%S}Z"
    if start.date() != end.date():
        span = f"{start:%Y-%m-%d %H:%M:%S}Z-{end:%Y-%m-%d %H:%M:%S}Z"
    text = f"host {', '.join(g.hosts) or '-'}, {span}, {len(g.members)} {noun}"
    return text + (f", users {', '.join(g.users)}" if g.users else "")


def entity_keys(record: Record) -> set[str]:
    return {f"host:{host_key(h)}" for h in record.hosts} | {
        f"user:{user_key(u)}" for u in record.users
    }


def user_key(name: str) -> str:
    """`PANDALAB\\Pedro` and `pedro@pandalab.com` -> `pandalab\\pedro`; a bare `pedro` stays so."""
    domain, user = identity_key(name)
    return f"{domain}\\{user}" if domain else user


def is_system_account(identity: str) -> bool:
    """SYSTEM, LOCAL SERVICE, a machine account (`HOST$`): an identity that names no person."""
    domain, _, user = identity.lower().rpartition("\\")
    return domain in SYSTEM_DOMAINS or user.endswith("$") or user in {"system", "local service"}
