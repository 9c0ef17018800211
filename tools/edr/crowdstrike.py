"""CrowdStrike Falcon as an EDR: hosts and network containment through the Hosts API, telemetry
through Falcon Next-Gen SIEM (LogScale) query jobs over the sensor's events, process kills and
persistence removal through Real Time Response, files through the Quarantine API.

Every action reads state first and treats "already in that state" as success; the client never
retries (Temporal does), and refreshes its OAuth2 token on expiry and once on a 401.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from tools.edr.crowdstrike_events import (
    FILE_EVENTS,
    LOGON_EVENTS,
    NETWORK_EVENTS,
    PROCESS_EVENTS,
    REGISTRY_EVENTS,
    parse_ps,
    presence_command,
    query_job,
    removal_command,
    to_file_event,
    to_logon_event,
    to_network_connection,
    to_process_event,
    to_registry_event,
)
from tools.edr.crowdstrike_patch import SPOTLIGHT, is_open, runscript, spotlight_params
from tools.edr.crowdstrike_system import SYSTEM_EVENTS, to_system_event, with_target_images
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

VENDOR = "crowdstrike"
# Names that may be put inside an FQL string or an RTR argument: anything else is refused, since
# host names and artefacts reach us from attacker-influenced alerts.
_HOSTNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_CONTAINED = frozenset({"contained", "containment_pending"})
# How many process starts are read to name the targets of injected threads.
_TARGET_LOOKUP = 5_000


class CrowdStrikeSettings(VendorSettings):
    model_config = SettingsConfigDict(
        env_prefix="GARRISON_CROWDSTRIKE_", extra="ignore", frozen=True
    )

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    # The NG-SIEM repository searched for sensor events (`search-all` spans every view).
    event_repository: str = "search-all"
    event_lookback: str = "7d"  # LogScale relative start when the caller gives none
    poll_interval_s: float = Field(default=1.0, ge=0)
    max_polls: int = Field(default=30, ge=1)
    # The RTR cloud script that applies and reverts fixes (`crowdstrike_patch.py`).
    patch_script: str = Field(default="garrison-patch", pattern=r"^[A-Za-z0-9._-]{1,64}$")


class _Device(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    device_id: str
    hostname: str | None = None
    machine_domain: str | None = None
    local_ip: str | None = None
    platform_name: str | None = None
    status: str = "normal"


class _Quarantined(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    state: str


class CrowdStrikeEdr:
    """Implements `EdrReader`, `EdrResponder` and `PatchResponder` over the Falcon APIs."""

    def __init__(
        self, settings: CrowdStrikeSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._budget = RateBudget(settings.rate_per_minute)
        base = settings.base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            verify=tls_context(),
            base_url=base,
            transport=transport,
            timeout=httpx.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s)),
            auth=ClientCredentialsAuth(
                f"{base}/oauth2/token", settings.client_id, settings.client_secret, VENDOR
            ),
            headers={"Accept": "application/json"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- hosts and containment ----------------------------------------------------------------

    async def find_host(self, host: str) -> HostInfo | None:
        device = await self._device(host, Priority.ENRICHMENT)
        return _to_host_info(device) if device else None

    async def is_contained(self, host: str) -> bool:
        return (await self._require(host, Priority.CONTAINMENT)).status in _CONTAINED

    async def isolate_host(self, host: str) -> Change:
        device = await self._require(host, Priority.CONTAINMENT)
        if device.status in _CONTAINED:
            return Change(applied=False, detail=f"already contained ({device.status})")
        return await self._device_action(device, "contain", "contained")

    async def release_host(self, host: str) -> Change:
        device = await self._require(host, Priority.CONTAINMENT)
        if device.status not in _CONTAINED:
            return Change(applied=False, detail=f"already not contained ({device.status})")
        return await self._device_action(device, "lift_containment", "released")

    async def _device_action(self, device: _Device, action: str, done: str) -> Change:
        response = await self._call(
            "POST",
            "/devices/entities/devices-actions/v2",
            Priority.CONTAINMENT,
            check=False,
            params={"action_name": action},
            json={"ids": [device.device_id]},
        )
        # Falcon's "already in that state" answer (after a stale status read) is a 409.
        if response.status_code == 409:
            return Change(applied=False, detail=f"already {done}: {_errors(response)}")
        raise_for_status(response, VENDOR)
        return Change(applied=True, detail=f"{done} {device.hostname or device.device_id}")

    # --- telemetry ----------------------------------------------------------------------------

    async def process_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> EventList[ProcessEvent]:
        rows = await self._search(host, PROCESS_EVENTS, start, end, limit)
        return mapped_rows(rows, to_process_event, limit)

    async def network_connections(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> EventList[NetworkConnection]:
        rows = await self._search(host, NETWORK_EVENTS, start, end, limit)
        return mapped_rows(rows, to_network_connection, limit)

    async def logons(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> EventList[LogonEvent]:
        rows = await self._search(host, LOGON_EVENTS, start, end, limit)
        return mapped_rows(rows, to_logon_event, limit)

    async def registry_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> EventList[RegistryEvent]:
        rows = await self._search(host, REGISTRY_EVENTS, start, end, limit)
        return mapped_rows(rows, to_registry_event, limit)

    async def file_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> EventList[FileEvent]:
        rows = await self._search(host, FILE_EVENTS, start, end, limit)
        return mapped_rows(rows, to_file_event, limit)

    async def system_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> EventList[SystemEvent]:
        """Tasks registered or modified, services created, injected threads and WMI bindings
        (`crowdstrike_system`); Falcon reports no handle opens (Sysmon 10) and no WMI filter or
        consumer on its own (Sysmon 19/20). An injected thread names its target by id: its image
        comes from the host's process starts up to `end`."""
        rows = await self._search(host, SYSTEM_EVENTS, start, end, limit)
        events = mapped_rows(rows, to_system_event, limit)
        if any(e.target_pid is not None for e in events):
            starts = await self.process_events(host, None, end, _TARGET_LOOKUP)
            return EventList(with_target_images(events, starts), truncated=events.truncated)
        return events

    async def _search(
        self,
        host: str,
        names: tuple[str, ...],
        start: datetime | None,
        end: datetime | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """A LogScale query job over the host's sensor events, oldest first."""
        device = await self._require(host, Priority.ENRICHMENT)
        if limit <= 0:
            return []
        body = query_job(device.device_id, names, start, end, limit, self._settings.event_lookback)
        jobs = f"/humio/api/v1/repositories/{self._settings.event_repository}/queryjobs"
        started = await self._call("POST", jobs, Priority.ENRICHMENT, json=body)
        job_id = str(started.json()["id"])
        for attempt in range(self._settings.max_polls):
            if attempt:
                await asyncio.sleep(self._settings.poll_interval_s)
            polled = (await self._call("GET", f"{jobs}/{job_id}", Priority.ENRICHMENT)).json()
            if polled.get("done"):
                return [e for e in polled.get("events", []) if isinstance(e, dict)]
        raise TransientToolError(f"{VENDOR}: event search {job_id} still running")

    # --- processes (Real Time Response) -------------------------------------------------------

    async def is_process_running(self, host: str, pid: int) -> bool:
        device = await self._require(host, Priority.CONTAINMENT)
        return pid in await self._running(device.device_id)

    async def kill_process(self, host: str, pid: int) -> Change:
        device = await self._require(host, Priority.CONTAINMENT)
        if pid not in await self._running(device.device_id):
            return Change(applied=False, detail=f"already not running: process {pid}")
        stderr = await self._rtr(device.device_id, "kill", f"kill {int(pid)}", active=True)
        if stderr and pid in await self._running(device.device_id):
            raise PermanentToolError(f"{VENDOR}: kill {pid} on {host} failed: {stderr[:200]}")
        return Change(applied=True, detail=f"killed process {pid}")

    async def _running(self, device_id: str) -> set[int]:
        stdout, _ = await self._rtr_output(device_id, "ps", "ps", active=False)
        return parse_ps(stdout)

    # --- files (Quarantine API) ---------------------------------------------------------------

    async def is_file_quarantined(self, host: str, file: str) -> bool:
        device = await self._require(host, Priority.CONTAINMENT)
        record = await self._quarantined(device.device_id, file)
        return record is not None and record.state == "quarantined"

    async def quarantine_file(self, host: str, file: str) -> Change:
        return await self._quarantine_action(host, file, "unrelease", quarantined=True)

    async def restore_file(self, host: str, file: str) -> Change:
        return await self._quarantine_action(host, file, "release", quarantined=False)

    async def _quarantine_action(
        self, host: str, file: str, action: str, *, quarantined: bool
    ) -> Change:
        device = await self._require(host, Priority.CONTAINMENT)
        record = await self._quarantined(device.device_id, file)
        word = "quarantined" if quarantined else "restored"
        if record is None:
            if not quarantined:
                return Change(applied=False, detail="already restored: never quarantined")
            raise PermanentToolError(
                f"{VENDOR}: Falcon holds no quarantine record of {file} on {host}; "
                "block the hash with a custom IOC instead"
            )
        if (record.state == "quarantined") == quarantined:
            return Change(applied=False, detail=f"already {word}")
        await self._call(
            "PATCH",
            "/quarantine/entities/quarantined-files/v1",
            Priority.CONTAINMENT,
            json={"ids": [record.id], "action": action, "comment": "garrison"},
        )
        return Change(applied=True, detail=f"{word} {file.lower()}")

    async def _quarantined(self, device_id: str, file: str) -> _Quarantined | None:
        sha256 = file.strip()
        if not _SHA256.fullmatch(sha256):
            raise PermanentToolError(f"{VENDOR}: quarantine is keyed by SHA-256, not {file!r}")
        record_id = f"{device_id}_{sha256.lower()}"
        response = await self._call(
            "POST",
            "/quarantine/entities/quarantined-files/GET/v1",
            Priority.CONTAINMENT,
            check=False,
            json={"ids": [record_id]},
        )
        if response.status_code == 404:
            return None
        raise_for_status(response, VENDOR)
        resources = response.json().get("resources") or []
        return _Quarantined.model_validate(resources[0]) if resources else None

    # --- persistence (Real Time Response) -----------------------------------------------------

    async def is_persistence_present(self, host: str, artefact: str) -> bool:
        device = await self._require(host, Priority.CONTAINMENT)
        return await self._present(device.device_id, artefact)

    async def remove_persistence(self, host: str, artefact: str) -> Change:
        device = await self._require(host, Priority.CONTAINMENT)
        if not await self._present(device.device_id, artefact):
            return Change(applied=False, detail="already removed")
        base, command = removal_command(artefact)
        stderr = await self._rtr(device.device_id, base, command, active=True)
        if stderr and await self._present(device.device_id, artefact):
            raise PermanentToolError(f"{VENDOR}: {base} on {host} failed: {stderr[:200]}")
        return Change(applied=True, detail="removed")

    async def _present(self, device_id: str, artefact: str) -> bool:
        base, command = presence_command(artefact)
        stdout, stderr = await self._rtr_output(device_id, base, command, active=False)
        return bool(stdout.strip()) and not stderr.strip()

    # --- patching (RTR admin runscript, verified by Spotlight) --------------------------------

    async def is_vulnerable(self, host: str, cve: str) -> bool:
        device = await self._require(host, Priority.CONTAINMENT)
        cve, _ = checked(VENDOR, cve)
        params = spotlight_params(device.device_id, cve)
        found = await self._call("GET", SPOTLIGHT, Priority.CONTAINMENT, params=params)
        return is_open(found.json().get("resources") or [], cve)

    async def apply_patch(self, host: str, cve: str, remediation: str) -> Change:
        return await self._patch(host, cve, remediation, "apply")

    async def revert_patch(self, host: str, cve: str, remediation: str) -> Change:
        return await self._patch(host, cve, remediation, "revert")

    async def _patch(self, host: str, cve: str, remediation: str, verb: str) -> Change:
        cve, fix = checked(VENDOR, cve, remediation)
        if await self.is_vulnerable(host, cve) == (verb == "revert"):
            done = "applied" if verb == "apply" else "reverted"
            return Change(applied=False, detail=f"already {done}: {cve}")
        device = await self._require(host, Priority.CONTAINMENT)
        command = runscript(self._settings.patch_script, verb, cve, fix)
        stdout, stderr = await self._rtr_output(
            device.device_id, "runscript", command, active=True, admin=True
        )
        if stderr.strip():
            raise PermanentToolError(f"{VENDOR}: {verb} {fix} on {host} failed: {stderr[:200]}")
        return Change(applied=True, detail=f"{verb} {fix} for {cve}: {stdout.strip()[:100]}")

    # --- plumbing -----------------------------------------------------------------------------

    async def _rtr(self, device_id: str, base: str, command: str, *, active: bool) -> str:
        return (await self._rtr_output(device_id, base, command, active=active))[1]

    async def _rtr_output(
        self, device_id: str, base: str, command: str, *, active: bool, admin: bool = False
    ) -> tuple[str, str]:
        """One RTR command in a fresh session: (stdout, stderr) once the sensor completed it."""
        opened = await self._call(
            "POST",
            "/real-time-response/entities/sessions/v1",
            Priority.CONTAINMENT,
            json={"device_id": device_id, "queue_offline": False},
        )
        session_id = str(_first(opened)["session_id"])
        path = "/real-time-response/entities/" + (
            "admin-command/v1"
            if admin
            else "active-responder-command/v1"
            if active
            else "command/v1"
        )
        body = {
            "base_command": base,
            "command_string": command,
            "session_id": session_id,
            "device_id": device_id,
            "persist": False,
        }
        queued = await self._call("POST", path, Priority.CONTAINMENT, json=body)
        request_id = str(_first(queued)["cloud_request_id"])
        for attempt in range(self._settings.max_polls):
            if attempt:
                await asyncio.sleep(self._settings.poll_interval_s)
            params = {"cloud_request_id": request_id, "sequence_id": 0}
            result = _first(await self._call("GET", path, Priority.CONTAINMENT, params=params))
            if result.get("complete"):
                return str(result.get("stdout") or ""), str(result.get("stderr") or "")
        raise TransientToolError(f"{VENDOR}: RTR {base} {request_id} did not complete")

    async def _require(self, host: str, priority: Priority) -> _Device:
        device = await self._device(host, priority)
        if device is None:
            raise NotFoundError(f"{VENDOR}: no host {host!r} in Falcon")
        return device

    async def _device(self, host: str, priority: Priority) -> _Device | None:
        name = host.strip()
        if not _HOSTNAME.fullmatch(name):
            return None
        names = sorted({name, name.split(".", 1)[0]})
        fql = "hostname:[" + ",".join(f"'{n}'" for n in names) + "]"
        query = await self._call(
            "GET", "/devices/queries/devices/v1", priority, params={"filter": fql, "limit": 10}
        )
        ids = [str(i) for i in query.json().get("resources") or []]
        if not ids:
            return None
        entities = await self._call(
            "GET", "/devices/entities/devices/v2", priority, params={"ids": ids}
        )
        devices = [_Device.model_validate(d) for d in entities.json().get("resources") or []]
        matching = [d for d in devices if d.hostname and host_key(d.hostname) == host_key(name)]
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


# --- private mappers ------------------------------------------------------------------------


def _to_host_info(device: _Device) -> HostInfo:
    hostname = device.hostname or device.device_id
    fqdn = f"{hostname}.{device.machine_domain}" if device.machine_domain else hostname
    return HostInfo(
        id=hostname,
        hostname=fqdn,
        ips=[device.local_ip] if device.local_ip else [],
        os=device.platform_name.lower() if device.platform_name else None,
        contained=device.status in _CONTAINED,
    )


def _first(response: httpx.Response) -> dict[str, Any]:
    resources = response.json().get("resources") or []
    if not resources or not isinstance(resources[0], dict):
        raise PermanentToolError(f"{VENDOR}: {response.request.url.path} answered no resource")
    return resources[0]


def _errors(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return response.text[:200]
    return "; ".join(str(e.get("message", "")) for e in errors if isinstance(e, dict))[:200]
