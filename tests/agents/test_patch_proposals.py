"""Which exploited vulnerabilities become `patch` proposals: a CVE named by an alert (title,
rule, command line; `CVE-…` or a Sigma tag `cve.…`) or by threat intelligence on the alert's
indicators, on a host the plan contains, with the knowledge's remediation that fits the host's
platform. A CVE the knowledge does not hold, or a host the plan does not contain, gets none."""

from __future__ import annotations

from agents.deps import AgentDeps
from agents.remediation.patching import cves_in, patch_proposals
from tests.agents.fakes import FakeEdr, FakeIdentity, FakeInventory, alert
from tools.actions import Action, Patch
from tools.errors import TransientToolError
from tools.models import (
    Alert,
    AlertEntities,
    Asset,
    AssetKind,
    Criticality,
    Environment,
    FileRef,
    Indicator,
    Severity,
)
from tools.results import Reputation, ReputationVerdict
from tools.toolsets import ReadTools

EXPLOIT = [("T1190", "initial-access")]


class _Intel:
    """Threat intelligence that ties one file hash to a CVE (VirusTotal's `cve-…` tags)."""

    def __init__(self, sha256: str = "", cve: str = "", broken: bool = False) -> None:
        self.sha256, self.cve, self.broken = sha256, cve, broken

    async def reputation(self, indicator: Indicator) -> Reputation:
        if self.broken:
            raise TransientToolError("intel down")
        named = [self.cve] if indicator.value == self.sha256 else []
        verdict = ReputationVerdict.MALICIOUS if named else ReputationVerdict.UNKNOWN
        return Reputation(indicator=indicator.value, verdict=verdict, vulnerabilities=named)


def _deps(intel: _Intel | None = None) -> AgentDeps:
    env = Environment(
        assets=[
            Asset(id="WEB01", kind=AssetKind.SERVER, criticality=Criticality.HIGH, os="linux"),
            Asset(id="FS01", kind=AssetKind.SERVER, criticality=Criticality.HIGH, os="windows"),
        ]
    )
    return AgentDeps(
        tools=ReadTools(
            edr=FakeEdr(), identity=FakeIdentity(), intel=intel or _Intel(),
            inventory=FakeInventory(env),
        )
    )  # fmt: skip


async def _patches(
    alerts: list[Alert], hosts: list[str], intel: _Intel | None = None
) -> list[Action]:
    proposals = await patch_proposals(_deps(intel), alerts, hosts, ["triage: malicious"])
    return [p.action for p in proposals]


def test_cve_spellings_in_text_are_normalised() -> None:
    text = "Log4j RCE CVE-2021-44228 / tags cve.2021-45046, cve_2017_0144; CVE-2021-44228 again"
    assert cves_in([text, None]) == ["CVE-2021-44228", "CVE-2021-45046", "CVE-2017-0144"]
    assert cves_in(["PRCVE-2021-1", "no id here"]) == []


async def test_a_cve_in_an_alert_title_patches_its_contained_host() -> None:
    alerts = [alert("a1", "Potential CVE-2021-44228 Exploitation", Severity.HIGH, EXPLOIT,
                    host="WEB01")]  # fmt: skip
    assert await _patches(alerts, ["WEB01"]) == [
        Patch(target="WEB01", cve="CVE-2021-44228", remediation="pkg:log4j-core@2.17.1")
    ]


async def test_the_remediation_fits_the_hosts_platform() -> None:
    # EternalBlue's fixes are Windows updates: a Windows host gets the KB, a Linux host nothing
    alerts = [
        alert("a1", "SMB exploit", Severity.HIGH, EXPLOIT, host="FS01",
              cmd="exploit.exe --tag cve.2017-0144"),
        alert("a2", "SMB exploit", Severity.HIGH, EXPLOIT, host="WEB01",
              cmd="exploit --tag cve.2017-0144"),
    ]  # fmt: skip
    assert await _patches(alerts, ["FS01", "WEB01"]) == [
        Patch(target="FS01", cve="CVE-2017-0144", remediation="KB4012212")
    ]


async def test_threat_intelligence_on_an_alerts_file_names_the_cve() -> None:
    sha = "a" * 64
    base = alert("a1", "Suspicious document child process", Severity.HIGH, EXPLOIT, host="FS01")
    document = FileRef(path="C:\\Users\\x\\doc.rtf", sha256=sha)
    alerts = [base.model_copy(update={"entities": AlertEntities(host="FS01", file=document)})]
    found = await _patches(alerts, ["FS01"], _Intel(sha256=sha, cve="CVE-2022-30190"))
    assert found == [Patch(target="FS01", cve="CVE-2022-30190", remediation="KB5014699")]
    # intelligence that cannot be read names nothing (and breaks nothing)
    assert await _patches(alerts, ["FS01"], _Intel(broken=True)) == []


async def test_unknown_cves_and_uncontained_hosts_get_no_patch() -> None:
    alerts = [
        alert("a1", "Exploit of CVE-2099-12345", Severity.HIGH, EXPLOIT, host="WEB01"),
        alert("a2", "Potential CVE-2021-44228 Exploitation", Severity.HIGH, EXPLOIT, host="FS01"),
    ]  # fmt: skip
    assert await _patches(alerts, ["WEB01"]) == []
