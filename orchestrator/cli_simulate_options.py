"""The options of `garrison simulate` that need checking before anything runs: the analyst policy,
the emulated vendors and their faults, the metric gates and the baseline. A wrong one exits 2 with
its message; they are checked in this order, so the first wrong one is the one named."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.cli_common import fail
from orchestrator.cli_simulate_print import NUMERIC_METRICS

if TYPE_CHECKING:
    from simulations.faults import Fault
    from simulations.spec import AnalystPolicy
    from tools.vendor_spec import Capability, VendorSpec


@dataclass(frozen=True)
class CheckedOptions:
    analyst: AnalystPolicy | None  # None: each incident's own analyst
    emulated: dict[Capability, VendorSpec] | None  # None: the in-memory twins
    faults: tuple[Fault, ...]
    gates: list[Gate]  # --fail-under, then --fail-over
    baseline: dict[str, Any] | None  # the saved report to compare with


def check_options(
    analyst: str | None,
    backends: str,
    vendor: list[str],
    fault: list[str],
    fail_under: list[str],
    fail_over: list[str],
    baseline: Path | None,
) -> CheckedOptions:
    # One after the other (keyword arguments are evaluated in order): the first wrong one is named.
    policy = analyst_policy(analyst)
    emulated = emulated_vendors(backends, vendor)
    return CheckedOptions(
        analyst=policy,
        emulated=emulated,
        faults=parse_faults(fault, emulated is not None),
        gates=thresholds(fail_under, "--fail-under") + thresholds(fail_over, "--fail-over"),
        baseline=saved_baseline(baseline),
    )


def analyst_policy(analyst: str | None) -> AnalystPolicy | None:
    from simulations.spec import AnalystPolicy

    if analyst is None:
        return None
    try:
        return AnalystPolicy(analyst)
    except ValueError:
        fail(f"--analyst must be one of {', '.join(p.value for p in AnalystPolicy)}")


def emulated_vendors(backends: str, choices: list[str]) -> dict[Capability, VendorSpec] | None:
    """The vendors to emulate, one per capability (defaults from tools.vendors)."""
    if backends == "memory":
        if choices:
            fail("--vendor needs --backends emulated")
        return None
    if backends != "emulated":
        fail(f"--backends {backends!r}: memory or emulated")
    from tools.vendor_spec import Capability
    from tools.vendors import DEFAULT_EMULATED, UnknownVendor, vendor

    chosen = dict(DEFAULT_EMULATED)
    for choice in choices:
        capability, sep, name = choice.partition("=")
        try:
            chosen[Capability(capability)] = name if sep else ""
        except ValueError:
            fail(f"--vendor {choice!r}: CAPABILITY=VENDOR, capabilities are edr, firewall, ...")
    specs: dict[Capability, VendorSpec] = {}
    for capability, name in chosen.items():
        try:
            spec = vendor(name)
        except UnknownVendor as error:
            fail(f"--vendor: {error.args[0]}")
        if spec.capability is not capability:
            fail(f"--vendor: {name} is a {spec.capability.value} vendor, not {capability.value}")
        specs[capability] = spec
    return specs


def parse_faults(specs: list[str], emulated: bool) -> tuple[Fault, ...]:
    from simulations.faults import parse_fault

    if specs and not emulated:
        fail("--fault needs --backends emulated: faults are injected by the vendors' emulators")
    try:
        return tuple(parse_fault(spec) for spec in specs)
    except ValueError as error:
        fail(str(error))


class Gate:
    def __init__(self, metric: str, value: float, below: bool) -> None:
        self.metric, self.value, self.below = metric, value, below

    def holds(self, report: dict[str, object]) -> bool:
        actual = report.get(self.metric)
        if not isinstance(actual, int | float):
            return False
        return actual >= self.value if self.below else actual <= self.value

    def describe(self, report: dict[str, object]) -> str:
        sign = ">=" if self.below else "<="
        return f"{self.metric} = {report.get(self.metric)}, wanted {sign} {self.value}"


def thresholds(specs: list[str], option: str) -> list[Gate]:
    gates = []
    for spec in specs:
        metric, sep, value = spec.partition("=")
        if not sep or metric not in NUMERIC_METRICS:
            known = ", ".join(NUMERIC_METRICS)
            fail(f"{option} {spec!r}: expected METRIC=VALUE with METRIC in {known}")
        try:
            gates.append(Gate(metric, float(value), below=option == "--fail-under"))
        except ValueError:
            fail(f"{option} {spec!r}: {value!r} is not a number")
    return gates


def saved_baseline(path: Path | None) -> dict[str, Any] | None:
    from simulations.baseline import load_baseline

    if path is None:
        return None
    try:
        return load_baseline(path)
    except ValueError as error:
        fail(str(error))
