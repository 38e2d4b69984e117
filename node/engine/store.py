"""The node's SQLite store (aiosqlite, WAL): the verified log, the outbox, forks, refusals.

The log holds every event of every author the node follows, with the raw wire bytes as
received, unique by `(author, seq)` and by id. The outbox lists the node's own events not
yet acknowledged by the bus. The store knows no domain: the projections (tables derived
from the log only) and the domains' other tables are handed to `Store.open`, which migrates
each under its own name; `rebuild_projections` recomputes the projections and must give
the same rows.

Writes go through `commit`: one transaction per batch, `synchronous=FULL`, so an
acknowledged write survives a crash or a power cut, and a batch is all or nothing.

SQLite's errors are told apart by their result code (`sqlite_errorcode`): a lock held by
another connection (SQLITE_BUSY, SQLITE_LOCKED: a backup, a VACUUM, an operator's `sqlite3`
shell) is waited for and the write tried again, up to `WRITE_PATIENCE_S`, then answered
`StorageBusy` (the node keeps running); anything else (a full disk, an I/O error, a
corrupt or read-only file) is a `StorageFailure`, and the node stops.

The database, its folder and its WAL are private to the node's account (0600/0700,
node/engine/private_files.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import anyio
import msgspec

import coopnet
from coopnet.node.engine.evidence import LogBudget
from coopnet.node.engine.private_files import private_database
from coopnet.node.engine.projection import (
    REFUSALS_SCHEMA,
    REFUSALS_TABLE,
    OwnTables,
    Projection,
    apply_projections,
    refuse,
)
from coopnet.node.engine.store_io import fetch_all, fetch_one, run_in_db
from coopnet.protocol import Envelope, Opaque, decode_unsealed, unseal, unseal_stored
from coopnet.protocol.history import fold_keys
from coopnet.protocol.kinds import KINDS

log = logging.getLogger("coopnet.store")

# The engine's own tables, as forward migrations: `LOG_MIGRATIONS[i]` takes them from
# version i to i+1. Their version, and each projection's, is kept in `schema_versions`
# under a component name ("log" for these; a projection's `name` for its tables).
LOG = "log"
LOG_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE events (
            pos INTEGER PRIMARY KEY,
            author TEXT NOT NULL,
            seq INTEGER NOT NULL,
            id BLOB NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            at INTEGER NOT NULL,
            key BLOB NOT NULL,
            wire BLOB NOT NULL,
            received_at INTEGER NOT NULL,
            UNIQUE (author, seq)
        )""",
        """CREATE TABLE authors (
            author TEXT PRIMARY KEY,
            head_seq INTEGER NOT NULL,
            head_id BLOB NOT NULL,
            current_key BLOB NOT NULL,
            next_key_digest BLOB NOT NULL,
            key_since INTEGER NOT NULL,
            forked_seq INTEGER
        )""",
        """CREATE TABLE outbox (
            id BLOB PRIMARY KEY,
            seq INTEGER NOT NULL UNIQUE,
            subject TEXT NOT NULL,
            created_at INTEGER NOT NULL
        )""",
        """CREATE TABLE forks (
            author TEXT NOT NULL,
            seq INTEGER NOT NULL,
            held_id BLOB NOT NULL,
            held_wire BLOB,
            other_id BLOB NOT NULL,
            other_wire BLOB NOT NULL,
            detected_at INTEGER NOT NULL,
            PRIMARY KEY (author, seq, other_id)
        )""",
        "CREATE TABLE rejections (code TEXT PRIMARY KEY, count INTEGER NOT NULL)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
    ("ALTER TABLE authors ADD COLUMN retired_seq INTEGER NOT NULL DEFAULT 0",),
    (
        # Evidence of refused events, for audits (at most a few per code per minute: see
        # chains.LogBudget); `evidence` is the event id, or SHA-256 of the wire bytes when
        # they could not be unsealed (then author is '' and seq 0).
        """CREATE TABLE rejected_events (
            evidence BLOB NOT NULL, author TEXT NOT NULL, seq INTEGER NOT NULL,
            kind TEXT NOT NULL, code TEXT NOT NULL, reason TEXT NOT NULL,
            source TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (evidence, code))""",
    ),
    # Events that a projection refused (node/engine/projection.py); a store of the single
    # PRAGMA user_version layout had it from the market's tables, hence IF NOT EXISTS.
    (REFUSALS_SCHEMA,),
    # What a create under a client-chosen id answered (node/engine/idempotency.py).
    (
        """CREATE TABLE created (
            scope TEXT NOT NULL, key TEXT NOT NULL, digest BLOB NOT NULL,
            response BLOB NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (scope, key))""",
    ),
)
# Before the engine and the domains were separated, one list of steps numbered by
# PRAGMA user_version (1-6) made every table. A store of that layout is adopted as it is:
# for each old version, the version each component's tables had reached then.
_LEGACY_VERSIONS: dict[int, dict[str, int]] = {
    1: {LOG: 1},
    2: {LOG: 1, "neighborhoods": 1, "notes": 1},
    3: {LOG: 1, "neighborhoods": 1, "notes": 1, "market": 1},
    4: {LOG: 1, "neighborhoods": 1, "notes": 1, "market": 1, "aid": 1, "aid_local": 1},
    5: {LOG: 2, "neighborhoods": 1, "notes": 1, "market": 1, "aid": 1, "aid_local": 1,
        "membership": 1},
    6: {LOG: 3, "neighborhoods": 1, "notes": 1, "market": 1, "aid": 1, "aid_local": 1,
        "membership": 1},
}  # fmt: skip
# WAL pages after which SQLite checkpoints inside a commit (the backstop; see Store._open).
AUTOCHECKPOINT_PAGES = 20_000
CHECKPOINT_EVERY_S = 1.0
# A write finding the database locked by another connection is tried again for this long
# (seconds) before it is answered `StorageBusy`. Each try waits `BUSY_TIMEOUT_MS` inside
# SQLite (the connection's thread is busy meanwhile, so this is short: reads on the same
# connection go between the tries), then the store pauses, doubling from
# `BUSY_FIRST_PAUSE_S` up to `BUSY_MAX_PAUSE_S`.
WRITE_PATIENCE_S = 10.0
OPEN_PATIENCE_S = 60.0
BUSY_TIMEOUT_MS = 200
BUSY_FIRST_PAUSE_S = 0.05
BUSY_MAX_PAUSE_S = 0.5
# SQLite's primary result codes (https://sqlite.org/rescode.html; the low byte of an
# extended code) that mean "another connection holds a lock": transient, never a failure.
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
# The `meta` key under which the store keeps the event kinds the coopnet that last opened it
# with projections knew (a JSON array of strings): docs/PROTOCOL.md §8.1.
KNOWN_KINDS_META = "known_kinds"
# The `meta` key under which the store keeps the names of the projections it was last opened
# with (a JSON array): a projection missing from it missed the events stored since.
FOLDED_BY_META = "folded_by"
# The `meta` key that asks the next open with projections to rebuild every projection from
# the log (any value; removed by that rebuild): set by `restore` (node/engine/backup.py),
# so that no projection table of a copy is trusted, only its verified log.
REBUILD_META = "rebuild_projections"
# The `meta` key under which the store keeps `body_shapes()` of the coopnet that last opened
# it with projections: only an open that finds another decodes the events refused
# `bad_body` again (docs/PROTOCOL.md §7.1), since only then can one of them read now.
BODY_SHAPES_META = "body_shapes"
# Refused bodies decoded at a time by that scan (rows): events are at most 64 KiB
# (MAX_WIRE_BYTES), so a page holds at most 6.4 MB however many the store holds.
REFUSED_SCAN_ROWS = 100
# The domain refusals the engine itself records (`fold_isolated`): logged when the event is
# received (at most 20 lines a minute per code: `LogBudget`), never again by a rebuild.
ENGINE_REFUSALS = ("bad_body", "out_of_bounds", "projection_failed")


def body_shapes() -> str:
    """SHA-256 (hex) of what decides which bodies this coopnet reads: its version, and the
    JSON Schema of every registered kind's body (fields, types, enums, bounds), by kind."""
    kinds = sorted(KINDS)
    schemas, defs = msgspec.json.schema_components([KINDS[k] for k in kinds])
    text = json.dumps([coopnet.__version__, kinds, schemas, defs], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class AuthorRow(msgspec.Struct, frozen=True, kw_only=True):
    author: str
    head_seq: int
    head_id: bytes
    current_key: bytes
    next_key_digest: bytes
    key_since: int
    forked_seq: int | None
    retired_seq: int = 0


class ForkRow(msgspec.Struct, frozen=True, kw_only=True):
    author: str
    seq: int
    held_id: bytes
    held_wire: bytes | None
    other_id: bytes
    other_wire: bytes
    detected_at: int


class RejectedRow(msgspec.Struct, frozen=True, kw_only=True):
    evidence: bytes
    author: str
    seq: int
    kind: str
    code: str
    reason: str
    source: str
    at: int


class Batch(msgspec.Struct, kw_only=True):
    """Everything one ingest step writes, committed in one transaction."""

    events: list[Envelope] = msgspec.field(default_factory=list)
    authors: dict[str, AuthorRow] = msgspec.field(default_factory=dict)
    forks: list[ForkRow] = msgspec.field(default_factory=list)
    rejections: dict[str, int] = msgspec.field(default_factory=dict)
    rejected: list[RejectedRow] = msgspec.field(default_factory=list)
    outbox: list[tuple[Envelope, str]] = msgspec.field(default_factory=list)
    meta: dict[str, str] = msgspec.field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.events or self.authors or self.forks or self.rejections or self.meta)


def now_ms() -> int:
    return int(time.time() * 1000)


class StorageFailure(RuntimeError):
    """The store cannot be written (disk full, read-only file, I/O error): the node stops.

    Nothing committed is lost: every write is one transaction, so the file holds the last
    complete batch. The node stops instead of running on without being able to record.
    """

    code = "storage_failure"


class StorageBusy(RuntimeError):
    """Another connection held a lock on the database for longer than the write's patience
    (`WRITE_PATIENCE_S`): nothing of this write is stored, and nothing is wrong with the
    store. The API answers 503 `storage_busy`; the node keeps running, and the next write
    after the lock is gone succeeds. A receive retries its batch (node/runtime.py)."""

    code = "storage_busy"


def is_busy(exc: BaseException) -> bool:
    """True when `exc` is SQLite's SQLITE_BUSY or SQLITE_LOCKED, under any extended code
    (`sqlite_errorcode`, Python 3.11+): a lock another connection holds, not a failure."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)


def _storage_error(path: str, exc: sqlite3.Error, doing: str) -> StorageFailure | StorageBusy:
    """The store's own error for an SQLite one: busy (transient) or a real failure."""
    if is_busy(exc):
        return StorageBusy(f"the store {path} is locked by another process: {exc}")
    return StorageFailure(f"the store {path} cannot be {doing}: {exc}")


class Store:
    """One node's database. Open with `await Store.open(path)`; close with `await close()`."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        path: str,
        net: bytes,
        projections: Sequence[Projection] = (),
        tables: Sequence[OwnTables] = (),
    ) -> None:
        self.db = db
        # The domains' folds of the log, applied in this order with every committed batch,
        # and the domains' other tables: both handed in by whoever opens the store.
        self.projections: tuple[Projection, ...] = tuple(projections)
        self.own_tables: tuple[OwnTables, ...] = tuple(tables)
        # A second, read-only connection (its own thread) for reads on a latency path (a
        # trade's checks): in WAL mode it reads the last commit while `db` is busy writing,
        # instead of queueing behind the fsync. It sees only committed data. An in-memory
        # store has one connection for both.
        self.reader = db
        self.path = path
        self.net = net
        self.writes = 0  # write transactions so far (the checkpointer's clock)
        # How long a write waits for another connection's lock before StorageBusy (s).
        self.patience_s = WRITE_PATIENCE_S
        self.busy = 0  # tries in the current episode of finding the database locked
        self.busy_waits = 0  # every such try since the store was opened
        self._write_lock = anyio.Lock()
        # One create under a client-chosen id at a time (node/engine/idempotency.py).
        self.create_lock = anyio.Lock()
        # Log lines for the domain refusals of received events (`fold_isolated`): used only
        # on the connection's thread, inside a commit.
        self.fold_log = LogBudget()
        # Pages of refused bodies the last open decoded again (0: the body shapes had not
        # changed since the open before, so none was; see `_refused_bodies_now_read`).
        self.refused_scan_pages = 0

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction at a time; shielded, so a cancellation cannot split it.

        Taking the write lock waits for another process's lock up to `patience_s`
        (`WRITE_PATIENCE_S`), then raises StorageBusy; any other SQLite error raises
        StorageFailure (IntegrityError passes through: it is about the rows).
        """
        async with self._write_lock:
            self.writes += 1
            await self._begin_patiently()
            with anyio.CancelScope(shield=True):
                try:
                    try:
                        yield self.db
                        await self.db.execute("COMMIT")
                        self.busy = 0
                    except BaseException:
                        if self.db.in_transaction:
                            await self.db.execute("ROLLBACK")
                        raise
                except sqlite3.IntegrityError:
                    raise
                except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
                    raise _storage_error(self.path, exc, "written") from exc

    async def _begin_patiently(self) -> None:
        """BEGIN IMMEDIATE on `db`, waiting out another connection's lock (see `_write`)."""
        deadline = anyio.current_time() + self.patience_s
        pause = BUSY_FIRST_PAUSE_S
        while True:
            with anyio.CancelScope(shield=True):
                try:
                    await self.db.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.Error as exc:
                    error = _storage_error(self.path, exc, "written")
            if isinstance(error, StorageFailure) or anyio.current_time() + pause > deadline:
                raise error
            self._note_busy()
            await anyio.sleep(pause)
            pause = min(pause * 2, BUSY_MAX_PAUSE_S)

    def _note_busy(self) -> None:
        """Count a write that found the database locked; log the first of each episode."""
        if not self.busy:
            log.warning(
                "%s is locked by another process (a backup, a VACUUM, a shell?); "
                "waiting and trying again",
                self.path,
            )
        self.busy += 1
        self.busy_waits += 1

    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        net: bytes,
        projections: Sequence[Projection] = (),
        tables: Sequence[OwnTables] = (),
    ) -> Store:
        """Open (creating and migrating) the store of a node of federation `net`.

        `projections` are folded with every batch (and their tables migrated); `tables` are
        a domain's tables that are not derived from the log. A projection whose tables are
        new to a store that already holds events is folded from the whole log before this
        returns, so a domain added to an existing node starts complete.
        The file's folder is made 0700 and the file and its WAL 0600 first, tightening
        looser modes (node/engine/private_files.py). A lock held by another process is
        waited for, up to `OPEN_PATIENCE_S`.
        Raises StorageFailure when the file cannot be opened for writing (or is still
        locked after that), and RuntimeError when a component's tables are newer than this
        coopnet.
        """
        if str(path) != ":memory:":
            try:  # before SQLite creates anything: the file, then its WAL, are born 0600
                await anyio.to_thread.run_sync(private_database, Path(path))
            except OSError as exc:
                raise StorageFailure(f"the store {path} cannot be made private: {exc}") from exc
        deadline = anyio.current_time() + OPEN_PATIENCE_S
        while True:
            try:
                return await cls._open(path, net=net, projections=projections, tables=tables)
            except (sqlite3.OperationalError, sqlite3.DatabaseError, StorageBusy) as exc:
                if isinstance(exc, sqlite3.IntegrityError):
                    raise
                busy = isinstance(exc, StorageBusy) or is_busy(exc)
                if not busy or anyio.current_time() > deadline:
                    raise StorageFailure(
                        f"the store {path} cannot be opened for writing: {exc}"
                    ) from exc
                log.warning("%s is locked by another process; waiting to open it", path)
                await anyio.sleep(1.0)

    @classmethod
    async def _open(
        cls,
        path: Path | str,
        *,
        net: bytes,
        projections: Sequence[Projection],
        tables: Sequence[OwnTables],
    ) -> Store:
        db = await aiosqlite.connect(str(path), isolation_level=None)
        try:
            # First, so that even switching to WAL waits a moment for another's lock.
            await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=FULL")
            await db.execute("PRAGMA foreign_keys=ON")
            # Checkpoints run beside the writer (`checkpoint_forever`), not inside a commit:
            # copying the WAL back grows with the database and held up every commit behind
            # it (BENCHMARKS.md). This larger threshold is only the backstop.
            await db.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
            store = cls(db, str(path), net, projections, tables)
            await store._fold_what_was_missed(await store._migrate())
            # Fail now, not at the first write, if the file cannot be written (read-only
            # file or folder): taking the write lock needs write access.
            await db.execute("BEGIN IMMEDIATE")
            await db.execute("ROLLBACK")
            if str(path) != ":memory:":
                absolute = await anyio.to_thread.run_sync(os.path.abspath, path)
                store.reader = await _open_reader(absolute)
        except BaseException:
            await db.close()
            raise
        return store

    async def checkpoint_forever(self, every_s: float = CHECKPOINT_EVERY_S) -> None:
        """Copy the WAL back into the database now and then, on a connection and thread of
        its own (PASSIVE: it never waits for, nor blocks, the writer or a reader)."""
        if self.reader is self.db:
            return  # in memory: no WAL
        done = 0
        while True:
            await anyio.sleep(every_s)
            if self.writes != done:
                done = self.writes
                try:
                    await anyio.to_thread.run_sync(_checkpoint, self.path)
                except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
                    if not is_busy(exc):
                        raise StorageFailure(
                            f"the store {self.path} cannot be written: {exc}"
                        ) from exc
                    done = -1  # locked by another process: try again next round

    async def close(self) -> None:
        try:
            if self.reader is not self.db:
                await self.reader.close()
        finally:
            await self.db.close()  # whatever the reader did: its thread would block the exit

    async def schema_versions(self) -> dict[str, int]:
        """The version of each component's tables: `log` (the engine's) and each domain's."""
        rows = await fetch_all(self.db, "SELECT component, version FROM schema_versions")
        return {str(r[0]): int(r[1]) for r in rows}

    async def _migrate(self) -> set[str]:
        """Run every component's missing steps; return the names whose tables changed."""
        has_table = await fetch_one(
            self.db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_versions'"
        )
        if not has_table:
            legacy = await fetch_one(self.db, "PRAGMA user_version")
            adopted = _LEGACY_VERSIONS.get(int(legacy[0]) if legacy else 0, {})
            async with self.transaction() as db:
                await db.execute(
                    "CREATE TABLE schema_versions"
                    " (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
                )
                await db.executemany(
                    "INSERT INTO schema_versions VALUES (?, ?)", list(adopted.items())
                )
        versions = await self.schema_versions()
        components: list[tuple[str, tuple[tuple[str, ...], ...]]] = [(LOG, LOG_MIGRATIONS)]
        components += [(c.name, c.migrations) for c in (*self.projections, *self.own_tables)]
        moved: list[str] = []  # components whose tables a step changed here
        for name, steps in components:
            version = versions.get(name, 0)
            if version > len(steps):
                raise RuntimeError(
                    f"{self.path}: the {name} tables are at version {version}, newer than"
                    f" this coopnet knows ({len(steps)})"
                )
            if version < len(steps) and name != LOG:
                moved.append(name)
            for step in range(version, len(steps)):
                async with self.transaction() as db:
                    for ddl in steps[step]:
                        await db.execute(ddl)
                    await db.execute(
                        "INSERT OR REPLACE INTO schema_versions VALUES (?, ?)", (name, step + 1)
                    )
        return set(moved)

    async def _fold_what_was_missed(self, moved: set[str]) -> None:
        """Fold again, in one transaction, what the projections missed, and record why not
        next time. Three causes, each checked against a record kept in `meta`:

        - a projection whose tables are new or changed (`moved`): a domain added to, or
          upgraded on, a node that holds events starts complete;
        - one the last open did not fold with (`FOLDED_BY_META`: the names of the last
          open's projections; none recorded, a store from before this record, folded by
          every projection it has tables for): a node run for a while without a domain;
        - an event stored opaque whose kind this coopnet knows and the last did not
          (`KNOWN_KINDS_META`, docs/PROTOCOL.md §8.1): every projection is rebuilt. Only an
          open with projections records the kinds: an open without them folds nothing;
        - an event refused `bad_body` whose body this coopnet reads (a unit added to its
          kind since, PROTOCOL.md §4 step 13): every projection is rebuilt, and applies it.
          Looked for only when the body shapes differ from the last open's
          (`BODY_SHAPES_META`; none recorded: looked for once), a page at a time;
        - `REBUILD_META` set (a store put back by `restore`): every projection is rebuilt.
        """
        names = sorted(p.name for p in self.projections)
        recorded = await self.meta(FOLDED_BY_META)
        folded_by = set(json.loads(recorded)) if recorded is not None else set(names)
        refold = [p for p in self.projections if p.name in moved or p.name not in folded_by]
        notes = {FOLDED_BY_META: json.dumps(names)}
        learned: list[str] = []
        if self.projections:
            notes[KNOWN_KINDS_META] = json.dumps(sorted(KINDS))
            notes[BODY_SHAPES_META] = body_shapes()
            known = await self.meta(KNOWN_KINDS_META)
            learned = sorted(set(KINDS) - set(json.loads(known))) if known else []
        changed = {k: v for k, v in notes.items() if await self.meta(k) != v}
        marks = ",".join("?" * len(learned))
        query = f"SELECT 1 FROM events WHERE kind IN ({marks}) LIMIT 1"
        rebuild = bool(learned) and await fetch_one(self.db, query, learned) is not None
        # A rebuild decodes every event anyway; otherwise only new shapes can read one.
        rescan = BODY_SHAPES_META in changed and not rebuild
        readable = await self._refused_bodies_now_read() if rescan else 0
        asked = bool(self.projections) and await self.meta(REBUILD_META) is not None
        if asked:
            rebuild = True
            log.info("the store was restored from a copy: rebuilding every projection")
        elif rebuild:
            log.info("kinds now known, held opaque until now: %s; rebuilding", ", ".join(learned))
        elif readable:
            rebuild = True
            log.info("%d event(s) refused bad_body now read by their kind; rebuilding", readable)
        elif refold and await self.event_count():
            log.info("folding the whole log into %s", ", ".join(p.name for p in refold))
        else:
            refold = []
        if rebuild or refold:
            await self._write(_fold_and_note, self.net, self.projections, rebuild, refold, changed)
            await self._log_engine_refusals()
        elif changed:
            async with self.transaction() as db:  # bookkeeping only, as the migrations
                await db.executemany(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", changed.items()
                )

    async def _refused_bodies_now_read(self) -> int:
        """How many events refused `bad_body` for their shape this coopnet now reads (an
        upgrade that added a unit, say): the bytes were verified when stored, so they are
        only decoded again (`decode_unsealed`), `REFUSED_SCAN_ROWS` at a time (memory stays
        bounded however many a member pushed). Counts the pages in `refused_scan_pages`."""
        readable, after = 0, 0
        while True:
            rows = await fetch_all(
                self.db,
                f"SELECT r.rowid, e.wire FROM {REFUSALS_TABLE} r JOIN events e ON e.id = r.id"
                " WHERE r.code = 'bad_body' AND r.rowid > ? ORDER BY r.rowid LIMIT ?",
                (after, REFUSED_SCAN_ROWS),
            )
            if not rows:
                return readable
            self.refused_scan_pages += 1
            after = int(rows[-1][0])
            readable += sum(not isinstance(decode_unsealed(bytes(w)).body, Opaque) for _, w in rows)
            if len(rows) < REFUSED_SCAN_ROWS:
                return readable

    async def _log_engine_refusals(self) -> None:
        """One line after a fold of the whole log: how many events it refused for their
        body or their numbers (each was logged when received, so not one by one again)."""
        marks = ",".join("?" * len(ENGINE_REFUSALS))
        rows = await fetch_all(
            self.db,
            f"SELECT code, COUNT(*) FROM {REFUSALS_TABLE} WHERE code IN ({marks})"
            " GROUP BY code ORDER BY code",
            ENGINE_REFUSALS,
        )
        if rows:
            counts = ", ".join(f"{code} {count}" for code, count in rows)
            log.info("projections folded from the log; events refused again: %s", counts)

    # -- writes -------------------------------------------------------------------------------

    async def commit(self, batch: Batch, *, received: bool = False) -> None:
        """Write a batch in one transaction, in one call on the DB thread.

        A batch with the node's own events (an outbox entry) is synced to disk before this
        returns (DESIGN.md: own writes are `synchronous=FULL`). A batch of `received`
        events is not: a power cut may lose the last of them, never corrupt the file, and
        the node reads them again, since the stream cursor is in the same transaction and a
        consumer found ahead of the store is set back to it (node/engine/bus.py), while sync fills
        what came from peers. In WAL mode the next synced commit makes every earlier one
        durable as well, so an own event never rests on received ones the disk could lose.
        A batch that only moves the stream cursor is not synced either.
        """
        if batch.empty() and not batch.outbox:
            return
        only_cursor = not (batch.events or batch.authors or batch.forks or batch.rejections)
        durable = bool(batch.outbox) or not (received or only_cursor)
        await self._write(
            _commit_batch, self.projections, batch, now_ms(), self.fold_log, durable=durable
        )

    async def _write(self, fn: Callable[..., None], *args: Any, durable: bool = True) -> None:
        """Run `fn(conn, *args)` as one transaction on the connection's thread.

        `durable=False` skips the fsync (synchronous=NORMAL for this transaction): only for
        bookkeeping whose loss a restart repairs by itself.

        A transaction that finds the database locked by another connection (SQLITE_BUSY or
        SQLITE_LOCKED) is rolled back and run again after a pause, doubling from
        `BUSY_FIRST_PAUSE_S` to `BUSY_MAX_PAUSE_S`, for up to `patience_s` seconds; then
        StorageBusy. `fn` must therefore be safe to run again (every writer here is: it
        only reads its arguments). Any other SQLite error raises StorageFailure.
        """
        deadline = anyio.current_time() + self.patience_s
        pause = BUSY_FIRST_PAUSE_S
        while True:
            async with self._write_lock:
                self.writes += 1
                with anyio.CancelScope(shield=True):
                    try:
                        await run_in_db(self.db, _in_transaction, fn, durable, *args)
                        self.busy = 0
                        return
                    except sqlite3.IntegrityError:
                        raise
                    except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
                        error = _storage_error(self.path, exc, "written")
                if isinstance(error, StorageFailure) or anyio.current_time() + pause > deadline:
                    raise error
                self._note_busy()
            await anyio.sleep(pause)
            pause = min(pause * 2, BUSY_MAX_PAUSE_S)

    async def outbox_done(self, ids: Sequence[bytes]) -> None:
        if not ids:
            return
        # Not synced: a deletion lost in a power cut means one republish of an acknowledged
        # event, which the server (Nats-Msg-Id) and every receiver (its id) drop.
        await self._write(_delete_outbox, list(ids), durable=False)

    async def discard_own_after(self, author: str, seq: int) -> list[Envelope]:
        """Remove own events above `seq` that never left the node (all still in the outbox).

        Used only when the published history is longer than this store's (the store was
        restored from a backup) and the node had signed events the bus never saw: they are
        taken out of the log so the node does not fork itself, and returned so their bodies
        can be signed again on top of the recovered head.
        """
        rows = await self.all(
            "SELECT e.wire FROM events e JOIN outbox o ON o.id = e.id"
            " WHERE e.author = ? AND e.seq > ? ORDER BY e.seq",
            (author, seq),
        )
        published = await self.all(
            "SELECT COUNT(*) FROM events e WHERE e.author = ? AND e.seq > ?"
            " AND e.id NOT IN (SELECT id FROM outbox)",
            (author, seq),
        )
        if published[0][0]:
            raise RuntimeError(f"{author}: events above seq {seq} were already published")
        envs = [unseal(bytes(r[0]), net=self.net) for r in rows]
        async with self.transaction():
            await self.db.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM events WHERE author=? AND seq>?)",
                (author, seq),
            )
            await self.db.execute("DELETE FROM events WHERE author = ? AND seq > ?", (author, seq))
            kept = [
                unseal(bytes(r[0]), net=self.net)
                for r in await self.all(
                    "SELECT wire FROM events WHERE author = ? ORDER BY seq", (author,)
                )
            ]
            keys = fold_keys(kept)
            await self.db.execute(
                "UPDATE authors SET head_seq = ?, head_id = ?, current_key = ?,"
                " next_key_digest = ?, key_since = ?, retired_seq = ? WHERE author = ?",
                (
                    kept[-1].seq,
                    kept[-1].id,
                    keys.current_key,
                    keys.next_key_digest,
                    keys.since_seq,
                    keys.retired_seq,
                    author,
                ),
            )
        await self.rebuild_projections()
        return envs

    async def rebuild_projections(self) -> None:
        """Drop every projection and fold the whole log again, in the order it was stored."""
        await self._write(_rebuild, self.net, self.projections)
        await self._log_engine_refusals()

    # -- reads --------------------------------------------------------------------------------

    async def all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """Every row of a read query (one step on the connection's thread)."""
        return await fetch_all(self.db, sql, params)

    async def authors(self) -> dict[str, AuthorRow]:
        rows = await self.all("SELECT * FROM authors")
        return {
            r[0]: AuthorRow(
                author=r[0],
                head_seq=r[1],
                head_id=bytes(r[2]),
                current_key=bytes(r[3]),
                next_key_digest=bytes(r[4]),
                key_since=r[5],
                forked_seq=r[6],
                retired_seq=r[7],
            )
            for r in rows
        }

    async def event_at(self, author: str, seq: int) -> tuple[bytes, bytes] | None:
        """(id, wire) of an author's event at seq, or None."""
        rows = await self.all("SELECT id, wire FROM events WHERE author=? AND seq=?", (author, seq))
        return (bytes(rows[0][0]), bytes(rows[0][1])) if rows else None

    async def ids_at(self, author: str, seqs: Sequence[int]) -> dict[int, bytes]:
        """The ids held for an author at the given seqs (those held)."""
        out: dict[int, bytes] = {}
        for i in range(0, len(seqs), 500):
            part = seqs[i : i + 500]
            marks = ",".join("?" * len(part))
            rows = await self.all(
                f"SELECT seq, id FROM events WHERE author = ? AND seq IN ({marks})",
                (author, *part),
            )
            out.update((int(r[0]), bytes(r[1])) for r in rows)
        return out

    async def has_id(self, event_id: bytes) -> bool:
        return bool(await self.all("SELECT 1 FROM events WHERE id = ?", (event_id,)))

    async def range(
        self, author: str, from_seq: int, to_seq: int, *, max_bytes: int = 512 * 1024
    ) -> list[bytes]:
        """Wire bytes of an author's events from_seq..to_seq, in order, at most max_bytes."""
        rows = await self.all(
            "SELECT wire FROM events WHERE author = ? AND seq BETWEEN ? AND ? ORDER BY seq"
            " LIMIT 5000",
            (author, from_seq, to_seq),
        )
        out: list[bytes] = []
        size = 0
        for (wire,) in rows:
            size += len(wire)
            if out and size > max_bytes:
                break
            out.append(bytes(wire))
        return out

    async def outbox_batch(self, limit: int = 256) -> list[tuple[bytes, str, bytes]]:
        rows = await self.all(
            "SELECT o.id, o.subject, e.wire FROM outbox o JOIN events e ON e.id = o.id"
            " ORDER BY o.seq LIMIT ?",
            (limit,),
        )
        return [(bytes(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    async def outbox_depth(self) -> int:
        return int((await self.all("SELECT COUNT(*) FROM outbox"))[0][0])

    async def rejections(self) -> dict[str, int]:
        return {str(r[0]): int(r[1]) for r in await self.all("SELECT code, count FROM rejections")}

    async def forks(self) -> list[ForkRow]:
        rows = await self.all("SELECT * FROM forks ORDER BY detected_at")
        return [
            ForkRow(
                author=r[0],
                seq=r[1],
                held_id=bytes(r[2]),
                held_wire=bytes(r[3]) if r[3] is not None else None,
                other_id=bytes(r[4]),
                other_wire=bytes(r[5]),
                detected_at=r[6],
            )
            for r in rows
        ]

    async def meta(self, key: str) -> str | None:
        rows = await self.all("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    async def event_count(self) -> int:
        return int((await self.all("SELECT COUNT(*) FROM events"))[0][0])

    async def event_ids(self) -> set[bytes]:
        return {bytes(r[0]) for r in await self.all("SELECT id FROM events")}

    async def counts_by_author(self) -> dict[str, int]:
        rows = await self.all("SELECT author, COUNT(*) FROM events GROUP BY author")
        return {str(r[0]): int(r[1]) for r in rows}

    async def log_page(
        self, *, author: str | None, after_pos: int, limit: int
    ) -> list[tuple[int, bytes]]:
        """(pos, wire) of stored events after `pos`, optionally of one author, oldest first."""
        if author is None:
            return [
                (int(r[0]), bytes(r[1]))
                for r in await self.all(
                    "SELECT pos, wire FROM events WHERE pos > ? ORDER BY pos LIMIT ?",
                    (after_pos, limit),
                )
            ]
        return [
            (int(r[0]), bytes(r[1]))
            for r in await self.all(
                "SELECT pos, wire FROM events WHERE author = ? AND pos > ? ORDER BY pos LIMIT ?",
                (author, after_pos, limit),
            )
        ]

    async def projection_rows(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every projection table's rows, sorted: what `rebuild_projections` must reproduce."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        for table in (REFUSALS_TABLE, *(t for p in self.projections for t in p.tables)):
            rows = await self.all(f"SELECT * FROM {table}")
            out[table] = sorted(tuple(r) for r in rows)
        return out


# -- write transactions, run on the connection's thread (one round trip each) ----------------


def _in_transaction(
    conn: sqlite3.Connection, fn: Callable[..., None], durable: bool, *args: Any
) -> None:
    if not durable:
        conn.execute("PRAGMA synchronous=NORMAL")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            fn(conn, *args)
            conn.execute("COMMIT")
        except BaseException:
            # (A COMMIT that fails, say SQLITE_BUSY, leaves the transaction open.)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        if not durable:
            conn.execute("PRAGMA synchronous=FULL")


def _checkpoint(path: str) -> None:
    conn = sqlite3.connect(path, timeout=5.0)
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        conn.close()


async def _open_reader(absolute: str) -> aiosqlite.Connection:
    uri = f"{Path(absolute).as_uri()}?mode=ro"  # as_uri quotes what a URI must
    reader = await aiosqlite.connect(uri, uri=True, isolation_level=None)
    try:
        await reader.execute("PRAGMA query_only=ON")
        await reader.execute("PRAGMA busy_timeout=5000")  # its own thread: it may wait
    except BaseException:
        await reader.close()
        raise
    return reader


def _commit_batch(
    conn: sqlite3.Connection,
    projections: Sequence[Projection],
    batch: Batch,
    received: int,
    fold_log: LogBudget,
) -> None:
    if batch.events:
        conn.executemany(
            "INSERT INTO events (author, seq, id, kind, at, key, wire, received_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(e.author, e.seq, e.id, e.kind, e.at, e.key, e.wire, received) for e in batch.events],
        )
        fold_isolated(conn, projections, batch.events, fold_log)
    if batch.authors:
        conn.executemany(
            "INSERT OR REPLACE INTO authors VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (a.author, a.head_seq, a.head_id, a.current_key, a.next_key_digest,
                 a.key_since, a.forked_seq, a.retired_seq)
                for a in batch.authors.values()
            ],
        )  # fmt: skip
    if batch.outbox:
        conn.executemany(
            "INSERT OR IGNORE INTO outbox (id, seq, subject, created_at) VALUES (?, ?, ?, ?)",
            [(e.id, e.seq, subject, received) for e, subject in batch.outbox],
        )
    if batch.forks:
        conn.executemany(
            "INSERT OR IGNORE INTO forks VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (f.author, f.seq, f.held_id, f.held_wire, f.other_id, f.other_wire,
                 f.detected_at)
                for f in batch.forks
            ],
        )  # fmt: skip
    if batch.rejections:
        conn.executemany(
            "INSERT INTO rejections (code, count) VALUES (?, ?)"
            " ON CONFLICT (code) DO UPDATE SET count = count + excluded.count",
            list(batch.rejections.items()),
        )
    if batch.rejected:
        conn.executemany(
            "INSERT OR IGNORE INTO rejected_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(r.evidence, r.author, r.seq, r.kind, r.code, r.reason, r.source, r.at)
             for r in batch.rejected],
        )  # fmt: skip
    if batch.meta:
        conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(batch.meta.items())
        )


def _delete_outbox(conn: sqlite3.Connection, ids: list[bytes]) -> None:
    conn.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])


def _rebuild(conn: sqlite3.Connection, net: bytes, projections: Sequence[Projection]) -> None:
    conn.execute(f"DELETE FROM {REFUSALS_TABLE}")
    for projection in projections:
        projection.reset(conn)
    _fold_into(conn, net, projections)


def _fold_and_note(
    conn: sqlite3.Connection,
    net: bytes,
    projections: Sequence[Projection],
    rebuild: bool,
    refold: Sequence[Projection],
    notes: dict[str, str],
) -> None:
    """Rebuild every projection (`rebuild`) or fold `refold` again, and write `notes` into
    `meta`, in one transaction (`Store._fold_what_was_missed`)."""
    if rebuild:
        _rebuild(conn, net, projections)
        conn.execute("DELETE FROM meta WHERE key = ?", (REBUILD_META,))
    elif refold:
        _refold(conn, net, refold)
    conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", notes.items())


def _refold(conn: sqlite3.Connection, net: bytes, projections: Sequence[Projection]) -> None:
    for projection in projections:
        projection.reset(conn)
    _fold_into(conn, net, projections)


def _fold_into(conn: sqlite3.Connection, net: bytes, projections: Sequence[Projection]) -> None:
    """Fold the whole log, in the order it was stored, into `projections`.

    An event whose known kind refuses its body (docs/PROTOCOL.md §4 step 13, §8.1) stays in
    the log and is recorded as refused `bad_body` by `fold_isolated`; nothing of it is folded.
    """
    last = 0
    while True:
        found = conn.execute(
            "SELECT pos, wire FROM events WHERE pos > ? ORDER BY pos LIMIT 2000", (last,)
        ).fetchall()
        if not found:
            return
        last = int(found[-1][0])
        envs = [unseal_stored(bytes(r[1]), net=net) for r in found]
        fold_isolated(conn, projections, envs, None)  # each was logged when received


# What a full disk, a read-only file or an I/O error raise: the store's failure, never one
# event's. (IntegrityError is a DatabaseError too, but it is about the rows: one event's.)
def _is_storage_error(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError) and not isinstance(
        exc, sqlite3.IntegrityError
    )


def fold_isolated(
    conn: sqlite3.Connection,
    projections: Sequence[Projection],
    events: Sequence[Envelope],
    log_budget: LogBudget | None,
) -> None:
    """Fold stored events into the projections so that no event can undo another.

    The log invariant (docs/ARCHITECTURE.md, PROTOCOL.md §7.1): the events are already in
    the log; a projection that cannot apply one of them (an integer beyond SQLite's 64 bits,
    a bug) loses only that event's effect on that projection, which is recorded as a domain
    refusal (`out_of_bounds` for a number too large, else `projection_failed`), and the rest
    of the batch commits. The whole batch is tried at once first (the common case costs one
    SAVEPOINT); only after a failure is it applied one event and one projection at a time.
    A storage error still fails the whole transaction (StorageFailure: the node stops).

    An event whose known kind refuses its body (`Opaque` with `refused`: PROTOCOL.md §4
    step 13) is recorded as a domain refusal `bad_body` here, and folded by no projection.

    Each refusal made here is logged within `log_budget` (20 lines a minute per code; every
    one is counted in the status), or not at all when it is None (a fold of the whole log:
    each was logged when it was received).
    """
    for env in events:
        if isinstance(env.body, Opaque) and env.body.refused:
            why = env.body.refused[:280]
            refuse(conn, env, "bad_body", why)
            if log_budget is not None and log_budget.allow("bad_body"):
                log.warning("%s#%d %s refused by bad_body: %s", env.author, env.seq, env.kind, why)
    conn.execute("SAVEPOINT fold")
    try:
        apply_projections(conn, projections, events)
    except Exception as exc:
        if _is_storage_error(exc):
            raise
        conn.execute("ROLLBACK TO fold")
        for env in events:
            if isinstance(env.body, Opaque):
                continue  # no projection folds an opaque body (as `apply_projections`)
            for projection in projections:
                if env.kind in projection.kinds:
                    _apply_one(conn, projection, env, log_budget)
    conn.execute("RELEASE fold")


def _apply_one(
    conn: sqlite3.Connection, projection: Projection, env: Envelope, log_budget: LogBudget | None
) -> None:
    conn.execute("SAVEPOINT one")
    try:
        projection.apply(conn, [env])
    except Exception as exc:
        if _is_storage_error(exc):
            raise
        conn.execute("ROLLBACK TO one")
        code = "out_of_bounds" if isinstance(exc, OverflowError) else "projection_failed"
        what = f"{projection.name} cannot apply it ({type(exc).__name__}: {exc})"
        refuse(conn, env, code, what[:280])
        if log_budget is not None and log_budget.allow(code):
            log.warning("%s#%d %s refused by %s: %s", env.author, env.seq, env.kind, code, what)
    conn.execute("RELEASE one")
