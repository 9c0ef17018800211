"""Patching what was exploited: when an incident's evidence names a vulnerability (a CVE id in
an alert's title, rule, command line or path, spelt `CVE-2021-44228` or as a Sigma tag
`cve.2021-44228`, or one the threat-intelligence capability ties to an alert's address, domain
or file), the hosts the plan contains that those alerts came from get a `patch` proposal with the
remediation the knowledge names for the CVE (`agents/knowledge_base/vulnerabilities.yaml`), the
first whose platform fits the host's operating system.

A CVE the knowledge does not hold is never patched on a guess. Alert text is
attacker-influenced: a CVE named there can only ever select a remediation from the knowledge for
a host the plan already contains, and the policy gates the patch like any action (always with
approval on servers and domain controllers).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from agents.deps import AgentDeps
from agents.entities import host_key
from agents.knowledge_base import knowledge
from agents.knowledge_base.schema import Remediation
from agents.models import ProposedAction
from tools.actions import Patch
from tools.errors import ToolError
from tools.models import Alert, Indicator, IndicatorKind

_CVE = re.compile(r"\bcve[-_.](\d{4})[-_.](\d{4,7})\b", re.IGNORECASE)
MAX_PATCHES = 10


def cves_in(texts: Iterable[str | None]) -> list[str]:
    """CVE ids written in any of `texts`, normalised (`CVE-2021-44228`), in order of appearance."""
    found: dict[str, None] = {}
    for text in texts:
        for match in _CVE.finditer(text or ""):
            found.setdefault(f"CVE-{match.group(1)}-{match.group(2)}")
    return list(found)


def alert_cves(alert: Alert) -> list[str]:
    e = alert.entities
    return cves_in(
        [
            alert.title,
            alert.rule.name,
            alert.rule.uid,
            e.process.cmd_line if e.process else None,
            e.file.path if e.file else None,
            e.domain,
        ]
    )


def _indicators(alert: Alert) -> list[Indicator]:
    e = alert.entities
    found = [Indicator(kind=IndicatorKind.IP, value=ip) for ip in (e.src_ip, e.dst_ip) if ip]
    if e.domain:
        found.append(Indicator(kind=IndicatorKind.DOMAIN, value=e.domain))
    if e.file and e.file.sha256:
        found.append(Indicator(kind=IndicatorKind.SHA256, value=e.file.sha256))
    return found


async def intel_cves(deps: AgentDeps, alert: Alert) -> list[str]:
    """CVE ids the threat-intelligence capability ties to the alert's indicators; an answer that
    cannot be read names none (the alert's own text may still)."""
    named: list[str] = []
    for indicator in _indicators(alert):
        try:
            answer = await deps.tools.intel.reputation(indicator)
        except ToolError:
            continue
        named += cves_in(answer.vulnerabilities)
    return named


def remediation_for(cve: str, os: str | None) -> Remediation | None:
    """The knowledge's first remediation of `cve` that fits the host's platform."""
    known = knowledge().vulnerabilities.vulnerabilities.get(cve)
    if known is None:
        return None
    platform = (os or "").strip().lower()
    for remediation in known.remediations:
        fits = remediation.platform == "any" or platform.startswith(remediation.platform)
        if fits or not platform:
            return remediation
    return None


async def patch_proposals(
    deps: AgentDeps, alerts: Sequence[Alert], hosts: Iterable[str], evidence: list[str]
) -> list[ProposedAction]:
    """`patch` proposals for the exploited CVEs of the alerts raised on `hosts` (the hosts the
    plan contains)."""
    wanted = {host_key(h): h for h in hosts}
    exploited: dict[tuple[str, str], str] = {}  # (host key, cve) -> where it was named
    for alert in alerts:
        key = host_key(alert.entities.host or "")
        if key not in wanted:
            continue
        for cve in alert_cves(alert):
            exploited.setdefault((key, cve), f"alert {alert.uid[:80]}: {alert.title[:120]}")
        for cve in await intel_cves(deps, alert):
            exploited.setdefault((key, cve), f"threat intelligence on alert {alert.uid[:80]}")
    proposals: list[ProposedAction] = []
    for (key, cve), where in exploited.items():
        host = wanted[key]
        asset = await deps.tools.inventory.get_asset(host)
        remediation = remediation_for(cve, asset.os if asset else None)
        if remediation is None:
            continue
        known = knowledge().vulnerabilities.vulnerabilities[cve]
        proposals.append(
            ProposedAction(
                action=Patch(
                    target=host,
                    cve=cve,
                    remediation=remediation.id,
                    reversible=remediation.reversible,
                ),
                rationale=f"exploited {cve} ({known.name[:80]}): {remediation.title[:120]}",
                evidence=[where, *evidence],
            )
        )
    return proposals[:MAX_PATCHES]
