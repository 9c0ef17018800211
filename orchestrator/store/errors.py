"""The store's errors. Lock contention is retried inside the store and never surfaces here."""

from __future__ import annotations


class StoreError(Exception):
    """Base of the errors the store raises on purpose."""


class NotFoundError(StoreError, LookupError):
    """The incident, action or approval named does not exist."""


class ConflictError(StoreError):
    """A write would contradict what is stored (another incident owns the group key, an approval
    id already names a different action)."""
