"""What an analyst knows about the estate's own machinery, as opposed to the attacker's: where
software is installed and where downloads land, which processes keep Windows alive, which
internet services every host shares, which ports are the estate's own Windows services, and
which accounts are secrets rather than people.

These decide what containment may touch: a response that kills csrss.exe, firewalls GitHub or
the domain controller, or "disables" krbtgt hurts the estate more than the intruder. The lists
are data (`agents/knowledge_base/estate.yaml` and `network.yaml`); an organisation adds its own
drop folders or shared services by shipping its own `estate.yaml` in its knowledge folder
(`GARRISON_KNOWLEDGE_DIR`, docs/knowledge.md). Nothing here is keyed on an incident, a dataset or
a label.
"""

from __future__ import annotations

import re

from agents.knowledge import INFRASTRUCTURE_PORTS, LATERAL_PORTS, image_name
from agents.knowledge_base import knowledge

_ESTATE = knowledge().estate
_NETWORK = knowledge().network

# Folders where a person's downloads and hand-copied tools land.
DROP_FOLDERS: tuple[re.Pattern[str], ...] = tuple(re.compile(p, re.I) for p in _ESTATE.drop_folders)

# Processes whose death blue-screens or logs off the machine, or that hold every session's
# credentials: never a kill target, whatever ran inside them.
CRITICAL_PROCESSES: frozenset[str] = frozenset(_ESTATE.critical_processes)
# The idle process and the kernel's System process: never a process the attacker owns.
KERNEL_PIDS: frozenset[int] = frozenset(_ESTATE.kernel_pids)

# Internet services shared by every customer: blocking them is an outage.
SHARED_SERVICE_DOMAINS: tuple[str, ...] = tuple(_ESTATE.shared_service_domains)
WEB_PORTS: frozenset[int] = frozenset(_NETWORK.web_ports)
# Windows' own services on a host of the estate: an internal address reached on these is a
# server or workstation being used or attacked, not an attacker's listener.
WINDOWS_SERVICE_PORTS: frozenset[int] = INFRASTRUCTURE_PORTS | LATERAL_PORTS
RPC_ENDPOINT_MAPPER = _NETWORK.rpc_endpoint_mapper
# where the endpoint mapper sends RPC clients next
RPC_DYNAMIC_PORTS = range(_NETWORK.rpc_dynamic_ports.first, _NETWORK.rpc_dynamic_ports.last + 1)

# Accounts that hold a secret rather than a person's access (krbtgt): containment is a reset.
RESET_ONLY_ACCOUNTS: re.Pattern[str] = re.compile(_ESTATE.reset_only_accounts, re.I)

# The estate's declared operators (inventory identity kinds), the asset kinds they work on and
# those they work from: `agents/triage/operators.py`.
OPERATOR_IDENTITY_KINDS: frozenset[str] = frozenset(_ESTATE.operator_identity_kinds)
OPERATOR_ASSET_KINDS: frozenset[str] = frozenset(_ESTATE.operator_asset_kinds)
OPERATOR_SOURCE_KINDS: frozenset[str] = frozenset(_ESTATE.operator_source_kinds)


def in_drop_folder(path: str | None) -> bool:
    text = (path or "").replace("/", "\\")
    return any(p.search(text) for p in DROP_FOLDERS)


def is_critical_process(image: str | None) -> bool:
    return image_name(image) in CRITICAL_PROCESSES


def is_shared_service(name: str) -> bool:
    domain = name.strip().lower().rstrip(".")
    return any(domain == d or domain.endswith("." + d) for d in SHARED_SERVICE_DOMAINS)


def is_reset_only_account(identity: str) -> bool:
    return bool(RESET_ONLY_ACCOUNTS.match(identity.strip().rsplit("\\", 1)[-1]))
