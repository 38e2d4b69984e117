"""The time bank's tables: the federation's hour transfers (folded from the log) and the
residents' own time entries (private, never on the bus).

`HourTransfers` folds `hours.transferred` (docs/PROTOCOL.md §20) into `hour_transfers`,
one row per transfer that counts; a refused one stays in the log and is recorded once in
the engine's `domain_rejections` (`not_authorized`: a transfer to its own signer, or a
transfer id its author used before, the later one in the author's log order; the rule is
`protocol.hours.hours_refusal`). Membership is not judged here, as for trades (§16.4):
the signer refuses a non-member or retired party before signing (`not_a_member`), and the
audit flags what a node signed anyway; a receiver cannot know in which order two logs'
events happened.

`TimeEntries` is the neighborhood's own table of hours between residents (`OwnTables`:
never derived from the log, never reset, never published): residents are never on the bus.
Amounts are quarter hours (1 = 15 minutes) everywhere.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import aiosqlite

from coopnet.node.engine.projection import refuse
from coopnet.node.engine.store_io import fetch_all, run_in_db, select_one
from coopnet.protocol import Envelope
from coopnet.protocol.hours import HoursTransferred, hours_refusal

COOP = "@coop"  # the co-op itself, as a time account: coordinators credit residents from it
TRANSFER_COLUMNS = ("author", "transfer", "to_slug", "quarters", "request", "at", "seq")
ENTRY_COLUMNS = ("id", "giver", "receiver", "quarters", "what", "state", "recorded_by",
                 "created_at", "decided_at")  # fmt: skip


class HourTransfers:
    """The `hour_transfers` table: every `hours.transferred` that counts (§20), and
    `hour_transfer_ids`, every transfer id each author used (refused ones too: an id is
    used once, whatever became of its first use, as `protocol.hours.fold_hours` says)."""

    name = "hours"
    kinds = frozenset({HoursTransferred.kind})
    tables: tuple[str, ...] = ("hour_transfers", "hour_transfer_ids")
    migrations: tuple[tuple[str, ...], ...] = ((
        """CREATE TABLE hour_transfers (
            author TEXT NOT NULL, transfer TEXT NOT NULL, to_slug TEXT NOT NULL,
            quarters INTEGER NOT NULL, request TEXT NOT NULL, at INTEGER NOT NULL,
            seq INTEGER NOT NULL, PRIMARY KEY (author, transfer))""",
        "CREATE INDEX hour_transfers_to ON hour_transfers (to_slug)",
        """CREATE TABLE hour_transfer_ids (
            author TEXT NOT NULL, transfer TEXT NOT NULL, seq INTEGER NOT NULL,
            PRIMARY KEY (author, transfer))""",
    ),)  # fmt: skip

    def apply(self, conn: sqlite3.Connection, events: Sequence[Envelope]) -> None:
        for env in events:
            body = env.body
            if isinstance(body, HoursTransferred):
                _apply_transfer(conn, env, body)

    def reset(self, conn: sqlite3.Connection) -> None:
        for table in self.tables:
            conn.execute(f"DELETE FROM {table}")


def _apply_transfer(conn: sqlite3.Connection, env: Envelope, body: HoursTransferred) -> None:
    """One transfer, in its author's log order (the store applies each author's events in
    seq order): the pure rule `hours_refusal` decides, given the ids the author used."""
    taken = "SELECT seq FROM hour_transfer_ids WHERE author = ? AND transfer = ?"
    earlier = select_one(conn, taken, (env.author, body.transfer))
    code = hours_refusal(env.author, body, {body.transfer} if earlier else set())
    if code is not None:
        why = f"{env.author} cannot transfer hours to itself"
        if earlier is not None:
            why = f"{env.author} used transfer id {body.transfer} before (event #{earlier[0]})"
        refuse(conn, env, code, why)
    else:
        conn.execute(
            "INSERT INTO hour_transfers VALUES (?, ?, ?, ?, ?, ?, ?)",
            (env.author, body.transfer, body.to, body.quarters, body.request, env.at, env.seq),
        )
    if earlier is None:
        conn.execute(
            "INSERT INTO hour_transfer_ids VALUES (?, ?, ?)", (env.author, body.transfer, env.seq)
        )


class TimeEntries:
    """The residents' time entries (`OwnTables`, never reset, never on the bus).

    `giver` gave `quarters` of their time to `receiver` (account names; `@coop` is the
    co-op, which coordinators credit residents from); `state` pending → confirmed or
    declined, decided by the receiver. Only confirmed entries move balances.
    """

    name = "timebank_local"
    migrations: tuple[tuple[str, ...], ...] = ((
        """CREATE TABLE time_entries (
            id TEXT PRIMARY KEY, giver TEXT NOT NULL, receiver TEXT NOT NULL,
            quarters INTEGER NOT NULL, what TEXT NOT NULL, state TEXT NOT NULL,
            recorded_by TEXT NOT NULL, created_at INTEGER NOT NULL, decided_at INTEGER)""",
        "CREATE INDEX time_entries_receiver ON time_entries (receiver)",
        "CREATE INDEX time_entries_giver ON time_entries (giver)",
    ),)  # fmt: skip


# -- reads ----------------------------------------------------------------------------------


def _hour_ledger(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """Per neighborhood: (hours its residents gave, hours it received), in quarters."""
    out: dict[str, tuple[int, int]] = {}
    for slug, gave in conn.execute(
        "SELECT to_slug, SUM(quarters) FROM hour_transfers GROUP BY to_slug"
    ):
        out[str(slug)] = (int(gave), 0)
    for slug, got in conn.execute(
        "SELECT author, SUM(quarters) FROM hour_transfers GROUP BY author"
    ):
        out[str(slug)] = (out.get(str(slug), (0, 0))[0], int(got))
    return out


async def hour_ledger(db: aiosqlite.Connection) -> dict[str, tuple[int, int]]:
    """Every neighborhood's hours with the federation, from the transfers that count:
    slug → (given, received) in quarter hours; its balance is given - received, and the
    balances sum to 0 (§20)."""
    return await run_in_db(db, _hour_ledger)


def hour_balances(ledger: dict[str, tuple[int, int]]) -> dict[str, int]:
    """slug → hour balance (quarters) from `hour_ledger`'s (given, received)."""
    return {slug: gave - got for slug, (gave, got) in ledger.items()}


def _balance_of(conn: sqlite3.Connection, slug: str) -> int:
    row = select_one(
        conn,
        "SELECT COALESCE(SUM(CASE WHEN to_slug = ? THEN quarters ELSE -quarters END), 0)"
        " FROM hour_transfers WHERE to_slug = ? OR author = ?",
        (slug, slug, slug),
    )
    return int(row[0]) if row else 0


async def hour_balance(db: aiosqlite.Connection, slug: str) -> int:
    """One neighborhood's hour balance, in quarter hours (its own rows only)."""
    return await run_in_db(db, _balance_of, slug)


async def transfer_id_used(db: aiosqlite.Connection, author: str, transfer: str) -> bool:
    """Whether `author` used the transfer id `transfer` (counted or refused)."""
    sql = "SELECT 1 FROM hour_transfer_ids WHERE author = ? AND transfer = ?"
    return bool(await fetch_all(db, sql, (author, transfer)))


async def transfers(db: aiosqlite.Connection, slug: str | None = None) -> list[dict[str, object]]:
    """Transfers that count, newest first: all, or those `slug` signed or received."""
    sql = f"SELECT {', '.join(TRANSFER_COLUMNS)} FROM hour_transfers"
    params: tuple[str, ...] = ()
    if slug is not None:
        sql += " WHERE author = ? OR to_slug = ?"
        params = (slug, slug)
    rows = await fetch_all(db, sql + " ORDER BY at DESC, author, seq DESC", params)
    return [dict(zip(TRANSFER_COLUMNS, r, strict=True)) for r in rows]


def entry_balances_sql(where: str = "") -> str:
    """SQL for confirmed entries' balances per account (giver +, receiver -)."""
    return (
        "SELECT name, SUM(d), SUM(g), SUM(r) FROM ("
        " SELECT giver AS name, quarters AS d, quarters AS g, 0 AS r FROM time_entries"
        " WHERE state = 'confirmed'"
        " UNION ALL"
        " SELECT receiver, -quarters, 0, quarters FROM time_entries WHERE state = 'confirmed'"
        f") {where} GROUP BY name"
    )


__all__ = [
    "COOP",
    "ENTRY_COLUMNS",
    "TRANSFER_COLUMNS",
    "HourTransfers",
    "TimeEntries",
    "hour_balance",
    "hour_balances",
    "hour_ledger",
    "transfer_id_used",
    "transfers",
]
