"""The notes projection: public notes (`note.posted`) of every neighborhood."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from coopnet.protocol import Envelope, NotePosted


class Notes:
    """The `notes` table, newest first in the API (PROTOCOL.md §8)."""

    name = "notes"
    tables: tuple[str, ...] = ("notes",)
    kinds = frozenset({NotePosted.kind})
    migrations: tuple[tuple[str, ...], ...] = (
        (
            """CREATE TABLE notes (
                author TEXT NOT NULL,
                seq INTEGER NOT NULL,
                at INTEGER NOT NULL,
                text TEXT NOT NULL,
                PRIMARY KEY (author, seq)
            )""",
            "CREATE INDEX notes_at ON notes (at)",
        ),
    )

    def apply(self, conn: sqlite3.Connection, events: Sequence[Envelope]) -> None:
        rows = [
            (e.author, e.seq, e.at, e.body.text) for e in events if isinstance(e.body, NotePosted)
        ]
        if rows:
            conn.executemany("INSERT INTO notes VALUES (?, ?, ?, ?)", rows)

    def reset(self, conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM notes")
