"""What an agent graph is built from: read-only tools, optionally a chat model, and the retry
budget of its vendor reads (`agents/reads.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from langchain_core.language_models import BaseChatModel

from agents.reads import ReadRetry
from tools.toolsets import ReadTools


@dataclass(frozen=True)
class AgentDeps:
    tools: ReadTools
    model: BaseChatModel | None = None
    reads: ReadRetry = field(default_factory=ReadRetry)
