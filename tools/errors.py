"""The error tree every adapter raises, decided once: transient errors are retried by Temporal,
permanent ones are not. Callers branch on the type, never on a message."""

from __future__ import annotations


class ToolError(Exception):
    """Base of every adapter error."""


class TransientToolError(ToolError):
    """Timeouts, 5xx, 429: worth retrying, after `retry_after_s` when the vendor said so."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentToolError(ToolError):
    """A request the vendor will refuse again (other 4xx): never retried."""


class UnsupportedActionError(PermanentToolError):
    """The vendor (or the configured implementation) has no endpoint for this action at all:
    a human does it, from the incident's ticket."""


class AuthError(PermanentToolError):
    """Credentials missing, wrong or lacking a permission."""


class NotFoundError(PermanentToolError):
    """The entity does not exist at the vendor."""
