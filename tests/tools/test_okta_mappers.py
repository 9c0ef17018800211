"""Okta's private mappers, its error mapping and its auth, over `httpx.MockTransport`."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest
from pydantic import SecretStr

from tools.errors import AuthError, NotFoundError, PermanentToolError, TransientToolError
from tools.identity.okta import (
    OktaIdentity,
    OktaSettings,
    _Group,
    _GroupProfile,
    _is_enabled,
    _login_matches,
    _Profile,
    _retry_after,
    _to_account,
    _to_identity_id,
    _User,
)
from tools.vendor_settings import VendorConfigError, load_vendor_settings

PRIVILEGED = frozenset({"domain admins"})


def _user(login: str = "Pedro.Gustavo@pandalab.com", status: str = "ACTIVE") -> _User:
    return _User(id="00u1", status=status, profile=_Profile(login=login))


def _wire(login: str = "pedro.gustavo@pandalab.com", status: str = "ACTIVE") -> dict[str, object]:
    return {"id": "00u1", "status": status, "profile": {"login": login, "email": login}}


def _adapter(handler: object) -> OktaIdentity:
    settings = OktaSettings(base_url="https://acme.okta.com", api_token=SecretStr("tok"))
    return OktaIdentity(settings, httpx.MockTransport(handler))  # type: ignore[arg-type]


def test_login_maps_to_a_domain_qualified_identity() -> None:
    assert _to_identity_id("Pedro.Gustavo@pandalab.com") == "pandalab\\pedro.gustavo"
    assert _to_identity_id("svc-backup") == "svc-backup"


def test_account_is_privileged_by_group_and_disabled_by_status() -> None:
    admins = [_Group(id="00g1", profile=_GroupProfile(name="Domain Admins"))]
    account = _to_account(_user(status="SUSPENDED"), admins, PRIVILEGED)
    assert (account.id, account.enabled, account.privileged) == (
        "pandalab\\pedro.gustavo",
        False,
        True,
    )
    assert _to_account(_user(), [], PRIVILEGED).privileged is False


@pytest.mark.parametrize(
    ("status", "enabled"),
    [
        ("ACTIVE", True),
        ("RECOVERY", True),
        ("LOCKED_OUT", True),
        ("SUSPENDED", False),
        ("DEPROVISIONED", False),
    ],
)
def test_only_suspended_and_deactivated_users_are_disabled(status: str, enabled: bool) -> None:
    assert _is_enabled(status) is enabled


def test_logins_match_on_user_and_netbios_domain() -> None:
    assert _login_matches("pedro.gustavo@pandalab.com", "pandalab", "pedro.gustavo")
    assert _login_matches("pedro.gustavo@pandalab.com", None, "pedro.gustavo")
    assert not _login_matches("pedro.gustavo@pandalab.com", "otherdomain", "pedro.gustavo")
    assert not _login_matches("pedro.gustavo2@pandalab.com", None, "pedro.gustavo")


def test_rate_limit_reset_is_measured_against_okta_date() -> None:
    now = time.time()
    headers = {
        "x-rate-limit-reset": str(int(now) + 30),
        "date": email.utils.formatdate(int(now), usegmt=True),
    }
    retry = _retry_after(httpx.Response(429, headers=headers))
    assert retry is not None and 29 <= retry <= 31
    assert _retry_after(httpx.Response(429)) is None


async def test_requests_carry_the_ssws_token_and_searches_are_quoted() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/v1/users":
            return httpx.Response(200, json=[_wire()])
        return httpx.Response(200, json=[])

    okta = _adapter(handler)
    account = await okta.get_account("PANDALAB\\Pedro.Gustavo")
    assert account is not None and account.id == "pandalab\\pedro.gustavo"
    assert seen[0].headers["authorization"] == "SSWS tok"
    assert seen[0].url.params["search"] == 'profile.login sw "pedro.gustavo@"'
    await okta.aclose()


async def test_names_that_could_inject_into_a_search_are_not_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    okta = _adapter(handler)
    assert await okta.get_account('pandalab\\x" or profile.login sw "') is None
    assert seen == []
    await okta.aclose()


async def test_search_follows_link_paging() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/groups"):
            return httpx.Response(200, json=[])
        if "after" not in request.url.params:
            link = '<https://acme.okta.com/api/v1/users?after=00u0&limit=200>; rel="next"'
            return httpx.Response(
                200, json=[_wire("pedro.gustavo@other.com")], headers={"Link": link}
            )
        assert request.url.params["after"] == "00u0"
        return httpx.Response(200, json=[_wire()])

    okta = _adapter(handler)
    account = await okta.get_account("pandalab\\pedro.gustavo")
    assert account is not None and account.id == "pandalab\\pedro.gustavo"
    await okta.aclose()


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, {"errorCode": "E0000011", "errorSummary": "Invalid token provided"}, AuthError),
        (403, {"errorCode": "E0000006", "errorSummary": "You do not have permission"}, AuthError),
        (404, {"errorCode": "E0000007", "errorSummary": "Not found"}, NotFoundError),
        (
            400,
            {"errorCode": "E0000001", "errorSummary": "Api validation failed"},
            PermanentToolError,
        ),
        (
            500,
            {"errorCode": "E0000009", "errorSummary": "Internal Server Error"},
            TransientToolError,
        ),
    ],
)
async def test_okta_errors_map_to_the_error_tree(status: int, body: object, error: type) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if request.method == "GET":
            return httpx.Response(200, json=_wire())
        return httpx.Response(status, json=body)

    okta = _adapter(handler)
    with pytest.raises(error):
        await okta.revoke_sessions("pedro.gustavo@pandalab.com")
    assert calls == 2  # no retry by the client
    await okta.aclose()


async def test_a_deactivated_user_is_not_re_activated() -> None:
    okta = _adapter(lambda request: httpx.Response(200, json=_wire(status="DEPROVISIONED")))
    with pytest.raises(PermanentToolError, match="deactivated"):
        await okta.enable_account("pedro.gustavo@pandalab.com")
    assert (await okta.disable_account("pedro.gustavo@pandalab.com")).applied is False
    await okta.aclose()


def test_incomplete_configuration_names_the_missing_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GARRISON_OKTA_BASE_URL", "https://acme.okta.com")
    monkeypatch.delenv("GARRISON_OKTA_API_TOKEN", raising=False)
    with pytest.raises(VendorConfigError, match="GARRISON_OKTA_API_TOKEN is required"):
        load_vendor_settings(OktaSettings)
    monkeypatch.setenv("GARRISON_OKTA_API_TOKEN", "s3cr3t-value")
    settings = load_vendor_settings(OktaSettings)
    assert settings.api_token.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t" not in repr(settings)
