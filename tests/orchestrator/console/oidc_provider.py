"""An OpenID Connect provider written for the console's tests, served by uvicorn on the loopback
in a thread: a discovery document, a JWKS, an authorization endpoint that signs the user in at
once (303 back with a code), and a token endpoint that checks the code, the redirect URI, the
client's secret and the PKCE verifier before it answers an RS256 ID token.

A test steers what the next token says (`Provider.claims`, `Provider.tamper`) and whether it is
signed by a key the JWKS does not list (`Provider.forge`)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

CLIENT_ID = "garrison-console"
CLIENT_SECRET = "s3cret-of-the-console"
KID = "test-key-1"


@dataclass
class Provider:
    issuer: str = ""
    claims: dict[str, Any] = field(default_factory=lambda: {"email": "alice@example.test"})
    tamper: Callable[[dict[str, Any]], None] | None = None
    forge: bool = False
    algorithm: str = "RS256"  # "none" or "HS256": what a forger might try instead
    kid: str = KID
    authorized: list[dict[str, str]] = field(default_factory=list)  # what /authorize was sent
    token_requests: list[dict[str, str]] = field(default_factory=list)
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    _codes: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def reset(self) -> None:
        self.claims = {"email": "alice@example.test"}
        self.tamper = None
        self.forge = False
        self.algorithm = "RS256"
        if self.kid != KID:  # a test rotated the key: back to a fresh first one
            self.kid = KID
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def _public_n(self) -> str:
        return jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)["n"]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            return {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256", "none", "HS256"],
                "code_challenge_methods_supported": ["S256"],
            }

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            return {"keys": [public | {"kid": self.kid, "use": "sig", "alg": "RS256"}]}

        @app.get("/authorize")
        async def authorize(request: Request) -> Response:
            params = dict(request.query_params)
            self.authorized.append(params)
            code = secrets.token_urlsafe(16)
            self._codes[code] = params
            back = urlencode({"code": code, "state": params.get("state", "")})
            return RedirectResponse(f"{params['redirect_uri']}?{back}", status_code=303)

        @app.post("/token")
        async def token(
            request: Request,
            grant_type: str = Form(),
            code: str = Form(),
            redirect_uri: str = Form(),
            code_verifier: str = Form(),
        ) -> Response:
            self.token_requests.append(dict(await request.form()))
            expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if request.headers.get("authorization") != expected:
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            asked = self._codes.pop(code, None)
            challenge = base64.urlsafe_b64encode(hashlib.sha256(code_verifier.encode()).digest())
            if (
                grant_type != "authorization_code"
                or asked is None
                or asked["redirect_uri"] != redirect_uri
                or asked.get("code_challenge_method") != "S256"
                or asked.get("code_challenge") != challenge.rstrip(b"=").decode()
            ):
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            now = int(time.time())
            claims: dict[str, Any] = {
                "iss": self.issuer,
                "sub": "subject-1",
                "aud": CLIENT_ID,
                "iat": now,
                "exp": now + 300,
                "nonce": asked.get("nonce", ""),
            } | self.claims
            if self.tamper is not None:
                self.tamper(claims)
            signer = (
                rsa.generate_private_key(public_exponent=65537, key_size=2048)
                if self.forge
                else self.key
            )
            if self.algorithm == "RS256":
                id_token = jwt.encode(claims, signer, algorithm="RS256", headers={"kid": self.kid})
            else:  # unsigned, or keyed with the public modulus as an HMAC secret
                secret = None if self.algorithm == "none" else self._public_n().encode()
                id_token = jwt.encode(
                    claims, secret, algorithm=self.algorithm, headers={"kid": KID}
                )
            answer = {"access_token": "at", "token_type": "Bearer", "id_token": id_token}
            return JSONResponse(answer)

        return app


@contextmanager
def serve_provider() -> Iterator[Provider]:
    """The provider on a free loopback port, in a thread of its own, until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    provider = Provider(issuer=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(provider.app(), log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "the test OIDC provider did not start"
    try:
        yield provider
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
