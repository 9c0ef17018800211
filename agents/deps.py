"""What an agent graph is built from: read-only tools and, optionally, a chat model."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel

from tools.toolsets import ReadTools


@dataclass(frozen=True)
class AgentDeps:
    tools: ReadTools
    model: BaseChatModel | None = None
