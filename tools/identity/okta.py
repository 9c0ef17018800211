"""Okta as the identity provider: users through the Users API, containment through the User
Lifecycle API (suspend / unsuspend, reset_password) and the user's sessions endpoint.

Garrison names accounts `DOMAIN\\user` (from Windows telemetry); Okta names them by `login`, an
email-like `user@dns.domain`. A name with an `@` is looked up as a login; any other name is
searched as `profile.login sw "user@"` and kept when the login's first domain label equals the
NetBIOS domain (`pandalab\\pedro` <-> `pedro@pandalab.com`), the same rule the in-memory twin
applies. Accounts are reported back under `domain\\user` built the same way.

Disabling is a suspend, not a deactivate: a suspended user keeps its profile, groups and app
assignments and `unsuspend` restores it exactly, while deactivation deprovisions the user from
its apps and can only be undone by re-activation (a new credential flow) - not an inverse.
"""

from __future__ import annotations

import contextlib
import email.utils
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr
from pydantic_settings import SettingsConfigDict

from tools.errors import NotFoundError, PermanentToolError, TransientToolError
from tools.http import MAX_ERROR_BODY, Priority, RateBudget, raise_for_status, send, tls_context
from tools.names import identity_key
from tools.results import AccountInfo, Change
from tools.vendor_settings import VendorSettings

VENDOR = "okta"
# What may go inside an Okta search string: names reach us from attacker-influenced telemetry.
_LOGIN_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._'+-]{0,127}")
_LOGIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._'+-]{0,127}@[A-Za-z0-9.-]{1,253}")
_DISABLED = frozenset({"SUSPENDED", "DEPROVISIONED"})
# A reset_password puts the user in RECOVERY until it sets a new password.
_RESET_PENDING = frozenset({"RECOVERY", "PASSWORD_EXPIRED"})


class OktaSettings(VendorSettings):
    model_config = SettingsConfigDict(env_prefix="GARRISON_OKTA_", extra="ignore", frozen=True)

    api_token: SecretStr
    # Okta groups whose members are privileged (AD groups imported by the AD agent keep their
    # names); compared case-insensitively.
    privileged_groups: str = "Domain Admins,Enterprise Admins,Schema Admins,Administrators"
    # Whether reset_password emails the user the reset link (False: Okta returns it instead,
    # and Garrison drops it - someone must then reset by hand).
    reset_send_email: bool = True


class _Profile(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    login: str


class _User(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    status: str
    profile: _Profile


class _GroupProfile(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str


class _Group(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    profile: _GroupProfile


class OktaAuth(httpx.Auth):
    """Okta API tokens: `Authorization: SSWS <token>`. They do not expire while used, so there is
    nothing to refresh: a 401 means the token was revoked and is an `AuthError`."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = f"SSWS {self._token.get_secret_value()}"
        yield request


def _to_identity_id(login: str) -> str:
    """`Pedro.Gustavo@pandalab.com` -> `pandalab\\pedro.gustavo`."""
    domain, user = identity_key(login)
    return f"{domain}\\{user}" if domain else user


def _to_account(user: _User, groups: list[_Group], privileged: frozenset[str]) -> AccountInfo:
    return AccountInfo(
        id=_to_identity_id(user.profile.login),
        enabled=_is_enabled(user.status),
        privileged=any(g.profile.name.casefold() in privileged for g in groups),
    )


def _is_enabled(status: str) -> bool:
    """Only a suspended or deactivated user is disabled; LOCKED_OUT, RECOVERY and
    PASSWORD_EXPIRED users are enabled accounts with a credential problem."""
    return status not in _DISABLED


def _login_matches(login: str, domain: str | None, user: str) -> bool:
    login_domain, login_user = identity_key(login)
    return login_user == user and (domain is None or login_domain == domain)


def _search_for(user: str) -> str:
    return f'profile.login sw "{user}@"'


def _retry_after(response: httpx.Response) -> float | None:
    """Okta answers a 429 with `X-Rate-Limit-Reset` (epoch seconds), not Retry-After; it says to
    measure it against its own `Date` header, not the local clock."""
    reset = response.headers.get("x-rate-limit-reset", "").strip()
    if not reset.isdigit():
        return None
    now = time.time()
    date = response.headers.get("date")
    if date:
        with contextlib.suppress(TypeError, ValueError):
            now = email.utils.parsedate_to_datetime(date).timestamp()
    return max(0.0, float(reset) - now)


def _check(response: httpx.Response) -> None:
    """The one place Okta answers become errors: the shared mapper, with Okta's own 429 header."""
    if response.status_code == 429 and "retry-after" not in response.headers:
        request, body = response.request, response.text[:MAX_ERROR_BODY]
        raise TransientToolError(
            f"{VENDOR}: {request.method} {request.url.path} -> 429 {body}",
            retry_after_s=_retry_after(response),
        )
    raise_for_status(response, VENDOR)


class OktaIdentity:
    """Implements `IdentityReader` and `IdentityResponder` over the Okta Management API."""

    def __init__(
        self, settings: OktaSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._budget = RateBudget(settings.rate_per_minute)
        self._privileged = frozenset(
            name.strip().casefold()
            for name in settings.privileged_groups.split(",")
            if name.strip()
        )
        self._client = httpx.AsyncClient(
            verify=tls_context(),
            base_url=settings.base_url.rstrip("/"),
            transport=transport,
            timeout=httpx.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s)),
            auth=OktaAuth(settings.api_token),
            headers={"Accept": "application/json", "Content-Type": "application/json"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- reads ----------------------------------------------------------------------------------

    async def get_account(self, identity: str) -> AccountInfo | None:
        user = await self._find(identity, Priority.ENRICHMENT)
        if user is None:
            return None
        response = await self._call(
            "GET", f"/api/v1/users/{user.id}/groups", Priority.ENRICHMENT, params={"limit": 200}
        )
        groups = [_Group.model_validate(g) for g in response.json()]
        return _to_account(user, groups, self._privileged)

    async def is_enabled(self, identity: str) -> bool:
        return _is_enabled((await self._require(identity)).status)

    # --- actions --------------------------------------------------------------------------------

    async def disable_account(self, identity: str) -> Change:
        user = await self._require(identity)
        if user.status in _DISABLED:
            return Change(applied=False, detail=f"already disabled ({user.status})")
        if user.status != "ACTIVE":
            # Okta suspends only ACTIVE users; say so rather than let its 400 speak.
            raise PermanentToolError(
                f"{VENDOR}: cannot suspend {user.profile.login}: status {user.status}, Okta "
                "suspends only ACTIVE users"
            )
        return await self._lifecycle(user, "suspend", "suspended", lambda u: u.status in _DISABLED)

    async def enable_account(self, identity: str) -> Change:
        user = await self._require(identity)
        if _is_enabled(user.status):
            return Change(applied=False, detail=f"already enabled ({user.status})")
        if user.status == "DEPROVISIONED":
            raise PermanentToolError(
                f"{VENDOR}: {user.profile.login} is deactivated, not suspended: re-activate it "
                "in Okta by hand (activation starts a new credential flow)"
            )
        return await self._lifecycle(
            user, "unsuspend", "unsuspended", lambda u: _is_enabled(u.status)
        )

    async def reset_credentials(self, identity: str) -> Change:
        user = await self._require(identity)
        if user.status in _RESET_PENDING:
            return Change(applied=False, detail=f"already reset ({user.status})")
        send_email = "true" if self._settings.reset_send_email else "false"
        return await self._lifecycle(
            user,
            "reset_password",
            "reset (pending password change)",
            lambda u: u.status in _RESET_PENDING,
            params={"sendEmail": send_email},
        )

    async def revoke_sessions(self, identity: str) -> Change:
        """Okta cannot list a user's sessions, and clearing them is naturally idempotent, so this
        always clears (with the OAuth tokens the user's sessions were issued) and says so."""
        user = await self._require(identity)
        await self._call(
            "DELETE",
            f"/api/v1/users/{user.id}/sessions",
            Priority.CONTAINMENT,
            params={"oauthTokens": "true"},
        )
        return Change(applied=True, detail="revoked (sessions and OAuth tokens cleared)")

    async def _lifecycle(
        self,
        user: _User,
        operation: str,
        done: str,
        reached: Callable[[_User], bool],
        params: dict[str, str] | None = None,
    ) -> Change:
        response = await self._call(
            "POST",
            f"/api/v1/users/{user.id}/lifecycle/{operation}",
            Priority.CONTAINMENT,
            check=False,
            params=params,
        )
        if response.status_code == 400:
            # Okta refuses a transition the user has already made (E0000001) - e.g. another
            # actor suspended it since we read it. Decide on the state, not on the message.
            now = await self._require(user.id)
            if reached(now):
                return Change(applied=False, detail=f"already {done} ({now.status})")
        _check(response)
        return Change(applied=True, detail=f"{done} {user.profile.login}")

    # --- lookups --------------------------------------------------------------------------------

    async def _require(self, identity: str) -> _User:
        user = await self._find(identity, Priority.CONTAINMENT)
        if user is None:
            raise NotFoundError(f"{VENDOR}: no user {identity!r}")
        return user

    async def _find(self, identity: str, priority: Priority) -> _User | None:
        name = identity.strip()
        if _LOGIN.fullmatch(name) or re.fullmatch(r"00u[A-Za-z0-9]{10,30}", name):
            try:
                response = await self._call("GET", f"/api/v1/users/{quote(name)}", priority)
            except NotFoundError:
                return None
            return _User.model_validate(response.json())
        domain, user = identity_key(name)
        if not _LOGIN_PART.fullmatch(user):
            return None
        found: list[_User] = []
        url: str | None = "/api/v1/users"
        params: dict[str, Any] | None = {"search": _search_for(user), "limit": 200}
        while url is not None:
            response = await self._call("GET", url, priority, params=params)
            found += [_User.model_validate(u) for u in response.json()]
            url, params = _next_link(response), None
        matches = [u for u in found if _login_matches(u.profile.login, domain, user)]
        return matches[0] if len(matches) == 1 else None

    async def _call(
        self, method: str, url: str, priority: Priority, *, check: bool = True, **kwargs: Any
    ) -> httpx.Response:
        response = await send(
            self._client,
            method,
            url,
            vendor=VENDOR,
            budget=self._budget,
            priority=priority,
            check=False,
            **kwargs,
        )
        if check:
            _check(response)
        return response


def _next_link(response: httpx.Response) -> str | None:
    """Okta pages with `Link: <...>; rel="next"` headers."""
    link = response.links.get("next")
    return link.get("url") if link else None
