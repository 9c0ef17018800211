"""The events of the synthetic benign incidents: what a SOC sees of ordinary IT work.

Written by the Garrison maintainers (not from OTRF, no real organisation): one fictional estate,
`nwtraders.example` (domain `NWTRADERS`), and four routines that real SigmaHQ rules fire on. Each
scenario is the raw Windows events in the shapes the OTRF recordings use (Sysmon and
Security/System fields by their schema names), its inventory, and its truth notes;
`write_benign_incidents.py` runs the Sigma rules over the events and writes the incident.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

SYSMON = "Microsoft-Windows-Sysmon/Operational"
SYSMON_PROVIDER = "Microsoft-Windows-Sysmon"
SECURITY_PROVIDER = "Microsoft-Windows-Security-Auditing"
SCM = "Service Control Manager"
DOMAIN = "nwtraders.example"
NETWORKS = ["10.0.0.0/8"]

Raw = dict[str, object]


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    assets: list[dict[str, object]]
    identities: list[dict[str, object]]
    protected: list[str]
    events: list[Raw]
    notes: str


def asset(
    name: str, kind: str, criticality: str, ip: str, owner: str | None = None
) -> dict[str, object]:
    return {
        "id": name,
        "hostname": f"{name}.{DOMAIN}",
        "kind": kind,
        "criticality": criticality,
        "ips": [ip],
        "os": "windows",
        "owner": owner,
    }


class Clock:
    """Event timestamps from a start, advanced by each event's offset."""

    def __init__(self, start: str) -> None:
        self.now = datetime.fromisoformat(start)

    def tick(self, ms: int) -> str:
        self.now += timedelta(milliseconds=ms)
        return self.now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.now.microsecond // 1000:03d}Z"


def _base(clock: Clock, ms: int, host: str, channel: str, provider: str, eid: int) -> Raw:
    stamp = clock.tick(ms)
    return {
        "@timestamp": stamp,
        "Channel": channel,
        "EventID": eid,
        "Hostname": f"{host}.{DOMAIN}",
        "SourceName": provider,
        "TimeCreated": stamp[:-1].replace("T", " "),
    }


def proc(
    clock: Clock,
    ms: int,
    host: str,
    pid: int,
    image: str,
    cmd: str,
    ppid: int,
    parent: str,
    parent_cmd: str,
    user: str,
    integrity: str = "High",
    original: str | None = None,
) -> Raw:
    """Sysmon 1 (process creation)."""
    name = image.rsplit("\\", 1)[-1]
    return _base(clock, ms, host, SYSMON, SYSMON_PROVIDER, 1) | {
        "Image": image,
        "CommandLine": cmd,
        "CurrentDirectory": "C:\\Windows\\system32\\",
        "IntegrityLevel": integrity,
        "OriginalFileName": original or name,
        "ParentImage": parent,
        "ParentCommandLine": parent_cmd,
        "ParentProcessId": str(ppid),
        "ProcessId": str(pid),
        "User": user,
        "LogonId": "0x3e7" if user.endswith("SYSTEM") else "0x5a41c2",
    }


def service_install(
    clock: Clock,
    ms: int,
    host: str,
    name: str,
    path: str,
    account: str = "LocalSystem",
    start: str = "auto start",
) -> Raw:
    """System 7045 (a service was installed); PsExec installs its service demand-start."""
    return _base(clock, ms, host, "System", SCM, 7045) | {
        "ServiceName": name,
        "ImagePath": path,
        "ServiceType": "user mode service",
        "StartType": start,
        "AccountName": account,
    }


def logon(
    clock: Clock, ms: int, host: str, user: str, ip: str, workstation: str, package: str
) -> Raw:
    """Security 4624, network logon (type 3) from another host."""
    return _base(clock, ms, host, "Security", SECURITY_PROVIDER, 4624) | {
        "LogonType": "3",
        "TargetUserName": user,
        "TargetDomainName": "NWTRADERS",
        "SubjectUserName": "-",
        "SubjectDomainName": "-",
        "IpAddress": ip,
        "IpPort": "0",
        "WorkstationName": workstation,
        "AuthenticationPackageName": package,
        "LogonProcessName": "NtLmSsp" if package == "NTLM" else "Kerberos",
        "TargetLogonId": "0x7c1f3a",
    }


def share(
    clock: Clock, ms: int, host: str, user: str, ip: str, name: str, target: str | None = None
) -> Raw:
    """Security 5140 (share accessed), or 5145 (share object checked) when `target` is given."""
    event = _base(clock, ms, host, "Security", SECURITY_PROVIDER, 5145 if target else 5140) | {
        "SubjectUserName": user,
        "SubjectDomainName": "NWTRADERS",
        "SubjectLogonId": "0x7c1f3a",
        "IpAddress": ip,
        "IpPort": "49822",
        "ObjectType": "File",
        "ShareName": name,
        "ShareLocalPath": "\\??\\C:\\Windows" if name.upper().endswith("ADMIN$") else "",
        "AccessMask": "0x1",
        "AccessList": "%%4416",
    }
    if target:
        event |= {"RelativeTargetName": target, "AccessList": "%%4416 %%4417 (WriteData)"}
    return event


def connection(
    clock: Clock, ms: int, host: str, pid: int, image: str, user: str, src: str, dst: str, port: int
) -> Raw:
    """Sysmon 3 (network connection) made by `image` from `src` to `dst:port`."""
    return _base(clock, ms, host, SYSMON, SYSMON_PROVIDER, 3) | {
        "Image": image,
        "ProcessId": str(pid),
        "User": user,
        "Protocol": "tcp",
        "Initiated": "true",
        "SourceIp": src,
        "SourcePort": "51544",
        "DestinationIp": dst,
        "DestinationPort": str(port),
    }


# --- the estate -----------------------------------------------------------------------------------

JUMP = ("JUMP01", "10.20.1.10")
FILESRV = ("FILESRV02", "10.20.2.22")
APP = ("APP03", "10.20.2.31")
CM = ("CM01", "10.20.1.5")
SCANNER = ("SCAN01", "10.20.1.40")
BACKUP = ("BKP01", "10.20.1.60")
WKS = ("WKS-0142", "10.20.30.142")
DC = ("DC01", "10.20.0.10")
ADMIN = "nwtraders\\adm.jlee"
SCAN_ACCOUNT = "nwtraders\\svc.vulnscan"
BACKUP_ACCOUNT = "nwtraders\\svc.backup"
BACKUP_USER = "NWTRADERS\\svc.backup"  # as Sysmon spells the account
SYSTEM = "NT AUTHORITY\\SYSTEM"


def estate(*names: str) -> list[dict[str, object]]:
    known = {
        "JUMP01": asset(*JUMP[:1], "server", "high", JUMP[1]),
        "FILESRV02": asset(*FILESRV[:1], "server", "high", FILESRV[1]),
        "APP03": asset(*APP[:1], "server", "high", APP[1]),
        "CM01": asset(*CM[:1], "server", "high", CM[1]),
        "SCAN01": asset(*SCANNER[:1], "server", "high", SCANNER[1]),
        "BKP01": asset(*BACKUP[:1], "server", "high", BACKUP[1]),
        "WKS-0142": asset(*WKS[:1], "workstation", "medium", WKS[1], "nwtraders\\m.ortiz"),
        "DC01": asset(*DC[:1], "domain_controller", "critical", DC[1]),
    }
    return [known[n] for n in names]


def admin_tooling() -> Scenario:
    """An administrator on the jump host: PsExec to a file server, then PowerShell remoting."""
    c = Clock("2026-03-10T09:14:02.000")
    jump, fs, app = JUMP[0], FILESRV[0], APP[0]
    user = "NWTRADERS\\adm.jlee"
    explorer = "C:\\Windows\\explorer.exe"
    cmd = "C:\\Windows\\System32\\cmd.exe"
    psexec = "C:\\Tools\\SysinternalsSuite\\PsExec64.exe"
    ps = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe"
    psexec_cmd = (
        'PsExec64.exe \\\\FILESRV02 -accepteula -h cmd /c "gpupdate /force && ipconfig /flushdns"'
    )
    events = [
        proc(c, 0, jump, 6120, cmd, '"C:\\Windows\\system32\\cmd.exe"', 4188, explorer,
             "C:\\Windows\\Explorer.EXE", user, original="Cmd.Exe"),
        proc(c, 41_000, jump, 7344, psexec, psexec_cmd, 6120, cmd,
             '"C:\\Windows\\system32\\cmd.exe"', user, original="psexec.c"),
        connection(c, 120, jump, 7344, psexec, user, JUMP[1], FILESRV[1], 445),
        logon(c, 80, fs, "adm.jlee", JUMP[1], "JUMP01", "Kerberos"),
        share(c, 30, fs, "adm.jlee", JUMP[1], "\\\\*\\ADMIN$"),
        service_install(c, 210, fs, "PSEXESVC", "%SystemRoot%\\PSEXESVC.exe", start="demand start"),
        proc(c, 90, fs, 2964, "C:\\Windows\\PSEXESVC.exe", "C:\\Windows\\PSEXESVC.exe", 712,
             "C:\\Windows\\System32\\services.exe", "C:\\Windows\\system32\\services.exe",
             SYSTEM, integrity="System", original="psexesvc.exe"),
        share(c, 150, fs, "adm.jlee", JUMP[1], "\\\\*\\IPC$", "PSEXESVC-JUMP01-7344-stdin"),
        proc(c, 60, fs, 5032, cmd, 'cmd /c "gpupdate /force && ipconfig /flushdns"', 2964,
             "C:\\Windows\\PSEXESVC.exe", "C:\\Windows\\PSEXESVC.exe", user,
             original="Cmd.Exe"),
        proc(c, 40, fs, 4412, "C:\\Windows\\System32\\gpupdate.exe", "gpupdate  /force", 5032,
             cmd, 'cmd /c "gpupdate /force && ipconfig /flushdns"', user,
             original="GPUpdate.exe"),
        proc(c, 9_800, fs, 3380, "C:\\Windows\\System32\\ipconfig.exe", "ipconfig  /flushdns",
             5032, cmd, 'cmd /c "gpupdate /force && ipconfig /flushdns"', user,
             original="ipconfig.exe"),
        proc(c, 95_000, jump, 8016, ps, '"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\'
             'powershell.exe"', 4188, explorer, "C:\\Windows\\Explorer.EXE", user,
             original="PowerShell.EXE"),
        connection(c, 64_000, jump, 8016, ps, user, JUMP[1], APP[1], 5985),
        logon(c, 70, app, "adm.jlee", JUMP[1], "JUMP01", "Kerberos"),
        proc(c, 260, app, 3904, "C:\\Windows\\System32\\wsmprovhost.exe",
             "C:\\Windows\\system32\\wsmprovhost.exe -Embedding", 896,
             "C:\\Windows\\System32\\svchost.exe", "C:\\Windows\\system32\\svchost.exe -k "
             "DcomLaunch -p", user, original="wsmprovhost.exe"),
        proc(c, 1_900, app, 6260, "C:\\Windows\\System32\\inetsrv\\iisreset.exe",
             '"C:\\Windows\\system32\\iisreset.exe" /restart', 3904,
             "C:\\Windows\\System32\\wsmprovhost.exe",
             "C:\\Windows\\system32\\wsmprovhost.exe -Embedding", user,
             original="iisreset.exe"),
    ]  # fmt: skip
    return Scenario(
        id="synthetic-admin-psexec-winrm-jump01",
        title="Administrator runs PsExec and PowerShell remoting from the jump host JUMP01",
        assets=estate("JUMP01", "FILESRV02", "APP03", "DC01"),
        identities=[{"id": ADMIN, "kind": "admin", "privileged": True}],
        protected=["DC01"],
        events=events,
        notes=(
            "Routine administration: the named admin account nwtraders\\adm.jlee, logged on to the"
            " jump host JUMP01 (the estate's administration server), runs Sysinternals PsExec"
            " against FILESRV02 to refresh group policy and flush the DNS cache (PSEXESVC"
            " installed and run by the service control manager, cmd, gpupdate, ipconfig), then"
            " opens a"
            " PowerShell remoting session to APP03 (wsmprovhost) to restart IIS. Every process"
            " is a signed Windows or Sysinternals tool, every logon is Kerberos from the jump"
            " host, nothing touches credentials, persistence stays temporary (PsExec removes its"
            " service). Synthetic, written by the Garrison maintainers."
        ),
    )


def software_deployment() -> Scenario:
    """The ConfigMgr client on a workstation installs a deployed MSI, which installs a service."""
    c = Clock("2026-03-11T02:05:40.000")
    wks = WKS[0]
    ccm = "C:\\Windows\\CCM\\CcmExec.exe"
    msiexec = "C:\\Windows\\System32\\msiexec.exe"
    msi = "C:\\Windows\\ccmcache\\2k\\ContosoEndpointAgent-x64.msi"
    install = (
        f'"C:\\Windows\\system32\\msiexec.exe" /i "{msi}" /qn /norestart'
        " /l*v C:\\Windows\\CCM\\Logs\\ContosoEndpointAgent-install.log"
    )
    agent = "C:\\Program Files\\Contoso\\Endpoint Agent\\ContosoAgentSvc.exe"
    events = [
        connection(c, 0, wks, 3120, ccm, SYSTEM, WKS[1], CM[1], 443),
        _base(c, 2_400, wks, SYSMON, SYSMON_PROVIDER, 11) | {
            "Image": "C:\\Windows\\System32\\svchost.exe", "ProcessId": "1288",
            "TargetFilename": msi, "User": SYSTEM,
        },
        proc(c, 3_100, wks, 7720, msiexec, install, 3120, ccm, '"C:\\Windows\\CCM\\CcmExec.exe"',
             SYSTEM, integrity="System", original="msiexec.exe"),
        proc(c, 650, wks, 7804, msiexec, "C:\\Windows\\System32\\MsiExec.exe -Embedding "
             "8D3C1A5E2B4F6A7C9E0D1B2A3C4D5E6F E Global\\MSI0000", 1044, msiexec,
             "C:\\Windows\\system32\\msiexec.exe /V", SYSTEM, integrity="System",
             original="msiexec.exe"),
        _base(c, 4_200, wks, SYSMON, SYSMON_PROVIDER, 11) | {
            "Image": msiexec, "ProcessId": "1044", "TargetFilename": agent, "User": SYSTEM,
        },
        service_install(c, 1_300, wks, "ContosoEndpointAgent", f'"{agent}"'),
        proc(c, 220, wks, 8116, agent, f'"{agent}"', 712, "C:\\Windows\\System32\\services.exe",
             "C:\\Windows\\system32\\services.exe", SYSTEM, integrity="System",
             original="ContosoAgentSvc.exe"),
        connection(c, 2_000, wks, 8116, agent, SYSTEM, WKS[1], CM[1], 443),
    ]  # fmt: skip
    return Scenario(
        id="synthetic-sccm-msi-deploy-wks0142",
        title="Configuration Manager client installs a deployed MSI and its service on WKS-0142",
        assets=estate("WKS-0142", "CM01", "DC01"),
        identities=[{"id": "nwtraders\\m.ortiz", "kind": "user", "privileged": False}],
        protected=["DC01"],
        events=events,
        notes=(
            "Software deployment in the maintenance window: the Configuration Manager client"
            " (CcmExec.exe, SYSTEM) on WKS-0142 downloads the package from the site server CM01"
            " into its cache (C:\\Windows\\ccmcache) and runs msiexec /i ... /qn /norestart with"
            " a log under C:\\Windows\\CCM\\Logs; the Windows Installer service installs the"
            " vendor's agent under Program Files and registers it as an auto-start service, which"
            " starts and reports to CM01. No user is involved and no process runs from a"
            " user-writable folder. Synthetic, written by the Garrison maintainers."
        ),
    )


def vulnerability_scan() -> Scenario:
    """An authenticated vulnerability scan: the scanner logs on to servers and queries services."""
    c = Clock("2026-03-12T01:00:05.000")
    account = "svc.vulnscan"
    events: list[Raw] = []
    for n, (host, _) in enumerate((FILESRV, APP, WKS)):
        wmi = "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe"
        events += [
            logon(c, 1_500 if n else 0, host, account, SCANNER[1], "SCAN01", "NTLM"),
            share(c, 40, host, account, SCANNER[1], "\\\\*\\IPC$", "svcctl"),
            share(c, 30, host, account, SCANNER[1], "\\\\*\\IPC$", "winreg"),
            share(c, 120, host, account, SCANNER[1], "\\\\*\\ADMIN$"),
            proc(c, 300, host, 4100 + n, wmi, "C:\\Windows\\system32\\wbem\\wmiprvse.exe"
                 " -secured -Embedding", 880, "C:\\Windows\\System32\\svchost.exe",
                 "C:\\Windows\\system32\\svchost.exe -k DcomLaunch -p",
                 "NT AUTHORITY\\NETWORK SERVICE", integrity="System", original="Wmiprvse.exe"),
            logon(c, 200, host, account, SCANNER[1], "SCAN01", "NTLM") | {
                "ProcessName": wmi, "ProcessId": hex(4100 + n), "LogonType": "3",
            },
        ]  # fmt: skip
    return Scenario(
        id="synthetic-vuln-scan-scan01",
        title="Authenticated vulnerability scan from SCAN01 across FILESRV02, APP03 and WKS-0142",
        assets=estate("SCAN01", "FILESRV02", "APP03", "WKS-0142", "DC01"),
        identities=[{"id": SCAN_ACCOUNT, "kind": "service", "privileged": True}],
        protected=["DC01"],
        events=events,
        notes=(
            "The weekly authenticated scan: the vulnerability scanner SCAN01 logs on over NTLM to"
            " each server and workstation in scope with its scan service account"
            " nwtraders\\svc.vulnscan, opens the service control manager (svcctl) and remote"
            " registry (winreg) pipes, reads ADMIN$ and queries WMI, to list services, patches and"
            " settings. Nothing is executed on the targets beyond the WMI provider host, no"
            " credential is read, every session comes from the scanner's own address."
            " Synthetic, written by the Garrison maintainers."
        ),
    )


def backup_job() -> Scenario:
    """A nightly backup: the agent makes a VSS snapshot and reads the files through it."""
    c = Clock("2026-03-13T23:30:00.000")
    fs = FILESRV[0]
    agent = "C:\\Program Files\\Contoso\\Backup Agent\\ContosoBackupAgent.exe"
    vssadmin = "C:\\Windows\\System32\\vssadmin.exe"
    events: list[Raw] = [
        logon(c, 0, fs, "svc.backup", BACKUP[1], "BKP01", "Kerberos"),
        connection(c, 300, fs, 2440, agent, BACKUP_USER, BACKUP[1], FILESRV[1], 6160) | {
            "Initiated": "false", "SourcePort": "50211", "DestinationPort": "6160",
        },
        proc(c, 1_100, fs, 6904, vssadmin, "vssadmin.exe create shadow /for=D:", 2440, agent,
             f'"{agent}" -service', BACKUP_USER, original="VSSADMIN.EXE"),
        _base(c, 4_300, fs, "System", "Microsoft-Windows-Ntfs", 98) | {
            "DeviceName": "\\Device\\HarddiskVolumeShadowCopy12", "VolumeName": "D:",
            "IsBootVolume": "false", "HasDirtyShutdown": "false",
        },
    ]  # fmt: skip
    for n, name in enumerate(("Finance\\2026-Q1.xlsx", "HR\\contracts.zip", "Projects\\plan.docx")):
        events.append(
            _base(c, 700, fs, "Security", SECURITY_PROVIDER, 4663)
            | {
                "SubjectUserName": "svc.backup",
                "SubjectDomainName": "NWTRADERS",
                "ObjectServer": "Security",
                "ObjectType": "File",
                "ObjectName": f"\\Device\\HarddiskVolumeShadowCopy12\\Shares\\{name}",
                "ProcessName": agent,
                "ProcessId": "0x988",
                "AccessList": "%%4416",
                "AccessMask": "0x1",
                "HandleId": hex(0x2F4 + 4 * n),
            }
        )
    events.append(connection(c, 900, fs, 2440, agent, BACKUP_USER, FILESRV[1], BACKUP[1], 6162))
    return Scenario(
        id="synthetic-backup-vss-filesrv02",
        title="Nightly backup of FILESRV02 by the backup server BKP01 through a VSS snapshot",
        assets=estate("FILESRV02", "BKP01", "DC01"),
        identities=[{"id": BACKUP_ACCOUNT, "kind": "service", "privileged": True}],
        protected=["DC01"],
        events=events,
        notes=(
            "The nightly job of the backup server BKP01: its agent on FILESRV02 (installed under"
            " Program Files, running as the backup service account nwtraders\\svc.backup) takes a"
            " VSS snapshot of the data volume with vssadmin create shadow, the snapshot is"
            " mounted, the agent reads the shares' files through it and streams them to BKP01."
            " No snapshot is deleted, no system hive or NTDS file is copied out of it."
            " Synthetic, written by the Garrison maintainers."
        ),
    )


SCENARIOS = (admin_tooling, software_deployment, vulnerability_scan, backup_job)
