"""The audit chain's anchor settings: where the head is written (a file, or syslog over UDP, TCP
or a Unix socket) and how often."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SyslogTransport(StrEnum):
    UNIX = "unix"  # a local datagram socket: /dev/log, the local daemon
    UDP = "udp"  # RFC 5426
    TCP = "tcp"  # RFC 6587, octet-counted frames


class FileAnchorTarget(BaseModel):
    """Anchors appended to a file, which `garrison audit verify` reads back."""

    model_config = ConfigDict(frozen=True)

    path: Path

    def __str__(self) -> str:
        return f"file:{self.path}"


class SyslogAnchorTarget(BaseModel):
    """Anchors sent to syslog: write-only, so verifying needs them exported back to a file."""

    model_config = ConfigDict(frozen=True)

    transport: SyslogTransport
    address: str  # the socket's path (unix) or the host
    port: int | None = None

    def __str__(self) -> str:
        if self.transport is SyslogTransport.UNIX:
            return f"syslog:{self.address}"
        scheme = "syslog" if self.transport is SyslogTransport.UDP else "syslog+tcp"
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{scheme}://{host}:{self.port}"


AnchorTarget = FileAnchorTarget | SyslogAnchorTarget
SYSLOG_PORT = 514
_ANCHOR_FORMS = (
    "expected file:PATH, syslog, syslog:SOCKET, syslog://HOST[:PORT] or syslog+tcp://HOST[:PORT]"
)


def parse_anchor_target(value: str) -> AnchorTarget:
    """`GARRISON_AUDIT__ANCHOR`'s forms; a ValueError names what was expected."""
    text = value.strip()
    if text.startswith("file:"):
        path = text.removeprefix("file:")
        path = path.removeprefix("//") if path.startswith("///") else path
        if not path:
            raise ValueError(f"{value!r}: file: needs a path")
        return FileAnchorTarget(path=Path(path).expanduser())
    if text == "syslog":
        return SyslogAnchorTarget(transport=SyslogTransport.UNIX, address="/dev/log")
    for scheme, transport in (
        ("syslog://", SyslogTransport.UDP),
        ("syslog+tcp://", SyslogTransport.TCP),
    ):
        if text.startswith(scheme):
            parts = urlsplit("//" + text.removeprefix(scheme))
            try:
                port = parts.port
            except ValueError:
                raise ValueError(f"{value!r}: the port is not a number in 1-65535") from None
            if not parts.hostname or parts.path or parts.query or parts.fragment:
                raise ValueError(f"{value!r}: {_ANCHOR_FORMS}")
            return SyslogAnchorTarget(
                transport=transport, address=parts.hostname, port=port or SYSLOG_PORT
            )
    if text.startswith("syslog:") and len(text) > len("syslog:"):
        return SyslogAnchorTarget(
            transport=SyslogTransport.UNIX, address=text.removeprefix("syslog:")
        )
    raise ValueError(f"{value!r}: {_ANCHOR_FORMS}")


def _state_dir() -> Path:
    """The XDG base directory spec's state home: `$XDG_STATE_HOME` when it is an absolute path,
    else `~/.local/state`; Garrison's part of it is `garrison/`."""
    base = os.environ.get("XDG_STATE_HOME", "")
    root = Path(base) if Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "garrison"


class AuditSettings(BaseModel):
    """Where and when the audit chain's head is anchored (docs/operators.md, "The audit log").

    No `anchor`: a file of the database's own, `<state_dir>/<digest of the database>/
    audit-anchor.jsonl`, outside the data directory."""

    anchor: str | None = None
    state_dir: Path = Field(default_factory=_state_dir)
    # Every process that opens the runtime anchors the head this often, when it moved: the bound
    # on how many seconds of entries a cut tail can lose undetected.
    anchor_interval_s: float = Field(default=60.0, gt=0, le=86_400)
    anchor_every: int = Field(default=100, ge=1)  # entries; also every incident close

    @field_validator("anchor")
    @classmethod
    def _anchor_form(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None  # set but empty: the default file
        parse_anchor_target(value)
        return value.strip()

    @property
    def target(self) -> AnchorTarget | None:
        """The configured anchor; None: the default file (its path depends on the database)."""
        return None if self.anchor is None else parse_anchor_target(self.anchor)
