"""Projections: tables derived from the log alone, rebuilt by folding it again.

Each projection owns its tables (`schema`, added by a store migration), applies a batch of
verified events in the order the node stored them, and can be reset. The store hands each
projection only the events of the kinds it names (`kinds`). Projections are plain functions
on a sqlite3 connection: the store runs a whole batch, every projection included, as one
call on the connection's thread (node/store_io.py `run_in_db`). The domain issues add their
projections to PROJECTIONS.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Protocol

from coopnet.protocol import Envelope, NodeFounded, NotePosted


class Projection(Protocol):
    tables: tuple[str, ...]
    schema: tuple[str, ...]
    # The event kinds `apply` reads: the store hands it only those (most batches hold none
    # of a given projection's kinds, and a skipped projection costs nothing).
    kinds: frozenset[str]

    def apply(self, conn: sqlite3.Connection, events: Sequence[Envelope]) -> None: ...

    def reset(self, conn: sqlite3.Connection) -> None: ...


class Neighborhoods:
    """Who has founded a log: display name and area, from `node.founded`."""

    tables: tuple[str, ...] = ("neighborhoods",)
    kinds = frozenset({NodeFounded.kind})
    schema: tuple[str, ...] = (
        """CREATE TABLE neighborhoods (
            author TEXT PRIMARY KEY,
            display_name TEXT NOT NULL,
            area TEXT NOT NULL,
            founded_at INTEGER NOT NULL
        )""",
    )

    def apply(self, conn: sqlite3.Connection, events: Sequence[Envelope]) -> None:
        rows = [
            (e.author, e.body.display_name, e.body.area, e.at)
            for e in events
            if isinstance(e.body, NodeFounded)
        ]
        if rows:
            conn.executemany("INSERT OR REPLACE INTO neighborhoods VALUES (?, ?, ?, ?)", rows)

    def reset(self, conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM neighborhoods")


class Notes:
    """Public notes (`note.posted`), newest first in the API."""

    tables: tuple[str, ...] = ("notes",)
    kinds = frozenset({NotePosted.kind})
    schema: tuple[str, ...] = (
        """CREATE TABLE notes (
            author TEXT NOT NULL,
            seq INTEGER NOT NULL,
            at INTEGER NOT NULL,
            text TEXT NOT NULL,
            PRIMARY KEY (author, seq)
        )""",
        "CREATE INDEX notes_at ON notes (at)",
    )

    def apply(self, conn: sqlite3.Connection, events: Sequence[Envelope]) -> None:
        rows = [
            (e.author, e.seq, e.at, e.body.text) for e in events if isinstance(e.body, NotePosted)
        ]
        if rows:
            conn.executemany("INSERT INTO notes VALUES (?, ?, ?, ?)", rows)

    def reset(self, conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM notes")


def apply_projections(conn: sqlite3.Connection, events: Sequence[Envelope]) -> None:
    """Apply stored events to every projection, each given only the kinds it reads."""
    for projection in PROJECTIONS:
        kinds = projection.kinds
        mine = [e for e in events if e.kind in kinds]
        if mine:
            projection.apply(conn, mine)


def _domain() -> tuple[Projection, ...]:
    from coopnet.node.aid import AidProjection
    from coopnet.node.market import Market
    from coopnet.node.membership import MembershipProjection

    return Market(), AidProjection(), MembershipProjection()


PROJECTIONS: tuple[Projection, ...] = (Neighborhoods(), Notes(), *_domain())
