"""OAuth2 client credentials as both EDR vendors use it (Falcon's `/oauth2/token`, Entra ID's
`/oauth2/v2.0/token` for Defender): the token is reused until a minute before it expires, and
fetched again once when the API answers 401. A refused token request is an `AuthError`."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable

import httpx
from pydantic import SecretStr

from tools.http import raise_for_status


class ClientCredentialsAuth(httpx.Auth):
    requires_response_body = True

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        vendor: str,
        *,
        scope: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token_url = token_url
        self._form = {"client_id": client_id, "grant_type": "client_credentials"}
        if scope:
            self._form["scope"] = scope
        self._client_secret = client_secret
        self._vendor = vendor
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0

    def _token_request(self) -> httpx.Request:
        form = {**self._form, "client_secret": self._client_secret.get_secret_value()}
        headers = {"Accept": "application/json"}
        return httpx.Request("POST", self._token_url, data=form, headers=headers)

    async def _refresh(self, response: httpx.Response) -> None:
        await response.aread()
        raise_for_status(response, self._vendor)
        body = response.json()
        self._token = str(body["access_token"])
        lifetime = float(body.get("expires_in", 1799))
        self._expires_at = self._clock() + max(lifetime - 60.0, lifetime / 2)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._token is None or self._clock() >= self._expires_at:
            await self._refresh((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401:
            await self._refresh((yield self._token_request()))
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request
