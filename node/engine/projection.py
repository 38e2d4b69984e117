"""What the engine asks of a domain's tables: the `Projection` protocol and refusals.

A projection is a fold of the log into tables of its own: it names the event kinds it reads
(`kinds`), applies a batch of verified events in the order the node stored them, and can be
reset so that the whole log is folded again (`Store.rebuild_projections`). It owns its
tables and their migrations (`migrations`, one tuple of DDL per version, under its `name`).
The store is handed the projections when it is opened (node/runtime.py chooses them); the
engine itself knows no domain (docs/ARCHITECTURE.md).

Projections are plain functions on a sqlite3 connection: the store runs a whole batch, every
projection included, as one call on the connection's thread (node/engine/store_io.py
`run_in_db`). A stored event that a domain rule refuses is kept in the log and recorded
once in `domain_rejections` (`record_refusal`), which the engine owns and counts in the
node's status.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Protocol

from coopnet.protocol import Envelope, Opaque

REFUSALS_TABLE = "domain_rejections"
# Created by the engine's own migrations (node/engine/store.py); cleared with the
# projections when they are rebuilt, since every row in it is derived from the log.
REFUSALS_SCHEMA = """CREATE TABLE IF NOT EXISTS domain_rejections (
    id BLOB PRIMARY KEY, author TEXT NOT NULL, seq INTEGER NOT NULL,
    kind TEXT NOT NULL, code TEXT NOT NULL, reason TEXT NOT NULL)"""


class OwnTables(Protocol):
    """Tables a domain owns in the node's database, created and migrated by the store.

    `name` keys the version in the store's `schema_versions` table; `migrations[i]` takes
    the tables from version i to i+1 (forward only). Tables that are not derived from the
    log (a node's private calls for help) are `OwnTables` without being a `Projection`:
    they are never reset.
    """

    @property
    def name(self) -> str: ...

    @property
    def migrations(self) -> tuple[tuple[str, ...], ...]: ...


class Projection(OwnTables, Protocol):
    """A fold of the log into tables (PROTOCOL.md: every node computes the same rows)."""

    @property
    def tables(self) -> tuple[str, ...]: ...

    # The event kinds `apply` reads: the store hands it only those (most batches hold none
    # of a given projection's kinds, and a skipped projection costs nothing), and never an
    # event whose body is `Opaque` (a kind this coopnet does not know: PROTOCOL.md §8.1).
    @property
    def kinds(self) -> frozenset[str]: ...

    def apply(self, conn: sqlite3.Connection, events: Sequence[Envelope]) -> None:
        """Fold stored events, oldest first, into the projection's tables (on the DB thread)."""

    def reset(self, conn: sqlite3.Connection) -> None:
        """Empty the projection's tables, before the whole log is folded again."""


def apply_projections(
    conn: sqlite3.Connection, projections: Sequence[Projection], events: Sequence[Envelope]
) -> None:
    """Apply stored events to each projection, each given only the kinds it reads, decoded.

    An opaque body (PROTOCOL.md §8.1) is folded by no projection, even one naming its kind
    (a node whose registry lost a kind it has a projection for): the store folds it after
    an upgrade, from its wire.
    """
    for projection in projections:
        kinds = projection.kinds
        mine = [e for e in events if e.kind in kinds and not isinstance(e.body, Opaque)]
        if mine:
            projection.apply(conn, mine)


def record_refusal(
    conn: sqlite3.Connection,
    event_id: bytes,
    author: str,
    seq: int,
    kind: str,
    code: str,
    reason: str,
) -> None:
    """A stored event that a domain rule refuses: kept once, counted by code in the status.

    `code` is one of PROTOCOL.md §7's codes (`not_authorized` for most); `reason` says
    what the rule found, for an operator or an auditor.
    """
    conn.execute(
        "INSERT OR IGNORE INTO domain_rejections VALUES (?, ?, ?, ?, ?, ?)",
        (event_id, author, seq, kind, code, reason),
    )


def refuse(conn: sqlite3.Connection, env: Envelope, code: str, reason: str) -> None:
    """`record_refusal` for one envelope."""
    record_refusal(conn, env.id, env.author, env.seq, env.kind, code, reason)


__all__ = [
    "REFUSALS_TABLE",
    "OwnTables",
    "Projection",
    "apply_projections",
    "record_refusal",
    "refuse",
]
