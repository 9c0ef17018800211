"""`/console/oidc/start` and `/console/oidc/callback`: sign-in through an OIDC provider (oidc.py).

Both are open (no console session yet): `start` keeps a pending flow and sends the browser to the
provider with a short-lived flow cookie (HttpOnly, Secure, `__Host-` prefixed, SameSite=Lax: the
provider's redirect back is a cross-site navigation, on which a Strict cookie would not travel);
`callback` takes that flow once, and only a right `state`, code and ID token for a person of the
approver directory start a signed-in session under a new id. Its page then moves on to the
incidents from our own origin (a same-site navigation, so the Strict session cookie is sent).
Every refusal is audited (`console.request_refused`) and said on the sign-in page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from orchestrator.console.auth import (
    SECURITY_HEADERS,
    ConsoleConfig,
    config_of,
    refuse,
    session_of,
    set_session_cookie,
    start_session,
)
from orchestrator.console.oidc import FLOW_TTL_S, OidcError, OidcProvider
from orchestrator.console.rendering import page
from orchestrator.server.refusals import clip

router = APIRouter(prefix="/console/oidc")
START_PATH = "/console/oidc/start"
CALLBACK_PATH = "/console/oidc/callback"
SECURE_FLOW_COOKIE = "__Host-garrison-oidc"
PLAIN_FLOW_COOKIE = "garrison-oidc"
HOME = "/console/incidents"
MAX_PARAM = 2_048


@router.get("/start", include_in_schema=False)
async def start(request: Request) -> Response:
    config = config_of(request)
    provider = config.oidc
    if provider is None:
        return await _refused(request, config, "single sign-on is not configured here", 404)
    redirect_uri = provider.config.redirect_url or str(request.base_url).rstrip("/") + (
        CALLBACK_PATH
    )
    try:
        flow_id, url = await provider.start(redirect_uri)
    except OidcError as error:
        return await _refused(request, config, f"the sign-in provider is unavailable: {error}", 502)
    response = RedirectResponse(url, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    response.set_cookie(
        _flow_cookie(config),
        flow_id,
        max_age=int(FLOW_TTL_S),
        path="/",
        secure=config.cookie_secure,
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/callback", include_in_schema=False)
async def callback(request: Request) -> Response:
    config = config_of(request)
    provider: OidcProvider | None = config.oidc
    if provider is None:
        return await _refused(request, config, "single sign-on is not configured here", 404)
    params = request.query_params
    flow = provider.take(request.cookies.get(_flow_cookie(config)))
    if flow is None:
        return await _refused(request, config, "no sign-in was started here, or it expired", 403)
    if params.get("error"):
        reason = clip(str(params.get("error_description") or params["error"]), 200)
        return await _refused(request, config, f"the provider refused: {reason}", 403)
    deps = request.app.state.deps
    try:
        identity, claims = await provider.finish(
            flow,
            str(params.get("state") or "")[:MAX_PARAM],
            str(params.get("code") or "")[:MAX_PARAM],
            deps.approvals.directory,
        )
    except OidcError as error:
        return await _refused(request, config, str(error), 401)
    signed = await start_session(
        request,
        await session_of(request),
        identity,
        method="oidc",
        issuer=clip(str(claims.get("iss")), 256),
        subject=clip(str(claims.get("sub")), 256),
    )
    response = page(request, "signed_in.html", signed, home=HOME)
    set_session_cookie(response, config, signed)
    response.delete_cookie(
        _flow_cookie(config), path="/", secure=config.cookie_secure, httponly=True, samesite="lax"
    )
    return response


async def _refused(request: Request, config: ConsoleConfig, reason: str, status: int) -> Response:
    await refuse(request, "-", f"single sign-on: {reason}", status=status)
    session = await session_of(request)
    if session is not None and session.user is not None:  # already signed in: stays so
        session.flash.append(("refused", f"Single sign-on refused: {reason}."))
        await config.sessions.save(session)
        response: Response = RedirectResponse(HOME, status_code=303)
        response.headers.update(SECURITY_HEADERS)
        return response
    if session is None:
        # the sign-in page's form needs an anonymous session
        session = await config.sessions.start()
    response = page(
        request, "sign_in.html", session, status_code=status, error=f"Not signed in: {reason}."
    )
    set_session_cookie(response, config, session)
    response.delete_cookie(
        _flow_cookie(config), path="/", secure=config.cookie_secure, httponly=True, samesite="lax"
    )
    return response


def _flow_cookie(config: ConsoleConfig) -> str:
    return SECURE_FLOW_COOKIE if config.cookie_secure else PLAIN_FLOW_COOKIE
