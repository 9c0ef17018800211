"""Who is asking: the console's session cookie, the CSRF check of every form, the refusals.

Every console route depends on `signed_in` (the sign-in page and the static assets excepted):
without a live signed-in session a GET is sent to the sign-in page (303) and anything else is
refused 403. Every POST depends on `checked_form`: its `csrf_token` field must equal the session's
token (a synchronizer token, compared in constant time), else 403 and nothing is done.

The cookie is HttpOnly, SameSite=Strict and Secure, named with the `__Host-` prefix (the browser
then refuses it from plain http, from a sub-domain, or with another path). `cookie_secure` off
(GARRISON_CONSOLE__COOKIE_SECURE=false) drops Secure and the prefix, for a plain-http server on
the loopback during development only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from orchestrator.console.oidc import OidcProvider
from orchestrator.console.playbook_progress import ProgressReader
from orchestrator.console.sessions import Session, SessionRecords, SessionStore
from orchestrator.console.throttle import SignInThrottle
from orchestrator.server.refusals import Refusal, clip
from orchestrator.store.records import AuditEvent

SECURE_COOKIE = "__Host-garrison-console"
PLAIN_COOKIE = "garrison-console"
CSRF_FIELD = "csrf_token"
SIGN_IN_PATH = "/console/sign-in"
DEFAULT_BASELINES = Path(__file__).parents[2] / "simulations" / "baselines"
REFUSED = "console.request_refused"
# Nothing but our own files: alert text that slipped through escaping still could not run
# a script, load an image from elsewhere, post a form elsewhere, or be framed.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


@dataclass
class ConsoleConfig:
    """What the console needs beyond the server's own dependencies."""

    passwords_file: Path = Path(".garrison/console-passwords.yaml")
    cookie_secure: bool = True
    idle_s: float = 1_800.0
    max_s: float = 43_200.0
    temporal_ui_url: str | None = None
    temporal_namespace: str = "default"
    refresh_s: float = 15.0  # how often the lists refresh themselves in the browser
    # The committed scorecards a kept simulation run may be diffed against (`*.json`).
    baselines_dir: Path | None = DEFAULT_BASELINES
    # Reads the playbooks' LangGraph checkpoints (on the store's database) for the incident
    # page's playbook progress; None: the page does not show it.
    progress: ProgressReader | None = None
    oidc: OidcProvider | None = None  # sign-in through an OIDC provider besides local accounts
    sessions: SessionStore = field(init=False)
    throttle: SignInThrottle = field(init=False)

    def __post_init__(self) -> None:
        self.sessions = SessionStore(self.idle_s, self.max_s)
        self.throttle = SignInThrottle()

    def keep_sessions_in(self, records: SessionRecords) -> None:
        self.sessions = SessionStore(self.idle_s, self.max_s, records)

    async def aclose(self) -> None:
        if self.progress is not None:
            await self.progress.aclose()

    @property
    def cookie_name(self) -> str:
        return SECURE_COOKIE if self.cookie_secure else PLAIN_COOKIE


class SignInRequired(Exception):
    """No signed-in session: GET goes to the sign-in page, anything else is refused."""


class RequestRefused(Exception):
    """A request refused with 403 (a missing or wrong CSRF token); the message says why."""


def config_of(request: Request) -> ConsoleConfig:
    return request.app.state.deps.console


async def session_of(request: Request) -> Session | None:
    config = config_of(request)
    return await config.sessions.get(request.cookies.get(config.cookie_name))


def set_session_cookie(response: Response, config: ConsoleConfig, session: Session) -> None:
    response.set_cookie(
        config.cookie_name,
        session.id,
        max_age=int(config.max_s),
        path="/",
        secure=config.cookie_secure,
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response, config: ConsoleConfig) -> None:
    response.delete_cookie(
        config.cookie_name, path="/", secure=config.cookie_secure, httponly=True, samesite="strict"
    )


async def signed_in(request: Request) -> AsyncIterator[Session]:
    """The signed-in session; its messages are kept when the page is done with them (added by
    a decision, or shown), before the response leaves (`scope="function"`)."""
    session = await session_of(request)
    if session is None or session.user is None:
        raise SignInRequired
    yield session
    await config_of(request).sessions.save(session)


Signed = Annotated[Session, Depends(signed_in, scope="function")]


async def checked_form(request: Request, session: Signed) -> FormData:
    """The POSTed form, once its CSRF token matched the session's."""
    form = await request.form()
    token = form.get(CSRF_FIELD)
    if not session.csrf_ok(token if isinstance(token, str) else None):
        await refuse(request, session.user or "-", "the form's CSRF token is missing or wrong")
        raise RequestRefused("this form is stale or was not sent from the console: reload it")
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


async def start_session(
    request: Request, previous: Session | None, identity: str, **detail: str
) -> Session:
    """Start `identity`'s session in place of `previous` (a new id: no fixation) and audit the
    sign-in (`console.signed_in`, with the client and the method's own details)."""
    signed = await config_of(request).sessions.sign_in(previous, identity)
    client = request.client.host if request.client else "unknown"
    await request.app.state.deps.store.append_audit(
        AuditEvent(
            type="console.signed_in",
            actor=identity,
            outcome="ok",
            source="channel:console",
            detail={"client": client, **detail},
        )
    )
    return signed


async def refuse(request: Request, actor: str, reason: str, status: int = 403) -> None:
    """Audit a refused console request (rate-limited per kind and client, as the API's)."""
    client = request.client.host if request.client else "unknown"
    await request.app.state.deps.refusals.record(
        Refusal(
            type=REFUSED,
            kind=str(status),
            status=status,
            source=client,
            channel="console",
            actor=clip(actor, 128),
            method=request.method,
            path=request.url.path,
            reason=reason,
        )
    )
