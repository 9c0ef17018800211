"""What an attacker with write access to the audit table does (A1), shared by the store's and the
command line's tamper tests: edit a row, delete one, swap two, cut the tail."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

CONTENT = (
    "at, type, actor, incident_id, target, outcome, source, approval_ref, "
    "policy_decision_id, detail, prev_hash, hash"
)


async def sql(engine: AsyncEngine, statement: str, **params: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(statement), params)


async def swap_content(engine: AsyncEngine, a: int, b: int) -> None:
    """Exchange everything but `seq` between two rows (an attacker reordering history)."""
    async with engine.begin() as conn:
        rows = {
            row["seq"]: dict(row)
            for row in (
                await conn.execute(
                    text(f"SELECT seq, {CONTENT} FROM audit_log WHERE seq IN (:a, :b)"),
                    {"a": a, "b": b},
                )
            ).mappings()
        }
        assignments = ", ".join(f"{name} = :{name}" for name in CONTENT.split(", "))
        for seq, other in ((a, b), (b, a)):
            values = {**rows[other], "seq": seq}
            await conn.execute(text(f"UPDATE audit_log SET {assignments} WHERE seq = :seq"), values)


class Tamper(NamedTuple):
    """One A1 case on a chain of 20 entries anchored at seq 20: what it does, the first seq the
    verifier must name, and the kind its reason starts with."""

    name: str
    apply: Callable[[AsyncEngine], Awaitable[None]]
    first_bad_seq: int
    kind: str


TAMPERS = (
    Tamper(
        "update-middle",
        lambda e: sql(e, "UPDATE audit_log SET outcome = 'failed' WHERE seq = 8"),
        8,
        "hash mismatch",
    ),
    Tamper("delete-middle", lambda e: sql(e, "DELETE FROM audit_log WHERE seq = 11"), 11, "gap"),
    Tamper("swap", lambda e: swap_content(e, 5, 9), 5, "prev_hash break"),
    # Caught only with the anchor: the remaining chain is whole.
    Tamper("cut-tail", lambda e: sql(e, "DELETE FROM audit_log WHERE seq > 17"), 18, "truncated"),
)
