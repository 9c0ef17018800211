"""Microsoft Sentinel incidents, as the ARM resource (`Microsoft.SecurityInsights/Incidents`) that
the REST API lists and an automation rule's Logic App receives.

Where each alert field comes from:

- `uid`: `name` (the incident's GUID). `time`: `properties.createdTimeUtc`.
- `title`: `properties.title`. `severity`: `properties.severity` (`High`, `Medium`, `Low`,
  `Informational`).
- `product`: the first of `properties.additionalData.alertProductNames`, else
  `Microsoft Sentinel`.
- `rule`: the first of `properties.relatedAnalyticRuleIds`, else the title; named by the title.
- `attacks`: each of `properties.additionalData.techniques`; the tactic when
  `additionalData.tactics` names exactly one (an incident does not pair them).
- `entities`: `properties.relatedEntities[]` when the sender includes them (the Logic App
  trigger does), by `kind`: `Host` `hostName`, `Account` `ntDomain\\accountName` (else
  `upnSuffix`), `Process` `processId` and `commandLine`, `Ip` `address` (the first to `src_ip`),
  `DnsResolution` `domainName`, `Url` `url`, `File` `directory`\\`fileName`, `FileHash` SHA256.
- correlation: `name` (the incident itself; alerts of one incident are one incident here too).
"""

from __future__ import annotations

from orchestrator.ingest.normalised import Normalised, NormaliseError, Shape
from orchestrator.ingest.shapes.values import (
    LONG,
    Fields,
    Json,
    asset_id,
    attacks,
    basename,
    build_alert,
    cut,
    file,
    process,
    severity_word,
    url_host,
    user_id,
)
from tools.models import AlertEntities

SOURCE = "sentinel"
TYPE = "microsoft.securityinsights/incidents"


def matches(record: Json) -> bool:
    kind = record.get("type")
    if isinstance(kind, str) and kind.lower() == TYPE:
        return True
    properties = record.get("properties")
    return isinstance(properties, dict) and "incidentNumber" in properties


def normalise_sentinel(record: Json) -> Normalised:
    f = Fields(record)
    uid = f.need_text("name")
    props = f.child("properties")
    if props is None:
        raise NormaliseError("properties", "missing")
    time = props.need_time("createdTimeUtc")
    title = props.need_text("title")
    severity = severity_word(props.text("severity"))
    if severity is None:
        raise NormaliseError("properties.severity", "not one of High, Medium, Low, Informational")
    extra = props.child("additionalData")
    tactics = extra.texts("tactics") if extra else []
    tactic = tactics[0] if len(tactics) == 1 else None
    products = extra.texts("alertProductNames") if extra else []
    rule = next(iter(props.texts("relatedAnalyticRuleIds")), None)
    alert = build_alert(
        uid=uid,
        time=time,
        title=title,
        severity=severity,
        product=products[0] if products else "Microsoft Sentinel",
        rule=(rule or title, title, None),
        attacks=attacks([(t, tactic) for t in (extra.texts("techniques") if extra else [])]),
        entities=_entities(props.children("relatedEntities")),
    )
    return Normalised(
        alert=alert, source=SOURCE, shape=Shape.SENTINEL, original=record, correlation=uid
    )


def _entities(related: list[Fields]) -> AlertEntities:
    found: dict[str, object] = {}
    for entity in related:
        p = entity.child("properties") or entity  # the REST API nests them; the trigger may not
        match entity.text("kind"):
            case "Host":
                name = p.text("hostName") or p.text("netBiosName")
                found.setdefault("host", asset_id(name) if name else None)
            case "Account":
                name = p.text("accountName")
                user = user_id(name, p.text("ntDomain")) if name else None
                found.setdefault("user", user or user_id(p.text("upnSuffix")))
            case "Process":
                cmd = p.text("commandLine", LONG)
                name = basename(cmd.split(" ", 1)[0].strip('"')) if cmd else None
                found.setdefault("process", process(p.integer("processId"), name, cmd))
            case "Ip":
                side = "src_ip" if "src_ip" not in found else "dst_ip"
                found.setdefault(side, p.text("address"))
            case "DnsResolution":
                found.setdefault("domain", p.text("domainName"))
            case "Url":
                found.setdefault("domain", url_host(p.text("url")))
            case "File":
                folder, name = p.text("directory"), p.text("fileName")
                path = cut(f"{folder.rstrip(chr(92))}\\{name}") if folder and name else name
                found.setdefault("path", path)
            case "FileHash":
                if (p.text("algorithm") or "").upper() == "SHA256":
                    found.setdefault("sha256", p.text("hashValue"))
    path, digest = found.pop("path", None), found.pop("sha256", None)
    found["file"] = file(
        path if isinstance(path, str) else None, digest if isinstance(digest, str) else None
    )
    return AlertEntities.model_validate({k: v for k, v in found.items() if v is not None})
