"""The store contract, run against every store implementation.

There is one implementation (SQLite via aiosqlite); the contract runs on a database file
and on SQLite's in-memory database, which share the code but not the storage path.
"""

from __future__ import annotations

import abc
import hashlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiosqlite
import pytest

from coopnet.node.engine.store import LOG_MIGRATIONS, Batch, ForkRow, StorageFailure, Store
from coopnet.node.runtime import domain_tables
from coopnet.protocol import Envelope, Identity, NotePosted, seal, unseal

NET = hashlib.sha256(b"store tests").digest()[:16]
PROJECTIONS, TABLES = domain_tables()
# The components whose tables a store of the single PRAGMA user_version layout (6) had.
SINGLE_VERSION_LAYOUT = {"neighborhoods", "notes", "market", "aid", "aid_local", "membership"}


async def open_store(path: Path | str) -> Store:
    """A node's store with every domain's tables, as `coopnet node run` opens it."""
    return await Store.open(path, net=NET, projections=PROJECTIONS, tables=TABLES)


def history(slug: str, n: int) -> list[Envelope]:
    ident = Identity.from_passphrase(slug, "store")
    out: list[Envelope] = []
    for seq in range(1, n + 1):
        body = ident.founding_body(slug.title(), "S1") if seq == 1 else NotePosted(text=f"n{seq}")
        wire = seal(
            signing_key=ident.signing_key,
            net=NET,
            author=slug,
            seq=seq,
            prev=out[-1].id if out else None,
            at=1000 + seq,
            body=body,
        )
        out.append(unseal(wire, net=NET))
    return out


class StoreContract(abc.ABC):
    """Every store passes these."""

    @pytest.fixture
    async def store(self, tmp_path: Path) -> AsyncIterator[Store]:
        store = await open_store(self.location(tmp_path))
        try:
            yield store
        finally:
            await store.close()

    @abc.abstractmethod
    def location(self, tmp_path: Path) -> str:
        """Where this implementation's store lives."""

    async def test_new_store_is_at_the_latest_schema(self, store: Store) -> None:
        expected = {"log": len(LOG_MIGRATIONS)}
        expected |= {c.name: len(c.migrations) for c in (*PROJECTIONS, *TABLES)}
        assert await store.schema_versions() == expected
        assert await store.event_count() == 0

    async def test_commit_then_read(self, store: Store) -> None:
        events = history("oakley", 5)
        await store.commit(Batch(events=events))
        assert await store.event_count() == 5
        assert await store.event_ids() == {e.id for e in events}
        found = await store.event_at("oakley", 3)
        assert found == (events[2].id, events[2].wire)
        assert await store.range("oakley", 2, 4) == [e.wire for e in events[1:4]]
        assert await store.ids_at("oakley", [1, 5, 9]) == {1: events[0].id, 5: events[4].id}

    async def test_range_respects_the_byte_budget(self, store: Store) -> None:
        events = history("oakley", 10)
        await store.commit(Batch(events=events))
        part = await store.range("oakley", 1, 10, max_bytes=3 * len(events[1].wire))
        assert 1 <= len(part) <= 4
        assert part == [e.wire for e in events[: len(part)]]

    async def test_a_seq_is_stored_once(self, store: Store) -> None:
        events = history("oakley", 2)
        await store.commit(Batch(events=events))
        with pytest.raises(Exception, match="UNIQUE"):
            await store.commit(Batch(events=[events[1]]))
        # The failed batch left nothing behind.
        assert await store.event_count() == 2

    async def test_a_failed_batch_writes_nothing(self, store: Store) -> None:
        events = history("oakley", 3)
        await store.commit(Batch(events=events[:1]))
        with pytest.raises(Exception, match="UNIQUE"):
            await store.commit(Batch(events=[events[1], events[0]], rejections={"malformed": 1}))
        assert await store.event_count() == 1
        assert await store.rejections() == {}

    async def test_outbox(self, store: Store) -> None:
        events = history("oakley", 3)
        await store.commit(
            Batch(events=events, outbox=[(e, f"coop.oakley.{e.kind}") for e in events])
        )
        assert await store.outbox_depth() == 3
        batch = await store.outbox_batch(2)
        assert [row[0] for row in batch] == [events[0].id, events[1].id]
        assert batch[0][2] == events[0].wire
        await store.outbox_done([events[0].id, events[1].id])
        assert await store.outbox_depth() == 1

    async def test_rejections_add_up(self, store: Store) -> None:
        await store.commit(Batch(rejections={"bad_signature": 2}))
        await store.commit(Batch(rejections={"bad_signature": 1, "malformed": 4}))
        assert await store.rejections() == {"bad_signature": 3, "malformed": 4}

    async def test_fork_evidence_is_kept(self, store: Store) -> None:
        row = ForkRow(
            author="oakley",
            seq=2,
            held_id=b"a" * 32,
            held_wire=b"x",
            other_id=b"b" * 32,
            other_wire=b"y",
            detected_at=5,
        )
        await store.commit(Batch(forks=[row, row]))
        assert await store.forks() == [row]

    async def test_projections_rebuild_identically(self, store: Store) -> None:
        await store.commit(Batch(events=history("oakley", 6)))
        await store.commit(Batch(events=history("elm", 4)))
        before = await store.projection_rows()
        assert len(before["notes"]) == 5 + 3
        assert len(before["neighborhoods"]) == 2
        await store.rebuild_projections()
        assert await store.projection_rows() == before

    async def test_meta(self, store: Store) -> None:
        assert await store.meta("stream_seq") is None
        await store.commit(Batch(meta={"stream_seq": "42"}))
        assert await store.meta("stream_seq") == "42"


class TestSqliteFileStore(StoreContract):
    def location(self, tmp_path: Path) -> str:
        return str(tmp_path / "node.db")

    async def test_reopen_keeps_everything(self, tmp_path: Path) -> None:
        path = self.location(tmp_path)
        store = await open_store(path)
        await store.commit(Batch(events=history("oakley", 3)))
        await store.close()
        store = await open_store(path)
        try:
            assert await store.event_count() == 3
        finally:
            await store.close()

    async def test_forward_migration_from_schema_1(self, tmp_path: Path) -> None:
        path = self.location(tmp_path)
        async with aiosqlite.connect(path) as db:
            for ddl in LOG_MIGRATIONS[0]:
                await db.execute(ddl)
            await db.execute("PRAGMA user_version=1")
            await db.commit()
        store = await open_store(path)
        try:
            assert (await store.schema_versions())["log"] == len(LOG_MIGRATIONS)
            await store.commit(Batch(events=history("oakley", 2)))
            assert len((await store.projection_rows())["notes"]) == 1
        finally:
            await store.close()

    async def test_a_store_of_the_single_version_layout_is_adopted(self, tmp_path: Path) -> None:
        """A store written before the engine and the domains were separated (every table
        made by one list of steps, PRAGMA user_version 6) opens with its rows as they are:
        no table made twice, no projection emptied."""
        path = self.location(tmp_path)
        store = await open_store(path)
        await store.commit(Batch(events=history("oakley", 3)))
        before = await store.projection_rows()
        # What the old layout had not: the versions table, and tables added since.
        await store.db.execute("DROP TABLE schema_versions")
        for step in LOG_MIGRATIONS[4:]:
            for ddl in step:
                table = ddl.split("TABLE ")[1].split()[0]
                await store.db.execute(f"DROP TABLE {table}")
        # Nor the tables of the domains added since (the time bank's, the pools' …).
        for component in (*PROJECTIONS, *TABLES):
            if component.name not in SINGLE_VERSION_LAYOUT:
                for ddl in (ddl for step in component.migrations for ddl in step):
                    if ddl.startswith("CREATE TABLE"):
                        await store.db.execute(f"DROP TABLE {ddl.split()[2]}")
        await store.db.execute("PRAGMA user_version=6")
        await store.close()
        store = await open_store(path)
        try:
            assert await store.projection_rows() == before
            # Adopted at version 1, then the market's later steps ran (and it was refolded).
            market = next(p for p in PROJECTIONS if p.name == "market")
            assert (await store.schema_versions())["market"] == len(market.migrations)
        finally:
            await store.close()

    async def test_refuses_tables_newer_than_it_knows(self, tmp_path: Path) -> None:
        path = self.location(tmp_path)
        store = await open_store(path)
        await store.db.execute("UPDATE schema_versions SET version = 99 WHERE component = 'aid'")
        await store.close()
        with pytest.raises(RuntimeError, match="aid tables are at version 99, newer"):
            await open_store(path)

    async def test_a_domain_added_later_is_folded_from_the_whole_log(self, tmp_path: Path) -> None:
        """A store opened without a domain keeps its events; opened again with it, the
        domain's tables are made and hold what a node that always had it would hold."""
        path = self.location(tmp_path)
        without = [p for p in PROJECTIONS if p.name != "notes"]
        store = await Store.open(path, net=NET, projections=without)
        await store.commit(Batch(events=history("oakley", 4)))
        assert "notes" not in await store.schema_versions()
        await store.close()
        store = await open_store(path)
        try:
            assert len((await store.projection_rows())["notes"]) == 3
            folded = await store.projection_rows()
            await store.rebuild_projections()
            assert await store.projection_rows() == folded
        finally:
            await store.close()


class TestSqliteMemoryStore(StoreContract):
    def location(self, tmp_path: Path) -> str:
        return ":memory:"


def test_every_kind_but_key_rotation_reaches_a_projection() -> None:
    """The store hands each projection only the kinds it names: a kind no projection names
    would never reach its tables. Only `node.key_rotated` lives in the key log alone."""
    from coopnet.protocol import KINDS

    named = set().union(*(p.kinds for p in PROJECTIONS))
    assert named <= set(KINDS)
    assert set(KINDS) - named == {"node.key_rotated"}


async def test_own_events_are_synced_received_ones_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Own events (an outbox entry) are on disk before `commit` returns; received ones and
    cursor moves skip the fsync, since the node reads them again after a power cut."""
    from coopnet.node.engine import store as store_module

    modes: list[str] = []
    real = store_module._in_transaction

    def recording(conn: object, fn: object, durable: bool, *args: object) -> None:
        modes.append("synced" if durable else "not synced")
        real(conn, fn, durable, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "_in_transaction", recording)
    store = await open_store(tmp_path / "node.db")
    try:
        oak, elm = history("oakley", 2), history("elm", 1)
        await store.commit(Batch(events=oak[:1], outbox=[(oak[0], "coop.oakley.x")]))
        await store.commit(Batch(events=elm), received=True)
        await store.commit(Batch(events=oak[1:], outbox=[(oak[1], "s")]), received=True)
        await store.commit(Batch(meta={"stream_seq": "9"}))
        await store.commit(Batch(events=history("ash", 1)))
        assert modes == ["synced", "not synced", "synced", "not synced", "synced"]
        assert await store.event_count() == 4
    finally:
        await store.close()


async def test_the_checkpointer_moves_commits_into_the_database_file(tmp_path: Path) -> None:
    """Commits land in the WAL; the checkpointer copies them into the database file itself
    beside the writer (SQLite's own checkpoint inside a commit is only a backstop now).
    Seen from outside: a copy of the database file alone holds the events."""
    import shutil

    import anyio

    store = await open_store(tmp_path / "node.db")
    try:
        await store.commit(Batch(events=history("oakley", 5)), received=True)

        async def events_in_file_alone() -> int:
            shutil.copy(tmp_path / "node.db", tmp_path / "copy.db")
            async with aiosqlite.connect(tmp_path / "copy.db") as copy:
                try:
                    rows = await copy.execute_fetchall("SELECT COUNT(*) FROM events")
                except aiosqlite.DatabaseError:
                    # Not even the schema was copied back yet, or the copy caught the file
                    # in the middle of a checkpoint's writes ("malformed"): look again.
                    return 0
                return int(next(iter(rows))[0])

        assert await events_in_file_alone() == 0  # all still in the WAL
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.checkpoint_forever, 0.05)
            with anyio.fail_after(10):
                while await events_in_file_alone() != 5:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            tg.cancel_scope.cancel()
    finally:
        await store.close()


class Fragile:
    """A projection that cannot apply some notes: a stand-in for a domain's bug or for an
    integer SQLite cannot hold (a test double of a domain, on the real store)."""

    name = "fragile"
    tables: tuple[str, ...] = ("fragile",)
    kinds = frozenset({"note.posted"})
    migrations: tuple[tuple[str, ...], ...] = (
        ("CREATE TABLE fragile (author TEXT NOT NULL, seq INTEGER NOT NULL, n INTEGER)",),
    )

    def __init__(self, fail_with: type[Exception] = OverflowError) -> None:
        self.fail_with = fail_with

    def apply(self, conn: sqlite3.Connection, events: Sequence[Envelope]) -> None:
        for e in events:
            # Written first, so that a failure must also undo this event's own rows.
            conn.execute("INSERT INTO fragile VALUES (?, ?, ?)", (e.author, e.seq, e.seq))
            assert isinstance(e.body, NotePosted)
            if e.body.text == "n3":
                raise self.fail_with("cannot hold this one")

    def reset(self, conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM fragile")


async def test_an_event_a_projection_cannot_apply_is_stored_and_refused_alone(
    tmp_path: Path,
) -> None:
    """The log invariant (PROTOCOL.md §7.1): every verified event of the batch is stored;
    the one a projection fails on is refused with evidence (`out_of_bounds` for a number
    too large), its rows undone, and every other event applied; a rebuild agrees."""
    store = await Store.open(tmp_path / "node.db", net=NET, projections=[*PROJECTIONS, Fragile()])
    try:
        oak, elm = history("oakley", 4), history("elm", 3)  # oakley#3 and elm#3 are "n3"
        await store.commit(Batch(events=[*oak, *elm]), received=True)
        assert await store.event_count() == 7
        rows = await store.all("SELECT author, seq FROM fragile ORDER BY author, seq")
        assert rows == [("elm", 2), ("oakley", 2), ("oakley", 4)]
        refused = await store.all("SELECT author, seq, code, reason FROM domain_rejections")
        assert sorted((r[0], r[1], r[2]) for r in refused) == [
            ("elm", 3, "out_of_bounds"),
            ("oakley", 3, "out_of_bounds"),
        ]
        assert all("fragile cannot apply it (OverflowError" in r[3] for r in refused)
        assert len((await store.projection_rows())["notes"]) == 5  # other projections: all
        folded = await store.projection_rows()
        await store.rebuild_projections()
        assert await store.projection_rows() == folded
    finally:
        await store.close()


async def test_a_projection_bug_is_refused_as_projection_failed(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "node.db", net=NET, projections=[Fragile(ValueError)])
    try:
        await store.commit(Batch(events=history("oakley", 3)))
        assert await store.event_count() == 3
        codes = await store.all("SELECT code FROM domain_rejections")
        assert codes == [("projection_failed",)]
    finally:
        await store.close()


async def test_a_storage_error_inside_a_projection_still_fails_the_whole_batch(
    tmp_path: Path,
) -> None:
    """A full disk is the store's failure, not one event's: nothing of the batch is stored."""
    store = await Store.open(
        tmp_path / "node.db", net=NET, projections=[Fragile(sqlite3.OperationalError)]
    )
    try:
        with pytest.raises(StorageFailure):
            await store.commit(Batch(events=history("oakley", 3)))
        assert await store.event_count() == 0
    finally:
        await store.close()


class Tally:
    """A projection of notes whose second version changes its table (a test double)."""

    name = "tally"
    tables: tuple[str, ...] = ("tally",)
    kinds = frozenset({"note.posted"})

    def __init__(self, version: int) -> None:
        steps: list[tuple[str, ...]] = [("CREATE TABLE tally (author TEXT, seq INTEGER)",)]
        if version == 2:
            steps.append(
                ("DROP TABLE tally", "CREATE TABLE tally (author TEXT, seq INTEGER, at INTEGER)")
            )
        self.migrations = tuple(steps)
        self.version = version

    def apply(self, conn: sqlite3.Connection, events: Sequence[Envelope]) -> None:
        for e in events:
            row = (e.author, e.seq) if self.version == 1 else (e.author, e.seq, e.at)
            conn.execute(f"INSERT INTO tally VALUES ({', '.join('?' * len(row))})", row)

    def reset(self, conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM tally")


async def test_a_projection_whose_tables_a_step_changes_is_folded_again(tmp_path: Path) -> None:
    """A migration that remakes a projection's table (as aid's second step does) leaves it
    holding what the whole log folds to, not empty."""
    store = await Store.open(tmp_path / "node.db", net=NET, projections=[Tally(1)])
    await store.commit(Batch(events=history("oakley", 4)))
    await store.close()
    store = await Store.open(tmp_path / "node.db", net=NET, projections=[Tally(2)])
    try:
        rows = await store.all("SELECT author, seq, at FROM tally ORDER BY seq")
        assert rows == [("oakley", 2, 1002), ("oakley", 3, 1003), ("oakley", 4, 1004)]
        assert (await store.schema_versions())["tally"] == 2
    finally:
        await store.close()
