"""What every alert shape normalises to: Garrison's `Alert`, the source that sent it, and the
original record kept verbatim (stored beside the alert, never interpreted again)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from tools.models import Alert


class Shape(StrEnum):
    """An accepted alert shape (`?shape=` on `POST /api/alerts`, or detected from the record)."""

    GARRISON = "garrison"  # Garrison's own alert JSON (tools.models.Alert), docs/ingestion.md
    OCSF = "ocsf"  # OCSF 1.x Detection Finding (class_uid 2004) or Security Finding (2001)
    FALCON = "falcon"  # CrowdStrike Falcon Alerts API v2 entity
    GRAPH = "graph"  # Microsoft Graph security alerts_v2 (Defender XDR)
    SENTINEL = "sentinel"  # Microsoft Sentinel incident (ARM resource)
    SPLUNK = "splunk"  # Splunk alert-action webhook / ES notable event
    ELASTIC = "elastic"  # Elastic Security alert document (ECS, kibana.alert.*)
    SURICATA = "suricata"  # Suricata EVE JSON record with event_type "alert"
    SIGMA = "sigma"  # a Sigma rule match as Garrison's corpus importer writes it


class NormaliseError(ValueError):
    """A record that cannot become an alert. `path` names the field (`finding_info.uid`), and
    the message says what is wrong with it; neither repeats attacker-controlled values at
    length."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class Normalised:
    """One alert as Garrison understands it.

    `source` names the sender (`crowdstrike-falcon`, `defender-xdr`, `sentinel`, `splunk`,
    `elastic-security`, `suricata`, `sigma`, `ocsf:<product>`, or the `product` of Garrison's own
    JSON). `correlation` is the sender's own incident grouping when it has one (a Sentinel
    incident, a Defender XDR `incidentId`, OCSF `metadata.correlation_uid`): alerts that share it
    belong to one incident. `original` is the record exactly as received (JSON-compatible).
    """

    alert: Alert
    source: str
    shape: Shape
    original: Mapping[str, Any]
    correlation: str | None = None
