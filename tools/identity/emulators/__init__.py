"""Emulators of identity-provider APIs (Okta, Microsoft Graph for Entra ID), served on loopback in
tests and simulations, and what they share: the directory seeded from a recorded environment, and
the rewriting of the generic fault answers (503, 429) into each vendor's error shape.

The directory is the environment's identities plus the owners of its assets. `DOMAIN\\user`
becomes the login `user@<dns domain>`, the DNS domain being taken from the hostnames of the
assets (the user's own first): `pandalab\\pedro.gustavo` owning `PRD01.pandalab.com` is
`pedro.gustavo@pandalab.com`. A domain no hostname names becomes `<domain>.local`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from tools.models import Environment

Message = MutableMapping[str, Any]
# (status, retry_after_s) -> (body, extra headers) in the vendor's shape
Reshape = Callable[[int, float], tuple[dict[str, Any], dict[str, str]]]


@dataclass(frozen=True)
class Person:
    """One account of the seeded directory."""

    user: str
    dns_domain: str
    netbios: str | None
    privileged: bool

    @property
    def login(self) -> str:
        return f"{self.user}@{self.dns_domain}".lower()


def directory_people(environment: Environment) -> list[Person]:
    privileged = {i.id.lower(): i.privileged for i in environment.identities}
    names = [i.id for i in environment.identities]
    names += [a.owner for a in environment.assets if a.owner and a.owner.lower() not in privileged]
    people: dict[str, Person] = {}
    for name in names:
        person = _person(environment, name, privileged.get(name.lower(), False))
        people.setdefault(person.login, person)
    return list(people.values())


def _person(environment: Environment, name: str, privileged: bool) -> Person:
    text = name.strip()
    if "@" in text:
        user, dns = text.rsplit("@", 1)
        return Person(user, dns.lower(), dns.split(".", 1)[0].lower(), privileged)
    netbios, _, user = text.rpartition("\\")
    owned = [a.hostname for a in environment.assets if a.owner and a.owner.lower() == text.lower()]
    hosts = owned + [a.hostname for a in environment.assets]
    domains = [h.split(".", 1)[1].lower() for h in hosts if h and "." in h]
    if netbios:
        matching = [d for d in domains if d.split(".", 1)[0] == netbios.lower()]
        dns = matching[0] if matching else f"{netbios.lower()}.local"
    else:
        dns = domains[0] if domains else "example.local"
    return Person(user, dns, netbios.lower() or None, privileged)


class ReshapeFaults:
    """Outermost ASGI layer: `FaultMiddleware` answers its injected 503/429 in a generic shape;
    this rewrites them into the vendor's body and headers (its rate-limit headers included)."""

    def __init__(self, app: Any, reshape: Reshape) -> None:
        self.app = app
        self.reshape = reshape

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        held: dict[str, Any] = {}

        async def rewriting_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (429, 503):
                held["start"] = message
                return
            if message["type"] == "http.response.body" and "start" in held:
                start = held.pop("start")
                headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
                retry_after = float(headers.get("retry-after", "0") or 0)
                body, extra = self.reshape(start["status"], retry_after)
                data = json.dumps(body).encode()
                kept = {
                    k: v for k, v in headers.items() if k not in ("content-length", "retry-after")
                }
                kept.update({k.lower(): v for k, v in extra.items()})
                kept["content-length"] = str(len(data))
                raw = [(k.encode(), v.encode()) for k, v in kept.items()]
                await send(
                    {"type": "http.response.start", "status": start["status"], "headers": raw}
                )
                await send({"type": "http.response.body", "body": data, "more_body": False})
                return
            await send(message)

        await self.app(scope, receive, rewriting_send)
