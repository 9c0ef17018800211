"""The EDR capability: a reader that agents may hold and a responder that only actions hold."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from tools.results import (
    AccountEvent,
    Change,
    FileEvent,
    HostInfo,
    LogonEvent,
    NetworkConnection,
    ProcessEvent,
    RegistryEvent,
    SystemEvent,
)


class EdrReader(Protocol):
    async def find_host(self, host: str) -> HostInfo | None: ...

    async def process_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[ProcessEvent]: ...

    async def network_connections(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[NetworkConnection]: ...

    async def logons(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[LogonEvent]: ...

    async def registry_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[RegistryEvent]:
        """Registry writes on the host (CrowdStrike `RegistryOperation`, Defender
        `DeviceRegistryEvents`, Sysmon 12/13/14), oldest first."""
        ...

    async def file_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[FileEvent]:
        """Files created on the host (Defender `DeviceFileEvents`, Sysmon 11), oldest first."""
        ...

    async def system_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[SystemEvent]:
        """Tasks registered, services installed, WMI subscriptions created, threads created in
        or handles opened to other processes on the host (Security 4698/4702/4697, System 7045,
        Sysmon 8/10/19/20/21), oldest first."""
        ...


@runtime_checkable
class AccountEventReader(Protocol):
    """An optional read, offered by readers that hold the directory's and sensors' account
    events (Kerberos tickets, NTLM validations, account changes, Linux logins): the recorded
    twin does; a reader without it has nothing to say about them, which is not a failure."""

    async def account_events(
        self,
        host: str,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 500,
    ) -> list[AccountEvent]:
        """Events that name accounts by role on the host (a DC's tickets), oldest first."""
        ...


class EdrResponder(Protocol):
    """Every method is idempotent: acting on a target already in the wanted state is a no-op
    that reports `Change(applied=False)`. The `is_*` reads verify state after acting."""

    async def is_contained(self, host: str) -> bool: ...

    async def isolate_host(self, host: str) -> Change: ...

    async def release_host(self, host: str) -> Change: ...

    async def is_process_running(self, host: str, pid: int) -> bool: ...

    async def kill_process(self, host: str, pid: int) -> Change: ...

    async def is_file_quarantined(self, host: str, file: str) -> bool: ...

    async def quarantine_file(self, host: str, file: str) -> Change: ...

    async def restore_file(self, host: str, file: str) -> Change: ...

    async def is_persistence_present(self, host: str, artefact: str) -> bool: ...

    async def remove_persistence(self, host: str, artefact: str) -> Change: ...


@runtime_checkable
class PatchResponder(Protocol):
    """An optional response, offered by EDRs that can install an update or apply a mitigation
    on a host and read back whether the host still reports the vulnerability (docs/vendors/
    says which endpoint each vendor uses). An EDR without it cannot patch: the dispatcher refuses
    the action with `UnsupportedActionError` and the incident's ticket carries the task.

    `cve` is a CVE id, `remediation` a vendor update (`KB5008212`), a package version or a named
    mitigation (`tools.actions.REMEDIATION_ID`). Idempotent like `EdrResponder`."""

    async def is_vulnerable(self, host: str, cve: str) -> bool:
        """Whether the host still reports `cve` open (the verification after a patch)."""
        ...

    async def apply_patch(self, host: str, cve: str, remediation: str) -> Change: ...

    async def revert_patch(self, host: str, cve: str, remediation: str) -> Change: ...
