"""The one place where adapter errors become Temporal retry decisions, and where every failure an
activity raises is cut to a size Temporal keeps.

Temporal refuses a failure bigger than its blob limit and records "Failure exceeds size limit"
instead, losing the real cause (a vendor's 3 MB error page, a validation error listing thousands of
items). `bounded_failure` keeps the type, the retry decision and the beginning of every message,
and drops the rest.
"""

from __future__ import annotations

import traceback
from collections.abc import Awaitable
from datetime import timedelta
from types import TracebackType
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from orchestrator.activities.heartbeat import beat, heartbeating
from tools.errors import PermanentToolError, TransientToolError

_T = TypeVar("_T")

MAX_MESSAGE_CHARS = 2_000  # of a failure's message, and of its cause's
MAX_DETAIL_CHARS = 2_000  # of each detail, as text
MAX_DETAILS = 4
MAX_FRAMES = 20  # innermost stack frames kept
# A failure whose texts (messages, details, stack traces, the whole cause chain) stay under this
# passes unchanged; Temporal's own limit is in megabytes.
MAX_FAILURE_CHARS = 16_000
_CHAIN = 8  # causes measured


async def vendor_call(call: Awaitable[_T]) -> _T:
    """Await an adapter call, heartbeating before, after and while it waits: transient errors
    retry (after Retry-After), permanent ones don't."""
    beat()
    try:
        async with heartbeating():
            result = await call
    except TransientToolError as error:
        delay = timedelta(seconds=error.retry_after_s) if error.retry_after_s else None
        raise ApplicationError(
            _cut(str(error), MAX_MESSAGE_CHARS), type="TransientToolError", next_retry_delay=delay
        ) from error
    except PermanentToolError as error:
        raise ApplicationError(
            _cut(str(error), MAX_MESSAGE_CHARS), type=type(error).__name__, non_retryable=True
        ) from error
    beat()
    return result


def activity_source() -> str:
    """Where an audit record came from: workflow id, activity type and attempt."""
    info = activity.info()
    return f"{info.workflow_id}/{info.activity_type}#{info.attempt}"


def is_final_attempt(error: BaseException) -> bool:
    """Whether Temporal will not run this activity again after `error`: it is not retryable
    (by itself or by the caller's retry policy), or this was the policy's last attempt."""
    info = activity.info()
    policy = info.retry_policy
    if isinstance(error, ApplicationError):
        if error.non_retryable:
            return True
        name = error.type or type(error).__name__
    else:
        name = type(error).__name__
    if policy is None:
        return False
    if name in (policy.non_retryable_error_types or ()):
        return True
    return 0 < policy.maximum_attempts <= info.attempt


def failure_text(error: BaseException) -> str:
    """A failure as one bounded line for the ledger and the audit log."""
    return _cut(f"{_type_name(error)}: {_message(error)}", MAX_MESSAGE_CHARS)


def bounded_failure(error: Exception) -> Exception:
    """`error` itself when Temporal can keep it, else an `ApplicationError` of the same type and
    retry decision with its message, details and cause cut, and its innermost frames kept."""
    if _failure_chars(error) <= MAX_FAILURE_CHARS:
        return error
    if isinstance(error, ApplicationError):
        bounded = ApplicationError(
            _cut(error.message, MAX_MESSAGE_CHARS),
            *[_cut(str(d), MAX_DETAIL_CHARS) for d in error.details[:MAX_DETAILS]],
            type=error.type,
            non_retryable=error.non_retryable,
            next_retry_delay=error.next_retry_delay,
            category=error.category,
        )
    else:  # Temporal names a plain exception's failure after its class: so does the copy
        bounded = ApplicationError(_cut(str(error), MAX_MESSAGE_CHARS), type=type(error).__name__)
    cause = _cause(error)
    if cause is not None:
        bounded.__cause__ = ApplicationError(
            _cut(_message(cause), MAX_MESSAGE_CHARS), type=_type_name(cause)
        )
    bounded.__suppress_context__ = True  # never the original, uncut, as the implicit context
    return bounded.with_traceback(_innermost(error.__traceback__, MAX_FRAMES))


def _failure_chars(error: BaseException) -> int:
    total = 0
    current: BaseException | None = error
    for _ in range(_CHAIN):
        if current is None:
            return total
        details = current.details if isinstance(current, ApplicationError) else ()
        total += len(_message(current)) + sum(len(str(d)) for d in details)
        total += sum(len(line) for line in traceback.format_tb(current.__traceback__))
        if total > MAX_FAILURE_CHARS:
            return total
        current = _cause(current)
    return total if current is None else MAX_FAILURE_CHARS + 1  # a longer chain: cut it


def _cause(error: BaseException) -> BaseException | None:
    if error.__cause__ is not None:
        return error.__cause__
    return None if error.__suppress_context__ else error.__context__


def _message(error: BaseException) -> str:
    """The text without the type (`str()` of an `ApplicationError` starts with its type)."""
    return error.message if isinstance(error, ApplicationError) else str(error)


def _type_name(error: BaseException) -> str:
    if isinstance(error, ApplicationError) and error.type:
        return error.type
    return type(error).__name__


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters cut]"


def _innermost(tb: TracebackType | None, frames: int) -> TracebackType | None:
    """The last `frames` frames of a traceback (where the error was raised)."""
    depth = 0
    walk = tb
    while walk is not None:
        depth += 1
        walk = walk.tb_next
    for _ in range(max(0, depth - frames)):
        assert tb is not None
        tb = tb.tb_next
    return tb
