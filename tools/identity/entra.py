"""Microsoft Entra ID as the identity provider, through Microsoft Graph v1.0: users read by id or
userPrincipalName, disabled and enabled by PATCHing `accountEnabled`, credentials reset by
forcing a password change at next sign-in, sessions revoked with `revokeSignInSessions`.

Garrison names accounts `DOMAIN\\user`. A name with an `@` is read as a UPN; any other name is
searched as `startswith(userPrincipalName,'user@')` and kept when the UPN's first domain label
equals the NetBIOS domain. Accounts are reported as `domain\\sam` from the on-premises attributes
of an AD-synced user (`onPremisesDomainName`, `onPremisesSamAccountName`), else from the UPN.

Auth is OAuth2 client credentials against the Microsoft identity platform, scope
`https://graph.microsoft.com/.default`; the token is refreshed before expiry and once on a 401.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from tools.errors import AuthError, NotFoundError
from tools.http import MAX_ERROR_BODY, Priority, RateBudget, raise_for_status, send, tls_context
from tools.names import host_key, identity_key
from tools.results import AccountInfo, Change
from tools.vendor_settings import VendorSettings

VENDOR = "entra"
_UPN_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._'+-]{0,112}")
_UPN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._'+-]{0,112}@[A-Za-z0-9.-]{1,253}")
_GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_SELECT = "id,userPrincipalName,accountEnabled,onPremisesSamAccountName,onPremisesDomainName"
_DIRECTORY_ROLE = "#microsoft.graph.directoryRole"


class EntraSettings(VendorSettings):
    model_config = SettingsConfigDict(env_prefix="GARRISON_ENTRA_", extra="ignore", frozen=True)

    base_url: str = Field(default="https://graph.microsoft.com", min_length=1)
    tenant_id: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    # Defaults to https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token.
    token_url: str | None = None
    scope: str = "https://graph.microsoft.com/.default"
    # Groups (synced from AD or cloud) whose members are privileged, besides any holder of an
    # Entra directory role; compared case-insensitively.
    privileged_groups: str = "Domain Admins,Enterprise Admins,Schema Admins,Administrators"

    def resolved_token_url(self) -> str:
        default = f"https://login.microsoftonline.com/{self.tenant_id}/oauth2/v2.0/token"
        return self.token_url or default


class _User(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    id: str
    upn: str = Field(alias="userPrincipalName")
    enabled: bool = Field(default=True, alias="accountEnabled")
    sam: str | None = Field(default=None, alias="onPremisesSamAccountName")
    domain: str | None = Field(default=None, alias="onPremisesDomainName")


class _Membership(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    odata_type: str = Field(default="", alias="@odata.type")
    display_name: str | None = Field(default=None, alias="displayName")


class EntraAuth(httpx.Auth):
    """Client credentials at the tenant's v2.0 token endpoint; the token is reused until a minute
    before it expires, and fetched again once if Graph answers 401."""

    def __init__(
        self, settings: EntraSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0

    def _token_request(self) -> httpx.Request:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._settings.client_id,
            "client_secret": self._settings.client_secret.get_secret_value(),
            "scope": self._settings.scope,
        }
        return httpx.Request("POST", self._settings.resolved_token_url(), data=form)

    def _store(self, response: httpx.Response) -> None:
        if response.status_code in (400, 401):
            # The identity platform refuses bad clients with 400/401 {"error": "invalid_client"}.
            raise AuthError(f"{VENDOR}: token request refused: {response.text[:MAX_ERROR_BODY]}")
        raise_for_status(response, VENDOR)
        body = response.json()
        self._token = str(body["access_token"])
        lifetime = float(body.get("expires_in", 3599))
        self._expires_at = self._clock() + max(lifetime - 60.0, lifetime / 2)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._token is None or self._clock() >= self._expires_at:
            token_response = yield self._token_request()
            await token_response.aread()  # an overridden async flow must read bodies itself
            self._store(token_response)
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401:
            token_response = yield self._token_request()
            await token_response.aread()
            self._store(token_response)
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request


def _to_identity_id(user: _User) -> str:
    """On-premises `domain\\sam` for an AD-synced user, else from the UPN."""
    if user.sam and user.domain:
        return f"{host_key(user.domain)}\\{user.sam.lower()}"
    domain, name = identity_key(user.upn)
    return f"{domain}\\{name}" if domain else name


def _is_privileged(memberships: list[_Membership], groups: frozenset[str]) -> bool:
    return any(
        m.odata_type == _DIRECTORY_ROLE or (m.display_name or "").casefold() in groups
        for m in memberships
    )


def _to_account(user: _User, memberships: list[_Membership], groups: frozenset[str]) -> AccountInfo:
    return AccountInfo(
        id=_to_identity_id(user),
        enabled=user.enabled,
        privileged=_is_privileged(memberships, groups),
    )


def _upn_filter(name: str) -> str:
    """An OData startswith filter; quotes are doubled as OData escapes them."""
    return f"startswith(userPrincipalName,'{name.replace(chr(39), chr(39) * 2)}@')"


class EntraIdentity:
    """Implements `IdentityReader` and `IdentityResponder` over Microsoft Graph."""

    def __init__(
        self, settings: EntraSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._budget = RateBudget(settings.rate_per_minute)
        self._groups = frozenset(
            g.strip().casefold() for g in settings.privileged_groups.split(",") if g.strip()
        )
        self._client = httpx.AsyncClient(
            verify=tls_context(),
            base_url=settings.base_url.rstrip("/"),
            transport=transport,
            timeout=httpx.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s)),
            auth=EntraAuth(settings),
            headers={"Accept": "application/json"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get_account(self, identity: str) -> AccountInfo | None:
        user = await self._find(identity, Priority.ENRICHMENT)
        if user is None:
            return None
        memberships: list[_Membership] = []
        url: str | None = f"/v1.0/users/{user.id}/memberOf"
        params: dict[str, str] | None = {"$select": "id,displayName"}
        while url is not None:
            body = (await self._call("GET", url, Priority.ENRICHMENT, params=params)).json()
            memberships += [_Membership.model_validate(m) for m in body.get("value", [])]
            url, params = body.get("@odata.nextLink"), None
        return _to_account(user, memberships, self._groups)

    async def is_enabled(self, identity: str) -> bool:
        return (await self._require(identity)).enabled

    async def disable_account(self, identity: str) -> Change:
        return await self._set_enabled(identity, False)

    async def enable_account(self, identity: str) -> Change:
        return await self._set_enabled(identity, True)

    async def reset_credentials(self, identity: str) -> Change:
        user = await self._require(identity)
        response = await self._call(
            "GET",
            f"/v1.0/users/{user.id}",
            Priority.CONTAINMENT,
            params={"$select": "id,passwordProfile"},
        )
        profile = response.json().get("passwordProfile") or {}
        if profile.get("forceChangePasswordNextSignIn") is True:
            return Change(applied=False, detail="already reset (password change pending)")
        await self._call(
            "PATCH",
            f"/v1.0/users/{user.id}",
            Priority.CONTAINMENT,
            json={"passwordProfile": {"forceChangePasswordNextSignIn": True}},
        )
        return Change(applied=True, detail=f"reset (pending password change) {user.upn}")

    async def revoke_sessions(self, identity: str) -> Change:
        """Graph cannot tell whether any session was live, and revoking is naturally
        idempotent (it moves `signInSessionsValidFromDateTime` to now), so this always revokes."""
        user = await self._require(identity)
        await self._call(
            "POST", f"/v1.0/users/{user.id}/revokeSignInSessions", Priority.CONTAINMENT
        )
        return Change(applied=True, detail="revoked (refresh tokens and session cookies)")

    async def _set_enabled(self, identity: str, enabled: bool) -> Change:
        user = await self._require(identity)
        done = "enabled" if enabled else "disabled"
        if user.enabled is enabled:
            return Change(applied=False, detail=f"already {done}")
        await self._call(
            "PATCH",
            f"/v1.0/users/{user.id}",
            Priority.CONTAINMENT,
            json={"accountEnabled": enabled},
        )
        return Change(applied=True, detail=f"{done} {user.upn}")

    async def _require(self, identity: str) -> _User:
        user = await self._find(identity, Priority.CONTAINMENT)
        if user is None:
            raise NotFoundError(f"{VENDOR}: no user {identity!r}")
        return user

    async def _find(self, identity: str, priority: Priority) -> _User | None:
        name = identity.strip()
        if _UPN.fullmatch(name) or _GUID.fullmatch(name):
            try:
                response = await self._call(
                    "GET", f"/v1.0/users/{quote(name)}", priority, params={"$select": _SELECT}
                )
            except NotFoundError:
                return None
            return _User.model_validate(response.json())
        domain, user = identity_key(name)
        if not _UPN_PART.fullmatch(user):
            return None
        found: list[_User] = []
        url: str | None = "/v1.0/users"
        params: dict[str, Any] | None = {"$filter": _upn_filter(user), "$select": _SELECT}
        while url is not None:
            body = (await self._call("GET", url, priority, params=params)).json()
            found += [_User.model_validate(u) for u in body.get("value", [])]
            url, params = body.get("@odata.nextLink"), None
        matches = [u for u in found if _matches(u, domain, user)]
        return matches[0] if len(matches) == 1 else None

    async def _call(
        self, method: str, url: str, priority: Priority, **kwargs: Any
    ) -> httpx.Response:
        return await send(
            self._client,
            method,
            url,
            vendor=VENDOR,
            budget=self._budget,
            priority=priority,
            **kwargs,
        )


def _matches(user: _User, domain: str | None, name: str) -> bool:
    upn_domain, upn_user = identity_key(user.upn)
    if upn_user != name:
        return False
    return domain is None or domain in {upn_domain, host_key(user.domain or "") or None}
