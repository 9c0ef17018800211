"""Console sign-in through OIDC, against a provider written for the tests on the loopback
(`oidc_provider.py`): the code flow with PKCE, state and nonce signs a person of the approver
directory in; a forged, expired, unsigned or HMAC-keyed token, another audience, another nonce,
a mismatched state, a replayed callback, an unverified email and a person the directory does not
name are refused, audited, and leave no signed-in session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from orchestrator.approvals.directory import ApproverDirectory, ApproverGroup
from orchestrator.console.oidc import OidcConfig, OidcProvider
from orchestrator.settings import ConsoleSettings
from tests.orchestrator.console.oidc_provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    Provider,
    serve_provider,
)
from tests.orchestrator.console.seed import Console, client, console


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with serve_provider() as served:
        yield served


@pytest.fixture(autouse=True)
def fresh(provider: Provider) -> None:
    provider.reset()


def configure(
    c: Console,
    provider: Provider,
    claim: str = "preferred_username",
    clock: list[float] | None = None,
) -> None:
    c.deps.console.oidc = OidcProvider(
        OidcConfig(
            discovery_url=provider.discovery_url,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            claim=claim,  # type: ignore[arg-type]
        ),
        **({"clock": lambda: clock[0]} if clock is not None else {}),
    )


async def sign_in_through(
    http: httpx.AsyncClient, provider: Provider, state: str | None = None
) -> tuple[httpx.Response, str]:
    """The browser's part: start, the provider's authorize (which signs in at once), callback.
    The callback's response and its query (to replay it)."""
    started = await http.get("/console/oidc/start")
    assert started.status_code == 303, started.text
    async with httpx.AsyncClient() as browser:  # to the provider, over the loopback
        authorized = await browser.get(started.headers["location"])
    assert authorized.status_code == 303
    back = urlsplit(authorized.headers["location"])
    query = back.query
    if state is not None:
        code = parse_qs(query)["code"][0]
        query = f"code={code}&state={state}"
    return await http.get(f"{back.path}?{query}"), query


async def signed_in_as(http: httpx.AsyncClient) -> str | None:
    page = await http.get("/console/incidents")
    if page.status_code != 200:
        return None
    return page.text.split('<span class="who">', 1)[1].split("<", 1)[0]


async def test_the_code_flow_with_pkce_signs_a_person_of_the_directory_in(
    tmp_path: Path, provider: Provider
) -> None:
    provider.claims = {"preferred_username": "Alice"}
    async with console(tmp_path) as c, client(c.app) as http:
        configure(c, provider)
        assert 'href="/console/oidc/start"' in (await http.get("/console/sign-in")).text
        answer, _ = await sign_in_through(http, provider)

        assert answer.status_code == 200, answer.text
        assert '<meta http-equiv="refresh" content="0; url=/console/incidents">' in answer.text
        asked = provider.authorized[-1]
        assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
        assert asked["client_id"] == CLIENT_ID and asked["scope"] == "openid email profile"
        assert len(asked["state"]) >= 43 and len(asked["nonce"]) >= 43
        assert asked["redirect_uri"] == "https://console.test/console/oidc/callback"
        sent = provider.token_requests[-1]
        assert "client_id" not in sent and len(sent["code_verifier"]) >= 43  # secret in Basic
        assert await signed_in_as(http) == "alice"
        audit = await c.store.audit_tail(5)
        signed = [e for e in audit if e.type == "console.signed_in"]
        assert signed and signed[-1].actor == "alice" and signed[-1].detail["method"] == "oidc"


async def test_the_flow_cookie_is_httponly_secure_lax_and_host_prefixed(
    tmp_path: Path, provider: Provider
) -> None:
    async with console(tmp_path) as c, client(c.app) as http:
        configure(c, provider)
        started = await http.get("/console/oidc/start")
        cookies = started.headers.get_list("set-cookie")
        cookie = next(h for h in cookies if h.startswith("__Host-garrison-oidc=")).lower()
        for flag in ("httponly", "secure", "samesite=lax", "path=/", "max-age=600"):
            assert flag in cookie
        assert "domain=" not in cookie


def _expired(claims: dict[str, Any]) -> None:
    claims["exp"] = claims["iat"] - 3_600
    claims["iat"] -= 7_200


REFUSALS = {
    "forged signature": ({"forge": True}, "signature does not verify"),
    "expired": ({"tamper": _expired}, "has expired"),
    "wrong audience": ({"tamper": lambda c: c.update(aud="another-app")}, "another client"),
    "wrong nonce": ({"tamper": lambda c: c.update(nonce="n" * 43)}, "nonce is not this sign-in"),
    "wrong issuer": ({"tamper": lambda c: c.update(iss="https://evil.test")}, "another issuer"),
    "no nonce": ({"tamper": lambda c: c.pop("nonce")}, "nonce"),
    "unsigned": ({"algorithm": "none"}, "algorithm 'none' is not accepted"),
    "hmac keyed": ({"algorithm": "HS256"}, "algorithm 'HS256' is not accepted"),
    "two audiences": (
        {"tamper": lambda c: c.update(aud=[CLIENT_ID, "other"], azp="other")},
        "several audiences",
    ),
    "unknown user": ({"claims": {"preferred_username": "mallory"}}, "not a person of"),
    "no claim": ({"claims": {"email": "alice@example.test"}}, "no 'preferred_username'"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_a_bad_id_token_or_user_is_refused(
    tmp_path: Path, provider: Provider, case: str
) -> None:
    setup, reason = REFUSALS[case]
    provider.claims = {"preferred_username": "alice"}
    for name, value in setup.items():
        setattr(provider, name, value)
    async with console(tmp_path) as c, client(c.app) as http:
        configure(c, provider)
        answer, _ = await sign_in_through(http, provider)

        assert answer.status_code == 401, answer.text
        assert reason in answer.text.replace("&#39;", "'")
        assert await signed_in_as(http) is None
        refused = [e for e in await c.store.audit_tail(10) if e.type == "console.request_refused"]
        assert refused and reason in refused[-1].outcome


async def test_a_state_mismatch_and_a_replayed_callback_are_refused(
    tmp_path: Path, provider: Provider
) -> None:
    provider.claims = {"preferred_username": "alice"}
    async with console(tmp_path) as c, client(c.app) as http:
        configure(c, provider)
        mismatched, _ = await sign_in_through(http, provider, state="s" * 43)
        assert mismatched.status_code == 401 and "state does not match" in mismatched.text
        assert await signed_in_as(http) is None

        fine, query = await sign_in_through(http, provider)
        assert fine.status_code == 200 and await signed_in_as(http) == "alice"
        replayed = await http.get(f"/console/oidc/callback?{query}")  # the flow was used
        assert replayed.status_code == 303  # signed in already: back home, refusal flashed
        home = await http.get("/console/incidents")
        assert "no sign-in was started here" in home.text

    (tmp_path / "other").mkdir()
    async with console(tmp_path / "other") as c, client(c.app) as stranger:
        configure(c, provider)
        # Another browser (no flow cookie) presenting a code and state: a login CSRF attempt.
        answer = await stranger.get(f"/console/oidc/callback?{query}")
        assert answer.status_code == 403 and await signed_in_as(stranger) is None


async def test_a_rotated_key_is_fetched_and_an_old_flow_expires(
    tmp_path: Path, provider: Provider
) -> None:
    provider.claims = {"preferred_username": "alice"}
    now = [1_000_000.0]
    async with console(tmp_path) as c, client(c.app) as http:
        configure(c, provider, clock=now)
        assert (await sign_in_through(http, provider))[0].status_code == 200
        provider.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        provider.kid = "test-key-2"
        http.cookies.clear()
        # The JWKS was read a moment ago: not read again at once for a key it lacks.
        soon, _ = await sign_in_through(http, provider)
        assert soon.status_code == 401 and "does not list" in soon.text
        now[0] += 61
        later, _ = await sign_in_through(http, provider)
        assert later.status_code == 200 and await signed_in_as(http) == "alice"

        http.cookies.clear()
        started = await http.get("/console/oidc/start")
        async with httpx.AsyncClient() as browser:
            back = urlsplit((await browser.get(started.headers["location"])).headers["location"])
        now[0] += 601
        expired = await http.get(f"{back.path}?{back.query}")
        assert expired.status_code == 403 and "or it expired" in expired.text


async def test_an_email_claim_maps_to_the_directory_and_must_be_verified(
    tmp_path: Path, provider: Provider
) -> None:
    async with console(tmp_path) as c, client(c.app) as http:
        configure(c, provider, claim="email")
        c.deps.approvals.directory = ApproverDirectory(
            groups={"soc-primary": ApproverGroup(members=["alice@example.test"])}
        )
        provider.claims = {"email": "alice@example.test", "email_verified": False}
        refused, _ = await sign_in_through(http, provider)
        assert refused.status_code == 401 and "not verified" in refused.text

        provider.claims = {"email": "Alice@Example.test", "email_verified": True}
        answer, _ = await sign_in_through(http, provider)
        assert answer.status_code == 200
        assert await signed_in_as(http) == "alice@example.test"


async def test_without_a_provider_configured_the_flow_is_not_offered(tmp_path: Path) -> None:
    async with console(tmp_path) as c, client(c.app) as http:
        assert "/console/oidc/start" not in (await http.get("/console/sign-in")).text
        assert (await http.get("/console/oidc/start")).status_code == 404
        assert (await http.get("/console/oidc/callback?code=x&state=y")).status_code == 404


def test_the_settings_need_a_client_id_with_a_discovery_url() -> None:
    with pytest.raises(ValueError, match="oidc_client_id"):
        ConsoleSettings(oidc_discovery_url="https://idp.example/.well-known/openid-configuration")
