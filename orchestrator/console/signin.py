"""`/console/sign-in` and `/console/sign-out`: local accounts of the approver directory.

The sign-in page starts an anonymous session (its CSRF token guards the form); a right name and
password end it and start a signed-in one under a new id. A wrong name and a wrong password get
the same answer, after the same Argon2 work, and the refusal is audited (rate-limited). Five
failures for one name from one address within 15 minutes pause that pair (`throttle.py`)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from orchestrator.console.auth import (
    CSRF_FIELD,
    SECURITY_HEADERS,
    CheckedForm,
    clear_session_cookie,
    config_of,
    refuse,
    session_of,
    set_session_cookie,
    start_session,
)
from orchestrator.console.passwords import verify_sign_in
from orchestrator.console.rendering import page

router = APIRouter(prefix="/console")
HOME = "/console/incidents"
MAX_FIELD = 256


@router.get("/sign-in", include_in_schema=False)
async def sign_in_page(request: Request) -> Response:
    config = config_of(request)
    session = await session_of(request)
    if session is not None and session.user is not None:
        return _redirect(HOME)
    if session is None:
        session = await config.sessions.start()
    response = page(request, "sign_in.html", session, error=None)
    set_session_cookie(response, config, session)
    return response


@router.post("/sign-in", include_in_schema=False)
async def sign_in(request: Request) -> Response:
    config = config_of(request)
    session = await session_of(request)
    form = await request.form()
    token = form.get(CSRF_FIELD)
    if session is None or not session.csrf_ok(token if isinstance(token, str) else None):
        await refuse(request, "-", "sign-in without the sign-in page's CSRF token")
        fresh = session if session is not None else await config.sessions.start()
        response = page(
            request,
            "sign_in.html",
            fresh,
            status_code=403,
            error="This sign-in form expired or was not sent from the console: try again.",
        )
        set_session_cookie(response, config, fresh)  # the form shown again can be sent
        return response
    user = str(form.get("user") or "")[:MAX_FIELD]
    password = str(form.get("password") or "")[:MAX_FIELD]
    client = request.client.host if request.client else "unknown"
    wait_s = config.throttle.wait_s(client, user)
    if wait_s > 0:
        await refuse(request, user or "-", "too many failed sign-ins", status=429)
        minutes = max(1, round(wait_s / 60))
        return page(
            request,
            "sign_in.html",
            session,
            status_code=429,
            error=f"Too many failed sign-ins for this name from here: try again in {minutes} min.",
        )
    deps = request.app.state.deps
    identity = await asyncio.to_thread(
        verify_sign_in, config.passwords_file, deps.approvals.directory, user, password
    )
    if identity is None:
        config.throttle.failed(client, user)
        await refuse(request, user or "-", "wrong name or password", status=401)
        return page(
            request, "sign_in.html", session, status_code=401, error="Wrong name or password."
        )
    config.throttle.succeeded(client, user)
    signed = await start_session(request, session, identity)
    response = _redirect(HOME)
    set_session_cookie(response, config, signed)
    return response


@router.post("/sign-out", include_in_schema=False)
async def sign_out(request: Request, _form: CheckedForm) -> Response:
    config = config_of(request)
    session = await session_of(request)
    if session is not None:
        await config.sessions.end(session.id)
    response = _redirect("/console/sign-in")
    clear_session_cookie(response, config)
    return response


def _redirect(to: str) -> Response:
    response = RedirectResponse(to, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response
