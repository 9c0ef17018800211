"""Garrison's own infrastructure, derived from the settings at start: the Temporal server, the
store, the Slack API, every configured vendor's API and the agent's own identity. The policy
denies any action on them, approved or not: an alert that talks the agents into isolating the
Temporal host, blocking the EDR's API address or disabling the agent's account would blind the
responder first. The operator's own entries in `deny.own_infrastructure` stay; these are added.

A URL's host is a domain (blocked as a domain, and as an address when it is one); only the
Temporal and database hosts, which run inside the estate, are also compared as hosts. Public
API names are not hosts: `api.crowdstrike.com` must not protect an estate host called `api`.
"""

from __future__ import annotations

import contextlib
import ipaddress
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from orchestrator.policy.model import OwnInfrastructure, PolicyDocument
from orchestrator.settings import GarrisonSettings
from tools.vendor_settings import VendorSettings, is_configured, load_vendor_settings
from tools.vendors import VENDORS


def derive(settings: GarrisonSettings) -> OwnInfrastructure:
    hosts: list[str] = []
    addresses: list[str] = []
    domains: list[str] = []

    def add(name: str | None, *, internal: bool) -> None:
        name = (name or "").strip().strip("[]").lower()
        if not name:
            return
        try:
            addresses.append(str(ipaddress.ip_address(name)))
            return
        except ValueError:
            pass
        domains.append(name)
        if internal:
            hosts.append(name)

    if settings.temporal.address:
        add(urlsplit(f"//{settings.temporal.address}").hostname, internal=True)
    if settings.database_url:
        with contextlib.suppress(ArgumentError):  # the store refuses it at start, naming it
            add(make_url(settings.database_url).host, internal=True)
    add(urlsplit(settings.slack.api_url).hostname, internal=False)
    for base_url in _vendor_base_urls():
        add(urlsplit(base_url).hostname, internal=False)
    return OwnInfrastructure(
        hosts=sorted(set(hosts)),
        addresses=sorted(set(addresses)),
        domains=sorted(set(domains)),
        identities=[settings.agent_identity],
    )


def _vendor_base_urls() -> list[str]:
    urls: list[str] = []
    for spec in VENDORS:
        if is_configured(spec.settings):
            configured: VendorSettings = load_vendor_settings(spec.settings)
            urls.append(configured.base_url)
    return urls


def with_own_infrastructure(policy: PolicyDocument, own: OwnInfrastructure) -> PolicyDocument:
    """The policy with `own` added to its `deny.own_infrastructure` (its version unchanged: the
    document's rules are the same, applied to this deployment's addresses)."""
    listed = policy.deny.own_infrastructure
    merged = OwnInfrastructure(
        hosts=sorted({*listed.hosts, *own.hosts}),
        addresses=sorted({*listed.addresses, *own.addresses}),
        domains=sorted({*listed.domains, *own.domains}),
        identities=sorted({*listed.identities, *own.identities}),
    )
    deny = policy.deny.model_copy(update={"own_infrastructure": merged})
    return policy.model_copy(update={"deny": deny})
