"""The market projection: offers, needs, trades and the mutual-credit ledger, from the log.

I/O only: every rule is a pure function in `coopnet.protocol` (offers, trades, ledger), so an
observer recomputes exactly this. Trades are recomputed from all their statements whenever
one arrives, so the result does not depend on the order the two parties' logs arrived in.
Domain refusals (`not_authorized`) are kept per event in the engine's `domain_rejections`
(node/engine/projection.py `refuse`).

The ledger's reads (`balances`, `commitments`, `standing_of`) also count pooled purchases
(§19): the `pool_settlements` and `pool_holds` tables of node/pools/projection.py, which
every node's and observer's store holds (node/runtime.py `domain_tables`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
import msgspec

from coopnet.node.engine.projection import record_refusal, refuse
from coopnet.node.engine.store_io import fetch_all, run_in_db, select_all, select_one
from coopnet.protocol import Envelope, InvalidEvent
from coopnet.protocol.body import Body, kind_of
from coopnet.protocol.errors import NotAuthorized
from coopnet.protocol.kinds import KINDS
from coopnet.protocol.offers import (
    NeedPosted,
    NeedWithdrawn,
    Offer,
    OfferPosted,
    OfferRevised,
    OfferWithdrawn,
    need_step,
    offer_step,
    release,
    reserve,
)
from coopnet.protocol.trades import (
    OPEN_STATES,
    TRADE_KINDS,
    Statement,
    TradeAccepted,
    TradeCancelled,
    TradeView,
    fold_trade,
    trade_key,
)

_encoder = msgspec.msgpack.Encoder()
_OFFER_COLUMNS = tuple(Offer.__struct_fields__)
TRADE_COLUMNS = ("buyer", "trade", "seller", "offer", "quantity", "unit_price", "total",
                 "expires_at", "proposed_at", "buyer_state", "seller_state", "state")  # fmt: skip


class Market:
    """The `offers`, `needs`, `trades`, `trade_events` and `reservations` tables."""

    name = "market"

    kinds = frozenset(
        kind_of(cls)
        for cls in (OfferPosted, OfferRevised, OfferWithdrawn, NeedPosted, NeedWithdrawn)
    ) | frozenset(kind_of(cls) for cls in TRADE_KINDS)
    tables: tuple[str, ...] = (
        "offers",
        "needs",
        "trade_events",
        "trades",
        "reservations",
    )
    migrations: tuple[tuple[str, ...], ...] = ((
        f"""CREATE TABLE offers ({", ".join(_OFFER_COLUMNS)}, seq INTEGER NOT NULL,
            PRIMARY KEY (author, offer))""",
        """CREATE TABLE needs (
            author TEXT NOT NULL, need TEXT NOT NULL, item TEXT NOT NULL,
            category TEXT NOT NULL, quantity INTEGER NOT NULL, unit TEXT NOT NULL,
            max_unit_price INTEGER, needed_by INTEGER NOT NULL, area TEXT NOT NULL,
            state TEXT NOT NULL, PRIMARY KEY (author, need))""",
        """CREATE TABLE trade_events (
            id BLOB PRIMARY KEY, buyer TEXT NOT NULL, trade TEXT NOT NULL,
            author TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,
            kind TEXT NOT NULL, body BLOB NOT NULL)""",
        "CREATE INDEX trade_events_trade ON trade_events (buyer, trade)",
        """CREATE TABLE trades (
            buyer TEXT NOT NULL, trade TEXT NOT NULL, seller TEXT NOT NULL,
            offer TEXT NOT NULL, quantity INTEGER NOT NULL, unit_price INTEGER NOT NULL,
            total INTEGER NOT NULL, expires_at INTEGER NOT NULL, proposed_at INTEGER NOT NULL,
            buyer_state TEXT NOT NULL, seller_state TEXT NOT NULL, state TEXT NOT NULL,
            PRIMARY KEY (buyer, trade))""",
        "CREATE INDEX trades_seller ON trades (seller)",
        """CREATE TABLE reservations (
            seller TEXT NOT NULL, offer TEXT NOT NULL, buyer TEXT NOT NULL,
            trade TEXT NOT NULL, quantity INTEGER NOT NULL, released INTEGER NOT NULL,
            PRIMARY KEY (buyer, trade))""",
    ), (
        # Each seller's log books its own offers (PROTOCOL.md §10): another member's
        # acceptance of the same trade reserves its own offer, never the seller's. With
        # (buyer, trade) alone, a third party's acceptance that arrived first kept the
        # seller's from reserving anything. The store folds the projection again after.
        "DROP TABLE reservations",
        """CREATE TABLE reservations (
            seller TEXT NOT NULL, offer TEXT NOT NULL, buyer TEXT NOT NULL,
            trade TEXT NOT NULL, quantity INTEGER NOT NULL, released INTEGER NOT NULL,
            PRIMARY KEY (seller, buyer, trade))""",
    ))  # fmt: skip

    def apply(self, conn: sqlite3.Connection, events: Sequence[Envelope]) -> None:
        touched: set[tuple[str, str]] = set()
        for env in events:
            body = env.body
            try:
                if isinstance(body, (OfferPosted, OfferRevised, OfferWithdrawn)):
                    _apply_offer(conn, env, body)
                elif isinstance(body, NeedPosted):
                    _upsert_need(conn, env.author, body)
                elif isinstance(body, NeedWithdrawn):
                    _withdraw_need(conn, env.author, body.need)
                key = trade_key(env.author, body)
                if key is not None:
                    _store_statement(conn, env, key)
                    _seller_books(conn, env, key)
                    touched.add(key)
            except InvalidEvent as exc:
                refuse(conn, env, exc.code, exc.message)
        for buyer, trade in sorted(touched):
            refold_trade(conn, buyer, trade)

    def reset(self, conn: sqlite3.Connection) -> None:
        for table in self.tables:
            conn.execute(f"DELETE FROM {table}")


def offer_in(conn: sqlite3.Connection, author: str, offer: str) -> Offer | None:
    cols = ", ".join(_OFFER_COLUMNS)
    sql = f"SELECT {cols} FROM offers WHERE author = ? AND offer = ?"
    row = select_one(conn, sql, (author, offer))
    return Offer(**dict(zip(_OFFER_COLUMNS, row, strict=True))) if row else None


def _save_offer(conn: sqlite3.Connection, offer: Offer, seq: int) -> None:
    values = [getattr(offer, c) for c in _OFFER_COLUMNS]
    marks = ", ".join("?" * (len(values) + 1))
    conn.execute(f"INSERT OR REPLACE INTO offers VALUES ({marks})", (*values, seq))


def _apply_offer(conn: sqlite3.Connection, env: Envelope, body: Body) -> None:
    name = body.offer  # type: ignore[attr-defined]
    current = offer_in(conn, env.author, name)
    if isinstance(body, OfferPosted) and current is not None:
        raise NotAuthorized(f"offer {name} was already posted")
    _save_offer(conn, offer_step(current, env.author, body), env.seq)


def _upsert_need(conn: sqlite3.Connection, author: str, body: NeedPosted) -> None:
    row = select_one(
        conn, "SELECT state FROM needs WHERE author = ? AND need = ?", (author, body.need)
    )
    need_step(str(row[0]) if row else None, body)  # raises: a need id is posted once
    conn.execute(
        "INSERT OR REPLACE INTO needs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open')",
        (
            author,
            body.need,
            body.item,
            body.category,
            body.quantity,
            body.unit,
            body.max_unit_price,
            body.needed_by,
            body.area,
        ),
    )


def _withdraw_need(conn: sqlite3.Connection, author: str, need: str) -> None:
    row = select_one(conn, "SELECT state FROM needs WHERE author = ? AND need = ?", (author, need))
    need_step(str(row[0]) if row else None, NeedWithdrawn(need=need))
    cur = conn.execute(
        "UPDATE needs SET state = 'withdrawn' WHERE author = ? AND need = ? AND state = 'open'",
        (author, need),
    )
    if cur.rowcount == 0:
        raise NotAuthorized(f"no open need {need} of {author}")


def _store_statement(conn: sqlite3.Connection, env: Envelope, key: tuple[str, str]) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO trade_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (env.id, key[0], key[1], env.author, env.seq, env.at, env.kind, _encoder.encode(env.body)),
    )


def _seller_books(conn: sqlite3.Connection, env: Envelope, key: tuple[str, str]) -> None:
    """The seller's own log decides its offers' reservations (PROTOCOL.md §10): an
    acceptance reserves only while the offer covers it, a seller's cancel releases it."""
    body = env.body
    if isinstance(body, TradeAccepted) and env.author != key[0]:
        offer = offer_in(conn, env.author, body.offer)
        if offer is None:
            raise NotAuthorized(f"{env.author} has no offer {body.offer}")
        mine = (env.author, *key)
        taken = "SELECT 1 FROM reservations WHERE seller = ? AND buyer = ? AND trade = ?"
        if select_one(conn, taken, mine):
            return  # a second acceptance of the same trade: the trade fold refuses it
        offer = reserve(offer, body.quantity, env.at)  # raises: it would oversell
        _save_offer(conn, offer, _offer_seq(conn, env.author, body.offer))
        conn.execute(
            "INSERT INTO reservations VALUES (?, ?, ?, ?, ?, 0)",
            (env.author, body.offer, key[0], key[1], body.quantity),
        )
    elif isinstance(body, TradeCancelled) and env.author != key[0]:
        row = select_one(
            conn,
            "SELECT seller, offer, quantity FROM reservations"
            " WHERE seller = ? AND buyer = ? AND trade = ? AND released = 0",
            (env.author, *key),
        )
        if row is None or row[0] != env.author:
            return
        offer = offer_in(conn, row[0], row[1])
        if offer is not None:
            _save_offer(conn, release(offer, row[2]), _offer_seq(conn, row[0], row[1]))
        conn.execute(
            "UPDATE reservations SET released = 1 WHERE seller = ? AND buyer = ? AND trade = ?",
            (env.author, *key),
        )


def _offer_seq(conn: sqlite3.Connection, author: str, offer: str) -> int:
    row = select_one(conn, "SELECT seq FROM offers WHERE author = ? AND offer = ?", (author, offer))
    return int(row[0]) if row else 0


def refold_trade(conn: sqlite3.Connection, buyer: str, trade: str) -> TradeView:
    """Recompute one trade from every statement held about it, and store the result."""
    rows = select_all(
        conn,
        "SELECT id, author, seq, at, kind, body FROM trade_events WHERE buyer = ? AND trade = ?",
        (buyer, trade),
    )
    statements = [
        Statement(
            id=bytes(r[0]),
            author=r[1],
            seq=r[2],
            at=r[3],
            body=msgspec.msgpack.decode(r[5], type=KINDS[r[4]]),
        )
        for r in rows
    ]
    refused = _refused_acceptances(conn, [s.id for s in statements])
    view = fold_trade(buyer, trade, statements, refused)
    by_id = {s.id: s for s in statements}
    for statement_id, code in view.refused:
        s = by_id[statement_id]
        reason = f"not allowed in trade {buyer}/{trade}"
        record_refusal(conn, s.id, s.author, s.seq, s.body.kind, code, reason)
    if view.seller:
        conn.execute(
            "INSERT OR REPLACE INTO trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                buyer,
                trade,
                view.seller,
                view.offer,
                view.quantity,
                view.unit_price,
                view.total,
                view.expires_at,
                view.proposed_at,
                view.buyer_state,
                view.seller_state,
                view.state,
            ),
        )
    return view


def _refused_acceptances(conn: sqlite3.Connection, ids: list[bytes]) -> frozenset[bytes]:
    if not ids:
        return frozenset()
    marks = ",".join("?" * len(ids))
    sql = f"SELECT id FROM domain_rejections WHERE id IN ({marks})"
    return frozenset(bytes(r[0]) for r in select_all(conn, sql, ids))


async def load_offer(db: aiosqlite.Connection, author: str, offer: str) -> Offer | None:
    """An offer as this node's projection holds it (one round trip to the store)."""
    return await run_in_db(db, offer_in, author, offer)


# A buyer's trade that still commits its credit: open, and not a proposal that expired.
# (Parameters: `_still_open(now)`.) Shared by `commitments` and `standing_of`.
_STILL_OPEN = (
    f"state IN ({','.join('?' * len(OPEN_STATES))}) AND NOT (state = 'proposed' AND expires_at < ?)"
)


def _still_open(now: int) -> tuple[Any, ...]:
    return (*sorted(OPEN_STATES), now)


def standing_of(conn: sqlite3.Connection, party: str, now: int) -> tuple[int, int]:
    """`party`'s balance (settled trades and pool settlements, as `balances`) and open
    commitments as a buyer and a pool participant (as `commitments`), from its own rows
    only (every column read is indexed). Credit cents."""
    settled = select_one(
        conn,
        "SELECT COALESCE(SUM(CASE WHEN seller = ? THEN total ELSE 0 END), 0)"
        " - COALESCE(SUM(CASE WHEN buyer = ? THEN total ELSE 0 END), 0) FROM trades"
        " WHERE state = 'settled' AND (seller = ? OR buyer = ?)",
        (party, party, party, party),
    )
    committed = select_one(
        conn,
        f"SELECT COALESCE(SUM(total), 0) FROM trades WHERE buyer = ? AND {_STILL_OPEN}",
        (party, *_still_open(now)),
    )
    pooled = select_one(
        conn,
        "SELECT (SELECT COALESCE(SUM(amount), 0) FROM pool_settlements WHERE payee = ?)"
        " - (SELECT COALESCE(SUM(amount), 0) FROM pool_settlements WHERE payer = ?),"
        " (SELECT COALESCE(SUM(amount), 0) FROM pool_holds WHERE participant = ?)",
        (party, party, party),
    )
    pooled_settled, pooled_held = (int(pooled[0]), int(pooled[1])) if pooled else (0, 0)
    return (
        (int(settled[0]) if settled else 0) + pooled_settled,
        (int(committed[0]) if committed else 0) + pooled_held,
    )


def _proposal_facts(
    conn: sqlite3.Connection, buyer: str, seller: str, offer: str, now: int
) -> tuple[Offer | None, int, int]:
    return (offer_in(conn, seller, offer), *standing_of(conn, buyer, now))


async def proposal_facts(
    db: aiosqlite.Connection, buyer: str, seller: str, offer: str, now: int
) -> tuple[Offer | None, int, int]:
    """What a proposal is checked against, in one round trip to the store: the seller's
    offer, the buyer's balance and its open commitments."""
    return await run_in_db(db, _proposal_facts, buyer, seller, offer, now)


# -- reads for the API, the CLI and the policy ------------------------------------------------


async def balances(db: aiosqlite.Connection) -> dict[str, int]:
    """The ledger: every settled trade moved its total from buyer to seller, every pool
    settlement (node/pools/projection.py, §19) its amount from payer to payee."""
    sql = """SELECT n, SUM(d) FROM (
                SELECT seller AS n, total AS d FROM trades WHERE state = 'settled'
                UNION ALL
                SELECT buyer AS n, -total AS d FROM trades WHERE state = 'settled'
                UNION ALL
                SELECT payee AS n, amount AS d FROM pool_settlements
                UNION ALL
                SELECT payer AS n, -amount AS d FROM pool_settlements)
             GROUP BY n"""
    return {str(r[0]): int(r[1]) for r in await fetch_all(db, sql)}


async def commitments(db: aiosqlite.Connection, now: int) -> dict[str, int]:
    """Open commitments per buyer: totals of its trades still open (not expired), and
    the credit its pool commitments hold (`pool_holds`, §19)."""
    sql = f"""SELECT n, SUM(d) FROM (
                SELECT buyer AS n, total AS d FROM trades WHERE {_STILL_OPEN}
                UNION ALL
                SELECT participant AS n, amount AS d FROM pool_holds)
             GROUP BY n"""
    rows = await fetch_all(db, sql, _still_open(now))
    return {str(r[0]): int(r[1]) for r in rows}


def trade_in(conn: sqlite3.Connection, buyer: str, trade: str) -> dict[str, Any] | None:
    cols = ", ".join(TRADE_COLUMNS)
    sql = f"SELECT {cols} FROM trades WHERE buyer = ? AND trade = ?"
    row = select_one(conn, sql, (buyer, trade))
    return dict(zip(TRADE_COLUMNS, row, strict=True)) if row else None


async def load_trade(db: aiosqlite.Connection, buyer: str, trade: str) -> dict[str, Any] | None:
    return await run_in_db(db, trade_in, buyer, trade)


def _trade_and_offer(
    conn: sqlite3.Connection, buyer: str, trade: str
) -> tuple[dict[str, Any] | None, Offer | None]:
    t = trade_in(conn, buyer, trade)
    return t, offer_in(conn, t["seller"], t["offer"]) if t else None


async def trade_and_offer(
    db: aiosqlite.Connection, buyer: str, trade: str
) -> tuple[dict[str, Any] | None, Offer | None]:
    """A trade and the offer it is for, in one round trip to the store."""
    return await run_in_db(db, _trade_and_offer, buyer, trade)
