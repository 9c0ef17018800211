"""`garrison tools list|check|call`: how operators see, test and try the vendor integrations
before trusting them. (`garrison emulate`, which serves their emulators, is `cli_emulate`.)"""

from __future__ import annotations

import asyncio
import inspect
import json
import typing
from typing import Annotated, Any

import typer
from rich.table import Table

from orchestrator.cli_common import err, fail, out
from orchestrator.cli_emulate import emulate

__all__ = ["emulate", "tools_app"]

tools_app = typer.Typer(help="Vendor integrations: list, check, call.", no_args_is_help=True)

PROBE_HOST = "garrison-connectivity-check"


@tools_app.command("list")
def tools_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every capability with its vendors and whether each is configured."""
    from tools.vendor_settings import env_prefix, is_configured
    from tools.vendors import VENDORS

    rows = [
        {
            "capability": spec.capability.value,
            "vendor": spec.name,
            "title": spec.title,
            "env_prefix": env_prefix(spec.settings),
            "configured": is_configured(spec.settings),
        }
        for spec in VENDORS
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("capability", "vendor", "title", "settings", "configured", box=None)
    for row in rows:
        table.add_row(
            row["capability"],
            row["vendor"],
            row["title"],
            f"{row['env_prefix']}*",
            "yes" if row["configured"] else "no",
        )
    out.print(table)


@tools_app.command("check")
def tools_check() -> None:
    """Test connectivity and credentials of every configured vendor with one harmless read."""
    from tools.errors import AuthError, ToolError
    from tools.vendor_settings import is_configured, load_vendor_settings
    from tools.vendors import VENDORS

    configured = [spec for spec in VENDORS if is_configured(spec.settings)]
    if not configured:
        fail("no vendor is configured: see `garrison tools list` and docs/vendors/")

    async def run() -> int:
        failures = 0
        for spec in configured:
            adapter = spec.build(load_vendor_settings(spec.settings), None)
            try:
                detail = await _probe(spec.capability.value, adapter)
                out.print(f"{spec.name}: ok ({detail})", markup=False)
            except AuthError as error:
                failures += 1
                err.print(f"{spec.name}: credentials refused: {error}", markup=False)
            except ToolError as error:
                failures += 1
                err.print(f"{spec.name}: unreachable or failing: {error}", markup=False)
            finally:
                await adapter.aclose()
        return failures

    raise typer.Exit(1 if asyncio.run(run()) else 0)


async def _probe(capability: str, adapter: Any) -> str:
    """A read every implementation of the capability answers without changing anything."""
    from tools.models import Indicator, IndicatorKind

    match capability:
        case "edr":
            await adapter.find_host(PROBE_HOST)
            return "host lookup answered"
        case "firewall":
            return f"{len(await adapter.list_blocked())} object(s) blocked by Garrison"
        case "identity":
            await adapter.get_account(PROBE_HOST)
            return "account lookup answered"
        case "ticketing":
            await adapter.find_ticket(PROBE_HOST)
            return "ticket search answered"
        case "intel":
            answer = await adapter.reputation(
                Indicator(kind=IndicatorKind.DOMAIN, value="example.com")
            )
            return f"reputation answered ({answer.verdict.value})"
    return "no probe"


@tools_app.command("call")
def tools_call(
    vendor_name: Annotated[str, typer.Argument(metavar="VENDOR")],
    operation: Annotated[str, typer.Argument(metavar="OPERATION")],
    args: Annotated[list[str] | None, typer.Argument(metavar="[ARGS]...")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run one operation of a configured vendor, e.g. `garrison tools call crowdstrike
    isolate_host PRD01`."""
    from tools.errors import ToolError
    from tools.vendor_settings import VendorConfigError, load_vendor_settings
    from tools.vendors import UnknownVendor, vendor

    try:
        spec = vendor(vendor_name)
    except UnknownVendor as error:
        fail(str(error.args[0]))
    try:
        settings = load_vendor_settings(spec.settings)
    except VendorConfigError as error:
        fail(f"{spec.name} is not configured: {error}")

    async def run() -> Any:
        adapter = spec.build(settings, None)
        try:
            method = _operation(adapter, operation)
            return await method(*_arguments(method, args or []))
        finally:
            await adapter.aclose()

    try:
        result = asyncio.run(run())
    except ToolError as error:
        fail(f"{spec.name} {operation}: {error}", code=1)
    text = _render(result)
    if as_json:
        print(text)
    else:
        out.print(f"{spec.name} {operation}:", markup=False)
        out.print(text, markup=False)


def _operation(adapter: Any, name: str) -> Any:
    method = getattr(adapter, name, None) if not name.startswith("_") else None
    if method is None or not inspect.iscoroutinefunction(method) or name == "aclose":
        public = sorted(
            n
            for n, m in inspect.getmembers(adapter, inspect.iscoroutinefunction)
            if not n.startswith("_") and n != "aclose"
        )
        fail(f"unknown operation {name!r}; operations: {', '.join(public)}")
    return method


def _arguments(method: Any, raw: list[str]) -> list[object]:
    from tools.models import Indicator, IndicatorKind

    hints = typing.get_type_hints(method)
    parameters = [p for p in inspect.signature(method).parameters.values()]
    required = [p for p in parameters if p.default is inspect.Parameter.empty]
    if not len(required) <= len(raw) <= len(parameters):
        names = " ".join(p.name.upper() for p in parameters)
        fail(f"{method.__name__} takes {names}")
    values: list[object] = []
    for parameter, value in zip(parameters, raw, strict=False):
        hint = hints.get(parameter.name)
        if hint is int:
            try:
                values.append(int(value))
            except ValueError:
                fail(f"{parameter.name}: {value!r} is not an integer")
        elif hint is Indicator:
            kind, _, indicator = value.partition(":")
            try:
                values.append(Indicator(kind=IndicatorKind(kind), value=indicator))
            except ValueError:
                fail(f"{parameter.name}: write it KIND:VALUE with KIND one of ip, domain, sha256")
        else:
            values.append(value)
    return values


def _render(result: object) -> str:
    from pydantic import BaseModel

    if isinstance(result, BaseModel):
        return result.model_dump_json(indent=2)
    if isinstance(result, list):
        return json.dumps(
            [r.model_dump(mode="json") if isinstance(r, BaseModel) else r for r in result],
            indent=2,
        )
    return json.dumps(result)
