"""Reading rows from the node's SQLite connection safely."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aiosqlite


async def fetch_all(
    db: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()
) -> list[tuple[Any, ...]]:
    """Run a query and read all its rows in one step on the connection's thread.

    (Not `execute` then `fetchall`: between those two awaits another task's write on the
    same connection could run, and a cursor must not straddle it.)
    """
    return [tuple(r) for r in await db.execute_fetchall(sql, tuple(params))]


async def fetch_one(
    db: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()
) -> tuple[Any, ...] | None:
    rows = await fetch_all(db, sql, params)
    return rows[0] if rows else None
