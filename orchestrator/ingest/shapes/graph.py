"""Microsoft Graph security alerts (`/security/alerts_v2`, the Defender XDR alert resource).

Where each alert field comes from:

- `uid`: `id`. `time`: `createdDateTime`. `title`: `title`.
- `severity`: `severity` (`informational`, `low`, `medium`, `high`; `unknown` reads as
  informational).
- `product`: `serviceSource` (e.g. `microsoftDefenderForEndpoint`), else `Microsoft Defender XDR`.
- `rule`: `detectorId`, else `alertPolicyId`, else the title; named by the title.
- `attacks`: each of `mitreTechniques`, with `category` as the tactic when it names one.
- `entities`, from `evidence[]` by `@odata.type`: `deviceEvidence` `deviceDnsName` (the host);
  `userEvidence` `userAccount` (`domainName\\accountName`, else `userPrincipalName`);
  `processEvidence` `processId`, `imageFile.fileName`, `processCommandLine` (and its
  `userAccount`); `ipEvidence` `ipAddress` (to `src_ip` when its `roles` say `attacker` or
  `source`, else `dst_ip`); `fileEvidence` `fileDetails` `filePath`\\`fileName` and `sha256`;
  `urlEvidence` `url` (its host is the domain).
- correlation: `incidentId` (Defender XDR's incident).
"""

from __future__ import annotations

from orchestrator.ingest.normalised import Normalised, NormaliseError, Shape
from orchestrator.ingest.shapes.values import (
    LONG,
    Fields,
    Json,
    asset_id,
    attacks,
    build_alert,
    cut,
    file,
    process,
    severity_word,
    url_host,
    user_id,
)
from tools.models import AlertEntities, Severity

SOURCE = "defender-xdr"
ODATA_TYPE = "#microsoft.graph.security.alert"
EVIDENCE = "#microsoft.graph.security."


def matches(record: Json) -> bool:
    if record.get("@odata.type") == ODATA_TYPE:
        return True
    marker = any(k in record for k in ("providerAlertId", "detectionSource", "incidentId"))
    return marker and "serviceSource" in record


def normalise_graph(record: Json) -> Normalised:
    f = Fields(record)
    uid = f.need_text("id")
    time = f.need_time("createdDateTime")
    title = f.need_text("title")
    severity = _severity(f)
    category = f.text("category")
    alert = build_alert(
        uid=uid,
        time=time,
        title=title,
        severity=severity,
        product=f.text("serviceSource") or "Microsoft Defender XDR",
        rule=(f.text("detectorId") or f.text("alertPolicyId") or title, title, None),
        attacks=attacks([(t, category) for t in f.texts("mitreTechniques")]),
        entities=_entities(f.children("evidence")),
    )
    return Normalised(
        alert=alert,
        source=SOURCE,
        shape=Shape.GRAPH,
        original=record,
        correlation=f.text("incidentId"),
    )


def _severity(f: Fields) -> Severity:
    word = f.text("severity")
    if word is None:
        raise NormaliseError("severity", "missing")
    if word.lower() in {"unknown", "unknownfuturevalue"}:
        return Severity.INFORMATIONAL
    found = severity_word(word)
    if found is None:
        raise NormaliseError("severity", "not one of informational, low, medium, high")
    return found


def _entities(evidence: list[Fields]) -> AlertEntities:
    """The first of each kind of evidence, in the order Graph lists them."""
    found: dict[str, object] = {}
    for item in evidence:
        kind = (item.text("@odata.type") or "").removeprefix(EVIDENCE)
        match kind:
            case "deviceEvidence":
                name = item.text("deviceDnsName") or item.text("hostName")
                found.setdefault("host", asset_id(name) if name else None)
            case "userEvidence":
                found.setdefault("user", _account(item.child("userAccount")))
            case "processEvidence":
                found.setdefault(
                    "process",
                    process(
                        item.integer("processId"),
                        item.text("imageFile.fileName"),
                        item.text("processCommandLine", LONG),
                    ),
                )
                found.setdefault("process_user", _account(item.child("userAccount")))
            case "ipEvidence":
                roles = {r.lower() for r in item.texts("roles")}
                side = "src_ip" if roles & {"attacker", "source"} else "dst_ip"
                found.setdefault(side, item.text("ipAddress"))
            case "fileEvidence":
                details = item.child("fileDetails")
                if details is not None:
                    found.setdefault("file", file(_path(details), details.text("sha256")))
            case "urlEvidence":
                found.setdefault("domain", url_host(item.text("url")))
    user = found.get("user") or found.get("process_user")
    return AlertEntities.model_validate(
        {k: v for k, v in found.items() if k != "process_user" and v is not None}
        | ({"user": user} if user else {})
    )


def _account(account: Fields | None) -> str | None:
    if account is None:
        return None
    name = account.text("accountName")
    if name is None:
        return user_id(account.text("userPrincipalName"))
    return user_id(name, account.text("domainName"))


def _path(details: Fields) -> str | None:
    folder, name = details.text("filePath"), details.text("fileName")
    if folder and name and not folder.lower().endswith(name.lower()):
        sep = "/" if "/" in folder and "\\" not in folder else "\\"
        return cut(f"{folder.rstrip(sep)}{sep}{name}")
    return folder or name
