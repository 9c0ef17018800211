"""The reviewed labels file: which Sigma hits of a recording form each incident, and its truth.

Labels never come from code; a person writes and reviews them (`simulations/labels/*.yaml`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from simulations.spec import INCIDENT_ID_PATTERN, AnalystSpec, Truth


class _Label(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertSelection(_Label):
    """Which Sigma hits of the dataset name the incident's group (Garrison's grouping rule: the
    incident carries every alert of that group)."""

    rules: list[str] = Field(min_length=1, description="Sigma rule ids")
    hosts: list[str] = Field(default_factory=list, description="asset ids; empty: any host")
    images: list[str] = Field(
        default_factory=list, description="acting image basenames; empty: any"
    )
    start: datetime | None = None
    end: datetime | None = None


class IncidentLabel(_Label):
    id: str = Field(pattern=INCIDENT_ID_PATTERN)
    dataset: str
    title: str
    select: AlertSelection
    truth: Truth
    analyst: AnalystSpec = Field(default_factory=AnalystSpec)
    note: str
    unnamed_host: str | None = Field(
        default=None,
        description="asset id given to the recording's events that name no host (a Linux audit"
        " log written without `node=`); the recording's documentation names the machine",
    )
    unnamed_user: str | None = Field(
        default=None,
        description="login user given to Linux audit records that name only a number (raw"
        " `auid=`); the recording's documentation names the account",
    )
    context_minutes: float = 10.0
    max_alerts: int = Field(default=25, ge=1, le=100)
    max_telemetry: int = Field(default=2500, ge=10, le=20_000)


class LabelsFile(_Label):
    incidents: list[IncidentLabel]


def read_labels(path: Path) -> LabelsFile:
    return LabelsFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
