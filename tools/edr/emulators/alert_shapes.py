"""Garrison alerts (a recorded incident's, or a test's) re-shaped as the EDR vendors publish them:
a CrowdStrike Falcon Alerts API v2 entity and a Microsoft Graph security `alert` (alerts_v2, as
Defender XDR fills it), for the emulators' alert endpoints.

Ids are derived from the alert's uid and a sequence number, so a world seeded twice from one
recording serves the same ids. Timestamps are written at the vendors' precision (Falcon's
`updated_timestamp` in nanoseconds, Graph's in 100 ns ticks), read back by `parse_instant`.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from tools.models import Alert

FALCON_SEVERITY = {
    "informational": (10, "Informational"),
    "low": (30, "Low"),
    "medium": (50, "Medium"),
    "high": (70, "High"),
    "critical": (90, "Critical"),
}
_TACTIC_IDS = {
    "reconnaissance": "TA0043",
    "resource-development": "TA0042",
    "initial-access": "TA0001",
    "execution": "TA0002",
    "persistence": "TA0003",
    "privilege-escalation": "TA0004",
    "defense-evasion": "TA0005",
    "credential-access": "TA0006",
    "discovery": "TA0007",
    "lateral-movement": "TA0008",
    "collection": "TA0009",
    "command-and-control": "TA0011",
    "exfiltration": "TA0010",
    "impact": "TA0040",
}
_FRACTION = re.compile(r"^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def parse_instant(text: str) -> tuple[datetime, int]:
    """An ISO-8601 instant with any number of fractional digits, as (whole second, nanoseconds):
    sortable, and exact at the vendors' precision (a datetime stops at microseconds)."""
    match = _FRACTION.match(text.strip())
    if match is None:
        raise ValueError(f"not an ISO-8601 instant: {text[:40]!r}")
    whole, fraction, zone = match.groups()
    second = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone)).astimezone(UTC)
    return second, int(((fraction or "") + "0" * 9)[:9])


Instant = tuple[datetime, int]
TimeCondition = tuple[str, str, Instant]  # (field, one of > >= < <=, bound)
_COMPARE = {
    ">": lambda at, bound: at > bound,
    ">=": lambda at, bound: at >= bound,
    "<": lambda at, bound: at < bound,
    "<=": lambda at, bound: at <= bound,
}


def matches_times(record: dict[str, Any], conditions: list[TimeCondition]) -> bool:
    """Whether every condition holds for the record's instant fields (both emulators' filters:
    Falcon's FQL and Graph's OData comparisons, mapped onto `> >= < <=`)."""
    for field, op, bound in conditions:
        value = record.get(field)
        if not isinstance(value, str) or not _COMPARE[op](parse_instant(value), bound):
            return False
    return True


def falcon_time(moment: datetime) -> str:
    """Falcon's nanosecond timestamps (`2025-06-16T19:46:56.218762664Z`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def graph_time(moment: datetime) -> str:
    """Graph's DateTimeOffset with 7 fractional digits (`2021-05-02T14:19:01.3266667Z`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


def _split_user(user: str | None) -> tuple[str | None, str | None]:
    """`DOMAIN\\name` or `name@domain` -> (domain, name)."""
    if not user:
        return None, None
    if "\\" in user:
        domain, _, name = user.rpartition("\\")
        return domain or None, name
    name, _, domain = user.partition("@")
    return domain or None, name


def _tactic(tactic: str | None) -> tuple[str, str]:
    slug = (tactic or "").lower().replace(" ", "-")
    return _TACTIC_IDS.get(slug, ""), slug.replace("-", " ").title()


def falcon_alert(
    alert: Alert, device: dict[str, Any], cid: str, updated: datetime, seq: int
) -> dict[str, Any]:
    """A Falcon Alerts v2 entity (`type: ldt`, an endpoint detection) for `alert` on `device`
    (the Hosts API entity of its host)."""
    aid = device["device_id"]
    digest = _digest(alert.uid, seq)
    pattern_id = int(_digest(alert.rule.uid)[:6], 16) % 90000 + 10000
    process_id = str(int(digest[:12], 16))
    indicator = f"ind:{aid}:{process_id}-{pattern_id}-{int(digest[12:18], 16)}"
    severity, severity_name = FALCON_SEVERITY[alert.severity.value]
    domain, user = _split_user(alert.entities.user)
    process, file = alert.entities.process, alert.entities.file
    image = file.path if file else None
    mitre = [
        {
            "pattern_id": pattern_id,
            "tactic_id": _tactic(a.tactic)[0],
            "tactic": _tactic(a.tactic)[1],
            "technique_id": a.technique,
            "technique": a.technique,
        }
        for a in alert.attacks
    ]
    entity: dict[str, Any] = {
        "agent_id": aid,
        "aggregate_id": f"aggind:{aid}:{int(digest[18:30], 16)}",
        "cid": cid,
        "composite_id": f"{cid}:{indicator}",
        "id": indicator,
        "indicator_id": indicator,
        "confidence": 80,
        "context_timestamp": falcon_time(alert.time),
        "created_timestamp": falcon_time(alert.time),
        "crawled_timestamp": falcon_time(updated),
        "updated_timestamp": falcon_time(updated),
        "timestamp": falcon_time(alert.time),
        "data_domains": ["Endpoint"],
        "description": alert.title,
        "display_name": alert.rule.name,
        "name": alert.rule.name,
        "device": device,
        "falcon_host_link": f"https://falcon.crowdstrike.com/activity-v2/detections/{cid}:{indicator}",
        "pattern_id": pattern_id,
        "platform": device.get("platform_name") or "Windows",
        "product": "epp",
        "type": "ldt",
        "scenario": "suspicious_activity",
        "severity": severity,
        "severity_name": severity_name,
        "show_in_ui": True,
        "source_products": ["Falcon Insight"],
        "source_vendors": ["CrowdStrike"],
        "status": "new",
        "mitre_attack": mitre,
        "process_id": process_id,
        "tags": [],
    }
    if mitre:
        first = mitre[0]
        entity.update(
            tactic=first["tactic"],
            tactic_id=first["tactic_id"],
            technique=first["technique"],
            technique_id=first["technique_id"],
        )
    if user:
        entity["user_name"] = user
        if domain:
            entity["logon_domain"] = domain
    if process is not None:
        if process.pid is not None:
            entity["local_process_id"] = str(process.pid)
        if process.cmd_line:
            entity["cmdline"] = process.cmd_line
        if process.name:
            entity["filename"] = process.name
    if image:
        entity["filepath"] = image
        entity.setdefault("filename", image.replace("/", "\\").rsplit("\\", 1)[-1])
    if file is not None and file.sha256:
        entity["sha256"] = file.sha256
    if alert.entities.dst_ip or alert.entities.src_ip:
        entity["network_accesses"] = [
            {
                "access_type": 0,
                "connection_direction": "0",
                "local_address": alert.entities.src_ip or device.get("local_ip") or "",
                "remote_address": alert.entities.dst_ip or "",
                "protocol": "TCP",
            }
        ]
    if alert.entities.domain:
        entity["dns_requests"] = [{"domain_name": alert.entities.domain}]
    return entity


def graph_alert(
    alert: Alert,
    machine: dict[str, Any] | None,
    tenant_id: str,
    incident_id: str,
    updated: datetime,
    seq: int,
) -> dict[str, Any]:
    """A Graph security `alert` from Defender for Endpoint, with device, user, process, file, IP
    and URL (the domain) evidence taken from the alert's entities."""
    digest = _digest(alert.uid, seq)
    alert_id = f"da{int(digest[:15], 16) % 10**18:018d}_{-(int(digest[15:23], 16) % 2**31)}"
    created = graph_time(alert.time)
    domain, user = _split_user(alert.entities.user)
    severity = "high" if alert.severity.value == "critical" else alert.severity.value
    category = _tactic(alert.attacks[0].tactic if alert.attacks else None)[1].replace(" ", "")
    base = {"createdDateTime": created, "verdict": "unknown", "remediationStatus": "none"}
    account = None
    if user:
        account = {
            "accountName": user,
            "domainName": domain,
            "userSid": f"S-1-5-21-{int(_digest(user)[:8], 16)}-{int(_digest(domain)[:8], 16)}",
            "azureAdUserId": None,
            "userPrincipalName": None,
            "displayName": user,
        }
    device_id = machine["id"] if machine else None
    evidence: list[dict[str, Any]] = []
    if machine is not None:
        evidence.append(
            {
                "@odata.type": "#microsoft.graph.security.deviceEvidence",
                **base,
                "roles": ["compromised"],
                "detailedRoles": ["Main device"],
                "tags": [],
                "mdeDeviceId": device_id,
                "azureAdDeviceId": None,
                "deviceDnsName": machine["computerDnsName"],
                "osPlatform": machine.get("osPlatform") or "Windows10",
                "healthStatus": "active",
                "onboardingStatus": "onboarded",
                "ipInterfaces": [machine["lastIpAddress"]] if machine.get("lastIpAddress") else [],
                "loggedOnUsers": [{"accountName": user, "domainName": domain}] if user else [],
            }
        )
    if account is not None:
        evidence.append(
            {
                "@odata.type": "#microsoft.graph.security.userEvidence",
                **base,
                "roles": [],
                "tags": [],
                "userAccount": account,
            }
        )
    process, file = alert.entities.process, alert.entities.file
    if process is not None:
        image = (file.path if file else None) or process.name or ""
        folder, _, name = image.replace("/", "\\").rpartition("\\")
        evidence.append(
            {
                "@odata.type": "#microsoft.graph.security.processEvidence",
                **base,
                "roles": [],
                "tags": [],
                "processId": process.pid,
                "processCommandLine": process.cmd_line,
                "processCreationDateTime": created,
                "detectionStatus": "detected",
                "mdeDeviceId": device_id,
                "imageFile": {
                    "fileName": process.name or name or None,
                    "filePath": folder or None,
                    "sha256": file.sha256 if file else None,
                    "sha1": None,
                },
                "userAccount": account,
            }
        )
    if file is not None and (file.path or file.sha256):
        folder, _, name = (file.path or "").replace("/", "\\").rpartition("\\")
        evidence.append(
            {
                "@odata.type": "#microsoft.graph.security.fileEvidence",
                **base,
                "roles": [],
                "tags": [],
                "detectionStatus": "detected",
                "mdeDeviceId": device_id,
                "fileDetails": {
                    "fileName": name or None,
                    "filePath": folder or None,
                    "sha256": file.sha256,
                    "sha1": None,
                },
            }
        )
    for ip, role in ((alert.entities.src_ip, "source"), (alert.entities.dst_ip, "destination")):
        if ip:
            evidence.append(
                {
                    "@odata.type": "#microsoft.graph.security.ipEvidence",
                    **base,
                    "roles": [role],
                    "tags": [],
                    "ipAddress": ip,
                }
            )
    if alert.entities.domain:
        # Defender lists a contacted domain as URL evidence (a bare host is a valid `url`).
        evidence.append(
            {
                "@odata.type": "#microsoft.graph.security.urlEvidence",
                **base,
                "roles": [],
                "tags": [],
                "url": alert.entities.domain,
            }
        )
    portal = "https://security.microsoft.com"
    return {
        "@odata.type": "#microsoft.graph.security.alert",
        "id": alert_id,
        "providerAlertId": alert_id,
        "incidentId": incident_id,
        "status": "new",
        "severity": severity,
        "classification": None,
        "determination": None,
        "serviceSource": "microsoftDefenderForEndpoint",
        "detectionSource": "customDetection",
        "detectorId": alert.rule.uid,
        "tenantId": tenant_id,
        "title": alert.title,
        "description": alert.rule.name,
        "recommendedActions": "",
        "category": category or "SuspiciousActivity",
        "assignedTo": None,
        "alertWebUrl": f"{portal}/alerts/{alert_id}?tid={tenant_id}",
        "incidentWebUrl": f"{portal}/incidents/{incident_id}?tid={tenant_id}",
        "actorDisplayName": None,
        "threatDisplayName": None,
        "threatFamilyName": None,
        "mitreTechniques": [a.technique for a in alert.attacks],
        "createdDateTime": created,
        "lastUpdateDateTime": graph_time(updated),
        "resolvedDateTime": None,
        "firstActivityDateTime": created,
        "lastActivityDateTime": created,
        "comments": [],
        "evidence": evidence,
        "systemTags": [],
        "additionalData": {},
    }
