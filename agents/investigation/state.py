"""Investigation graph state."""

from __future__ import annotations

from typing import NotRequired, TypedDict

from agents.models import InvestigationInput, InvestigationReport
from tools.models import Environment


class InvestigationState(TypedDict):
    input: InvestigationInput
    environment: Environment
    report: InvestigationReport
    hosts: NotRequired[list[str]]  # the hosts whose telemetry the rules read
