"""A TAXII 2.1 server under `/taxii2/`: discovery, one API root (`/taxii2/garrison/`), its
collections (`orchestrator.intel.config`), their objects (GET, paged by `added_after`, `limit`
and `next`, filtered by `match[id]`, `match[type]` and `match[version]`; POST), one object, the
manifest, and the status of a POST. Objects are kept in the store (`orchestrator/store/intel.py`).

Every route needs a bearer token (`tokens.py`): `intel:read` to read, `intel:write` to publish,
and the collection must name the token's identity among its readers or writers (a collection the
identity may not read is not found, as TAXII advises). Requests must accept
`application/taxii+json;version=2.1` (406 otherwise) and POSTs send it (415 otherwise). A
malformed envelope or object is refused whole with a 4xx naming the problem (400: not JSON;
422: not an envelope, or an object that is not valid STIX 2.1, each named with its index and
id), in TAXII's error shape (`title`, `description`, `http_status`). Nothing here answers 5xx
on bad input.
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

import stix2
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from stix2.exceptions import STIXError

from orchestrator.intel.config import Collection, IntelConfig
from orchestrator.server.edge import TAXII_MAX_BODY_BYTES, note_caller
from orchestrator.server.limits import read_capped
from orchestrator.server.tokens import Scope
from orchestrator.store.intel import ObjectFilter, Page, VersionMatch

TAXII = "application/taxii+json;version=2.1"
STIX = "application/stix+json;version=2.1"
API_ROOT = "garrison"
MAX_CONTENT = TAXII_MAX_BODY_BYTES
DEFAULT_LIMIT = 100
MAX_LIMIT = 1_000
MAX_PROBLEMS = 5
_KEPT_STATUSES = 1_000

router = APIRouter(prefix="/taxii2", tags=["taxii"], include_in_schema=False)


class TaxiiError(Exception):
    def __init__(self, status: int, title: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.title = title
        self.description = description


def install_taxii(app: FastAPI) -> None:
    app.include_router(router)
    app.state.taxii_statuses = OrderedDict()

    @app.exception_handler(TaxiiError)
    async def refused(_request: Request, error: TaxiiError) -> JSONResponse:
        body = {
            "title": error.title,
            "description": error.description,
            "http_status": str(error.status),
        }
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return _answer(body, error.status, headers)


def _answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=TAXII, headers=headers)


def _config(request: Request) -> IntelConfig:
    return request.app.state.deps.intel


def _caller(request: Request, scope: Scope) -> str:
    """The token's identity, after the media type and the scope are checked."""
    accept = request.headers.get("accept", "*/*")
    if not _accepts(accept):
        raise TaxiiError(406, "Not Acceptable", f"this server answers {TAXII}, not {accept!r}")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TaxiiError(401, "Unauthorized", "a bearer token is required")
    found = request.app.state.deps.tokens.authenticate(token.strip())
    if found is None:
        raise TaxiiError(401, "Unauthorized", "unknown token")
    identity, scopes = found
    note_caller(request, identity)
    if scope not in scopes:
        raise TaxiiError(403, "Forbidden", f"this token lacks the {scope.value!r} scope")
    return identity


def _accepts(accept: str) -> bool:
    for item in accept.split(","):
        media, *params = (p.strip().lower() for p in item.split(";"))
        version = next((p.split("=", 1)[1] for p in params if p.startswith("version=")), "2.1")
        if media in ("*/*", "application/*") or (
            media == "application/taxii+json" and version == "2.1"
        ):
            return True
    return False


def _readable(request: Request, collection_id: str, identity: str) -> Collection:
    collection = _config(request).collection(collection_id)
    if collection is None or not collection.may_read(identity):
        raise TaxiiError(404, "Not Found", f"no collection {collection_id!r} for this identity")
    return collection


def _collection_info(collection: Collection, identity: str, scopes: frozenset[Scope]) -> dict:
    return {
        "id": str(collection.id),
        "title": collection.title,
        "description": collection.description,
        "alias": collection.alias,
        "can_read": Scope.INTEL_READ in scopes and collection.may_read(identity),
        "can_write": Scope.INTEL_WRITE in scopes and collection.may_write(identity),
        "media_types": [STIX],
    }


def _scopes(request: Request) -> frozenset[Scope]:
    _, _, token = request.headers.get("authorization", "").partition(" ")
    found = request.app.state.deps.tokens.authenticate(token.strip())
    return frozenset() if found is None else found[1]


@router.get("/")
async def discovery(request: Request) -> JSONResponse:
    _caller(request, Scope.INTEL_READ)
    root = str(request.url_for("api_root"))
    return _answer(
        {
            "title": f"Garrison ({_config(request).organisation})",
            "description": "Threat intelligence shared by this Garrison",
            "default": root,
            "api_roots": [root],
        }
    )


@router.get(f"/{API_ROOT}/", name="api_root")
async def api_root(request: Request) -> JSONResponse:
    _caller(request, Scope.INTEL_READ)
    return _answer(
        {
            "title": "Garrison",
            "versions": [TAXII],
            "max_content_length": MAX_CONTENT,
        }
    )


@router.get(f"/{API_ROOT}/collections/")
async def collections(request: Request) -> JSONResponse:
    identity = _caller(request, Scope.INTEL_READ)
    scopes = _scopes(request)
    listed = [
        _collection_info(c, identity, scopes)
        for c in _config(request).collections
        if c.may_read(identity) or c.may_write(identity)
    ]
    return _answer({"collections": listed} if listed else {})


@router.get(f"/{API_ROOT}/collections/{{collection_id}}/")
async def collection(request: Request, collection_id: str) -> JSONResponse:
    identity = _caller(request, Scope.INTEL_READ)
    found = _readable(request, collection_id, identity)
    return _answer(_collection_info(found, identity, _scopes(request)))


@router.get(f"/{API_ROOT}/collections/{{collection_id}}/objects/")
async def get_objects(request: Request, collection_id: str) -> JSONResponse:
    identity = _caller(request, Scope.INTEL_READ)
    found = _readable(request, collection_id, identity)
    page = await request.app.state.deps.store.intel.objects(str(found.id), _filter(request))
    body: dict[str, Any] = {"more": page.more}
    if page.more:
        body["next"] = str(page.objects[-1].seq)
    if page.objects:
        body["objects"] = [o.body for o in page.objects]
    return _answer(body, headers=_added_headers(page))


@router.get(f"/{API_ROOT}/collections/{{collection_id}}/objects/{{object_id}}/")
async def get_object(request: Request, collection_id: str, object_id: str) -> JSONResponse:
    identity = _caller(request, Scope.INTEL_READ)
    found = _readable(request, collection_id, identity)
    where = _filter(request, ids=(object_id,))
    page = await request.app.state.deps.store.intel.objects(str(found.id), where)
    if not page.objects:
        raise TaxiiError(404, "Not Found", f"no object {object_id!r} in this collection")
    body: dict[str, Any] = {"more": page.more, "objects": [o.body for o in page.objects]}
    if page.more:
        body["next"] = str(page.objects[-1].seq)
    return _answer(body, headers=_added_headers(page))


@router.get(f"/{API_ROOT}/collections/{{collection_id}}/manifest/")
async def manifest(request: Request, collection_id: str) -> JSONResponse:
    identity = _caller(request, Scope.INTEL_READ)
    found = _readable(request, collection_id, identity)
    page = await request.app.state.deps.store.intel.objects(str(found.id), _filter(request))
    body: dict[str, Any] = {"more": page.more}
    if page.more:
        body["next"] = str(page.objects[-1].seq)
    if page.objects:
        body["objects"] = [
            {
                "id": o.stix_id,
                "date_added": _stamp(o.added_at),
                "version": o.version,
                "media_type": STIX,
            }
            for o in page.objects
        ]
    return _answer(body, headers=_added_headers(page))


@router.post(f"/{API_ROOT}/collections/{{collection_id}}/objects/")
async def add_objects(request: Request, collection_id: str) -> JSONResponse:
    identity = _caller(request, Scope.INTEL_WRITE)
    found = _config(request).collection(collection_id)
    if found is None or not (found.may_read(identity) or found.may_write(identity)):
        raise TaxiiError(404, "Not Found", f"no collection {collection_id!r} for this identity")
    if not found.may_write(identity):
        raise TaxiiError(403, "Forbidden", f"{identity} may not write to {found.alias!r}")
    media = request.headers.get("content-type", "").replace(" ", "").lower()
    if media.split(";")[0] != "application/taxii+json" or (
        "version=" in media and "version=2.1" not in media
    ):
        raise TaxiiError(415, "Unsupported Media Type", f"send {TAXII}, not {media or 'nothing'!r}")
    objects = _envelope_objects(await read_capped(request, MAX_CONTENT))
    requested = datetime.now(UTC)
    added = await request.app.state.deps.store.intel.add_objects(str(found.id), objects)
    status = {
        "id": str(uuid.uuid4()),
        "status": "complete",
        "request_timestamp": _stamp(requested),
        "total_count": len(objects),
        "success_count": len(objects),
        "successes": [
            {"id": o["id"], "version": o.get("modified") or o.get("created"), "message": m}
            for o, new in zip(objects, added, strict=True)
            for m in ["added" if new else "already in the collection"]
        ],
        "failure_count": 0,
        "pending_count": 0,
    }
    statuses: OrderedDict[str, dict[str, Any]] = request.app.state.taxii_statuses
    statuses[status["id"]] = status
    while len(statuses) > _KEPT_STATUSES:
        statuses.popitem(last=False)
    return _answer(status, 202)


@router.get(f"/{API_ROOT}/status/{{status_id}}/")
async def get_status(request: Request, status_id: str) -> JSONResponse:
    _caller(request, Scope.INTEL_WRITE)
    status = request.app.state.taxii_statuses.get(status_id)
    if status is None:
        raise TaxiiError(404, "Not Found", f"no status {status_id!r} (kept for recent POSTs)")
    return _answer(status)


def _envelope_objects(raw: bytes) -> list[dict[str, Any]]:
    """The objects of a TAXII envelope (or of a STIX bundle), each valid STIX 2.1; else a 400
    or 422 naming what is wrong."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as error:
        raise TaxiiError(400, "Bad Request", f"the body is not JSON: {error}") from None
    if not isinstance(body, dict) or not isinstance(body.get("objects"), list):
        raise TaxiiError(
            422, "Unprocessable", "the body is not a TAXII envelope: no `objects` list"
        )
    objects = body["objects"]
    if not objects:
        raise TaxiiError(422, "Unprocessable", "the envelope's `objects` list is empty")
    problems = []
    for index, obj in enumerate(objects):
        if (problem := _stix_problem(obj)) is not None:
            name = obj.get("id", "no id") if isinstance(obj, dict) else "not an object"
            problems.append(f"objects[{index}] ({name}): {problem}")
    if problems:
        more = len(problems) - MAX_PROBLEMS
        text = "; ".join(problems[:MAX_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
        raise TaxiiError(422, "Unprocessable", f"not valid STIX 2.1, nothing was added: {text}")
    return objects


def _stix_problem(obj: object) -> str | None:
    if not isinstance(obj, dict):
        return "not a JSON object"
    if obj.get("spec_version") != "2.1":
        return f"spec_version {obj.get('spec_version')!r}: only STIX 2.1 is taken"
    if obj.get("type") == "bundle":
        return "a bundle inside an envelope: send its objects"
    try:
        stix2.parse(obj, allow_custom=True, version="2.1")  # partners' x- properties are fine
    except (STIXError, ValueError, TypeError, KeyError) as error:
        return " ".join(str(error).split())[:300]
    return None


def _filter(request: Request, ids: tuple[str, ...] = ()) -> ObjectFilter:
    query = request.query_params
    unknown = sorted(
        set(query)
        - {
            "added_after",
            "limit",
            "next",
            "match[id]",
            "match[type]",
            "match[version]",
            "match[spec_version]",
        }
    )
    if unknown:
        raise TaxiiError(400, "Bad Request", f"unsupported parameter(s): {', '.join(unknown)}")
    added_after = None
    if (raw := query.get("added_after")) is not None:
        try:
            added_after = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise TaxiiError(
                400, "Bad Request", f"added_after {raw!r} is not a timestamp"
            ) from None
        if added_after.tzinfo is None:
            added_after = added_after.replace(tzinfo=UTC)
    limit = _int(query.get("limit"), "limit", DEFAULT_LIMIT)
    if not 1 <= limit <= MAX_LIMIT:
        raise TaxiiError(400, "Bad Request", f"limit must be between 1 and {MAX_LIMIT}")
    version = query.get("match[version]", "last")
    if version not in {v.value for v in VersionMatch}:
        raise TaxiiError(400, "Bad Request", "match[version] is one of last, first, all")
    spec = query.get("match[spec_version]", "2.1")
    if "2.1" not in spec.split(","):
        raise TaxiiError(400, "Bad Request", "this collection holds STIX 2.1 only")
    return ObjectFilter(
        added_after=added_after,
        after_seq=_int(query.get("next"), "next", 0),
        ids=ids or _list(query.get("match[id]")),
        types=_list(query.get("match[type]")),
        version=VersionMatch(version),
        limit=min(limit, MAX_LIMIT),
    )


def _int(raw: str | None, name: str, default: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 12:
        raise TaxiiError(400, "Bad Request", f"{name} {raw[:40]!r} is not a number")
    return int(raw)


def _list(raw: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in raw.split(",") if v.strip()) if raw else ()


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _added_headers(page: Page) -> dict[str, str]:
    if not page.objects:
        return {}
    added = [o.added_at for o in page.objects]
    return {
        "X-TAXII-Date-Added-First": _stamp(min(added)),
        "X-TAXII-Date-Added-Last": _stamp(max(added)),
    }
