"""The neighborhoods projection: who has founded a log, with its display name and area."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from coopnet.protocol import Envelope, NodeFounded


class Neighborhoods:
    """The `neighborhoods` table, from each author's `node.founded` (PROTOCOL.md §8)."""

    name = "neighborhoods"
    tables: tuple[str, ...] = ("neighborhoods",)
    kinds = frozenset({NodeFounded.kind})
    migrations: tuple[tuple[str, ...], ...] = (
        (
            """CREATE TABLE neighborhoods (
                author TEXT PRIMARY KEY,
                display_name TEXT NOT NULL,
                area TEXT NOT NULL,
                founded_at INTEGER NOT NULL
            )""",
        ),
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
