"""What Garrison's deterministic analyst knows: weights of severities and ATT&CK techniques, the
mapping from tactics to incident categories, detections known to fire on ordinary activity, and
the command-line and process patterns that separate attacker tradecraft from maintenance.

The tables are analyst knowledge, calibrated on which Sigma rules fire on lab background activity
across many public recordings versus the rules that only fire on an attack. Nothing here is keyed
on an incident, a dataset or a label. The module is long because it is tables whose every row
says why it is there; what the estate itself looks like (drop folders, critical processes, shared
services, reset-only accounts) lives in `estate.py`.
"""

from __future__ import annotations

import re

from tools.models import Category, Severity

SEVERITY_WEIGHT: dict[Severity, float] = {
    Severity.INFORMATIONAL: 0.0,
    Severity.LOW: 1.0,
    Severity.MEDIUM: 2.0,
    Severity.HIGH: 3.5,
    Severity.CRITICAL: 5.0,
}

# Technique weights, matched on the longest prefix (T1003.001 before T1003). Discovery is low: an
# attacker discovers, but so does every admin script and inventory agent.
TECHNIQUE_WEIGHT: dict[str, float] = {
    "T1003": 4.0,  # OS credential dumping (LSASS, SAM, NTDS, DCSync)
    "T1558": 3.5,  # Kerberos ticket theft
    "T1550": 3.0,  # pass the hash / ticket
    "T1555": 3.0,  # credentials from stores
    "T1552": 2.0,  # unsecured credentials
    "T1055": 3.0,  # process injection
    "T1134": 3.0,  # token manipulation (getsystem)
    "T1548": 3.0,  # UAC bypass
    "T1021": 3.0,  # remote services
    "T1047": 2.5,  # WMI
    "T1569": 3.0,  # service execution (PsExec)
    "T1570": 3.0,  # lateral tool transfer
    "T1547": 2.5,  # autostart
    "T1053": 1.5,  # scheduled task (also every updater)
    "T1543": 2.5,  # services
    "T1546": 2.5,  # event-triggered execution
    "T1037": 2.5,  # logon scripts
    "T1098": 3.0,  # account manipulation
    "T1071": 3.0,  # application-layer C2
    "T1105": 2.5,  # ingress tool transfer
    "T1041": 3.0,  # exfiltration over C2
    "T1048": 3.0,  # exfiltration over another protocol
    "T1572": 3.0,  # tunnelling
    "T1219": 2.5,  # remote access software
    "T1059.001": 1.0,  # PowerShell: raised by an encoded command or a download cradle
    "T1059": 1.0,
    "T1218": 2.0,  # signed binary proxy execution
    "T1140": 1.5,
    "T1027": 1.0,
    "T1036": 1.5,
    "T1112": 1.0,
    "T1562": 2.5,  # impair defences
    "T1070": 2.0,  # indicator removal
    "T1490": 2.5,
    "T1486": 4.0,  # encryption for impact
    "T1133": 2.5,
    "T1078": 2.0,
    "T1110": 2.0,
    "T1190": 3.0,
    "T1566": 2.5,
    "T1204": 1.0,
    "T1087": 0.3,
    "T1082": 0.3,
    "T1016": 0.3,
    "T1033": 0.3,
    "T1049": 0.3,
    "T1057": 0.3,
    "T1069": 0.3,
    "T1007": 0.3,
    "T1018": 0.5,
    "T1120": 0.3,
    "T1135": 0.5,
    "T1201": 0.3,
    "T1482": 0.8,
    "T1518": 0.3,
    "T1615": 0.3,
    "T1531": 0.0,  # "account access removal": a logoff event
}
DEFAULT_TECHNIQUE_WEIGHT = 1.0

# Tactic names as ATT&CK and Sigma write them, to the incident categories of the recorded format.
TACTIC_CATEGORY: dict[str, Category] = {
    "credential-access": Category.CREDENTIAL_ACCESS,
    "lateral-movement": Category.LATERAL_MOVEMENT,
    "execution": Category.EXECUTION,
    "persistence": Category.PERSISTENCE,
    "privilege-escalation": Category.EXECUTION,
    "defense-evasion": Category.DEFENSE_EVASION,
    "stealth": Category.DEFENSE_EVASION,
    "defense-impairment": Category.DEFENSE_EVASION,
    "command-and-control": Category.COMMAND_AND_CONTROL,
    "exfiltration": Category.EXFILTRATION,
    "collection": Category.EXFILTRATION,
    "initial-access": Category.INITIAL_ACCESS,
    "discovery": Category.DISCOVERY,
    "impact": Category.IMPACT,
    "resource-development": Category.EXECUTION,
}

# When an alert names a technique without its tactic.
TECHNIQUE_TACTIC: dict[str, str] = {
    "T1003": "credential-access",
    "T1558": "credential-access",
    "T1555": "credential-access",
    "T1552": "credential-access",
    "T1110": "credential-access",
    "T1550": "lateral-movement",
    "T1021": "lateral-movement",
    "T1570": "lateral-movement",
    "T1047": "execution",
    "T1059": "execution",
    "T1569": "execution",
    "T1204": "execution",
    "T1547": "persistence",
    "T1053": "persistence",
    "T1543": "persistence",
    "T1546": "persistence",
    "T1037": "persistence",
    "T1098": "persistence",
    "T1055": "defense-evasion",
    "T1134": "defense-evasion",
    "T1548": "defense-evasion",
    "T1218": "defense-evasion",
    "T1027": "defense-evasion",
    "T1036": "defense-evasion",
    "T1112": "defense-evasion",
    "T1562": "defense-evasion",
    "T1070": "defense-evasion",
    "T1140": "defense-evasion",
    "T1071": "command-and-control",
    "T1105": "command-and-control",
    "T1572": "command-and-control",
    "T1219": "command-and-control",
    "T1041": "exfiltration",
    "T1048": "exfiltration",
    "T1190": "initial-access",
    "T1566": "initial-access",
    "T1133": "initial-access",
    "T1078": "initial-access",
    "T1486": "impact",
    "T1490": "impact",
    "T1531": "impact",
    # Discovery: an alert that declares another tactic (PowerView cmdlets are tagged execution)
    # still names what the attacker was doing, and enumeration is not containment-worthy on its own.
    "T1007": "discovery",
    "T1010": "discovery",
    "T1012": "discovery",
    "T1016": "discovery",
    "T1018": "discovery",
    "T1033": "discovery",
    "T1049": "discovery",
    "T1057": "discovery",
    "T1069": "discovery",
    "T1082": "discovery",
    "T1083": "discovery",
    "T1087": "discovery",
    "T1135": "discovery",
    "T1201": "discovery",
    "T1482": "discovery",
    "T1518": "discovery",
    "T1526": "discovery",
    "T1615": "discovery",
}

# Where several tactics weigh the same, the one an analyst contains first wins.
CATEGORY_PRIORITY: tuple[Category, ...] = (
    Category.CREDENTIAL_ACCESS,
    Category.LATERAL_MOVEMENT,
    Category.COMMAND_AND_CONTROL,
    Category.EXFILTRATION,
    Category.IMPACT,
    Category.PERSISTENCE,
    Category.INITIAL_ACCESS,
    Category.EXECUTION,
    Category.DEFENSE_EVASION,
    Category.DISCOVERY,
)

# Sigma rules that fire on ordinary Windows activity in most lab recordings (logoffs, scheduled
# task registrations, every PowerShell start, Sysmon's own file-delete archiving, Zone.Identifier
# housekeeping) or are threat-hunting rules: they describe, they do not detect. Such a hit counts
# for a fraction of its weight unless telemetry corroborates it.
NOISY_RULES: frozenset[str] = frozenset(
    {
        "0badd08f-c6a3-4630-90d3-6875cca440be",  # User Logoff Event
        "93ff0ceb-e0ef-4586-8cd8-a6c277d738e3",  # Scheduled Task Created - Registry (hunting)
        "a762e74f-4dce-477c-b023-4ed81df600f9",  # Scheduled Task Created - FileCreation (hunting)
        "4f86b304-3e02-40e3-aa5d-e88a167c9617",  # Scheduled Task Deletion (hunting)
        "3037d961-21e9-4732-b27a-637bcc7bf539",  # Suspicious High IntegrityLevel Conhost Legacy
        "1f21ec3f-810d-4b0e-8045-322202e22b4b",  # Network Connection Initiated By PowerShell
        "ac7102b4-9e1e-4802-9b4f-17c5524c015c",  # New PowerShell Instance Created
        "60936b49-fca0-4f32-993d-7415edcf9a5d",  # New Application in AppCompat
        "16a4c7b3-4681-49d0-8d58-3e9b796dcb43",  # Raspberry Robin ZoneMap (explorer writes it)
        "facd1549-e416-48e0-b8c4-41d7215eedc8",  # Amsi.DLL Load By Uncommon Process (hunting)
        "e700ff14-1bff-4d1d-9438-738dff5f0466",  # BITS Client BitsProxy DLL Loaded (hunting)
        "1027d292-dd87-4a1a-8701-2abe04d7783c",  # PSScriptPolicyTest Creation
        "64e8e417-c19a-475a-8d19-98ea705394cc",  # Alternate PowerShell Hosts - PowerShell Module
        "58cb02d5-78ce-4692-b3e1-dce850aae41a",  # Alternate PowerShell Hosts Pipe
        "092bc4b9-3d1d-43b4-a6b4-8c8acd83522f",  # PowerShell Core DLL Loaded By Non PowerShell
        "f4bbd493-b796-416e-bbf2-121235348529",  # Non Interactive PowerShell Process Spawned
        "c3e5c1b1-45e9-4632-b242-27939c170239",  # Sysmon Blocked File Shredding
        "693a44e9-7f26-4cb6-b787-214867672d3a",  # Sysmon File Executable Creation Detected
        "7eac0a16-5832-4e81-865f-0268a6d19e4b",  # ADS Zone.Identifier Deleted (hunting)
        "a24e5861-c6ca-4fde-a93c-ba9256feddf0",  # Uncommon Process Access Rights For Target Image
        "96cd126d-f970-49c4-848a-da3a09f55c55",  # PowerShell Obfuscation Using Alias Cmdlets
        "ad1f4bb9-8dfb-4765-adb6-2a7cfb6c0f94",  # Suspicious WSMAN Provider Image Loads
        "502b42de-4306-40b4-9596-6f590c81f073",  # Local Accounts Discovery
        "4f4eaa9f-5ad4-410c-a4be-bc6132b0175a",  # CMD Shell Output Redirect (hunting)
        "558eebe5-f2ba-4104-b339-36f7902bcc1a",  # File Creation Date Changed (hunting)
        "297afac9-5d02-4138-8c58-b977bac60556",  # Creation of an Executable by an Executable
        "671bb7e3-a020-4824-a00e-2ee5b55f385e",  # WMI Module Loaded By Uncommon Process (hunting)
        "666ecfc7-229d-42b8-821e-1a8f8cb7057c",  # System Drawing DLL Load (hunting)
        "57712d7a-679c-4a41-a913-87e7175ae429",  # SC.EXE Query Execution (hunting)
        "63332011-f057-496c-ad8d-d2b6afb27f96",  # Suspicious Tasklist Discovery Command (hunting)
        "183e7ea8-ac4b-4c23-9aec-b3dac4e401ac",  # Net.EXE Execution (hunting)
        "86085955-ea48-42a2-9dd3-85d4c36b167d",  # Process Terminated Via Taskkill (hunting)
        "bafd07c6-3ea5-454a-b4be-058fbb073de7",  # Executable Run Itself As Sacrificial (hunting)
        "3a525307-d100-48ae-b3b9-0964699d7f97",  # DMP/HDMP File Creation (hunting)
        "250ae82f-736e-4844-a68b-0b5e8cc887da",  # Potential Shellcode Injection (hunting)
        "4a1b6da0-d94f-4fc3-98fc-2d9cb9e5ee76",  # Potentially Suspicious AccessMask From LSASS
        "678dfc63-fefb-47a5-a04c-26bcf8cc9f65",  # Uncommon GrantedAccess Flags On LSASS (hunting)
        "5ef9853e-4d0e-4a70-846f-a9ca37d876da",  # Potential Credential Dumping Via LSASS (access)
        "61065c72-5d7d-44ef-bf41-6a36684b545f",  # Elevated System Shell Spawned (hunting)
        # Rules whose own false-positive notes name routine Windows behaviour: CryptoAPI's
        # automatic AuthRoot/Disallowed certificate updates, every browser start loading the
        # account token provider, wallpaper tools (BGInfo, GPO) and installers that unregister
        # their COM classes.
        "d223b46b-5621-4037-88fe-fda32eead684",  # New Root or CA or AuthRoot Certificate to Store
        "50f852e6-af22-4c78-9ede-42ef36aa3453",  # Potential Azure Browser SSO Abuse
        "85b88e05-dadc-430b-8a9e-53ff1cd30aae",  # Potentially Suspicious Desktop Background Change
        "96f697b0-b499-4e5d-9908-a67bec11cdb6",  # Removal of Potential COM Hijacking Registry Keys
    }
)
# The same, by title, for alerts whose rule uid is not a Sigma id.
NOISY_TITLES: tuple[re.Pattern[str], ...] = (
    re.compile(r"^user logoff event$", re.I),
    re.compile(r"^locked workstation$", re.I),
    re.compile(r"^new powershell instance created$", re.I),
    re.compile(r"^scheduled task created\b", re.I),
    re.compile(r"^new application in appcompat$", re.I),
    re.compile(r"\(hunting\)|threat.hunting", re.I),
)
NOISY_FACTOR = 0.15

# Command-line tradecraft: (pattern, weight, what an analyst would write).
CMDLINE_INDICATORS: tuple[tuple[re.Pattern[str], float, str], ...] = (
    (re.compile(r"comsvcs(\.dll)?[\s,\"']+#?(minidump|24)", re.I), 5.0, "comsvcs MiniDump"),
    (re.compile(r"sekurlsa|lsadump|kerberos::|mimikatz|pypykatz", re.I), 5.0, "credential tool"),
    (re.compile(r"procdump.*(lsass|-ma)", re.I), 4.0, "procdump of a process"),
    (re.compile(r"\blsass(\.exe|\.dmp)?\b", re.I), 2.5, "names lsass"),
    (re.compile(r"reg(\.exe)?\s+save\s+hklm\\(sam|system|security)", re.I), 4.0, "hive dump"),
    (re.compile(r"ntdsutil|ntds\.dit|vssadmin\s+create", re.I), 3.5, "NTDS access"),
    (re.compile(r"\s-e(nc|ncodedcommand)?\s+[a-z0-9+/=]{20,}", re.I), 3.0, "encoded command"),
    (re.compile(r"frombase64string|\bIEX\b|invoke-expression", re.I), 2.0, "decode-and-run"),
    (
        re.compile(
            r"downloadstring|downloadfile|net\.webclient|invoke-webrequest|bitsadmin.*/transfer|certutil.*-urlcache",
            re.I,
        ),
        3.0,
        "download cradle",
    ),
    (re.compile(r"-w(indowstyle)?\s+hidden|-nop\b|-noni\b", re.I), 1.0, "hidden window"),
    (
        re.compile(r"regsvr32.*(/i:|scrobj)|mshta\s+(http|vbscript|javascript)", re.I),
        3.0,
        "LOLBin proxy",
    ),
    (
        re.compile(r"rundll32(\.exe)?\s+[^,]*\\(users|temp|programdata)\\", re.I),
        2.0,
        "rundll32 of a user path",
    ),
    (re.compile(r"wmic\s+(/node:|process\s+call\s+create)", re.I), 2.5, "remote WMI"),
    (re.compile(r"psexe(c|svc)|\\\\[\w.-]+\\(admin|c|ipc)\$", re.I), 2.5, "remote admin share"),
    (
        re.compile(r"schtasks.*/create.*(\\users\\|\\temp\\|powershell|http)", re.I),
        2.0,
        "task to a script",
    ),
    (re.compile(r"currentversion\\run", re.I), 1.5, "run key"),
    # T1037.001: a logon script set through the user's environment runs at every logon
    (re.compile(r"userinitmprlogonscript", re.I), 2.5, "logon script"),
    # T1562.004: an inbound allow rule for a program in a user-writable folder exposes a
    # listener that no installer put there (installers register Program Files binaries)
    (
        re.compile(
            r"^(?=.*\badvfirewall\b)(?=.*\bdir=in\b)(?=.*\baction=allow\b)"
            r"(?=.*\bprogram=\S*\\(users|temp|programdata|perflogs)\\)",
            re.I | re.S,
        ),
        2.0,
        "inbound firewall opening for a user-writable program",
    ),
    (
        re.compile(
            r"invoke-(mimikatz|kerberoast|shellcode|dllinjection|bloodhound)|rubeus|sharphound|empire",
            re.I,
        ),
        5.0,
        "attack framework",
    ),
)

# Parents that should not spawn shells or script hosts.
SUSPICIOUS_PARENTS: frozenset[str] = frozenset(
    {
        "winword.exe", "excel.exe", "powerpnt.exe", "outlook.exe", "mshta.exe", "wscript.exe",
        "cscript.exe", "hh.exe", "regsvr32.exe", "rundll32.exe", "w3wp.exe", "sqlservr.exe",
        "wmiprvse.exe", "notepad.exe",
    }
)  # fmt: skip
SHELLS: frozenset[str] = frozenset(
    {
        "cmd.exe",
        "powershell.exe",
        "pwsh.exe",
        "wscript.exe",
        "cscript.exe",
        "mshta.exe",
        "rundll32.exe",
        "regsvr32.exe",
    }
)

# Processes that fire generic rules as part of the operating system's own maintenance.
MAINTENANCE_PROCESSES: frozenset[str] = frozenset(
    {
        "wuauclt.exe", "usoclient.exe", "tiworker.exe", "trustedinstaller.exe", "msmpeng.exe",
        "mpcmdrun.exe", "mousocoreworker.exe", "compattelrunner.exe", "sppsvc.exe", "svchost.exe",
        "taskhostw.exe", "googleupdate.exe", "onedrivesetup.exe", "onedrive.exe", "msiexec.exe",
        "dismhost.exe", "sihclient.exe", "wsqmcons.exe", "devicecensus.exe", "searchindexer.exe",
        "microsoftedgeupdate.exe", "wermgr.exe", "gpupdate.exe", "sdiagnhost.exe", "conhost.exe",
        "backgroundtaskhost.exe", "backgroundtransferhost.exe", "runtimebroker.exe",
        "smartscreen.exe", "sysmon.exe", "sysmon64.exe", "vmtoolsd.exe", "winlogbeat.exe",
        "osqueryd.exe",
    }
)  # fmt: skip
# Install folders of cloud and fleet management agents: their process trees are the platform's.
MANAGEMENT_AGENT_DIRS: tuple[str, ...] = (
    "\\windowsazure\\", "\\packages\\plugins\\", "\\amazon\\ssm\\", "\\amazon\\ec2launch",
    "\\google\\compute engine\\", "\\ccm\\", "\\microsoft monitoring agent\\",
    "\\azure\\connectedmachineagent\\",
)  # fmt: skip
SYSTEM_ACCOUNTS: frozenset[str] = frozenset(
    {"system", "nt authority\\system", "local service", "network service", "localsystem",
     "nt authority\\local service", "nt authority\\network service", "-", ""}
)  # fmt: skip


# Services every host of an estate uses (DNS, Kerberos, LDAP, global catalog, NTP, DHCP, NetBIOS
# name and datagram): an address reached on these is the estate's infrastructure (a DNS server, a
# domain controller, the subnet's broadcast address), not an attacker endpoint, whoever reaches it.
INFRASTRUCTURE_PORTS: frozenset[int] = frozenset(
    {53, 67, 88, 123, 137, 138, 389, 464, 636, 3268, 3269}
)
# Remote execution transports: SMB/RPC service creation, WinRM, RDP.
LATERAL_PORTS: frozenset[int] = frozenset({135, 139, 445, 3389, 5985, 5986})
# Techniques that mean "code was started on this host from another one".
REMOTE_EXECUTION_TECHNIQUES: tuple[str, ...] = ("T1021", "T1569", "T1047", "T1570", "T1543.003")
# Folders any user can write to: executables there are downloads and drops, not installed software.
USER_WRITABLE_DIRS: tuple[str, ...] = (
    "\\users\\", "\\temp\\", "\\programdata\\", "\\appdata\\", "\\perflogs\\",
)  # fmt: skip
# Autostart locations: a value written under one of these keys runs at boot or logon.
AUTOSTART_KEYS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\\currentversion\\(run|runonce|runonceex|runservices|runservicesonce)\\", re.I),
    re.compile(r"\\currentversion\\policies\\explorer\\run\\", re.I),
    re.compile(r"\\currentversion\\winlogon\\(userinit|shell|notify)", re.I),
    re.compile(r"\\currentcontrolset\\services\\[^\\]+\\imagepath$", re.I),
    re.compile(r"\\currentversion\\image file execution options\\[^\\]+\\debugger$", re.I),
    re.compile(r"\\environment\\userinitmprlogonscript$", re.I),
)
# Autostart folders: a file created in one of these runs at logon.
AUTOSTART_DIRS: tuple[str, ...] = (
    "\\start menu\\programs\\startup\\", "\\windows\\system32\\tasks\\",
)  # fmt: skip


def is_autostart_key(key: str) -> bool:
    return any(p.search(key) for p in AUTOSTART_KEYS)


def is_autostart_file(path: str) -> bool:
    lowered = path.lower()
    return any(d in lowered for d in AUTOSTART_DIRS)


def in_user_writable_dir(path: str | None) -> bool:
    lowered = (path or "").lower()
    return any(d in lowered for d in USER_WRITABLE_DIRS)


def is_remote_execution(technique: str) -> bool:
    key = technique.strip().upper()
    return any(key == t or key.startswith(t + ".") for t in REMOTE_EXECUTION_TECHNIQUES)


# Every intrusion executes something: execution is the tactic of last resort when naming one.
TACTIC_DISCOUNT: dict[Category, float] = {Category.EXECUTION: 0.5, Category.DEFENSE_EVASION: 0.7}


def technique_weight(technique: str) -> float:
    key = technique.strip().upper()
    while key:
        if key in TECHNIQUE_WEIGHT:
            return TECHNIQUE_WEIGHT[key]
        if "." not in key:
            break
        key = key.rsplit(".", 1)[0]
    return DEFAULT_TECHNIQUE_WEIGHT


def technique_tactic(technique: str) -> str | None:
    return TECHNIQUE_TACTIC.get(technique.strip().upper().split(".", 1)[0])


def cmdline_indicators(cmd_line: str | None) -> list[tuple[float, str]]:
    if not cmd_line:
        return []
    text = cmd_line[:8_192]
    return [(weight, why) for pattern, weight, why in CMDLINE_INDICATORS if pattern.search(text)]


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
