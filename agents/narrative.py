"""The summaries role: a model-written incident narrative and one justification per proposed
action, for the humans who read the ticket, the Slack card and the console.

The narrative never replaces a fact: the verdict, the category, the findings and the policy's risk
are Garrison's own and are shown beside it, and every channel labels it model-generated. The
model is shown those deterministic facts (`NarrativeFacts`); whatever of them came from alerts or
telemetry (targets, findings, the rules' reasons) travels in the seam's fenced DATA block, so the
instructions stay fixed text. The answer is plain text within `NARRATIVE_MAX` and
`JUSTIFICATION_MAX` characters (a longer one is refused by the schema, and the seam refuses any
answer over its own size limit); it is cleaned of hidden characters here and escaped for each
channel where it is shown. No answer (no model, a spent budget, a timeout, a refusal): None, and
the deterministic text stands alone.
"""

from __future__ import annotations

import re
import unicodedata

from pydantic import BaseModel, ConfigDict, Field

from agents.model_client import ModelClient
from agents.seam import ask_structured

NARRATIVE_MAX = 1_500
JUSTIFICATION_MAX = 400
MAX_JUSTIFIED = 20  # actions per incident a model is asked to justify
LABEL = "Model-generated, unverified"

NARRATIVE_INSTRUCTIONS = (
    "You are a security analyst writing for the on-call analyst who decides on containment. "
    "The DATA block holds an incident's facts, established by deterministic rules: its verdict, "
    "category, findings and the actions proposed, each with an id (A1, A2...) and the facts the "
    "risk policy scores it on. Write `narrative`: at most 8 plain sentences saying what "
    "happened and why the verdict follows from the findings. For each proposed action write one "
    "`justifications` entry (its `action` id and at most 2 plain sentences on why it is "
    "proportionate or what it risks). Plain text only: no markup, no links, no mentions. Do not "
    "invent hosts, accounts or actions; the facts are final and you cannot change them."
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ActionFacts(_Strict):
    """One proposed action as the model sees it: `id` is how its justification names it."""

    id: str
    kind: str
    target: str  # from the evidence: attacker-influenced text
    rules_rationale: str  # the rule's reason (may quote the evidence)
    risk_factors: dict[str, str | int | bool | list[str] | None]  # the policy's facts on it
    from_model: bool = False


class NarrativeFacts(_Strict):
    """The deterministic facts the narrative is written from."""

    verdict: str
    confidence: float
    category: str
    severity: str
    techniques: list[str] = Field(default_factory=list)
    findings: list[str] = Field(default_factory=list)
    rules_reasons: list[str] = Field(default_factory=list)
    actions: list[ActionFacts] = Field(default_factory=list)
    outcomes: list[str] = Field(default_factory=list)  # earlier proposals and what became of them
    evidence_gaps: list[str] = Field(default_factory=list)


class ActionJustification(_Strict):
    action: str = Field(max_length=16, description="the id of a proposed action (A1, A2...)")
    justification: str = Field(max_length=JUSTIFICATION_MAX)


class IncidentNarrative(_Strict):
    """The answer's schema: one tool call with these arguments."""

    narrative: str = Field(max_length=NARRATIVE_MAX)
    justifications: list[ActionJustification] = Field(
        default_factory=list, max_length=MAX_JUSTIFIED
    )


class Narrative(_Strict):
    """A cleaned narrative, with each justification keyed by its action's id."""

    model: str
    text: str
    justifications: dict[str, str] = Field(default_factory=dict)


_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean(text: str, limit: int) -> str:
    """Plain text: hidden characters (controls, zero-width, bidi, tags) dropped except line
    breaks, runs of spaces and blank lines squeezed, and cut to `limit` characters. Escaping for
    a channel (HTML, Slack, a ticket) is that channel's, where the text is shown."""
    kept = "".join(
        "\n" if char in "\r\n" else char
        for char in text
        if char in "\r\n" or unicodedata.category(char) not in _HIDDEN
    )
    lines = [_SPACES.sub(" ", line).strip() for line in kept.split("\n")]
    squeezed = _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
    return squeezed if len(squeezed) <= limit else squeezed[: limit - 3].rstrip() + "..."


async def write_narrative(client: ModelClient, facts: NarrativeFacts) -> Narrative | None:
    """The model's narrative of `facts`, cleaned; None when the seam got no usable answer."""
    answer = await ask_structured(
        client, IncidentNarrative, NARRATIVE_INSTRUCTIONS, facts.model_dump(mode="json")
    )
    if answer is None:
        return None
    text = clean(answer.narrative, NARRATIVE_MAX)
    if not text:
        return None
    known = {action.id for action in facts.actions}
    justified = {
        item.action: clean(item.justification, JUSTIFICATION_MAX)
        for item in answer.justifications
        if item.action in known  # an id it made up justifies nothing
    }
    return Narrative(
        model=client.name, text=text, justifications={k: v for k, v in justified.items() if v}
    )
