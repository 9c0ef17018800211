"""The incident's category from what the investigation proved, with the alert mix as the prior.

Triage names a category from the alerts' tactics: a proposal. Alerts describe steps, not the
intrusion: a lateral movement done with a remote service shows up as service-install, WMI and
account-change alerts (persistence, execution), and the response that follows the alert mix
isolates both hosts but leaves the account used for the hop enabled. After the investigation, its
proven findings decide, in this order:

1. credential theft proven -> credential_access: an attacker process whose own command line
   takes secrets (an LSASS dump, a credential tool, a hive or NTDS copy), or a credential-access
   alert that the investigation ties to an attacker process or that a domain controller raised
   about a request it served (a replication, a ticket);
2. movement between hosts proven -> lateral_movement: an inventory host reached a host where
   attacker processes then ran (a logon or a connection on a remote-execution port before a
   remote service, WMI or DCOM start), the account used being compromised;
3. an autostart artefact written by an attacker process, where triage saw only execution or
   evasion -> persistence;
4. otherwise triage's proposal stands.
A benign verdict is benign activity whatever was proposed. Alerts that the investigation proves
to be the platform's maintenance (`agents/triage/maintenance.py`) prove nothing.

Command and control is left to triage, which already weighs a channel from a process with
tradecraft (`agents/triage/stages.py`): an attacker endpoint reached on the way (a download) is
not the intrusion's stage, and blocking is proposed from the evidence whatever the category.
Both the proposal and the decision are recorded, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agents.entities import AssetIndex
from agents.knowledge import cmdline_indicators
from agents.models import InvestigationReport, TriageResult
from agents.seam import truncate
from agents.telemetry import HostTelemetry
from agents.triage.scoring import assess_alert
from tools.models import Alert, Category, Verdict

# The command-line indicators (`agents.knowledge.CMDLINE_INDICATORS`, by what they say) that
# mean secrets were taken, not only that a tool ran.
CREDENTIAL_THEFT_INDICATORS: frozenset[str] = frozenset(
    {"comsvcs MiniDump", "credential tool", "procdump of a process", "hive dump", "NTDS access"}
)
# Categories whose response is the same whatever the stage (isolate, stop, remove artefacts):
# an autostart artefact names the stage better than the alert mix.
GENERIC_STAGES: frozenset[Category] = frozenset({Category.EXECUTION, Category.DEFENSE_EVASION})


@dataclass
class ProvenFindings:
    """What the investigation proved, each item a line an analyst can check."""

    credential_theft: list[str] = field(default_factory=list)
    movements: list[str] = field(default_factory=list)
    persistence: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CategoryDecision:
    proposed: Category  # triage's, from the alert mix
    decided: Category
    reason: str


def decide_category(
    triage: TriageResult, verdict: Verdict, proven: ProvenFindings
) -> CategoryDecision:
    proposed = triage.category
    if verdict is Verdict.BENIGN:
        return CategoryDecision(proposed, Category.BENIGN_ACTIVITY, "verdict benign")
    if proven.credential_theft:
        return CategoryDecision(
            proposed, Category.CREDENTIAL_ACCESS, "credential theft: " + proven.credential_theft[0]
        )
    if proven.movements:
        if proposed is Category.CREDENTIAL_ACCESS:
            # the alerts say secrets were taken and the movement used them: both disable the
            # account and isolate every compromised host; the theft is the stage to report
            why = "credential access proposed, movement proven: " + proven.movements[0]
            return CategoryDecision(proposed, proposed, why)
        return CategoryDecision(
            proposed, Category.LATERAL_MOVEMENT, "movement between hosts: " + proven.movements[0]
        )
    if proven.persistence and proposed in GENERIC_STAGES:
        return CategoryDecision(
            proposed, Category.PERSISTENCE, "autostart artefact: " + proven.persistence[0]
        )
    return CategoryDecision(proposed, proposed, "nothing proven beyond the alerts: triage's")


def credential_theft(
    significant: list[Alert],
    telemetries: dict[str, HostTelemetry],
    attacker_processes: set[str],
    served: set[str],
    index: AssetIndex,
) -> list[str]:
    """Proven theft of secrets (rule 1 of the module docstring). `attacker_processes` holds the
    investigation's "<asset id>:<pid>" (lowercased) less the bystanders; `served` the alerts'
    uids that a domain controller raised about a request it served."""
    found: list[str] = []
    for host, telemetry in telemetries.items():
        for process in telemetry.processes:
            key = f"{host}:{process.pid}".lower()
            if process.pid is None or key not in attacker_processes:
                continue
            taken = [w for _, w in cmdline_indicators(process.cmd_line)]
            taken = [w for w in taken if w in CREDENTIAL_THEFT_INDICATORS]
            if taken:
                found.append(truncate(f"{host}:{process.pid} runs {taken[0]}", 200))
                break
    for alert in significant:
        if "credential-access" not in assess_alert(alert).tactics:
            continue
        e = alert.entities
        host = index.asset_id(e.host) if e.host else ""
        pid = e.process.pid if e.process is not None else None
        if alert.uid in served:
            found.append(truncate(f"{host} served the request of {alert.title!r}", 200))
        elif pid is not None and f"{host}:{pid}".lower() in attacker_processes:
            found.append(truncate(f"{alert.title!r} on attacker process {host}:{pid}", 200))
    return found


def decided_category(triage: TriageResult, report: InvestigationReport) -> Category:
    """The category the response follows: the investigation's decision, else triage's."""
    return report.category if report.category is not None else triage.category


def decision_line(decision: CategoryDecision) -> str:
    """The finding that records the proposal, the decision and why."""
    if decision.decided is decision.proposed:
        head = f"category {decision.decided.value} (triage's proposal kept)"
    else:
        head = f"category {decision.proposed.value} -> {decision.decided.value}"
    return truncate(f"{head}: {decision.reason}", 300)
