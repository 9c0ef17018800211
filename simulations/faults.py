"""`garrison simulate --fault CAPABILITY=SPEC`: a vendor faulted for every incident of the run.

Each incident of an emulated run has its own emulators, so a fault applies to each incident's
vendor from the moment its emulators start:

    down[:for=D|:until=closing|:until=end]   every call answered 503
    5xx:N                                    the next N calls answered 503
    429:N[:retry_after=D]                    the next N calls answered 429 with Retry-After (1 s)
    latency:D[:for=D|:until=...]             every call answered D late
    reset_after_apply[:OPS][:for=...]        a change applied, then the connection dropped
    hang_after_apply[:OPS][:for=...]         a change applied, then no answer ever

A lasting fault (down, latency, reset, hang) is lifted `until=closing` by default: once the
incident has decided every action and is closing, so what was held back (the ticket, behind the
ticket outbox) catches up within the run; `for=D` lifts it D after the incident's emulators
started; `until=end` never lifts it within the incident's run. Counted faults (5xx, 429) end when
their count is spent. OPS are the emulator's operation names (`create_issue,add_comment`), `*`
(the default) every one. D is `30s`, `500ms`, `2m`, or seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum

from tools.emulators.base import EmulatorFaults
from tools.vendor_spec import Capability

SYNTAX = (
    "down, 5xx:N, 429:N, latency:D, reset_after_apply[:OPS], hang_after_apply[:OPS];"
    " lasting ones take :for=D or :until=closing|end"
)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)?$")
_OP = re.compile(r"^(\*|[a-z_][a-z0-9_ ]*)$")


class FaultKind(StrEnum):
    DOWN = "down"
    FAIL_5XX = "5xx"
    RATE_LIMIT_429 = "429"
    LATENCY = "latency"
    RESET_AFTER_APPLY = "reset_after_apply"
    HANG_AFTER_APPLY = "hang_after_apply"


class Until(StrEnum):
    CLOSING = "closing"  # the incident has decided every action
    END = "end"  # never lifted within the incident's run


COUNTED = (FaultKind.FAIL_5XX, FaultKind.RATE_LIMIT_429)


@dataclass(frozen=True)
class Fault:
    capability: Capability
    kind: FaultKind
    text: str  # as the operator wrote it, for the report
    count: int = 0
    seconds: float = 0.0  # the latency, or a 429's Retry-After
    ops: frozenset[str] = field(default_factory=lambda: frozenset({"*"}))
    lift_after_s: float | None = None
    until: Until | None = None  # lasting faults: when no `for=` is given

    def knobs(self) -> dict[str, object]:
        """The emulator's fault knobs that bring this fault on."""
        match self.kind:
            case FaultKind.DOWN:
                return {"down": True}
            case FaultKind.FAIL_5XX:
                return {"fail_5xx": self.count}
            case FaultKind.RATE_LIMIT_429:
                return {"rate_limit_429": self.count, "retry_after_s": round(self.seconds)}
            case FaultKind.LATENCY:
                return {"latency_ms": round(self.seconds * 1000)}
            case FaultKind.RESET_AFTER_APPLY:
                return {"reset_after_apply": set(self.ops)}
            case FaultKind.HANG_AFTER_APPLY:
                return {"hang_after_apply": set(self.ops)}

    def lifting(self) -> dict[str, object]:
        """The knobs that lift it again."""
        defaults = EmulatorFaults()
        return {name: getattr(defaults, name) for name in self.knobs()}


def parse_fault(text: str) -> Fault:
    """`ticketing=down:for=30s` -> a Fault; ValueError in one line naming the problem."""
    capability_text, sep, spec = text.partition("=")
    if not sep or not spec.strip():
        raise ValueError(f"--fault {text!r}: write CAPABILITY=SPEC, e.g. ticketing=down")
    try:
        capability = Capability(capability_text.strip().lower())
    except ValueError:
        known = ", ".join(c.value for c in Capability)
        raise ValueError(
            f"--fault {text!r}: unknown capability {capability_text.strip()!r}; one of {known}"
        ) from None
    kind_text, *parts = [p.strip() for p in spec.strip().split(":")]
    try:
        kind = FaultKind(kind_text.lower())
    except ValueError:
        raise ValueError(
            f"--fault {text!r}: unknown fault {kind_text!r}; faults: {SYNTAX}"
        ) from None
    try:
        return _build(capability, kind, parts, text.strip())
    except ValueError as error:
        raise ValueError(f"--fault {text!r}: {error}") from None


def _build(capability: Capability, kind: FaultKind, parts: list[str], text: str) -> Fault:
    positional = [p for p in parts if "=" not in p]
    options = dict(p.split("=", 1) for p in parts if "=" in p)
    options = {name.strip().lower(): value.strip() for name, value in options.items()}
    allowed = {"retry_after"} if kind is FaultKind.RATE_LIMIT_429 else set()
    if kind not in COUNTED:
        allowed |= {"for", "until"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        accepted = ", ".join(sorted(allowed)) or "none"
        raise ValueError(f"{kind.value} takes no option {unknown[0]!r} (options: {accepted})")
    if "for" in options and "until" in options:
        raise ValueError("give for= or until=, not both")
    needs_value = kind in (*COUNTED, FaultKind.LATENCY)
    if len(positional) > 1 or (needs_value and not positional):
        raise ValueError(f"{kind.value} takes {_usage(kind)}")
    if kind is FaultKind.DOWN and positional:
        raise ValueError(f"down takes no value (got {positional[0]!r}); lift it with for=D")
    fault = Fault(capability=capability, kind=kind, text=text)
    value = positional[0] if positional else None
    if kind in COUNTED:
        fault = _counted(fault, value or "", options.get("retry_after"))
    elif kind is FaultKind.LATENCY:
        fault = replace(fault, seconds=duration(value or ""))
    elif value is not None:
        fault = replace(fault, ops=_ops(value))
    if kind not in COUNTED:
        fault = _lasting(fault, options)
    return fault


def _counted(fault: Fault, count: str, retry_after: str | None) -> Fault:
    if not count.isdigit() or int(count) < 1:
        raise ValueError(f"{fault.kind.value}:N takes a count of calls of 1 or more, not {count!r}")
    seconds = duration(retry_after) if retry_after is not None else 1.0
    return replace(fault, count=int(count), seconds=seconds)


def _lasting(fault: Fault, options: dict[str, str]) -> Fault:
    if "for" in options:
        seconds = duration(options["for"])
        if seconds <= 0:
            raise ValueError("for= needs a duration above 0")
        return replace(fault, lift_after_s=seconds)
    try:
        until = Until(options.get("until", Until.CLOSING.value).lower())
    except ValueError:
        raise ValueError(f"until={options['until']!r}: closing or end") from None
    return replace(fault, until=until)


def _ops(value: str) -> frozenset[str]:
    ops = [op.strip() for op in value.split(",") if op.strip()]
    bad = [op for op in ops if not _OP.match(op)]
    if not ops or bad:
        raise ValueError(f"{value!r} is not a list of operation names (create_issue,contain)")
    return frozenset(ops)


def duration(text: str) -> float:
    """`30s`, `500ms`, `2m` or seconds, as seconds; ValueError naming the text otherwise."""
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not a duration (30s, 500ms, 2m)")
    number, unit = float(match.group(1)), match.group(2) or "s"
    return number * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]


def _usage(kind: FaultKind) -> str:
    return {
        FaultKind.FAIL_5XX: "one count, e.g. 5xx:6",
        FaultKind.RATE_LIMIT_429: "one count, e.g. 429:2 or 429:2:retry_after=5s",
        FaultKind.LATENCY: "one duration, e.g. latency:20s",
    }.get(kind, "at most one list of operations")
