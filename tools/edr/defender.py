"""Microsoft Defender for Endpoint as an EDR: machines by DNS name, isolation through machine
actions (polled until they succeed), telemetry through advanced hunting (KQL over the Device*
tables), files stopped and quarantined by SHA-1 (resolved from the SHA-256 through the Files API),
processes and persistence through a Live Response library script, which also applies and
reverts fixes for a CVE (`patch`/`unpatch` verbs); whether a machine is still exposed to the CVE
is read from Defender Vulnerability Management (`GET /api/vulnerabilities/{cve}/machineReferences`).
Defender has no API that installs an update by itself (its remediation activities only track
work assigned to Intune/IT, and the public API only lists them).

Defender exposes isolation state only as the history of machine actions: the latest Isolate or
Unisolate that did not fail decides. It has no API to release a quarantined file: `restore_file`
of a quarantined file is refused as a permanent error.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from tools.edr.defender_hunting import (
    FILES,
    LOGONS,
    NETWORK,
    PROCESSES,
    REGISTRY,
    hunting_query,
    to_file_event,
    to_logon_event,
    to_network_connection,
    to_process_event,
    to_registry_event,
)
from tools.edr.defender_live import live_response_body, script_answer
from tools.edr.defender_system import ACTION_EVENT_IDS, EVENTS, to_system_event
from tools.edr.oauth import ClientCredentialsAuth
from tools.edr.patch_ids import checked
from tools.errors import NotFoundError, PermanentToolError, TransientToolError
from tools.http import Priority, RateBudget, raise_for_status, send, tls_context
from tools.names import host_key
from tools.results import (
    Change,
    EventList,
    FileEvent,
    HostInfo,
    LogonEvent,
    NetworkConnection,
    ProcessEvent,
    RegistryEvent,
    SystemEvent,
    mapped_rows,
)
from tools.vendor_settings import VendorSettings

VENDOR = "defender"
_HOSTNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
_MACHINE_ID = re.compile(r"[0-9a-fA-F]{40}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_DONE = {"Succeeded", "Failed", "Cancelled", "TimeOut"}
_LIVE = {"Pending", "InProgress", "Succeeded"}


class DefenderSettings(VendorSettings):
    model_config = SettingsConfigDict(env_prefix="GARRISON_DEFENDER_", extra="ignore", frozen=True)

    tenant_id: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    token_url: str = ""  # default: https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token
    scope: str = "https://api.securitycenter.microsoft.com/.default"
    live_response_script: str = "garrison.ps1"  # uploaded to the Live Response library
    poll_interval_s: float = Field(default=2.0, ge=0)
    max_polls: int = Field(default=30, ge=1)

    @property
    def token_endpoint(self) -> str:
        default = f"https://login.microsoftonline.com/{self.tenant_id}/oauth2/v2.0/token"
        return self.token_url or default


class _Machine(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    computerDnsName: str | None = None
    lastIpAddress: str | None = None
    osPlatform: str | None = None


class _FileInfo(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    fileIdentifier: str
    fileIdentifierType: str = "Sha1"


class _MachineAction(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    type: str
    status: str
    machineId: str | None = None
    creationDateTimeUtc: datetime | None = None
    relatedFileInfo: _FileInfo | None = None


class DefenderEdr:
    """Implements `EdrReader` and `EdrResponder` over the Defender for Endpoint API."""

    def __init__(
        self, settings: DefenderSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._budget = RateBudget(settings.rate_per_minute)
        auth = ClientCredentialsAuth(
            settings.token_endpoint,
            settings.client_id,
            settings.client_secret,
            VENDOR,
            scope=settings.scope,
        )
        self._client = httpx.AsyncClient(
            verify=tls_context(),
            base_url=settings.base_url.rstrip("/"),
            transport=transport,
            timeout=httpx.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s)),
            auth=auth,
            headers={"Accept": "application/json"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- machines and isolation ---------------------------------------------------------------

    async def find_host(self, host: str) -> HostInfo | None:
        machine = await self._machine(host, Priority.ENRICHMENT)
        if machine is None:
            return None
        return _to_host_info(machine, await self._isolated(machine.id, Priority.ENRICHMENT))

    async def is_contained(self, host: str) -> bool:
        machine = await self._require(host, Priority.CONTAINMENT)
        return await self._isolated(machine.id, Priority.CONTAINMENT)

    async def isolate_host(self, host: str) -> Change:
        return await self._isolation(host, isolate=True)

    async def release_host(self, host: str) -> Change:
        return await self._isolation(host, isolate=False)

    async def _isolation(self, host: str, *, isolate: bool) -> Change:
        machine = await self._require(host, Priority.CONTAINMENT)
        done = "isolated" if isolate else "released"
        if await self._isolated(machine.id, Priority.CONTAINMENT) == isolate:
            return Change(applied=False, detail=f"already {done}")
        body: dict[str, str] = {"Comment": f"Garrison: {done} {machine.computerDnsName}"}
        if isolate:
            body["IsolationType"] = "Full"
        verb = "isolate" if isolate else "unisolate"
        return await self._act(
            machine, verb, body, done, lambda: self._is_isolated(machine, isolate)
        )

    async def _is_isolated(self, machine: _Machine, wanted: bool) -> bool:
        return await self._isolated(machine.id, Priority.CONTAINMENT) == wanted

    async def _isolated(self, machine_id: str, priority: Priority) -> bool:
        actions = await self._actions(machine_id, priority)
        latest = [a for a in actions if a.type in ("Isolate", "Unisolate") and a.status in _LIVE]
        return bool(latest) and latest[-1].type == "Isolate"

    async def _actions(self, machine_id: str, priority: Priority) -> list[_MachineAction]:
        """The machine's actions, oldest first."""
        params = {"$filter": f"machineId eq '{machine_id}'"}
        response = await self._call("GET", "/api/machineactions", priority, params=params)
        actions = [_MachineAction.model_validate(a) for a in response.json().get("value", [])]
        epoch = datetime.min.replace(tzinfo=UTC)
        return sorted(actions, key=lambda a: a.creationDateTimeUtc or epoch)

    async def _act(
        self,
        machine: _Machine,
        verb: str,
        body: dict[str, str],
        done: str,
        settled: Callable[[], Awaitable[bool]],
    ) -> Change:
        """Post a machine action and poll it; `ActiveRequestAlreadyExists` is success once a
        fresh read (`settled`) shows the wanted state."""
        response = await self._call(
            "POST",
            f"/api/machines/{machine.id}/{verb}",
            Priority.CONTAINMENT,
            check=False,
            json=body,
        )
        if response.status_code == 400 and _error_code(response) == "ActiveRequestAlreadyExists":
            if await settled():
                return Change(applied=False, detail=f"already {done} (request pending)")
            raise TransientToolError(f"{VENDOR}: another {verb} request is pending on the machine")
        raise_for_status(response, VENDOR)
        await self._wait(_MachineAction.model_validate(response.json()))
        return Change(applied=True, detail=f"{done} {machine.computerDnsName}")

    async def _wait(self, action: _MachineAction) -> _MachineAction:
        """Poll a machine action until it is done; only `Succeeded` is success."""
        for attempt in range(self._settings.max_polls):
            if action.status in _DONE:
                break
            if attempt:
                await asyncio.sleep(self._settings.poll_interval_s)
            polled = await self._call(
                "GET", f"/api/machineactions/{action.id}", Priority.CONTAINMENT
            )
            action = _MachineAction.model_validate(polled.json())
        if action.status not in _DONE:
            raise TransientToolError(f"{VENDOR}: machine action {action.id} still {action.status}")
        if action.status != "Succeeded":
            raise PermanentToolError(f"{VENDOR}: machine action {action.id} {action.status}")
        return action

    # --- advanced hunting ---------------------------------------------------------------------

    async def process_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> EventList[ProcessEvent]:
        rows = await self._hunt(host, PROCESSES, start, end, limit)
        return mapped_rows(rows, to_process_event, limit)

    async def network_connections(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> EventList[NetworkConnection]:
        rows = await self._hunt(host, NETWORK, start, end, limit)
        return mapped_rows(rows, to_network_connection, limit)

    async def logons(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> EventList[LogonEvent]:
        rows = await self._hunt(host, LOGONS, start, end, limit)
        return mapped_rows(rows, to_logon_event, limit)

    async def registry_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> EventList[RegistryEvent]:
        rows = await self._hunt(host, REGISTRY, start, end, limit)
        return mapped_rows(rows, to_registry_event, limit)

    async def file_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> EventList[FileEvent]:
        rows = await self._hunt(host, FILES, start, end, limit)
        return mapped_rows(rows, to_file_event, limit)

    async def system_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> EventList[SystemEvent]:
        """`DeviceEvents` rows of tasks, services, remote threads, process opens and WMI
        bindings (`defender_system`); without a call trace, service arguments or WMI filters and
        consumers on their own, which Defender does not record."""
        actions = tuple(ACTION_EVENT_IDS)
        rows = await self._hunt(host, EVENTS, start, end, limit, actions)
        return mapped_rows(rows, to_system_event, limit)

    async def _hunt(
        self,
        host: str,
        table: str,
        start: datetime | None,
        end: datetime | None,
        limit: int,
        actions: tuple[str, ...] = (),
    ) -> list[dict[str, Any]]:
        machine = await self._require(host, Priority.ENRICHMENT)
        if limit <= 0:
            return []
        body = {"Query": hunting_query(table, machine.id, start, end, limit, actions)}
        response = await self._call(
            "POST", "/api/advancedqueries/run", Priority.ENRICHMENT, json=body
        )
        return [r for r in response.json().get("Results", []) if isinstance(r, dict)]

    # --- files --------------------------------------------------------------------------------

    async def is_file_quarantined(self, host: str, file: str) -> bool:
        machine = await self._require(host, Priority.CONTAINMENT)
        return await self._quarantined(machine.id, await self._sha1(file))

    async def quarantine_file(self, host: str, file: str) -> Change:
        machine = await self._require(host, Priority.CONTAINMENT)
        sha1 = await self._sha1(file)
        if await self._quarantined(machine.id, sha1):
            return Change(applied=False, detail="already quarantined")

        async def settled() -> bool:
            return await self._quarantined(machine.id, sha1)

        body = {"Comment": "Garrison: stop and quarantine", "Sha1": sha1}
        return await self._act(machine, "StopAndQuarantineFile", body, "quarantined", settled)

    async def restore_file(self, host: str, file: str) -> Change:
        machine = await self._require(host, Priority.CONTAINMENT)
        if not await self._quarantined(machine.id, await self._sha1(file)):
            return Change(applied=False, detail="already restored: not quarantined")
        raise PermanentToolError(f"{VENDOR}: Defender has no API to release a quarantined file")

    async def _quarantined(self, machine_id: str, sha1: str) -> bool:
        actions = await self._actions(machine_id, Priority.CONTAINMENT)
        return any(
            a.type == "StopAndQuarantineFile"
            and a.status in _LIVE
            and a.relatedFileInfo is not None
            and a.relatedFileInfo.fileIdentifier.lower() == sha1
            for a in actions
        )

    async def _sha1(self, file: str) -> str:
        """Defender quarantines by SHA-1: the Files API knows the SHA-1 of a SHA-256."""
        sha256 = file.strip().lower()
        if not _SHA256.fullmatch(sha256):
            raise PermanentToolError(f"{VENDOR}: quarantine takes a SHA-256, not {file!r}")
        response = await self._call("GET", f"/api/files/{sha256}", Priority.CONTAINMENT)
        return str(response.json()["sha1"]).lower()

    # --- processes and persistence (Live Response) -------------------------------------------

    async def is_process_running(self, host: str, pid: int) -> bool:
        machine = await self._require(host, Priority.CONTAINMENT)
        return await self._live(machine, "ps", str(int(pid))) == "present"

    async def kill_process(self, host: str, pid: int) -> Change:
        machine = await self._require(host, Priority.CONTAINMENT)
        if await self._live(machine, "kill", str(int(pid))) == "absent":
            return Change(applied=False, detail=f"already not running: process {pid}")
        return Change(applied=True, detail=f"killed process {pid}")

    async def is_persistence_present(self, host: str, artefact: str) -> bool:
        machine = await self._require(host, Priority.CONTAINMENT)
        return await self._live(machine, "exists", artefact) == "present"

    async def remove_persistence(self, host: str, artefact: str) -> Change:
        machine = await self._require(host, Priority.CONTAINMENT)
        if await self._live(machine, "remove", artefact) == "absent":
            return Change(applied=False, detail="already removed")
        return Change(applied=True, detail="removed")

    # --- patching (Live Response script, verified by Vulnerability Management) -----------------

    async def is_vulnerable(self, host: str, cve: str) -> bool:
        machine = await self._require(host, Priority.CONTAINMENT)
        cve, _ = checked(VENDOR, cve)
        path = f"/api/vulnerabilities/{cve}/machineReferences"
        response = await self._call("GET", path, Priority.CONTAINMENT, check=False)
        if response.status_code == 404:  # a CVE Defender does not track exposes no machine
            return False
        raise_for_status(response, VENDOR)
        exposed = response.json().get("value") or []
        return any(isinstance(m, dict) and m.get("id") == machine.id for m in exposed)

    async def apply_patch(self, host: str, cve: str, remediation: str) -> Change:
        return await self._patch(host, cve, remediation, "patch")

    async def revert_patch(self, host: str, cve: str, remediation: str) -> Change:
        return await self._patch(host, cve, remediation, "unpatch")

    async def _patch(self, host: str, cve: str, remediation: str, verb: str) -> Change:
        cve, fix = checked(VENDOR, cve, remediation)
        machine = await self._require(host, Priority.CONTAINMENT)
        if await self._live(machine, verb, f"{cve}={fix}") == "absent":
            return Change(applied=False, detail=f"already {verb}ed: {cve}")
        return Change(applied=True, detail=f"{verb} {fix} for {cve}")

    async def _live(self, machine: _Machine, action: str, target: str) -> str:
        """Run the library script on the machine and read its answer. The script acts only if
        needed (`kill` of a gone pid answers `absent`), so a retry after a lost answer is safe."""
        script = self._settings.live_response_script
        body = live_response_body(script, action, target, f"Garrison: {action}")
        path = f"/api/machines/{machine.id}/runliveresponse"
        response = await self._call("POST", path, Priority.CONTAINMENT, check=False, json=body)
        if response.status_code == 400 and _error_code(response) == "ActiveRequestAlreadyExists":
            raise TransientToolError(f"{VENDOR}: a Live Response session is already running")
        raise_for_status(response, VENDOR)
        done = await self._wait(_MachineAction.model_validate(response.json()))
        link_path = f"/api/machineactions/{done.id}/GetLiveResponseResultDownloadLink(index=0)"
        link = await self._call("GET", link_path, Priority.CONTAINMENT)
        # A pre-signed storage URL: our bearer token must never be sent there.
        url = str(link.json()["value"])
        result = await self._call("GET", url, Priority.CONTAINMENT, auth=None)
        return script_answer(result.json())

    # --- plumbing -----------------------------------------------------------------------------

    async def _require(self, host: str, priority: Priority) -> _Machine:
        machine = await self._machine(host, priority)
        if machine is None:
            raise NotFoundError(f"{VENDOR}: no machine {host!r} in Defender")
        return machine

    async def _machine(self, host: str, priority: Priority) -> _Machine | None:
        name = host.strip().lower()
        if not _HOSTNAME.fullmatch(name):
            return None
        label = name.split(".", 1)[0]
        params = {"$filter": f"startswith(computerDnsName,'{label}')"}
        response = await self._call("GET", "/api/machines", priority, params=params)
        machines = [_Machine.model_validate(m) for m in response.json().get("value", [])]
        matching = [
            m
            for m in machines
            if m.computerDnsName
            and host_key(m.computerDnsName) == label
            and ("." not in name or m.computerDnsName.lower() in (name, label))
            and _MACHINE_ID.fullmatch(m.id)
        ]
        return matching[0] if matching else None

    async def _call(
        self, method: str, path: str, priority: Priority, *, check: bool = True, **kwargs: Any
    ) -> httpx.Response:
        return await send(
            self._client,
            method,
            path,
            vendor=VENDOR,
            budget=self._budget,
            priority=priority,
            check=check,
            **kwargs,
        )


def _to_host_info(machine: _Machine, isolated: bool) -> HostInfo:
    dns = machine.computerDnsName or machine.id
    return HostInfo(
        id=dns.split(".", 1)[0],
        hostname=dns,
        ips=[machine.lastIpAddress] if machine.lastIpAddress else [],
        os=machine.osPlatform.lower() if machine.osPlatform else None,
        contained=isolated,
    )


def _error_code(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error")
    except ValueError:
        return None
    return str(error.get("code")) if isinstance(error, dict) else None
