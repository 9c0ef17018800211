"""The console's Jinja2 environment: autoescape on for every template (alert text is hostile),
the security headers on every page, the session's CSRF token and flash messages in the context."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.responses import Response

from orchestrator.console.auth import CSRF_FIELD, SECURITY_HEADERS
from orchestrator.console.sessions import Session
from orchestrator.text import neutralise

TEMPLATES_DIR = Path(__file__).parent / "templates"
# Sent by the lists' auto refresh (static/console.js): it moves rows in and drops the rest of the
# page, so it must leave the flash messages for the page the browser shows next. Otherwise a
# refresh that runs while a decision is being recorded takes the decision's message with it.
REFRESH_HEADER = "x-garrison-refresh"
STATIC_DIR = Path(__file__).parent / "static"


def _when(at: datetime | None) -> str:
    return "-" if at is None else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_ENV = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,  # every template, whatever its name: no `|safe` anywhere in them
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["when"] = _when
_ENV.filters["neutralise"] = neutralise  # a model's text: no link or mention it wrote stays one
templates = Jinja2Templates(env=_ENV)


def page(
    request: Request,
    name: str,
    session: Session | None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """Render `name` with the session's user, CSRF token and flash messages (shown once; an auto
    refresh shows none and leaves them)."""
    flash = []
    if session is not None and REFRESH_HEADER not in request.headers:
        flash, session.flash = session.flash, []
    response = templates.TemplateResponse(
        request,
        name,
        {
            "user": session.user if session else None,
            "csrf_field": CSRF_FIELD,
            "csrf_token": session.csrf if session else "",
            "flash": flash,
            "refresh_s": request.app.state.deps.console.refresh_s,
            "oidc_enabled": request.app.state.deps.console.oidc is not None,
            **context,
        },
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    return response
