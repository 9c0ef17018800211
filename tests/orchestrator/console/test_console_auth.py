"""The console's sign-in, sessions and CSRF (docs/analysts.md, "The console"): cookie flags, no
session fixation, a CSRF token checked on every POST, and every console route refused without a
signed-in session (the app's routes are enumerated, so a new route is covered when it is added)."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from orchestrator.console.auth import PLAIN_COOKIE, SECURE_COOKIE, SIGN_IN_PATH
from orchestrator.console.passwords import PasswordsError, set_password, verify_sign_in
from orchestrator.console.routes import OPEN_PATHS, STATIC_PREFIX
from orchestrator.console.sessions import SessionStore
from orchestrator.console.throttle import SignInThrottle
from tests.orchestrator.console.seed import (
    DIRECTORY,
    PASSWORD,
    client,
    console,
    csrf_of,
    passwords,
    seed_incident,
    sign_in,
)

SAMPLE_PARAMS = {
    "incident_id": "inc-1",
    "approval_id": "apr-0123456789abcdef",
    "run_id": "0123abcd",
    "session_id": "0123abcd",
}


def set_cookie_of(response: object) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):  # type: ignore[attr-defined]
        jar.load(header)
    return jar


async def test_the_session_cookie_is_httponly_secure_strict_and_host_prefixed(
    tmp_path: Path,
) -> None:
    async with console(tmp_path) as c, client(c.app) as http:
        page = await http.get("/console/sign-in")
        header = page.headers["set-cookie"]
        assert header.startswith(f"{SECURE_COOKIE}=")
        lowered = header.lower()
        assert "httponly" in lowered and "secure" in lowered and "samesite=strict" in lowered
        assert "path=/" in lowered and "domain=" not in lowered
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        assert page.headers["x-frame-options"] == "DENY"


async def test_cookie_secure_off_is_the_loopback_development_cookie(tmp_path: Path) -> None:
    async with console(tmp_path, secure=False) as c, client(c.app, "http://127.0.0.1") as http:
        header = (await http.get("/console/sign-in")).headers["set-cookie"]
        assert header.startswith(f"{PLAIN_COOKIE}=")
        assert "secure" not in header.lower() and "httponly" in header.lower()


async def test_sign_in_rotates_the_session_id_and_the_planted_one_is_worthless(
    tmp_path: Path,
) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c, client(c.app) as http:
        planted = (await http.get("/console/sign-in")).cookies[SECURE_COOKIE]
        answer = await sign_in(http, "Alice")  # any spelling of the one identity
        assert answer.status_code == 303 and answer.headers["location"] == "/console/incidents"
        fresh = set_cookie_of(answer)[SECURE_COOKIE].value
        assert fresh != planted
        page = await http.get("/console/incidents")
        assert page.status_code == 200 and "alice" in page.text
        # An attacker who planted (or read) the pre-sign-in id gets nothing with it.
        async with client(c.app) as attacker:
            attacker.cookies.set(SECURE_COOKIE, planted, domain="console.test")
            refused = await attacker.get("/console/incidents")
            assert refused.status_code == 303 and refused.headers["location"] == SIGN_IN_PATH
        audit = await c.store.audit_tail(5)
        assert any(e.type == "console.signed_in" and e.actor == "alice" for e in audit)


@pytest.mark.parametrize(
    ("user", "password"),
    [("alice", "wrong password here"), ("nobody", PASSWORD), ("mallory", PASSWORD), ("", "")],
)
async def test_a_wrong_name_or_password_is_refused_alike(
    tmp_path: Path, user: str, password: str
) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c, client(c.app) as http:
        answer = await sign_in(http, user, password)
        assert answer.status_code == 401 and "Wrong name or password." in answer.text
        assert (await http.get("/console/incidents")).status_code == 303


def test_only_people_of_the_directory_get_a_password_and_a_removed_one_cannot_sign_in(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.yaml"
    with pytest.raises(PasswordsError, match="not in the approver directory"):
        set_password(path, DIRECTORY, "mallory", PASSWORD)
    with pytest.raises(PasswordsError, match="shorter than"):
        set_password(path, DIRECTORY, "alice", "short")
    set_password(path, DIRECTORY, "alice", PASSWORD)
    text = path.read_text(encoding="utf-8")
    assert "$argon2id$" in text and PASSWORD not in text
    assert path.stat().st_mode & 0o077 == 0
    assert verify_sign_in(path, DIRECTORY, "ALICE", PASSWORD) == "alice"
    gone = DIRECTORY.model_copy(update={"groups": {}})
    assert verify_sign_in(path, gone, "alice", PASSWORD) is None


async def test_sign_in_without_the_forms_csrf_token_is_refused(tmp_path: Path) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c, client(c.app) as http:
        await http.get("/console/sign-in")
        answer = await http.post("/console/sign-in", data={"user": "alice", "password": PASSWORD})
        assert answer.status_code == 403 and "expired or was not sent" in answer.text
        assert (await http.get("/console/incidents")).status_code == 303
        # The form shown with the refusal works (its token belongs to the cookie's session).
        again = await http.post(
            "/console/sign-in",
            data={"csrf_token": csrf_of(answer.text), "user": "alice", "password": PASSWORD},
        )
        assert again.status_code == 303


async def test_every_post_needs_the_sessions_csrf_token(tmp_path: Path) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c, client(c.app) as http:
        approval = await seed_incident(c.store, "inc-1")
        await sign_in(http, "alice")
        page = await http.get("/console/approvals")
        token = csrf_of(page.text)
        path = f"/console/approvals/{approval.id}/decision"
        form = {"decision": "approve", "action_hash": approval.action_hash}
        for bad in ({}, {"csrf_token": "x" * 43}, {"csrf_token": ""}):
            answer = await http.post(path, data=form | bad)
            assert answer.status_code == 403, bad
            assert "not sent from the console" in answer.text
        assert (await http.post("/console/sign-out", data={})).status_code == 403
        decided = [e for e in await c.store.audit_entries(incident_id="inc-1")]
        assert not any(e.type.startswith("approval.decision") for e in decided)
        assert any(e.type == "console.request_refused" for e in await c.store.audit_tail(10))
        # With the token, the decision reaches the approval service.
        answer = await http.post(path, data=form | {"csrf_token": token})
        assert answer.status_code == 303
        out = await http.post("/console/sign-out", data={"csrf_token": token})
        assert out.status_code == 303 and (await http.get("/console/approvals")).status_code == 303


def console_routes(app: object) -> list[tuple[str, str]]:
    """Every (method, path) of the app under /console. FastAPI 0.16x wraps an included router
    (`original_router`, its prefix in `include_context`); older releases copied its routes."""
    found: list[tuple[str, str]] = []

    def walk(routes: list[object], prefix: str) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                context = getattr(route, "include_context", None)
                walk(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
            elif isinstance(route, APIRoute) and (prefix + route.path).startswith("/console"):
                found.extend((m, prefix + route.path) for m in sorted(route.methods))

    walk(app.routes, "")  # type: ignore[attr-defined]
    return found


async def test_every_console_route_refuses_a_request_without_a_signed_in_session(
    tmp_path: Path,
) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c:
        routes = console_routes(c.app)
        assert len(routes) >= 8, routes  # the enumeration sees the console
        await seed_incident(c.store, "inc-1")
        anonymous = client(c.app)
        half_way = client(c.app)  # an anonymous session (sign-in page visited), not signed in
        await half_way.get("/console/sign-in")
        for http in (anonymous, half_way):
            for method, template in routes:
                path = template.format(**SAMPLE_PARAMS)
                if template in OPEN_PATHS:
                    continue
                answer = await http.request(method, path, data={"csrf_token": "guess"})
                if method in ("GET", "HEAD"):
                    assert answer.status_code == 303, (method, path)
                    assert answer.headers["location"] == SIGN_IN_PATH
                else:
                    assert answer.status_code == 403, (method, path, answer.status_code)
                assert "inc-1" not in answer.text and "WS-7" not in answer.text
            css = await http.get(f"{STATIC_PREFIX}/console.css")
            assert css.status_code == 200  # the static assets are open (no data in them)
            await http.aclose()


async def test_sessions_end_when_idle_and_when_too_old() -> None:
    now = [0.0]
    store = SessionStore(idle_s=60, max_s=300, clock=lambda: now[0])
    session = await store.start("alice")
    now[0] = 59
    assert (alive := await store.get(session.id)) is not None and alive.user == "alice"
    now[0] = 130
    assert await store.get(session.id) is None  # idle 71 s
    old = await store.start("alice")
    for t in range(150, 460, 50):
        now[0] = t
        alive = await store.get(old.id)
    assert alive is None  # past max_s though never idle
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", old.id)


async def test_repeated_failures_pause_that_name_from_that_address_only(tmp_path: Path) -> None:
    passwords(tmp_path / "console-passwords.yaml", "alice")
    async with console(tmp_path) as c, client(c.app) as http:
        for _ in range(5):
            assert (await sign_in(http, "alice", "not the password")).status_code == 401
        paused = await sign_in(http, "alice")  # the right password, but paused
        assert paused.status_code == 429 and "Too many failed sign-ins" in paused.text
        assert (await sign_in(http, "bob", "not the password")).status_code == 401  # other name


def test_the_throttle_forgets_failures_past_its_window() -> None:
    now = [0.0]
    throttle = SignInThrottle(limit=2, window_s=60, clock=lambda: now[0])
    throttle.failed("10.0.0.1", "Alice")
    throttle.failed("10.0.0.1", "alice")
    assert throttle.wait_s("10.0.0.1", "alice") == 60
    assert throttle.wait_s("10.0.0.2", "alice") == 0
    now[0] = 61
    assert throttle.wait_s("10.0.0.1", "alice") == 0
    throttle.failed("10.0.0.1", "alice")
    throttle.succeeded("10.0.0.1", "alice")
    assert throttle.wait_s("10.0.0.1", "alice") == 0
