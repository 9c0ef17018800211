"""Block Kit messages for approvals: the card an on-call analyst decides on, the card it becomes
once decided, and the notes of its thread.

Two kinds of text go into these messages. Garrison's own (labels, numbers, times, the action kind,
mentions built from the directory's ids) is written as `mrkdwn`. Everything an attacker can
influence (host names, command lines, evidence, model text, even the action target) goes through
`escape_text` into `plain_text` objects only, where Slack renders no mention, link or formatting;
the notification fallback `text` carries trusted values only. Every text is kept inside Block Kit's
limits, because a card Slack refuses is an approval nobody sees.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from agents.degraded import degraded_line
from orchestrator.approvals.directory import SLACK_USER, SLACK_USERGROUP
from orchestrator.models import ApprovalRequestInput
from orchestrator.text import defang
from tools.actions import SCORED_KINDS, Action, Patch, Unpatch

# Block Kit JSON: what chat.postMessage and chat.update take (`{"text": ..., "blocks": [...]}`).
Block = dict[str, Any]

# Block Kit limits (characters; counted in UTF-16 units here, the stricter reading).
MAX_BLOCKS = 50
HEADER_MAX = 150
TEXT_MAX = 3000
FIELD_MAX = 2000
MAX_FIELDS = 10
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
CONFIRM_TITLE_MAX = 100
CONFIRM_TEXT_MAX = 300

DECISION_BLOCK_ID = "garrison.decision"
APPROVE_ACTION_ID = "garrison.approve"
DENY_ACTION_ID = "garrison.deny"
TARGET_BLOCK_ID = "garrison.target"
FIX_BLOCK_ID = "garrison.fix"  # a patch's remediation and CVE
RATIONALE_BLOCK_ID = "garrison.rationale"
STATUS_BLOCK_ID = "garrison.status"
DEGRADED_BLOCK_ID = "garrison.degraded"
MODEL_NOTE_BLOCK_ID = "garrison.model_note"
MODEL_LABEL = "Model-generated, unverified"
RULES_LABEL = "Agent rationale (deterministic rules)"

EVIDENCE_ITEMS = 8
EVIDENCE_ITEM_MAX = 300
RATIONALE_MAX = 2000
NOTE_MAX = 2000  # a context element holds 3000
MAX_FACTORS = 20
MAX_DECISION_LINES = 10

_MIN_LIMIT = 40
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# Control, format (zero-width, bidi, tag), surrogate, private and unassigned characters, and line
# separators: shown as `[U+XXXX]` rather than dropped, so that `DC\u000701` or a bidi override
# cannot make one target look like another.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_LINE_BREAKS = re.compile(r"[\t\n\r\v\f\x85\u2028\u2029]+")
# `defang` rewrites `https://` after a word boundary; a scheme glued to a word (`%3Chttps://`)
# or another scheme (`ftp://`) keeps its `://`, bracketed here.
_SCHEME_LEFT = re.compile(r"(?<!\[)://")
_TOKEN = re.compile(r"&(?:amp|lt|gt);|\[U\+[0-9A-F]{4,6}\]|.", re.DOTALL)
_DECIDED = {"approve": "approved", "deny": "denied"}
_STATUS_TITLES = {"approved": "Approved", "denied": "Denied", "expired": "Expired (denied)"}


def escape_text(value: str, limit: int = 300) -> str:
    """Attacker-influenced text made inert for a `plain_text` object: `&`, `<`, `>` escaped (so no
    `<!channel>`, `<@U…>` or `<https://…|…>` survives), hidden characters made visible, and the
    result cut to `limit` characters with a marker saying how much was cut."""
    return _fit([_ESCAPES.get(char) or _visible(char) for char in value], limit)


def approval_card(
    request: ApprovalRequestInput,
    *,
    approvers_needed: str,
    rationale_from_model: bool,
    trace_id: str | None = None,
) -> dict[str, Any]:
    """The card asking for a decision. `approvers_needed` is Garrison's own mrkdwn ("1 approver
    from <!subteam^S…>"); everything taken from the incident or a model is escaped plain text.
    `trace_id`: the incident's trace (tracing on), under the buttons."""
    kind = request.action.kind.value
    blocks = [
        _header(f"Approval needed: {kind} - risk {request.decision.risk}/100"),
        *_facts(request, approvers_needed),
        _rationale(request.rationale, rationale_from_model),
        *_model_note(request),
        _buttons(request),
    ]
    if trace_id:
        blocks.append(
            {"type": "context", "elements": [_plain(f"Trace {escape_text(trace_id, 64)}")]}
        )
    return {"text": _fallback(request, "needed"), "blocks": blocks}


def decided_card(
    request: ApprovalRequestInput,
    *,
    status: str,
    decisions: Sequence[tuple[str, str, datetime]],
    at: datetime,
    rationale_from_model: bool | None = None,
) -> dict[str, Any]:
    """The card once decided: the same facts, the buttons replaced by who decided what and when.
    Decider names come from Garrison's directory and are still escaped. The rationale keeps the
    label it had (the request's own `rationale_from_model` unless told otherwise)."""
    if rationale_from_model is None:
        rationale_from_model = request.rationale_from_model
    kind = request.action.kind.value
    title = _STATUS_TITLES.get(status, "Decided")
    blocks = [
        _header(f"{title}: {kind} - risk {request.decision.risk}/100"),
        *_facts(request, None),
        _rationale(request.rationale, rationale_from_model),
        *_model_note(request),
        _section_plain(_status_lines(request, status, decisions, at), STATUS_BLOCK_ID),
    ]
    return {"text": _fallback(request, title.lower()), "blocks": blocks}


def mention_text(ids: Sequence[str]) -> str:
    """Slack mentions of validated ids (`<@U…>`, `<!subteam^S…>`); anything else is dropped."""
    return " ".join(_mentions(ids))


def thread_note(
    text_trusted: str, *, mentions: Sequence[str] = (), untrusted: str | None = None
) -> dict[str, Any]:
    """A timeline reply (reminder, escalation, decision, action executed). Mentions are Slack ids:
    users `U…`/`W…` become `<@U…>`, user groups `S…` become `<!subteam^S…>`; anything else is
    dropped. `untrusted` (a vendor's answer, say) is shown escaped under the trusted text."""
    rendered = " ".join(_mentions(mentions))
    trusted = _cut(f"{rendered} {text_trusted}".strip() or "(no text)", TEXT_MAX)
    blocks: list[Block] = [{"type": "section", "text": _mrkdwn(trusted)}]
    if untrusted is not None:
        blocks.append({"type": "context", "elements": [_plain(_prose(untrusted, TEXT_MAX))]})
    return {"text": trusted, "blocks": blocks}


def _fallback(request: ApprovalRequestInput, state: str) -> str:
    """What notifications show: trusted values only (approval id, action kind, risk)."""
    approval = escape_text(request.approval_id, 100)
    kind, risk = request.action.kind.value, request.decision.risk
    return f"Approval {approval} {state}: {kind}, risk {risk}/100"


# ---- the facts both cards share --------------------------------------------------------------


def _facts(request: ApprovalRequestInput, approvers_needed: str | None) -> list[Block]:
    action, decision = request.action, request.decision
    summary: list[dict[str, Any]] = [
        _mrkdwn(f"*Action*\n`{action.kind.value}` on {_article(action.target_kind.value)}"),
        _mrkdwn(f"*Risk*\n*{decision.risk}*/100"),
        _plain(f"Incident: {escape_text(request.incident_id, 500)}"),
        _plain(f"Approval: {escape_text(request.approval_id, 500)}"),
        _plain(f"Policy version: {escape_text(decision.policy_version, 500)}"),
        _plain(f"Requested by: {escape_text(request.requester, 500)}"),
    ]
    if approvers_needed is not None:
        summary.append(_mrkdwn(f"*Who must approve*\n{_cut(approvers_needed, FIELD_MAX - 20)}"))
    return [
        {"type": "section", "block_id": "garrison.summary", "fields": summary},
        {
            "type": "context",
            "elements": [_mrkdwn("*Target*, exactly as it will be acted on:")],
        },
        _section_plain(escape_text(action.target, TEXT_MAX), TARGET_BLOCK_ID),
        *_fix(action),
        {
            "type": "context",
            "elements": [_mrkdwn(f"*Why risk {decision.risk}*: the policy's factors and rules")],
        },
        _section_plain(_risk_lines(request), "garrison.risk"),
        *_degraded(request),
        {
            "type": "context",
            "elements": [_mrkdwn("*Evidence* from the incident (untrusted, shown as text)")],
        },
        _section_plain(_evidence_lines(request.evidence), "garrison.evidence"),
        {"type": "section", "block_id": "garrison.undo", "text": _mrkdwn(_undo(request))},
        {"type": "section", "block_id": "garrison.deadline", "fields": _deadline(request)},
    ]


def _fix(action: Action) -> list[Block]:
    """A patch's parameters: which fix, for which vulnerability (ids, validated on the action)."""
    if not isinstance(action, Patch | Unpatch):
        return []
    verb = "install or apply" if isinstance(action, Patch) else "uninstall or revert"
    text = f"Fix: {verb} {action.remediation} for {action.cve}"
    return [_section_plain(escape_text(text, 300), FIX_BLOCK_ID)]


def _risk_lines(request: ApprovalRequestInput) -> str:
    decision = request.decision
    factors = [f"{f.points:+d}  {escape_text(f.name, 100)}" for f in decision.factors]
    if len(factors) > MAX_FACTORS:
        factors = [*factors[:MAX_FACTORS], f"... {len(factors) - MAX_FACTORS} more factors"]
    reasons = [f"- {escape_text(r, 200)}" for r in decision.reasons[:5]]
    return _cut("\n".join([*factors, *reasons]) or "(no factors)", TEXT_MAX)


def _degraded(request: ApprovalRequestInput) -> list[Block]:
    """What the agents could not read, when the decision was made on degraded evidence: the
    gaps name hosts, so they are shown escaped like the rest of the evidence."""
    gaps = request.decision.evidence_gaps
    if not gaps:
        return []
    label = ":warning: *Evidence degraded*: telemetry the agents could not read; a human decides"
    return [
        {"type": "context", "elements": [_mrkdwn(label)]},
        _section_plain(_prose(degraded_line(gaps), TEXT_MAX), DEGRADED_BLOCK_ID),
    ]


def _evidence_lines(evidence: Sequence[str]) -> str:
    lines = [f"- {_prose(item, EVIDENCE_ITEM_MAX)}" for item in evidence[:EVIDENCE_ITEMS]]
    if len(evidence) > EVIDENCE_ITEMS:
        lines.append(f"... and {len(evidence) - EVIDENCE_ITEMS} more in the incident record")
    return "\n".join(lines) or "(no evidence attached)"


def _undo(request: ApprovalRequestInput) -> str:
    inverse = request.action.inverse()
    if inverse is None:
        return f"*Undo*: none, `{request.action.kind.value}` cannot be reversed"
    # No action kind carries a TTL or expiry parameter (tools/actions.py): containment holds until
    # the inverse runs.
    until = "released" if request.action.kind in SCORED_KINDS else "undone"
    return f"*Undo*: `{inverse.kind.value}` on the same target\n*Lasts*: until {until} (no expiry)"


def _deadline(request: ApprovalRequestInput) -> list[dict[str, Any]]:
    return [
        _mrkdwn(f"*Requested*\n{_slack_date(request.requested_at)}"),
        _mrkdwn(f"*Decide by*\n{_slack_date(request.deadline)} (then escalated)"),
        _mrkdwn(f"*Expires*\n{_slack_date(request.expires_at)}: denied if undecided"),
        _plain(f"Approver group: {escape_text(request.approver_group, 200)}"),
        _plain(f"Escalation group: {escape_text(request.escalation_group, 200)}"),
    ]


def _rationale(rationale: str, from_model: bool) -> Block:
    label = f":warning: *{MODEL_LABEL}*" if from_model else f"*{RULES_LABEL}*"
    return {
        "type": "context",
        "block_id": RATIONALE_BLOCK_ID,
        "elements": [_mrkdwn(label), _plain(_prose(rationale, RATIONALE_MAX))],
    }


def _model_note(request: ApprovalRequestInput) -> list[Block]:
    """The summaries model's justification of this action and its narrative of the incident,
    under the label, as escaped plain text (no mention, link or markup it wrote is live)."""
    note = request.model_note
    if note is None:
        return []
    label = f":warning: *{MODEL_LABEL}*: written by a language model from the facts above"
    elements = [_mrkdwn(label), _plain(f"Model: {escape_text(note.model, 100)}")]
    if note.justification:
        elements.append(_plain(_prose(f"Why this action: {note.justification}", NOTE_MAX)))
    elements.append(_plain(_prose(f"Narrative: {note.narrative}", NOTE_MAX)))
    return [{"type": "context", "block_id": MODEL_NOTE_BLOCK_ID, "elements": elements}]


def _buttons(request: ApprovalRequestInput) -> Block:
    value = json.dumps(
        {"approval_id": request.approval_id, "action_hash": request.action_hash},
        separators=(",", ":"),
    )
    if len(value) > BUTTON_VALUE_MAX:
        raise ValueError("approval id and action hash exceed a button value")
    kind = request.action.kind.value
    target = escape_text(request.action.target, 200)
    confirm = {
        "title": _plain(f"Approve {kind}?"),
        "text": _plain(f"Risk {request.decision.risk}/100. Target: {target}"),
        "confirm": _plain("Approve"),
        "deny": _plain("Cancel"),
        "style": "primary",
    }
    approve = {
        "type": "button",
        "action_id": APPROVE_ACTION_ID,
        "text": _plain("Approve"),
        "style": "primary",
        "value": value,
        "confirm": confirm,
    }
    deny = {
        "type": "button",
        "action_id": DENY_ACTION_ID,
        "text": _plain("Deny"),
        "style": "danger",
        "value": value,
    }
    return {"type": "actions", "block_id": DECISION_BLOCK_ID, "elements": [approve, deny]}


def _status_lines(
    request: ApprovalRequestInput,
    status: str,
    decisions: Sequence[tuple[str, str, datetime]],
    at: datetime,
) -> str:
    lines = [
        f"{_DECIDED.get(decision) or escape_text(decision, 40)} by {escape_text(user, 100)}"
        f" at {_clock(when)}"
        for user, decision, when in decisions[:MAX_DECISION_LINES]
    ]
    if len(decisions) > MAX_DECISION_LINES:
        lines.append(f"... and {len(decisions) - MAX_DECISION_LINES} more decisions")
    if status == "expired":
        who = "not enough approvers" if decisions else "nobody"
        lines.append(
            f"expired: {who} decided before {_clock(request.expires_at)} - denied by default"
        )
    elif not decisions:
        lines.append(f"{escape_text(status, 40)} at {_clock(at)}")
    return "\n".join(lines)


# ---- text objects and helpers ----------------------------------------------------------------


def _article(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def _header(text: str) -> Block:
    return {"type": "header", "text": _plain(_cut(text, HEADER_MAX))}


def _section_plain(text: str, block_id: str) -> Block:
    return {"type": "section", "block_id": block_id, "text": _plain(text)}


def _plain(text: str) -> dict[str, Any]:
    # Slack refuses an empty text object: a blank untrusted value must not sink the card.
    return {"type": "plain_text", "text": text if text.strip() else "(blank)", "emoji": False}


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _mentions(ids: Iterable[str]) -> list[str]:
    rendered: list[str] = []
    for slack_id in ids:
        if SLACK_USER.fullmatch(slack_id):
            mention = f"<@{slack_id}>"
        elif SLACK_USERGROUP.fullmatch(slack_id):
            mention = f"<!subteam^{slack_id}>"
        else:
            continue
        if mention not in rendered:
            rendered.append(mention)
    return rendered


def _prose(value: str, limit: int) -> str:
    """Free text (evidence, rationale): escaped as `escape_text` does, line breaks flattened and
    also defanged, so that no URL or host name in it becomes a link."""
    flat = "".join(_visible(char) for char in _LINE_BREAKS.sub(" ", value))
    return _fit(_TOKEN.findall(_SCHEME_LEFT.sub("[://]", defang(flat))), limit)


def _visible(char: str) -> str:
    return f"[U+{ord(char):04X}]" if unicodedata.category(char) in _HIDDEN else char


def _fit(tokens: list[str], limit: int) -> str:
    """Join tokens (a character, an entity, a `[U+…]` marker: never split) within `limit`."""
    if limit < _MIN_LIMIT:
        raise ValueError(f"a text limit under {_MIN_LIMIT} leaves no room for the cut marker")
    if sum(_units(t) for t in tokens) <= limit:
        return "".join(tokens)
    budget = limit - _units(_cut_marker(len(tokens)))
    kept: list[str] = []
    used = 0
    for token in tokens:
        used += _units(token)
        if used > budget:
            break
        kept.append(token)
    return "".join(kept) + _cut_marker(len(tokens) - len(kept))


def _cut(trusted: str, limit: int) -> str:
    """Trusted text cut to a limit (no escaping: it may hold Garrison's own mrkdwn)."""
    return trusted if _units(trusted) <= limit else _fit(list(trusted), limit)


def _cut_marker(dropped: int) -> str:
    return f" ...[{dropped} more characters cut]"


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _clock(when: datetime) -> str:
    return _utc(when).strftime("%Y-%m-%d %H:%M UTC")


def _slack_date(when: datetime) -> str:
    """Slack renders `<!date^…>` in the reader's time zone; the fallback is UTC."""
    seconds = int(_utc(when).timestamp())
    return f"<!date^{seconds}^{{date_short_pretty}} {{time}}|{_clock(when)}>"
