"""What threat intelligence says about the incident's addresses, domains and hashes: the
configured vendor, and what sharing partners published (`tools/intel/shared.py`), through the
one `ThreatIntelReader` the agent holds.

An indicator the intelligence calls MALICIOUS is attacker infrastructure or an attacker's file
seen in this incident: triage counts the incident an attack whatever its alerts weigh (a
connection no rule thought much of, to an address a partner contained in its own attack, is
command and control), and names the stage it proves (command and control for an address or a
domain, execution for a file). SUSPICIOUS is noted, not counted: a partner's "seen nearby" is
not a proof. Intelligence is enrichment: a lookup that fails is noted and the triage goes on
without it, never retried at the expense of the telemetry's retry budget; and the lookups of
one incident stop after `DEADLINE_S` (a vendor's public quota, VirusTotal's 4 a minute, would
otherwise hold the triage for minutes), the rest noted as skipped.
"""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel, ConfigDict

from agents.models import ExtractedEntities
from tools.errors import ToolError
from tools.intel.base import ThreatIntelReader
from tools.models import Indicator, IndicatorKind
from tools.results import ReputationVerdict

MAX_LOOKUPS = 30  # per incident: a vendor's quota is shared by every incident
DEADLINE_S = 20.0  # per incident, for all its lookups
INTEL_STAGE_WEIGHT = 6.5  # a proven stage, as telemetry's lateral movement
_STAGE = {
    IndicatorKind.IP: "command-and-control",
    IndicatorKind.DOMAIN: "command-and-control",
    IndicatorKind.SHA256: "execution",
}


class IntelFinding(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: IndicatorKind
    value: str
    verdict: ReputationVerdict
    sources: list[str]

    @property
    def stage(self) -> str:
        return _STAGE[self.kind]

    def line(self) -> str:
        by = ", ".join(self.sources) or "threat intelligence"
        return f"threat intelligence: {self.kind.value} {self.value} is {self.verdict.value} ({by})"


async def look_up(
    intel: ThreatIntelReader, entities: ExtractedEntities, deadline_s: float = DEADLINE_S
) -> tuple[list[IntelFinding], list[str]]:
    """The malicious and suspicious indicators, and a note per failed lookup."""
    wanted = [
        *(Indicator(kind=IndicatorKind.IP, value=v) for v in entities.ips),
        *(Indicator(kind=IndicatorKind.DOMAIN, value=v) for v in entities.domains),
        *(Indicator(kind=IndicatorKind.SHA256, value=v) for v in entities.sha256),
    ][:MAX_LOOKUPS]
    findings: list[IntelFinding] = []
    notes: list[str] = []
    end = time.monotonic() + deadline_s
    for done, indicator in enumerate(wanted):
        try:
            answer = await asyncio.wait_for(intel.reputation(indicator), end - time.monotonic())
        except TimeoutError:
            skipped = len(wanted) - done
            notes.append(f"threat intelligence: {skipped} lookup(s) skipped after {deadline_s:g} s")
            break
        except ToolError as error:
            notes.append(f"threat intelligence unavailable for {indicator.value}: {error}"[:300])
            continue
        if answer.verdict in (ReputationVerdict.MALICIOUS, ReputationVerdict.SUSPICIOUS):
            findings.append(
                IntelFinding(
                    kind=indicator.kind,
                    value=indicator.value,
                    verdict=answer.verdict,
                    sources=list(answer.sources),
                )
            )
    return findings, notes


def malicious(findings: list[IntelFinding]) -> list[IntelFinding]:
    return [f for f in findings if f.verdict is ReputationVerdict.MALICIOUS]
