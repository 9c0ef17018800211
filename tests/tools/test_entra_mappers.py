"""Entra's private mappers, its error mapping and its OAuth2 auth, over `httpx.MockTransport`."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from tools.errors import AuthError, NotFoundError, TransientToolError
from tools.identity.entra import (
    EntraIdentity,
    EntraSettings,
    _Membership,
    _to_account,
    _to_identity_id,
    _upn_filter,
    _User,
)
from tools.vendor_settings import VendorConfigError, load_vendor_settings

GROUPS = frozenset({"domain admins"})
UPN = "pedro.gustavo@pandalab.com"


def _settings() -> EntraSettings:
    return EntraSettings(tenant_id="t1", client_id="c1", client_secret=SecretStr("s3cr3t-value"))


def _user(**extra: object) -> dict[str, object]:
    return {"id": "u1", "userPrincipalName": UPN, "accountEnabled": True, **extra}


class FakeGraph:
    """Answers tokens and one user; counts tokens and can reject the next N Graph calls."""

    def __init__(self, reject_next: int = 0, graph_status: int = 200) -> None:
        self.tokens = 0
        self.reject_next = reject_next
        self.graph_status = graph_status
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.url.path.endswith("/oauth2/v2.0/token"):
            self.tokens += 1
            return httpx.Response(
                200, json={"access_token": f"tok{self.tokens}", "expires_in": 3599}
            )
        if self.reject_next:
            self.reject_next -= 1
            return httpx.Response(401, json={"error": {"code": "InvalidAuthenticationToken"}})
        if self.graph_status != 200:
            return httpx.Response(self.graph_status, json={"error": {"code": "x", "message": "m"}})
        return httpx.Response(200, json=_user())


def test_synced_users_map_to_their_on_premises_name() -> None:
    synced = _User.model_validate(
        _user(onPremisesSamAccountName="Pedro.Gustavo", onPremisesDomainName="pandalab.com")
    )
    assert _to_identity_id(synced) == "pandalab\\pedro.gustavo"
    cloud = _User.model_validate(_user(userPrincipalName="Ana@contoso.onmicrosoft.com"))
    assert _to_identity_id(cloud) == "contoso\\ana"


def test_directory_roles_and_named_groups_are_privileged() -> None:
    user = _User.model_validate(_user(accountEnabled=False))
    role = _Membership.model_validate({"@odata.type": "#microsoft.graph.directoryRole"})
    group = _Membership.model_validate(
        {"@odata.type": "#microsoft.graph.group", "displayName": "Domain Admins"}
    )
    other = _Membership.model_validate(
        {"@odata.type": "#microsoft.graph.group", "displayName": "Sales"}
    )
    assert _to_account(user, [role], GROUPS).privileged is True
    assert _to_account(user, [group], GROUPS).privileged is True
    account = _to_account(user, [other], GROUPS)
    assert account.privileged is False and account.enabled is False


def test_odata_filter_doubles_quotes() -> None:
    assert _upn_filter("o'neil") == "startswith(userPrincipalName,'o''neil@')"


async def test_token_is_fetched_once_and_reused() -> None:
    graph = FakeGraph()
    entra = EntraIdentity(_settings(), httpx.MockTransport(graph))
    await entra.is_enabled(UPN)
    await entra.is_enabled(UPN)
    assert graph.tokens == 1
    token = graph.seen[0]
    assert token.url == "https://login.microsoftonline.com/t1/oauth2/v2.0/token"
    form = token.content.decode()
    assert "grant_type=client_credentials" in form and "graph.microsoft.com%2F.default" in form
    assert graph.seen[1].headers["authorization"] == "Bearer tok1"
    await entra.aclose()


async def test_a_401_refreshes_the_token_once_then_gives_up() -> None:
    graph = FakeGraph(reject_next=1)
    entra = EntraIdentity(_settings(), httpx.MockTransport(graph))
    assert await entra.is_enabled(UPN) is True
    assert graph.tokens == 2 and graph.seen[-1].headers["authorization"] == "Bearer tok2"
    graph.reject_next = 5
    with pytest.raises(AuthError):
        await entra.is_enabled(UPN)
    assert graph.tokens == 3  # one refresh per call, never a loop
    await entra.aclose()


async def test_a_refused_client_is_an_auth_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401, json={"error": "invalid_client", "error_description": "AADSTS7000215"}
        )

    entra = EntraIdentity(_settings(), httpx.MockTransport(handler))
    with pytest.raises(AuthError, match="AADSTS7000215"):
        await entra.get_account(UPN)
    await entra.aclose()


@pytest.mark.parametrize(
    ("status", "error"), [(403, AuthError), (404, NotFoundError), (503, TransientToolError)]
)
async def test_graph_errors_map_to_the_error_tree(status: int, error: type) -> None:
    entra = EntraIdentity(_settings(), httpx.MockTransport(FakeGraph(graph_status=status)))
    with pytest.raises(error):
        await entra.disable_account(UPN)
    await entra.aclose()


def test_incomplete_configuration_names_the_missing_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("TENANT_ID", "CLIENT_ID", "CLIENT_SECRET", "BASE_URL", "TOKEN_URL"):
        monkeypatch.delenv(f"GARRISON_ENTRA_{name}", raising=False)
    monkeypatch.setenv("GARRISON_ENTRA_TENANT_ID", "t1")
    monkeypatch.setenv("GARRISON_ENTRA_CLIENT_ID", "c1")
    with pytest.raises(VendorConfigError, match="GARRISON_ENTRA_CLIENT_SECRET is required"):
        load_vendor_settings(EntraSettings)
    monkeypatch.setenv("GARRISON_ENTRA_CLIENT_SECRET", "s3cr3t-value")
    settings = load_vendor_settings(EntraSettings)
    assert settings.base_url == "https://graph.microsoft.com" and "s3cr3t" not in repr(settings)
