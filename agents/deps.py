"""What an agent graph is built from: read-only tools, optionally a chat model (and the
investigation's own), and the retry budget of its vendor reads (`agents/reads.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel

from agents.model_client import ModelClient
from agents.reads import ReadRetry
from tools.toolsets import ReadTools


@dataclass(frozen=True)
class AgentDeps:
    tools: ReadTools
    model: BaseChatModel | ModelClient | None = None  # a bare model: the seam's default limits
    reads: ReadRetry = field(default_factory=ReadRetry)
    # The investigation role's model (`agents/investigation/model_loop.py`); None: the rules alone,
    # exactly as without one. Apart from `model` because a playbook step asks both roles.
    investigator: BaseChatModel | ModelClient | None = None
