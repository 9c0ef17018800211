"""`Ingestor`: deduplicate, group and store normalised alerts, committing concurrent callers'
alerts together (group commit), then tell the dispatcher.

Grouping, in this order, per scope (the deployment's, `GARRISON_INGEST__SCOPE`, `live` unless
set, for what senders send; a simulation run is a scope of its own, so runs never join each
other's incidents). Incident ids begin with their scope, and workflow ids with `incident-<id>`:
deployments that share a Temporal namespace need scopes of their own.

1. an alert its sender already grouped (`Normalised.correlation`) joins that group's open
   incident; its id ends in `--<correlation>`;
2. a storm: when more than `storm.hosts` distinct hosts alerted on one rule within
   `storm.window_s`, that rule's alerts join one storm incident that lists them all;
3. the corpus's rule (`grouping.py`): an alert joins the open incident that shares a host or a
   person with it within `group_window_s` of that incident's latest alert; an alert naming neither
   joins the open incident of the same rule within the window;
4. otherwise it opens an incident.

A closed incident still takes its group's alerts (`ingest.after_close` in the policy): the
sender's group and the shared host or person within `after_close.window_s` of its close (alert
time), a storm incident for as long as its storm goes on (its rule alerted within `storm.window_s`
of the incident's latest alert). Such a late alert is stored as a member of that incident, never
as a second incident for the same thing; the dispatcher (`after_close.py`) audits it and, by
policy, reopens the incident for another pass.

The state behind these decisions (which entity belongs to which open incident, which hosts each
rule alerted on) is in the store, so a later alert of the same group joins the open incident
whichever process receives it. A re-sent alert (same scope, sender and uid) is one alert: its
fingerprint is already stored and it is answered with the stored alert's id.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from orchestrator.ingest.grouping import is_system_account, user_key
from orchestrator.ingest.normalised import Normalised
from orchestrator.ingest.sink import Accepted, Backpressure
from orchestrator.observability.metrics import ALERTS_RECEIVED, ALERTS_REFUSED
from orchestrator.policy.model import IngestRules, StormScope
from orchestrator.store.intake_tx import IntakeTx, StagedAlert
from orchestrator.store.mapping import aware
from orchestrator.store.records import IncidentRecord
from orchestrator.store.repository import Store
from tools.models import IncidentStatus
from tools.names import host_key

log = logging.getLogger("garrison.ingest")
WRITE_BATCH = 2_000  # alerts committed in one transaction at most
_SAFE = re.compile(r"[^a-z0-9._-]+")


def fingerprint(scope: str, source: str, uid: str) -> str:
    """The identity of an alert: a re-sent alert has the same one."""
    return hashlib.sha256(f"{scope}\x1f{source}\x1f{uid}".encode()).hexdigest()


@dataclass
class _Entry:
    items: Sequence[Normalised]
    scope: str
    future: asyncio.Future[Accepted]


@dataclass
class _Open:
    """An incident a key points to, as the batch knows it."""

    incident_id: str
    last_seen: datetime
    closed_at: datetime | None = None  # None while the incident is not closed


@dataclass
class _ScopeState:
    groups: dict[str, _Open] = field(default_factory=dict)
    rule_hosts: dict[str, dict[str, datetime]] = field(default_factory=dict)


class Ingestor:
    """The `AlertSink` of every entry point. `on_commit` (the dispatcher's wake-up) is called
    with the incidents that received alerts, after their commit."""

    def __init__(
        self,
        store: Store,
        rules: IngestRules,
        *,
        on_commit: Callable[[list[str]], None] | None = None,
        max_queued: int = 20_000,
        max_backlog: int = 100_000,
        scope: str = "live",
    ) -> None:
        self._store = store
        self._scope = scope
        self._rules = rules
        self._on_commit = on_commit
        self._max_queued = max_queued
        self._max_backlog = max_backlog
        self._entries: list[_Entry] = []
        self._queued = 0
        self._writer: asyncio.Task[None] | None = None
        self.backlog = 0  # alerts committed but not yet signalled, as the dispatcher last saw

    async def accept(self, items: Sequence[Normalised], *, scope: str | None = None) -> Accepted:
        scope = scope or self._scope
        if not items:
            return Accepted(alert_ids=[])
        if self.backlog > self._max_backlog:
            ALERTS_REFUSED.labels("backpressure_backlog").inc(len(items))
            raise Backpressure(
                5, f"{self.backlog} alerts are waiting for their workflows: Temporal is behind"
            )
        if self._queued + len(items) > self._max_queued:
            ALERTS_REFUSED.labels("backpressure_queue").inc(len(items))
            raise Backpressure(1, f"{self._queued} alerts are waiting to be stored")
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._entries.append(_Entry(items, scope, future))
        self._queued += len(items)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all())
        try:
            accepted = await future
        except Backpressure:
            ALERTS_REFUSED.labels("store_unavailable").inc(len(items))
            raise
        ALERTS_RECEIVED.labels("new").inc(len(accepted.alert_ids) - accepted.duplicates)
        ALERTS_RECEIVED.labels("duplicate").inc(accepted.duplicates)
        return accepted

    async def aclose(self) -> None:
        if self._writer is not None:
            await asyncio.wait([self._writer], timeout=10)

    async def _write_all(self) -> None:
        while self._entries:
            batch: list[_Entry] = []
            size = 0
            while self._entries and (
                not batch or size + len(self._entries[0].items) <= WRITE_BATCH
            ):
                entry = self._entries.pop(0)
                batch.append(entry)
                size += len(entry.items)
            try:
                results = await self._store.intake.write(lambda tx, b=batch: self._place(tx, b))
            except Exception as error:  # the store refused: nothing of this batch was accepted
                log.warning("ingestion batch of %d alerts not stored: %s", size, error)
                for entry in batch:
                    if not entry.future.done():
                        entry.future.set_exception(
                            Backpressure(
                                2, f"the store did not take the alerts ({type(error).__name__})"
                            )
                        )
            else:
                touched: set[str] = set()
                for entry, result in zip(batch, results, strict=True):
                    touched.update(result.incidents)
                    if not entry.future.done():
                        entry.future.set_result(result)
                if self._on_commit is not None and touched:
                    self._on_commit(sorted(touched))
            finally:
                self._queued -= size

    def _place(self, tx: IntakeTx, batch: list[_Entry]) -> list[Accepted]:
        """Grouping decisions and staged rows for one batch, inside its write transaction."""
        now = datetime.now(UTC)
        prints = [
            [fingerprint(e.scope, item.source, item.alert.uid) for item in e.items] for e in batch
        ]
        stored = tx.stored([fp for fps in prints for fp in fps])
        keys = [[_keys(item) for item in e.items] for e in batch]
        states = self._load_state(tx, batch, keys)
        placed: dict[str, str] = dict(stored)
        order = sorted(
            ((e_i, i_i) for e_i, e in enumerate(batch) for i_i in range(len(e.items))),
            key=lambda pos: (aware(batch[pos[0]].items[pos[1]].alert.time), pos),
        )
        duplicates = [0] * len(batch)
        for e_i, i_i in order:
            entry, fp = batch[e_i], prints[e_i][i_i]
            if fp in placed:
                duplicates[e_i] += 1
                continue
            item = entry.items[i_i]
            state = states[entry.scope]
            incident_id = self._incident_for(tx, entry.scope, state, item, keys[e_i][i_i], now)
            placed[fp] = incident_id
            tx.add_alert(
                StagedAlert(
                    fingerprint=fp,
                    incident_id=incident_id,
                    alert=item.alert,
                    source=item.source,
                    shape=item.shape.value,
                    scope=entry.scope,
                    original=json.dumps(item.original, separators=(",", ":"), default=str),
                    received_at=now,
                )
            )
        for scope, state in states.items():
            for key, group in state.groups.items():
                tx.put_group(scope, key, group.incident_id, group.last_seen)
        return [
            Accepted(
                alert_ids=fps,
                duplicates=duplicates[e_i],
                incidents=sorted({placed[fp] for fp in fps}),
            )
            for e_i, fps in enumerate(prints)
        ]

    def _load_state(
        self, tx: IntakeTx, batch: list[_Entry], item_keys: list[list[list[str]]]
    ) -> dict[str, _ScopeState]:
        """Each scope's grouping state for the batch; `item_keys` are its alerts' `_keys`."""
        states: dict[str, _ScopeState] = {}
        storm_window = timedelta(seconds=self._rules.storm.window_s)
        for scope in {e.scope for e in batch}:
            items = [item for e in batch if e.scope == scope for item in e.items]
            keys = {
                k
                for e, of_entry in zip(batch, item_keys, strict=True)
                if e.scope == scope
                for of_item in of_entry
                for k in of_item
            }
            keys |= {self._storm_key(item) for item in items}
            keys |= {f"corr:{item.correlation}" for item in items if item.correlation}
            state = _ScopeState()
            # One `_Open` per incident, shared by its keys: an alert that joins through one key
            # moves the latest alert of every key of that incident.
            opened: dict[str, _Open] = {}
            for key, found in tx.groups(scope, keys).items():
                state.groups[key] = opened.setdefault(
                    found.incident_id, _Open(found.incident_id, found.last_seen, found.closed_at)
                )
            earliest = min(aware(item.alert.time) for item in items) - storm_window
            rules = {self._storm_key(item) for item in items}
            state.rule_hosts = tx.rule_hosts(scope, rules, earliest)
            states[scope] = state
        return states

    def _incident_for(
        self,
        tx: IntakeTx,
        scope: str,
        state: _ScopeState,
        item: Normalised,
        keys: list[str],
        now: datetime,
    ) -> str:
        at = aware(item.alert.time)
        if item.correlation:
            key = f"corr:{item.correlation}"
            group = state.groups.get(key)
            if group is None or not self._takes(group, at):
                group = self._open(tx, scope, state, key, item, now, _safe(item.correlation))
            group.last_seen = max(group.last_seen, at)
            return group.incident_id
        storm = self._storm(tx, scope, state, item, now)
        if storm is not None:
            return storm
        window = timedelta(seconds=self._rules.group_window_s)
        linked = [
            state.groups[k]
            for k in keys
            if k in state.groups
            and abs(at - state.groups[k].last_seen) <= window
            and self._takes(state.groups[k], at)
        ]
        if linked:
            group = max(linked, key=lambda g: g.last_seen)
        else:
            group = self._open(tx, scope, state, keys[0], item, now, None)
        group.last_seen = max(group.last_seen, at)
        for key in keys:
            state.groups[key] = group
        return group.incident_id

    def _storm(
        self, tx: IntakeTx, scope: str, state: _ScopeState, item: Normalised, now: datetime
    ) -> str | None:
        """The storm incident this alert belongs to once its rule is storming; else None."""
        at = aware(item.alert.time)
        rule = self._storm_key(item)
        hosts = state.rule_hosts.setdefault(rule, {})
        if item.alert.entities.host:
            host = host_key(item.alert.entities.host)
            hosts[host] = max(hosts.get(host, at), at)
            tx.put_rule_host(scope, rule, host, hosts[host])
        window = timedelta(seconds=self._rules.storm.window_s)
        storming = (
            sum(1 for seen in hosts.values() if at - seen <= window) > self._rules.storm.hosts
        )
        group = state.groups.get(rule)
        # An open storm incident is the storm; a closed one still is while the storm goes on
        # (one storm, one incident), not when the rule storms again after a pause.
        going_on = at - group.last_seen <= window if group is not None else False
        if group is not None and (going_on or (storming and group.closed_at is None)):
            group.last_seen = max(group.last_seen, at)
            return group.incident_id
        if not storming:
            return None
        title = f"Alert storm: {item.alert.rule.name} on more than {self._rules.storm.hosts} hosts"
        group = self._open(tx, scope, state, rule, item, now, None, title=title)
        return group.incident_id

    def _takes(self, group: _Open, at: datetime) -> bool:
        """Whether the group's incident takes an alert of time `at`: an open one does; a closed
        one within `after_close.window_s` of its close."""
        if group.closed_at is None:
            return True
        return at - group.closed_at <= timedelta(seconds=self._rules.after_close.window_s)

    def _storm_key(self, item: Normalised) -> str:
        rule = item.alert.rule.uid or item.alert.rule.name
        if self._rules.storm.scope is StormScope.RULE_PER_SOURCE:
            return f"storm:{item.source}:{rule}"
        return f"storm:{rule}"

    def _open(
        self,
        tx: IntakeTx,
        scope: str,
        state: _ScopeState,
        key: str,
        item: Normalised,
        now: datetime,
        suffix: str | None,
        *,
        title: str | None = None,
    ) -> _Open:
        kind = "-storm" if key.startswith("storm:") else ""
        incident_id = f"{scope}{kind}-{uuid.uuid4().hex[:12]}"
        if suffix is not None:
            # The sender's grouping names the incident: `<scope>--<correlation>`, or with a
            # random part once that id was taken by an earlier (closed) incident.
            first = f"{scope}--{suffix}"
            taken = tx.incident_ids_taken([first])
            incident_id = first if not taken else f"{scope}-{uuid.uuid4().hex[:8]}--{suffix}"
        tx.add_incident(
            IncidentRecord(
                id=incident_id,
                group_key=f"{scope}:{key}:{incident_id}",
                title=title or item.alert.title,
                status=IncidentStatus.OPEN,
                opened_at=now,
            )
        )
        group = _Open(incident_id, aware(item.alert.time))
        state.groups[key] = group
        return group


def is_storm_incident(incident: IncidentRecord) -> bool:
    """A storm incident's group key is `<scope>:storm:...` (scopes hold no colon)."""
    return incident.group_key.partition(":")[2].startswith("storm:")


def _keys(item: Normalised) -> list[str]:
    """The grouping keys of an uncorrelated alert: its host and person, else its rule."""
    entities = item.alert.entities
    keys: list[str] = []
    if entities.host:
        keys.append(f"host:{host_key(entities.host)}")
    if entities.user and not is_system_account(entities.user):
        keys.append(f"user:{user_key(entities.user)}")
    return keys or [f"rule:{item.source}:{item.alert.rule.uid or item.alert.rule.name}"]


def _safe(text: str) -> str:
    cleaned = _SAFE.sub("-", text.lower()).strip("-.")[:80]
    return cleaned or hashlib.sha256(text.encode()).hexdigest()[:16]
