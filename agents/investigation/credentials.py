"""Accounts whose credentials the attacker used beyond the account it runs as, and the check that
every account the investigation names is one the directory can act on.

Rules:
- a NewCredentials logon (4624 type 9: `runas /netonly`, pass-the-hash, overpass-the-hash) or an
  explicit-credentials logon (4648) that a compromised account asked for on a host where
  attacker processes ran presents another account's credentials on the attacker's behalf: that
  account's secret is in the attacker's hands (labelling rule 1, "used"). Only an account of the
  estate's domains counts: a tool that makes up a throwaway account for the new session
  (Rubeus `/createnetonly`) presents nobody's credentials, and is reported;
- a bare account name is qualified with the domain it was used in (the acting account's, the
  host's: `AssetIndex.qualified_id`); one nothing qualifies is reported, never contained;
- an attacker process that writes a registry value deciding how credentials are protected on the
  network (`paths.yaml`, `credential_protection_values`: the NTLM level a NetNTLMv1 downgrade
  lowers) is taking credentials: credential theft is proven (`agents/verdict_category.py`);
- an account the inventory does not know is looked up in the directory (`IdentityReader`): one
  the directory does not hold either is reported and not contained, since disabling it could
  only fail. A directory that cannot be read keeps the account (a read error is no proof).
"""

from __future__ import annotations

from agents.entities import AssetIndex, identity_key, is_person
from agents.investigation.scope import Scope
from agents.knowledge import is_credential_protection_value
from agents.seam import truncate
from agents.telemetry import HostTelemetry
from tools.accounts import Account
from tools.errors import ToolError
from tools.identity.base import IdentityReader
from tools.results import LogonEvent

NEW_CREDENTIALS = 9  # LogonType of a session that presents other credentials outbound


def presented_account(logon: LogonEvent) -> str | None:
    """The account whose credentials a successful logon presents for its caller: a
    NewCredentials logon's outbound account, or an explicit-credentials logon's (4648 has no
    logon type) target. None for any other logon."""
    if not logon.success or not logon.subject:
        return None
    if logon.logon_type == NEW_CREDENTIALS:
        return logon.outbound_user
    if logon.logon_type is None:
        return logon.user
    return None


def scope_presented_credentials(
    scope: Scope, telemetries: dict[str, HostTelemetry], index: AssetIndex
) -> None:
    """The accounts whose credentials compromised accounts presented on attacked hosts."""
    users = {identity_key(u) for u in scope.identities}
    for host, telemetry in telemetries.items():
        if host not in scope.attacked:
            continue
        for logon in telemetry.logons:
            presented = presented_account(logon)
            caller = Account.parse(logon.subject)
            account = Account.parse(presented)
            if account is None or caller is None or caller.name not in users:
                continue
            if not is_person(presented) or account.same_as(caller):
                continue
            if account.domain is not None and not index.estate_domain(account.domain):
                scope.note(
                    f"{logon.subject} presented the credentials of {presented} on {host}, an"
                    " account of no domain of the estate: not contained"
                )
                continue
            qualified = index.qualified_id(presented, host, logon.subject)
            if qualified is None:
                continue
            scope.add(scope.identities, qualified)
            scope.note(f"{logon.subject} used the credentials of {qualified} on {host}")


async def confirm_in_directory(
    scope: Scope, index: AssetIndex, directory: IdentityReader
) -> list[str]:
    """Keep the accounts the inventory or the directory holds; report the others, and return
    them: they are not to stand in for the compromised accounts either."""
    kept: list[str] = []
    absent: list[str] = []
    for identity in scope.identities:
        account = Account.parse(identity)
        if account is not None and index.accounts.match(account):
            kept.append(identity)
            continue
        if account is None or account.domain is None:
            scope.note(f"{identity}: no domain qualifies this account, not contained")
            absent.append(identity)
            continue
        try:
            found = await directory.get_account(identity)
        except ToolError:
            kept.append(identity)  # unread is not absent
            continue
        if found is None:
            scope.note(f"{identity} is not in the directory: nothing to disable")
            absent.append(identity)
        else:
            kept.append(identity)
    scope.identities = kept
    return absent


def weakened_credential_protection(
    telemetries: dict[str, HostTelemetry], attacker_processes: set[str]
) -> list[str]:
    """Credential theft proven by registry writes: an attacker process (`<host>:<pid>`, lower
    case, as the investigation names them) set a value that protects credentials."""
    found: list[str] = []
    for host, telemetry in telemetries.items():
        for event in telemetry.registry:
            if not is_credential_protection_value(event.key):
                continue
            pid = event.pid if event.pid is not None else _pid_of(telemetry, event.process_guid)
            if pid is None:
                continue
            key = telemetry.writer(pid, event.time, event.process_guid, event.image)
            label = key.label(host) if key is not None else f"{host}:{pid}"
            if label.lower() in attacker_processes:
                value = event.key.rsplit("\\", 1)[-1]
                found.append(truncate(f"{label} lowered the credential protection {value}", 200))
                break
    return found


def _pid_of(telemetry: HostTelemetry, guid: str | None) -> int | None:
    """The pid of the process a GUID names, from any read that records both (a registry write
    that gives only the writer's GUID is then its process's)."""
    if not guid:
        return None
    known = [(p.pid, p.guid) for p in telemetry.processes]
    known += [(r.pid, r.process_guid) for r in [*telemetry.connections, *telemetry.system]]
    return next((pid for pid, g in known if pid is not None and g == guid), None)
