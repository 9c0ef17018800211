"""Console sign-in through an OpenID Connect provider, found by its discovery URL.

The authorization code flow with PKCE (S256), `state` and `nonce` (OpenID Connect Core 1.0,
RFC 7636). `start` keeps a pending flow in memory under a random id (the browser holds the id in
a short-lived cookie, see `oidc_routes.py`) and gives the provider's authorization URL; `finish`
takes the flow back once, checks `state`, exchanges the code at the token endpoint with the PKCE
verifier, and verifies the ID token with PyJWT against the provider's JWKS: an asymmetric
signature by a key the JWKS lists (algorithms the provider announces, never `none` or HMAC), the
issuer the discovery document names, our client id as audience (and as `azp` when there are
several), `exp` and `iat` (60 s leeway), and the flow's nonce. The user is the value of one
configured claim (`email` or `preferred_username`), canonicalised, and must be a person of the
approver directory; an `email` the provider says is not verified is refused.

Every endpoint must be https, except on the loopback (a provider run beside the server, and the
tests'). The discovery document is re-read hourly and the JWKS when a token names a key it lacks
(at most once a minute), so a provider's key rotation is followed without a restart."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote_plus, urlencode, urlsplit

import httpx
import jwt

from orchestrator.approvals.directory import ApproverDirectory
from orchestrator.console.passwords import directory_people
from orchestrator.identity import IdentityError, canonical_identity

if TYPE_CHECKING:
    from orchestrator.settings import ConsoleSettings

Claim = Literal["email", "preferred_username"]
SIGNING_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
DISCOVERY_SUFFIX = "/.well-known/openid-configuration"
FLOW_TTL_S = 600.0
MAX_FLOWS = 10_000
DISCOVERY_TTL_S = 3_600.0
JWKS_REFETCH_S = 60.0
LEEWAY_S = 60
HTTP_TIMEOUT_S = 10.0


class OidcError(Exception):
    """A sign-in refused; the message says why (audited, and shown on the sign-in page)."""


@dataclass(frozen=True)
class OidcConfig:
    discovery_url: str
    client_id: str
    client_secret: str | None = None  # none: a public client (PKCE alone)
    claim: Claim = "email"
    scopes: str = "openid email profile"
    redirect_url: str | None = None  # none: <the request's base URL>/console/oidc/callback


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: frozenset[str]


@dataclass(frozen=True)
class PendingFlow:
    state: str
    nonce: str
    verifier: str
    redirect_uri: str
    started: float


@dataclass
class OidcProvider:
    config: OidcConfig
    clock: Callable[[], float] = time.time
    _discovery: tuple[float, Discovery] | None = field(default=None, init=False)
    _jwks: tuple[float, dict[str, Any]] | None = field(default=None, init=False)
    _flows: dict[str, PendingFlow] = field(default_factory=dict, init=False)

    # ---- the flow ------------------------------------------------------------------------------

    async def start(self, redirect_uri: str) -> tuple[str, str]:
        """A new pending flow: (its id, the provider's authorization URL to send the browser to)."""
        discovery = await self.discovery()
        self._trim()
        flow = PendingFlow(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(64),
            redirect_uri=redirect_uri,
            started=self.clock(),
        )
        flow_id = secrets.token_urlsafe(32)
        self._flows[flow_id] = flow
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.config.client_id,
                "redirect_uri": redirect_uri,
                "scope": self.config.scopes,
                "state": flow.state,
                "nonce": flow.nonce,
                "code_challenge": pkce_challenge(flow.verifier),
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in discovery.authorization_endpoint else "?"
        return flow_id, f"{discovery.authorization_endpoint}{separator}{query}"

    def take(self, flow_id: str | None) -> PendingFlow | None:
        """The pending flow of this id, once (a second callback finds nothing), if not expired."""
        flow = self._flows.pop(flow_id, None) if flow_id else None
        if flow is None or self.clock() - flow.started > FLOW_TTL_S:
            return None
        return flow

    async def finish(
        self, flow: PendingFlow, state: str, code: str, directory: ApproverDirectory
    ) -> tuple[str, dict[str, Any]]:
        """The directory identity the provider vouches for, and the ID token's claims."""
        if not hmac.compare_digest(state.encode(), flow.state.encode()):
            raise OidcError("the sign-in's state does not match the one this browser started")
        if not code:
            raise OidcError("the provider sent no authorization code")
        id_token = await self._exchange(flow, code)
        claims = await self.verify_id_token(id_token, flow.nonce)
        return self.identity_of(claims, directory), claims

    # ---- the provider's documents --------------------------------------------------------------

    async def discovery(self) -> Discovery:
        now = self.clock()
        if self._discovery is not None and now - self._discovery[0] < DISCOVERY_TTL_S:
            return self._discovery[1]
        document = await self._get_json(self.config.discovery_url, "the discovery document")
        try:
            issuer = str(document["issuer"])
            found = Discovery(
                issuer=issuer,
                authorization_endpoint=str(document["authorization_endpoint"]),
                token_endpoint=str(document["token_endpoint"]),
                jwks_uri=str(document["jwks_uri"]),
                algorithms=frozenset(
                    document.get("id_token_signing_alg_values_supported") or ["RS256"]
                )
                & SIGNING_ALGORITHMS,
            )
        except (KeyError, TypeError) as error:
            raise OidcError(f"the discovery document lacks {error}") from None
        if issuer.rstrip("/") + DISCOVERY_SUFFIX != self.config.discovery_url.rstrip("/"):
            raise OidcError(f"the discovery document names another issuer ({issuer!r})")
        for url in (found.authorization_endpoint, found.token_endpoint, found.jwks_uri):
            check_endpoint(url)
        if not found.algorithms:
            raise OidcError("the provider announces no asymmetric ID token signing algorithm")
        self._discovery = (now, found)
        return found

    async def _signing_key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        discovery = await self.discovery()
        for attempt in (0, 1):
            now = self.clock()
            stale = self._jwks is None or (attempt == 1 and now - self._jwks[0] > JWKS_REFETCH_S)
            if stale:
                self._jwks = (now, await self._get_json(discovery.jwks_uri, "the JWKS"))
            assert self._jwks is not None
            key = _pick_key(self._jwks[1], kid, alg)
            if key is not None:
                return key
        raise OidcError(f"the ID token is signed with a key the provider does not list ({kid!r})")

    # ---- the token -----------------------------------------------------------------------------

    async def verify_id_token(self, token: str, nonce: str) -> dict[str, Any]:
        discovery = await self.discovery()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise OidcError("the ID token is not a signed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in discovery.algorithms:
            raise OidcError(f"the ID token's algorithm {alg!r} is not accepted")
        kid = header.get("kid")
        key = await self._signing_key(kid if isinstance(kid, str) else None, alg)
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=self.config.client_id,
                issuer=discovery.issuer,
                leeway=LEEWAY_S,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "nonce"]},
            )
        except jwt.ExpiredSignatureError:
            raise OidcError("the ID token has expired") from None
        except jwt.InvalidAudienceError:
            raise OidcError("the ID token was issued for another client") from None
        except jwt.InvalidIssuerError:
            raise OidcError("the ID token was issued by another issuer") from None
        except jwt.InvalidSignatureError:
            raise OidcError("the ID token's signature does not verify") from None
        except jwt.PyJWTError as error:
            raise OidcError(f"the ID token is refused ({error})") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.config.client_id:
            raise OidcError("the ID token names several audiences but not us as its party")
        if not hmac.compare_digest(str(claims["nonce"]).encode(), nonce.encode()):
            raise OidcError("the ID token's nonce is not this sign-in's")
        return claims

    def identity_of(self, claims: dict[str, Any], directory: ApproverDirectory) -> str:
        claim = self.config.claim
        value = claims.get(claim)
        if not isinstance(value, str) or not value:
            raise OidcError(f"the ID token has no {claim!r} claim")
        if claim == "email" and "email_verified" in claims and claims["email_verified"] is not True:
            raise OidcError("the provider says this email address is not verified")
        try:
            identity = canonical_identity(value)
        except IdentityError as error:
            raise OidcError(f"the {claim!r} claim is not a usable identity ({error})") from None
        if identity not in directory_people(directory):
            raise OidcError(f"{identity!r} is not a person of the approver directory")
        return identity

    # ---- HTTP ----------------------------------------------------------------------------------

    async def _exchange(self, flow: PendingFlow, code: str) -> str:
        discovery = await self.discovery()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "code_verifier": flow.verifier,
        }
        auth = None
        if self.config.client_secret is None:  # a public client names itself in the form
            form["client_id"] = self.config.client_id
        else:  # client_secret_basic, each part form-encoded first (RFC 6749, 2.3.1)
            auth = httpx.BasicAuth(
                quote_plus(self.config.client_id), quote_plus(self.config.client_secret)
            )
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, auth=auth) as http:
                answer = await http.post(discovery.token_endpoint, data=form)
        except httpx.HTTPError as error:
            raise OidcError(f"the token endpoint could not be reached ({error})") from None
        if answer.status_code != 200:
            raise OidcError(f"the token endpoint refused the code (HTTP {answer.status_code})")
        try:
            id_token = answer.json().get("id_token")
        except ValueError:
            id_token = None
        if not isinstance(id_token, str):
            raise OidcError("the token endpoint answered without an ID token")
        return id_token

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        check_endpoint(url)
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http:
                answer = await http.get(url, headers={"accept": "application/json"})
            answer.raise_for_status()
            document = answer.json()
        except (httpx.HTTPError, ValueError) as error:
            raise OidcError(f"{what} could not be read ({error})") from None
        if not isinstance(document, dict):
            raise OidcError(f"{what} is not a JSON object")
        return document

    def _trim(self) -> None:
        now = self.clock()
        for flow_id, flow in list(self._flows.items()):
            if now - flow.started > FLOW_TTL_S:
                del self._flows[flow_id]
        while len(self._flows) >= MAX_FLOWS:
            self._flows.pop(next(iter(self._flows)))  # the oldest


def oidc_provider(settings: ConsoleSettings) -> OidcProvider | None:
    """The provider the settings configure, or None (local accounts only)."""
    if not settings.oidc_discovery_url or not settings.oidc_client_id:
        return None
    secret = settings.oidc_client_secret
    return OidcProvider(
        OidcConfig(
            discovery_url=settings.oidc_discovery_url,
            client_id=settings.oidc_client_id,
            client_secret=secret.get_secret_value() if secret is not None else None,
            claim=settings.oidc_claim,
            scopes=settings.oidc_scopes,
            redirect_url=settings.oidc_redirect_url,
        )
    )


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_endpoint(url: str) -> None:
    """https, or http on the loopback; OidcError otherwise."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return
    raise OidcError(f"{url!r}: an OIDC endpoint must be https (or http on the loopback)")


def _pick_key(jwks: dict[str, Any], kid: str | None, alg: str) -> jwt.PyJWK | None:
    """The signing key `kid` names (with no `kid`, the only signing key that fits `alg`)."""
    keys = jwks.get("keys")
    candidates = []
    for data in keys if isinstance(keys, list) else []:
        if not isinstance(data, dict) or data.get("use", "sig") != "sig":
            continue
        if kid is not None and data.get("kid") != kid:
            continue
        if data.get("alg") not in (None, alg):
            continue
        try:
            candidates.append(jwt.PyJWK(data, algorithm=alg))
        except jwt.PyJWTError:
            continue
    if kid is None and len(candidates) != 1:
        return None
    return candidates[0] if candidates else None
