"""The console on the server's app: its pages, its sign-in, its static assets, its refusals.

Open without a session: the sign-in page (GET and POST), the OIDC sign-in's start and callback,
and `/console/static/*` (the stylesheet
and the script, shipped in the package). Everything else under `/console` needs a signed-in
session (a test enumerates the app's routes to hold this)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from orchestrator.console.assignment import router as assignment_router
from orchestrator.console.auth import (
    SECURITY_HEADERS,
    SIGN_IN_PATH,
    RequestRefused,
    SignInRequired,
    refuse,
)
from orchestrator.console.evidence_pages import router as evidence_router
from orchestrator.console.oidc_routes import CALLBACK_PATH, START_PATH
from orchestrator.console.oidc_routes import router as oidc_router
from orchestrator.console.pages import router as pages_router
from orchestrator.console.rendering import STATIC_DIR
from orchestrator.console.signin import router as signin_router
from orchestrator.console.simulation_pages import router as simulations_router
from orchestrator.console.training_pages import router as training_router

STATIC_PREFIX = "/console/static"
# And everything under STATIC_PREFIX. The OIDC flow's two steps start a session: none needed.
OPEN_PATHS = frozenset({SIGN_IN_PATH, START_PATH, CALLBACK_PATH})


def install_console(app: FastAPI) -> None:
    app.include_router(signin_router)
    app.include_router(oidc_router)
    app.include_router(pages_router)
    app.include_router(evidence_router)
    app.include_router(assignment_router)
    app.include_router(simulations_router)
    app.include_router(training_router)
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="console-static")

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, _error: SignInRequired) -> Response:
        if request.method in ("GET", "HEAD"):
            response: Response = RedirectResponse(SIGN_IN_PATH, status_code=303)
        else:
            await refuse(request, "-", "no signed-in session")
            response = PlainTextResponse("sign in first", status_code=403)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(RequestRefused)
    async def request_refused(_request: Request, error: RequestRefused) -> Response:
        response = PlainTextResponse(str(error), status_code=403)
        response.headers.update(SECURITY_HEADERS)
        return response
