"""The pools projection: pooled purchases, their shares, holds and settlements, from the log.

I/O only: every rule is a pure function of `coopnet.protocol.pools` (§19), so an observer
recomputes exactly this. A pool is recomputed from every statement held about it
(`fold_pool`) whenever one arrives, so the result does not depend on the order the
organizer's and the participants' logs arrived in (as the market's trades,
node/market/projection.py `refold_trade`). Domain refusals (`not_authorized`) are kept per
event in the engine's `domain_rejections`, replaced by the fold's current ones at each refold
(a later arrival can take one back), as node/aid/projection.py does.

Tables (amounts in credit cents, quantities in the pool's units, times in ms):
  pool_events       every pool statement held, keyed by event id
  pools             one row per opened pool: its terms, the organizer's state, the pool's
                    state (PoolView.state) and the cases bought (0 until allocated)
  pool_shares       per participant: its latest commitment before the close, the counted
                    one and its share after it; `received` 1 once its receipt counted
  pool_settlements  credit moved once delivered (payer → payee), part of the ledger
  pool_holds        credit held by open commitments, part of a participant's commitments
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import aiosqlite
import msgspec

from coopnet.node.engine.projection import record_refusal
from coopnet.node.engine.store import ENGINE_REFUSALS
from coopnet.node.engine.store_io import fetch_all, run_in_db, select_all, select_one
from coopnet.protocol import Envelope
from coopnet.protocol.body import kind_of
from coopnet.protocol.kinds import KINDS
from coopnet.protocol.pools import (
    POOL_KINDS,
    PoolBoxFill,
    PoolCommitted,
    PoolStatement,
    PoolView,
    fold_pool,
    pool_key,
)

_encoder = msgspec.msgpack.Encoder()
POOL_COLUMNS = ("organizer", "pool", "item", "unit", "case_size", "unit_price", "min_cases",
                "max_cases", "closes_at", "supplier", "supplier_offer", "supplier_name",
                "single_unit_price", "opened_at", "organizer_state", "state",
                "cases")  # fmt: skip
SHARE_COLUMNS = ("participant", "quantity", "tolerance", "share", "received")


class Pools:
    """The `pool_events`, `pools`, `pool_shares`, `pool_settlements` and `pool_holds` tables."""

    name = "pools"
    kinds = frozenset(kind_of(cls) for cls in POOL_KINDS)
    tables: tuple[str, ...] = (
        "pool_events",
        "pools",
        "pool_shares",
        "pool_settlements",
        "pool_holds",
    )
    migrations: tuple[tuple[str, ...], ...] = ((
        """CREATE TABLE pool_events (
            id BLOB PRIMARY KEY, organizer TEXT NOT NULL, pool TEXT NOT NULL,
            author TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,
            kind TEXT NOT NULL, body BLOB NOT NULL)""",
        "CREATE INDEX pool_events_pool ON pool_events (organizer, pool)",
        """CREATE TABLE pools (
            organizer TEXT NOT NULL, pool TEXT NOT NULL, item TEXT NOT NULL,
            unit TEXT NOT NULL, case_size INTEGER NOT NULL, unit_price INTEGER NOT NULL,
            min_cases INTEGER NOT NULL, max_cases INTEGER NOT NULL,
            closes_at INTEGER NOT NULL, supplier TEXT NOT NULL, supplier_offer TEXT NOT NULL,
            supplier_name TEXT NOT NULL, single_unit_price INTEGER NOT NULL,
            opened_at INTEGER NOT NULL, organizer_state TEXT NOT NULL, state TEXT NOT NULL,
            cases INTEGER NOT NULL, PRIMARY KEY (organizer, pool))""",
        """CREATE TABLE pool_shares (
            organizer TEXT NOT NULL, pool TEXT NOT NULL, participant TEXT NOT NULL,
            quantity INTEGER NOT NULL, tolerance INTEGER NOT NULL, share INTEGER NOT NULL,
            received INTEGER NOT NULL, PRIMARY KEY (organizer, pool, participant))""",
        """CREATE TABLE pool_settlements (
            organizer TEXT NOT NULL, pool TEXT NOT NULL, payer TEXT NOT NULL,
            payee TEXT NOT NULL, amount INTEGER NOT NULL,
            PRIMARY KEY (organizer, pool, payer, payee))""",
        "CREATE INDEX pool_settlements_payer ON pool_settlements (payer)",
        "CREATE INDEX pool_settlements_payee ON pool_settlements (payee)",
        """CREATE TABLE pool_holds (
            organizer TEXT NOT NULL, pool TEXT NOT NULL, participant TEXT NOT NULL,
            amount INTEGER NOT NULL, PRIMARY KEY (organizer, pool, participant))""",
        "CREATE INDEX pool_holds_participant ON pool_holds (participant)",
    ),)  # fmt: skip

    def apply(self, conn: sqlite3.Connection, events: Sequence[Envelope]) -> None:
        touched: set[tuple[str, str]] = set()
        for env in events:
            key = pool_key(env.author, env.body)
            if key is None:
                continue
            conn.execute(
                "INSERT OR IGNORE INTO pool_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (env.id, key[0], key[1], env.author, env.seq, env.at, env.kind,
                 _encoder.encode(env.body)),
            )  # fmt: skip
            touched.add(key)
        for organizer, pool in sorted(touched):
            refold_pool(conn, organizer, pool)

    def reset(self, conn: sqlite3.Connection) -> None:
        for table in self.tables:
            conn.execute(f"DELETE FROM {table}")


def statements_of(conn: sqlite3.Connection, organizer: str, pool: str) -> list[PoolStatement]:
    """Every statement held about one pool, in the order the node stored them."""
    rows = select_all(
        conn,
        "SELECT id, author, seq, at, kind, body FROM pool_events"
        " WHERE organizer = ? AND pool = ? ORDER BY rowid",
        (organizer, pool),
    )
    return [
        PoolStatement(
            id=bytes(r[0]),
            author=r[1],
            seq=r[2],
            at=r[3],
            body=msgspec.msgpack.decode(r[5], type=KINDS[r[4]]),
        )
        for r in rows
    ]


def refold_pool(conn: sqlite3.Connection, organizer: str, pool: str) -> PoolView:
    """Recompute one pool from every statement held about it, and store the result."""
    statements = statements_of(conn, organizer, pool)
    view = fold_pool(organizer, pool, statements)
    by_id = {s.id: s for s in statements}
    # The fold decides from the whole set of statements held, and a later arrival can change
    # its verdict (a close refused once both of its author's commitments are held frees the
    # organizer's next close): this pool's refusals are replaced by the fold's current ones,
    # so two nodes holding the same events hold the same rows, however they were batched. The
    # engine's own refusals are not the fold's (a `bad_body` event is never a pool statement).
    conn.execute(
        "DELETE FROM domain_rejections WHERE id IN"
        " (SELECT id FROM pool_events WHERE organizer = ? AND pool = ?)"
        f" AND code NOT IN ({', '.join('?' * len(ENGINE_REFUSALS))})",
        (organizer, pool, *ENGINE_REFUSALS),
    )
    for statement_id, code in view.refused:
        s = by_id[statement_id]
        reason = f"not allowed in pool {organizer}/{pool}"
        record_refusal(conn, s.id, s.author, s.seq, s.body.kind, code, reason)
    key = (organizer, pool)
    for table in ("pools", "pool_shares", "pool_settlements", "pool_holds"):
        conn.execute(f"DELETE FROM {table} WHERE organizer = ? AND pool = ?", key)
    o = view.opened
    if o is None:
        return view  # commitments held before the opening: nothing to show yet
    conn.execute(
        f"INSERT INTO pools VALUES ({', '.join('?' * len(POOL_COLUMNS))})",
        (organizer, pool, o.item, o.unit, o.case_size, o.unit_price, o.min_cases, o.max_cases,
         o.closes_at, o.supplier, o.supplier_offer, o.supplier_name, o.single_unit_price,
         view.opened_at, view.organizer_state, view.state, view.cases),
    )  # fmt: skip
    if view.shares:
        rows = [
            (s.participant, s.quantity, s.tolerance, s.share, int(s.participant in view.received))
            for s in view.shares
        ]
    else:
        rows = [(p, q, t, 0, 0) for p, (q, t) in sorted(view.latest.items())]
    conn.executemany(
        "INSERT INTO pool_shares VALUES (?, ?, ?, ?, ?, ?, ?)", [(*key, *r) for r in rows]
    )
    moved: dict[tuple[str, str], int] = defaultdict(int)
    for payer, payee, cents in view.settlements():
        moved[payer, payee] += cents
    conn.executemany(
        "INSERT INTO pool_settlements VALUES (?, ?, ?, ?, ?)",
        [(*key, payer, payee, cents) for (payer, payee), cents in sorted(moved.items())],
    )
    conn.executemany(
        "INSERT INTO pool_holds VALUES (?, ?, ?, ?)",
        [(*key, p, cents) for p, cents in sorted(view.holds().items()) if cents],
    )
    return view


# -- reads for the service, the API, the CLI and the organizer's activity ----------------------


def pool_in(conn: sqlite3.Connection, organizer: str, pool: str) -> dict[str, Any] | None:
    """One pool's row (POOL_COLUMNS) with its `shares` (SHARE_COLUMNS rows, by participant),
    or None when no opening of it is held."""
    sql = f"SELECT {', '.join(POOL_COLUMNS)} FROM pools WHERE organizer = ? AND pool = ?"
    row = select_one(conn, sql, (organizer, pool))
    if row is None:
        return None
    p = dict(zip(POOL_COLUMNS, row, strict=True))
    shares = select_all(
        conn,
        f"SELECT {', '.join(SHARE_COLUMNS)} FROM pool_shares WHERE organizer = ? AND pool = ?"
        " ORDER BY participant",
        (organizer, pool),
    )
    p["shares"] = [dict(zip(SHARE_COLUMNS, r, strict=True)) for r in shares]
    return p


async def load_pool(db: aiosqlite.Connection, organizer: str, pool: str) -> dict[str, Any] | None:
    return await run_in_db(db, pool_in, organizer, pool)


async def load_view(db: aiosqlite.Connection, organizer: str, pool: str) -> PoolView:
    """The pool as the rule computes it from the statements held (nothing stored)."""

    def fold(conn: sqlite3.Connection) -> PoolView:
        return fold_pool(organizer, pool, statements_of(conn, organizer, pool))

    return await run_in_db(db, fold)


class Commitment(msgspec.Struct, frozen=True):
    """One held `pool.committed` (its event id, author, seq, quantity and tolerance)."""

    id: bytes
    participant: str
    seq: int
    quantity: int
    tolerance: int


def _commitments(conn: sqlite3.Connection, organizer: str, pool: str) -> list[Commitment]:
    refused = {
        bytes(r[0])
        for r in select_all(
            conn,
            "SELECT d.id FROM domain_rejections d JOIN pool_events e ON e.id = d.id"
            " WHERE e.organizer = ? AND e.pool = ?",
            (organizer, pool),
        )
    }
    out = []
    for s in statements_of(conn, organizer, pool):
        if isinstance(s.body, PoolCommitted) and s.id not in refused:
            b = s.body
            out.append(Commitment(s.id, s.author, s.seq, b.quantity, b.tolerance))
    return sorted(out, key=lambda c: (c.participant, c.seq))


def _box_fill(conn: sqlite3.Connection, organizer: str, pool: str) -> tuple[int, list[bytes]]:
    for s in statements_of(conn, organizer, pool):
        if isinstance(s.body, PoolBoxFill) and s.author == organizer:
            return s.at, list(s.body.counted)
    return 0, []


async def commitments(db: aiosqlite.Connection, organizer: str, pool: str) -> list[Commitment]:
    """Every commitment held for a pool and not refused, by participant then its log order."""
    return await run_in_db(db, _commitments, organizer, pool)


async def box_fill(db: aiosqlite.Connection, organizer: str, pool: str) -> tuple[int, list[bytes]]:
    """When the organizer turned the pool to box fill (ms, 0: it did not) and the ids of
    the commitments its `pool.box_fill` named."""
    return await run_in_db(db, _box_fill, organizer, pool)


async def all_pools(db: aiosqlite.Connection, state: str | None = None) -> list[dict[str, Any]]:
    """Every pool this node holds (POOL_COLUMNS rows), newest first; only `state` if given."""
    sql = f"SELECT {', '.join(POOL_COLUMNS)} FROM pools"
    params: tuple[str, ...] = ()
    if state is not None:
        sql, params = sql + " WHERE state = ?", (state,)
    rows = await fetch_all(db, sql + " ORDER BY opened_at DESC, organizer, pool", params)
    return [dict(zip(POOL_COLUMNS, r, strict=True)) for r in rows]


async def settlements_of(db: aiosqlite.Connection, organizer: str, pool: str) -> list[Any]:
    """A pool's settlements as (payer, payee, cents) rows."""
    return await fetch_all(
        db,
        "SELECT payer, payee, amount FROM pool_settlements WHERE organizer = ? AND pool = ?"
        " ORDER BY payer, payee",
        (organizer, pool),
    )


async def holds_of(db: aiosqlite.Connection, organizer: str, pool: str) -> dict[str, int]:
    """A pool's credit holds: participant -> cents its open commitment holds."""
    rows = await fetch_all(
        db,
        "SELECT participant, amount FROM pool_holds WHERE organizer = ? AND pool = ?",
        (organizer, pool),
    )
    return {str(r[0]): int(r[1]) for r in rows}


__all__ = [
    "POOL_COLUMNS",
    "SHARE_COLUMNS",
    "Commitment",
    "Pools",
    "all_pools",
    "box_fill",
    "commitments",
    "holds_of",
    "load_pool",
    "load_view",
    "pool_in",
    "refold_pool",
    "settlements_of",
    "statements_of",
]
