"""The shape of each knowledge file, validated with pydantic so that a wrong weight, an unknown
tactic or a regex that does not compile is refused when the files are loaded, naming the file and
the field, rather than discovered mid-incident.

One model per file (`FILES` maps the file name to it). Regular expressions are stored as text and
compiled case-insensitively by the loader; the models only check that they compile.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from tools.actions import CVE_ID, REMEDIATION_ID, ActionKind
from tools.models import Category, Severity

TECHNIQUE_ID = re.compile(r"^T\d{4}(\.\d{3})?$")
TACTIC_NAME = r"^[a-z]+(-[a-z]+)*$"

Text = Annotated[str, StringConstraints(min_length=1, max_length=1_024)]
Lower = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^A-Z]*$")]
Tactic = Annotated[str, StringConstraints(pattern=TACTIC_NAME, max_length=64)]
Weight = Annotated[float, Field(ge=0.0, le=10.0)]
Port = Annotated[int, Field(ge=0, le=65_535)]


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as problem:
        raise ValueError(f"not a valid regular expression: {problem}") from None
    return pattern


Regex = Annotated[str, StringConstraints(min_length=1, max_length=2_048), AfterValidator(_compiles)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Manifest(_Strict):
    """`manifest.yaml`: the version every triage records. Bump it with every change."""

    version: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")]


class TacticEntry(_Strict):
    category: Category
    weight: Weight = Field(description="the weight a technique of this tactic gets by default")


class TechniqueEntry(_Strict):
    tactic: Tactic
    weight: Weight
    response: list[ActionKind] = Field(description="the action kinds the technique calls for")
    why: Text | None = None
    # Written by the coverage generator from the tactics its Sigma rules declare, not reviewed by
    # an analyst: a rule's tags mix the tactics of all its techniques, so the inferred tactic
    # gives the technique a category and a response but does not name an alert's tactic
    # (`technique_tactic`) until someone removes this flag.
    inferred: bool = False


class Techniques(_Strict):
    """`techniques.yaml`: what each ATT&CK technique weighs, which tactic (and so which incident
    category) it stands for, and the response it calls for."""

    severity_weight: dict[Severity, Weight]
    default_weight: Weight
    tactics: dict[Tactic, TacticEntry]
    category_priority: list[Category]
    category_response: dict[Category, list[ActionKind]]
    tactic_discount: dict[Category, Annotated[float, Field(gt=0.0, le=1.0)]]
    remote_execution: list[Text]
    techniques: dict[str, TechniqueEntry]

    @model_validator(mode="after")
    def _consistent(self) -> Techniques:
        for severity in Severity:
            if severity not in self.severity_weight:
                raise ValueError(f"severity_weight.{severity.value}: missing")
        named = [c for c in Category if c is not Category.BENIGN_ACTIVITY]
        if sorted(self.category_priority) != sorted(named):
            raise ValueError("category_priority: must list every category but benign_activity once")
        for category in named:
            if category not in self.category_response:
                raise ValueError(f"category_response.{category.value}: missing")
        for technique, entry in self.techniques.items():
            if not TECHNIQUE_ID.match(technique):
                raise ValueError(f"techniques.{technique}: not an ATT&CK id (T1234 or T1234.001)")
            if entry.tactic not in self.tactics:
                raise ValueError(f"techniques.{technique}.tactic: {entry.tactic!r} not in tactics")
        for technique in self.remote_execution:
            if not TECHNIQUE_ID.match(technique):
                raise ValueError(f"remote_execution: {technique!r} is not an ATT&CK id")
        return self


class NoisyRule(_Strict):
    id: Text
    title: Text


class Rules(_Strict):
    """`rules.yaml`: detections known to fire on ordinary activity, and what such a hit counts."""

    noisy_factor: Annotated[float, Field(ge=0.0, le=1.0)]
    noisy_rules: list[NoisyRule]
    noisy_titles: list[Regex]


class Indicator(_Strict):
    why: Text
    weight: Weight
    pattern: Regex
    dotall: bool = False


def _names_target(pattern: str) -> str:
    if "target" not in re.compile(pattern).groupindex:
        raise ValueError("a remote exploit's pattern names the attacked host as (?P<target>...)")
    return pattern


class RemoteExploit(_Strict):
    why: Text
    pattern: Annotated[Regex, AfterValidator(_names_target)]


class Tradecraft(_Strict):
    """`tradecraft.yaml`: command-line patterns of attacker tradecraft, and of exploits launched
    at another host (the pattern's `target` group names it)."""

    cmdline_indicators: list[Indicator]
    remote_exploits: list[RemoteExploit] = Field(default_factory=list)


class Processes(_Strict):
    """`processes.yaml`: process names and install folders, lower case."""

    suspicious_parents: list[Lower]
    shells: list[Lower]
    maintenance_processes: list[Lower]
    management_agent_dirs: list[Lower]
    session_components: list[Lower] = Field(default_factory=list)
    system_accounts: list[Annotated[str, StringConstraints(max_length=256, pattern=r"^[^A-Z]*$")]]


class Paths(_Strict):
    """`paths.yaml`: user-writable folders and autostart locations."""

    user_writable_dirs: list[Lower]
    autostart_keys: list[Regex]
    autostart_dirs: list[Lower]
    # optional: a team's paths.yaml copied before this list existed still loads (without it)
    directory_query_traces: list[Lower] = []
    credential_protection_values: list[Regex] = []


class PortRange(_Strict):
    first: Port
    last: Port

    @model_validator(mode="after")
    def _ordered(self) -> PortRange:
        if self.last < self.first:
            raise ValueError(f"last ({self.last}) is below first ({self.first})")
        return self


class Network(_Strict):
    """`network.yaml`: the ports of the estate's own infrastructure and of remote execution."""

    infrastructure_ports: list[Port]
    lateral_ports: list[Port]
    web_ports: list[Port]
    rpc_endpoint_mapper: Port
    rpc_dynamic_ports: PortRange


class Estate(_Strict):
    """`estate.yaml`: the organisation's machinery, as opposed to the attacker's."""

    drop_folders: list[Regex]
    critical_processes: list[Lower]
    kernel_pids: list[Annotated[int, Field(ge=0)]]
    shared_service_domains: list[Lower]
    reset_only_accounts: Regex
    # who the estate's declared operators are (inventory identity kinds), the asset kinds they
    # work on and the asset kinds they work from (`agents/triage/operators.py`); empty: none
    operator_identity_kinds: list[Lower] = Field(default_factory=list)
    operator_asset_kinds: list[Lower] = Field(default_factory=list)
    operator_source_kinds: list[Lower] = Field(default_factory=list)


class Remediation(_Strict):
    """One fix for a vulnerability: a vendor update (`KB5008212`), a package version
    (`pkg:log4j-core@2.17.1`) or a named mitigation (`mitigation:log4j-nolookups`)."""

    id: Annotated[str, StringConstraints(pattern=REMEDIATION_ID)]
    platform: Literal["windows", "linux", "any"] = "any"
    reversible: bool = Field(
        default=True, description="whether uninstalling / reverting it is possible"
    )
    title: Text


class Vulnerability(_Strict):
    name: Text
    remediations: list[Remediation] = Field(min_length=1, description="preferred first")


class Vulnerabilities(_Strict):
    """`vulnerabilities.yaml`: CVE id -> what fixes it, for the `patch` action."""

    vulnerabilities: dict[Annotated[str, StringConstraints(pattern=CVE_ID)], Vulnerability]


FILES: dict[str, type[BaseModel]] = {
    "manifest.yaml": Manifest,
    "techniques.yaml": Techniques,
    "rules.yaml": Rules,
    "tradecraft.yaml": Tradecraft,
    "processes.yaml": Processes,
    "paths.yaml": Paths,
    "network.yaml": Network,
    "estate.yaml": Estate,
    "vulnerabilities.yaml": Vulnerabilities,
}
