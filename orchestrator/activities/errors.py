"""The one place where adapter errors become Temporal retry decisions."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import timedelta
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from tools.errors import PermanentToolError, TransientToolError

_T = TypeVar("_T")


async def vendor_call(call: Awaitable[_T]) -> _T:
    """Await an adapter call: transient errors retry (after Retry-After), permanent ones don't."""
    try:
        return await call
    except TransientToolError as error:
        delay = timedelta(seconds=error.retry_after_s) if error.retry_after_s else None
        raise ApplicationError(
            str(error), type="TransientToolError", next_retry_delay=delay
        ) from error
    except PermanentToolError as error:
        raise ApplicationError(str(error), type=type(error).__name__, non_retryable=True) from error


def activity_source() -> str:
    """Where an audit record came from: workflow id, activity type and attempt."""
    info = activity.info()
    return f"{info.workflow_id}/{info.activity_type}#{info.attempt}"
