"""The facts the risk policy scores a proposal on, established deterministically from the
inventory and the entities extracted from the incident, never from what a model wrote."""

from __future__ import annotations

from agents.models import ExtractedEntities, InvestigationReport
from agents.reads import read_window
from orchestrator.policy.model import TargetFacts
from orchestrator.policy.targets import domain_key, host_key, identity_key, parse_network
from tools.actions import Action, TargetKind
from tools.edr.base import EdrReader
from tools.inventory.base import InventoryReader
from tools.models import AssetKind, IdentityKind


def known_targets(
    entities: ExtractedEntities, report: InvestigationReport | None
) -> dict[TargetKind, set[str]]:
    hosts = {host_key(h) for h in entities.hosts}
    users = {identity_key(u) for u in entities.users}
    ips = {ip.strip().lower() for ip in entities.ips}
    domains = {domain_key(d) for d in entities.domains}
    processes = {p.strip().lower() for p in entities.processes}
    files = {f.strip().lower() for f in entities.files}
    if report is not None:
        hosts |= {host_key(h) for h in report.compromised_assets}
        users |= {identity_key(u) for u in report.compromised_identities}
        ips |= {ip.strip().lower() for ip in report.attacker_ips}
        domains |= {domain_key(d) for d in report.attacker_domains}
        processes |= {p.strip().lower() for p in report.malicious_processes}
        files |= {h.strip().lower() for h in report.malicious_sha256}
    return {
        TargetKind.ASSET: hosts,
        TargetKind.IDENTITY: users,
        TargetKind.IP: ips,
        TargetKind.DOMAIN: domains,
        TargetKind.PROCESS: processes,
        TargetKind.FILE: files,
        TargetKind.ARTEFACT: hosts,
    }


def _is_known(action: Action, known: dict[TargetKind, set[str]]) -> bool:
    kind = action.target_kind
    target = action.target.strip().lower()
    match kind:
        case TargetKind.ASSET:
            return host_key(target) in known[kind]
        case TargetKind.IDENTITY:
            return identity_key(target) in known[kind]
        case TargetKind.IP:
            return _ip_known(target, known[kind])
        case TargetKind.DOMAIN:
            return domain_key(target) in known[kind]
        case TargetKind.PROCESS:
            host, _, pid = target.partition(":")
            return f"{host_key(host)}:{pid}" in {_host_part(p) for p in known[kind]}
        case TargetKind.FILE:
            host, _, thing = target.partition(":")
            files = known[kind]
            return host_key(host) in known[TargetKind.ASSET] and (thing in files or target in files)
        case TargetKind.ARTEFACT:
            return host_key(target.partition(":")[0]) in known[TargetKind.ASSET]


def _host_part(process: str) -> str:
    host, _, pid = process.partition(":")
    return f"{host_key(host)}:{pid}"


def _ip_known(target: str, ips: set[str]) -> bool:
    network = parse_network(target)
    return network is not None and any(parse_network(ip) == network for ip in ips)


def _blast_radius(action: Action) -> int:
    network = parse_network(action.target) if action.target_kind is TargetKind.IP else None
    return 1 if network is None else network.num_addresses


PROCESS_PAGE = 5_000  # process records per query when reading a kill target's image
PROCESS_PAGES = 4


async def process_image(action: Action, edr: EdrReader | None) -> str | None:
    """The image basename the EDR records for a `HOST:pid` process target (lower case), or None:
    what the policy's critical-process deny rule matches on. The EDR's record, not the agent's
    words: a model cannot rename services.exe to get it killed."""
    if edr is None or action.target_kind is not TargetKind.PROCESS:
        return None
    host, _, pid = action.target.partition(":")
    if not pid.strip().isdigit():
        return None
    # every page of the host's records (a busy host holds more than one query's limit), and of
    # the records with that pid the latest start: Windows reuses pids, and a kill hits the
    # process running under the pid now, not the first one the recording saw with it
    read = await read_window(
        lambda start, end, limit: edr.process_events(host.strip(), start, end, limit),
        None,
        None,
        page=PROCESS_PAGE,
        max_pages=PROCESS_PAGES,
    )
    named = [e for e in read.events if e.pid == int(pid) and (e.image or e.name)]
    if not named:
        return None
    latest = max(named, key=lambda e: e.time)
    path = (latest.image or latest.name or "").replace("/", "\\")
    return path.rsplit("\\", 1)[-1].lower()


async def target_facts(
    action: Action,
    inventory: InventoryReader,
    known: dict[TargetKind, set[str]],
    edr: EdrReader | None = None,
) -> TargetFacts:
    environment = await inventory.environment()
    protected = {host_key(p) for p in environment.protected} | {
        identity_key(p) for p in environment.protected
    }
    asset_kind = criticality = None
    privileged = False
    is_protected = False
    if action.asset_id is not None:
        asset = await inventory.get_asset(action.asset_id)
        if asset is not None:
            asset_kind, criticality = asset.kind, asset.criticality
            is_protected = host_key(asset.id) in protected
        is_protected = is_protected or host_key(action.asset_id) in protected
    if action.target_kind is TargetKind.IDENTITY:
        identity = await inventory.get_identity(action.target)
        if identity is not None:
            privileged = identity.privileged or identity.kind is IdentityKind.ADMIN
        is_protected = identity_key(action.target) in protected
    if action.target_kind is TargetKind.IP:
        owner = next((a for a in environment.assets if action.target in a.ips), None)
        if owner is not None:
            is_protected = host_key(owner.id) in protected
            asset_kind, criticality = owner.kind, owner.criticality
    return TargetFacts(
        target_kind=action.target_kind,
        asset_kind=asset_kind,
        criticality=criticality,
        privileged_identity=privileged,
        protected=is_protected or asset_kind is AssetKind.DOMAIN_CONTROLLER,
        known_entity=_is_known(action, known),
        blast_radius=_blast_radius(action),
        own_infrastructure=False,
        process_image=await process_image(action, edr),
    )
