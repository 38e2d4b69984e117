"""Reading rows from the node's SQLite connection safely."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import aiosqlite

T = TypeVar("T")


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


async def run_in_db(db: aiosqlite.Connection, fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(conn, *args)` on the connection's own thread, in one round trip.

    A batch of writes (events, every projection, heads, outbox, rejections) is one function
    here rather than a dozen awaited statements: each await on aiosqlite is a hand-off to its
    thread and back, which the first profiles showed to cost more than the fsync itself
    (BENCHMARKS.md). `Connection._execute` is aiosqlite's own way to queue a function on
    that thread (every public method goes through it).
    """

    def call() -> T:
        conn: sqlite3.Connection = db._conn
        return fn(conn, *args)

    result: T = await db._execute(call)  # type: ignore[no-untyped-call]
    return result


def select_all(
    conn: sqlite3.Connection, sql: str, params: Iterable[Any] = ()
) -> list[tuple[Any, ...]]:
    """Every row of a query, on the connection's thread (inside `run_in_db`)."""
    return [tuple(r) for r in conn.execute(sql, tuple(params)).fetchall()]


def select_one(
    conn: sqlite3.Connection, sql: str, params: Iterable[Any] = ()
) -> tuple[Any, ...] | None:
    found = conn.execute(sql, tuple(params)).fetchone()
    return tuple(found) if found is not None else None
