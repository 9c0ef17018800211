"""What Garrison's deterministic analyst knows: weights of severities and ATT&CK techniques, the
mapping from tactics to incident categories, detections known to fire on ordinary activity, and
the command-line and process patterns that separate attacker tradecraft from maintenance.

The tables are data, not code: they are read from the versioned YAML files of
`agents/knowledge_base/` (or a team's own folder, `GARRISON_KNOWLEDGE_DIR`) when this module is
imported, validated, and exposed under the names every importer has always used. Nothing here is
keyed on an incident, a dataset or a label. What the estate itself looks like (drop folders,
critical processes, shared services, reset-only accounts) is in `estate.py`. docs/knowledge.md
says how to change them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from agents.knowledge_base import knowledge
from tools.actions import ActionKind
from tools.models import Category, Severity

_K = knowledge()
KNOWLEDGE_VERSION: str = _K.version  # recorded by every triage
_T = _K.techniques

SEVERITY_WEIGHT: dict[Severity, float] = dict(_T.severity_weight)

# Technique weights, matched on the longest prefix (T1003.001 before T1003).
TECHNIQUE_WEIGHT: dict[str, float] = {t: e.weight for t, e in _T.techniques.items()}
DEFAULT_TECHNIQUE_WEIGHT = _T.default_weight

# Tactic names as ATT&CK and Sigma write them, to the incident categories of the recorded format.
TACTIC_CATEGORY: dict[str, Category] = {t: e.category for t, e in _T.tactics.items()}

# When an alert names a technique without its tactic (longest prefix, as the weights): entries an
# analyst wrote or reviewed. An entry the coverage generator inferred from the Sigma rules' tags
# (`inferred: true`) gives its technique a category and a response, not an alert's tactic.
TECHNIQUE_TACTIC: dict[str, str] = {t: e.tactic for t, e in _T.techniques.items() if not e.inferred}
# Every technique's category, inferred entries included: what the technique stands for.
TECHNIQUE_CATEGORY: dict[str, Category] = {
    t: TACTIC_CATEGORY[e.tactic] for t, e in _T.techniques.items()
}
# The action kinds a technique calls for, by the labelling rules of its category.
TECHNIQUE_RESPONSE: dict[str, tuple[ActionKind, ...]] = {
    t: tuple(e.response) for t, e in _T.techniques.items()
}
CATEGORY_RESPONSE: dict[Category, tuple[ActionKind, ...]] = {
    c: tuple(kinds) for c, kinds in _T.category_response.items()
}

# Where several tactics weigh the same, the one an analyst contains first wins.
CATEGORY_PRIORITY: tuple[Category, ...] = tuple(_T.category_priority)

# Sigma rules that fire on ordinary activity or are threat-hunting rules: such a hit counts for a
# fraction (NOISY_FACTOR) of its weight unless telemetry corroborates it.
NOISY_RULES: frozenset[str] = frozenset(r.id for r in _K.rules.noisy_rules)
# The same, by title, for alerts whose rule uid is not a Sigma id.
NOISY_TITLES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.I) for p in _K.rules.noisy_titles
)
NOISY_FACTOR = _K.rules.noisy_factor

# Command-line tradecraft: (pattern, weight, what an analyst would write).
CMDLINE_INDICATORS: tuple[tuple[re.Pattern[str], float, str], ...] = tuple(
    (re.compile(i.pattern, re.I | (re.S if i.dotall else 0)), i.weight, i.why)
    for i in _K.tradecraft.cmdline_indicators
)

# Exploits of another host's service (T1210): (pattern with a `target` group, what it is).
REMOTE_EXPLOITS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(e.pattern, re.I), e.why) for e in _K.tradecraft.remote_exploits
)


def exploit_targets(cmd_line: str | None) -> list[tuple[str, str]]:
    """The hosts a command line launches a known remote exploit at: (target as written, why)."""
    text = (cmd_line or "")[:8_192]
    found: list[tuple[str, str]] = []
    for pattern, why in REMOTE_EXPLOITS:
        for match in pattern.finditer(text):
            target = match.group("target").strip().rstrip(".")
            if target and (target, why) not in found:
                found.append((target, why))
    return found


# Parents that should not spawn shells or script hosts.
SUSPICIOUS_PARENTS: frozenset[str] = frozenset(_K.processes.suspicious_parents)
SHELLS: frozenset[str] = frozenset(_K.processes.shells)
# Processes that fire generic rules as part of the operating system's own maintenance.
MAINTENANCE_PROCESSES: frozenset[str] = frozenset(_K.processes.maintenance_processes)
# Install folders of cloud and fleet management agents: their process trees are the platform's.
MANAGEMENT_AGENT_DIRS: tuple[str, ...] = tuple(_K.processes.management_agent_dirs)
# The shell and brokers Windows starts in every user session (`maintenance.py`).
SESSION_COMPONENTS: frozenset[str] = frozenset(_K.processes.session_components)
SYSTEM_ACCOUNTS: frozenset[str] = frozenset(_K.processes.system_accounts)

# Services every host of an estate uses: an address reached on these is the estate's
# infrastructure, not an attacker endpoint, whoever reaches it.
INFRASTRUCTURE_PORTS: frozenset[int] = frozenset(_K.network.infrastructure_ports)
# Remote execution transports: SMB/RPC service creation, WinRM, RDP.
LATERAL_PORTS: frozenset[int] = frozenset(_K.network.lateral_ports)
# Techniques that mean "code was started on this host from another one".
REMOTE_EXECUTION_TECHNIQUES: tuple[str, ...] = tuple(_T.remote_execution)
# Folders any user can write to: executables there are downloads and drops, not installed software.
USER_WRITABLE_DIRS: tuple[str, ...] = tuple(_K.paths.user_writable_dirs)
# Autostart locations: a value written under one of these keys runs at boot or logon.
AUTOSTART_KEYS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.I) for p in _K.paths.autostart_keys
)
# Autostart folders: a file created in one of these runs at logon.
AUTOSTART_DIRS: tuple[str, ...] = tuple(_K.paths.autostart_dirs)
# Files a program leaves by querying the directory (the ADSI schema cache): enumeration's traces.
DIRECTORY_QUERY_TRACES: tuple[str, ...] = tuple(_K.paths.directory_query_traces)
# Registry values that decide how credentials are protected on the network (NTLM level).
CREDENTIAL_PROTECTION_VALUES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.I) for p in _K.paths.credential_protection_values
)

# Every intrusion executes something: execution is the tactic of last resort when naming one.
TACTIC_DISCOUNT: dict[Category, float] = dict(_T.tactic_discount)


def is_autostart_key(key: str) -> bool:
    return any(p.search(key) for p in AUTOSTART_KEYS)


def is_autostart_file(path: str) -> bool:
    lowered = path.lower()
    return any(d in lowered for d in AUTOSTART_DIRS)


def is_directory_query_trace(path: str | None) -> bool:
    lowered = (path or "").lower().replace("/", "\\")
    return any(d in lowered for d in DIRECTORY_QUERY_TRACES)


def is_credential_protection_value(key: str) -> bool:
    return any(p.search(key) for p in CREDENTIAL_PROTECTION_VALUES)


def in_user_writable_dir(path: str | None) -> bool:
    lowered = (path or "").lower()
    return any(d in lowered for d in USER_WRITABLE_DIRS)


def is_remote_execution(technique: str) -> bool:
    key = technique.strip().upper()
    return any(key == t or key.startswith(t + ".") for t in REMOTE_EXECUTION_TECHNIQUES)


def _longest_prefix(technique: str, table: Mapping[str, object]) -> str | None:
    """The entry of `technique` or of the technique it is a sub-technique of."""
    key = technique.strip().upper()
    while key:
        if key in table:
            return key
        if "." not in key:
            break
        key = key.rsplit(".", 1)[0]
    return None


def technique_weight(technique: str) -> float:
    key = _longest_prefix(technique, TECHNIQUE_WEIGHT)
    return DEFAULT_TECHNIQUE_WEIGHT if key is None else TECHNIQUE_WEIGHT[key]


def technique_tactic(technique: str) -> str | None:
    key = _longest_prefix(technique, TECHNIQUE_TACTIC)
    return None if key is None else TECHNIQUE_TACTIC[key]


def technique_category(technique: str) -> Category | None:
    """The incident category the technique stands for; none for a technique without an entry."""
    key = _longest_prefix(technique, TECHNIQUE_CATEGORY)
    return None if key is None else TECHNIQUE_CATEGORY[key]


def technique_response(technique: str) -> tuple[ActionKind, ...]:
    """The action kinds the technique calls for; none for a technique without an entry."""
    key = _longest_prefix(technique, TECHNIQUE_RESPONSE)
    return () if key is None else TECHNIQUE_RESPONSE[key]


def cmdline_indicators(cmd_line: str | None) -> list[tuple[float, str]]:
    """The tradecraft a command line shows, in the order of `CMDLINE_INDICATORS`."""
    if not cmd_line:
        return []
    return list(_indicators_of(cmd_line[:8_192]))


# Every stage of triage and investigation judges the same processes again (a process, then as
# some other's parent or child): the ~20 patterns are scanned once per distinct command line.
# Bounded: at most this many (<= 8 KiB) command lines are kept, the least recently used go.
CMDLINE_CACHE_SIZE = 4_096


@lru_cache(maxsize=CMDLINE_CACHE_SIZE)
def _indicators_of(text: str) -> tuple[tuple[float, str], ...]:
    return tuple((w, why) for pattern, w, why in CMDLINE_INDICATORS if pattern.search(text))


def is_management_agent(path: str | None) -> bool:
    lowered = (path or "").lower()
    return any(d in lowered for d in MANAGEMENT_AGENT_DIRS)


def image_name(path: str | None) -> str:
    if not path:
        return ""
    return path.replace("/", "\\").rsplit("\\", 1)[-1].strip().lower()


def is_system_account(user: str | None) -> bool:
    if user is None:
        return True
    value = user.strip().lower()
    short = value.rsplit("\\", 1)[-1]
    return value in SYSTEM_ACCOUNTS or short in SYSTEM_ACCOUNTS or short.endswith("$")
