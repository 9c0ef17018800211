"""What an analyst knows about the estate's own machinery, as opposed to the attacker's: where
software is installed and where downloads land, which processes keep Windows alive, which
internet services every host shares, which ports are the estate's own Windows services, and
which accounts are secrets rather than people.

These decide what containment may touch: a response that kills csrss.exe, firewalls GitHub or
the domain controller, or "disables" krbtgt hurts the estate more than the intruder. Nothing
here is keyed on an incident, a dataset or a label.
"""

from __future__ import annotations

import re

from agents.knowledge import INFRASTRUCTURE_PORTS, LATERAL_PORTS, image_name

# Folders where a person's downloads and hand-copied tools land. Installers put software in
# Program Files, Windows or a vendor folder under AppData/ProgramData; a program started from
# Desktop, Downloads, Documents, Public or PerfLogs was brought there by hand.
DROP_FOLDERS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\\users\\[^\\]+\\(desktop|downloads|documents)\\", re.I),
    re.compile(r"\\users\\public\\", re.I),
    re.compile(r"(^[a-z]:|\\device\\harddiskvolume\d+)\\perflogs\\", re.I),
)

# Processes whose death blue-screens or logs off the machine (critical system processes), or
# that hold every session's credentials: never a kill target, whatever ran inside them.
CRITICAL_PROCESSES: frozenset[str] = frozenset(
    {
        "system", "smss.exe", "csrss.exe", "wininit.exe", "winlogon.exe", "services.exe",
        "lsass.exe", "lsaiso.exe", "registry", "memcompression",
    }
)  # fmt: skip
# Windows gives the idle process pid 0 and the kernel's System process pid 4, on every boot: an
# alert naming them names the kernel (raw disk reads, SMB), never a process the attacker owns.
KERNEL_PIDS: frozenset[int] = frozenset({0, 4})

# Internet services shared by every customer: the platform vendors that ordinary software
# reaches from every host, code hosting, content delivery networks. Their addresses and names
# front millions of sites, so blocking them is an outage; the payload's URL belongs on the proxy,
# not the service on the firewall.
SHARED_SERVICE_DOMAINS: tuple[str, ...] = (
    "microsoft.com", "windowsupdate.com", "windows.com", "bing.com", "msn.com", "skype.com",
    "live.com", "office.com", "office365.com", "microsoftonline.com", "azure.com", "msedge.net",
    "digicert.com", "google.com", "gstatic.com", "googleapis.com", "mozilla.org", "apple.com",
    "github.com", "githubusercontent.com", "gitlab.com", "bitbucket.org",
    "akamai.net", "akamaiedge.net", "akamaihd.net", "akamaitechnologies.com", "edgekey.net",
    "edgesuite.net", "fastly.net", "cloudfront.net", "cloudflare.com", "azureedge.net",
    "edgecastcdn.net", "footprint.net", "llnwd.net",
    "office.net", "outlook.com", "aka.ms", "msftncsi.com",
    "msocsp.com", "verisign.com", "globalsign.com", "letsencrypt.org", "sectigo.com",
)  # fmt: skip
WEB_PORTS: frozenset[int] = frozenset({80, 443})
# Windows' own services on a host of the estate: an internal address reached on these is a
# server or workstation being used or attacked, not an attacker's listener.
WINDOWS_SERVICE_PORTS: frozenset[int] = INFRASTRUCTURE_PORTS | LATERAL_PORTS
RPC_ENDPOINT_MAPPER = 135
RPC_DYNAMIC_PORTS = range(49152, 65536)  # where the endpoint mapper sends RPC clients next

# Accounts that hold a secret rather than a person's access: krbtgt signs every Kerberos ticket
# of the domain and is disabled by design, so containment is a (double) reset of its key.
RESET_ONLY_ACCOUNTS: re.Pattern[str] = re.compile(r"^krbtgt(_\d+)?$", re.I)


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
