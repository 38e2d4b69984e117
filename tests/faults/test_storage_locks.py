"""A database locked by another process is waited for, never a reason to stop the node
(docs/OPERATIONS.md "Backups and locks"); only a real storage failure stops it. Real locks,
no fakes: another connection (or process) takes SQLite's write lock with BEGIN IMMEDIATE,
as an operator's `sqlite3` shell, a VACUUM or a backup tool does."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from coopnet.federation.observer import Observer
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.store import (
    Batch,
    StorageBusy,
    StorageFailure,
    is_busy,
)
from coopnet.node.runtime import Node
from coopnet.protocol import NotePosted
from tests.conftest import make_node, running, wait_until
from tests.federation.test_audit import observing
from tests.node.test_store import history, open_store
from tests.processes import free_port, start_node, wait_ready

pytestmark = pytest.mark.timeout(120)


@contextlib.contextmanager
def write_lock(db: Path) -> Iterator[sqlite3.Connection]:
    """Hold SQLite's write lock on `db` from another connection until the block ends."""
    conn = sqlite3.connect(db, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def test_a_lock_error_and_a_full_disk_are_told_apart(tmp_path: Path) -> None:
    """SQLITE_BUSY is transient; SQLITE_FULL, a corrupt file, are failures (by the codes
    SQLite gives, not by the message)."""
    db = tmp_path / "x.db"
    with write_lock(db):
        other = sqlite3.connect(db, timeout=0, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError) as busy:
            other.execute("BEGIN IMMEDIATE")
        other.close()
    assert is_busy(busy.value)
    full = sqlite3.connect(tmp_path / "full.db", isolation_level=None)
    full.execute("CREATE TABLE t (x BLOB)")
    full.execute("PRAGMA max_page_count = 3")
    with pytest.raises(sqlite3.OperationalError) as disk_full:
        full.execute("INSERT INTO t VALUES (zeroblob(100000))")
    full.close()
    assert disk_full.value.sqlite_errorcode == sqlite3.SQLITE_FULL
    assert not is_busy(disk_full.value)
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    with pytest.raises(sqlite3.DatabaseError) as junk:
        sqlite3.connect(tmp_path / "junk.db").execute("SELECT * FROM sqlite_master")
    assert not is_busy(junk.value)
    assert not is_busy(ValueError("database is locked"))  # a message proves nothing


async def test_a_write_waits_for_a_lock_and_goes_through_when_it_is_gone(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "node.db")
    try:
        events = history("oakley", 2)
        with write_lock(tmp_path / "node.db") as locker:
            async with anyio.create_task_group() as tg:
                tg.start_soon(store.commit, Batch(events=events))
                await wait_until(lambda: _true(store.busy_waits > 0), what="a busy try")
                locker.execute("ROLLBACK")
                locker.execute("BEGIN")  # so that leaving the block's ROLLBACK is harmless
        assert await store.event_count() == 2
        assert store.busy == 0
    finally:
        await store.close()


async def test_a_lock_beyond_the_patience_is_storage_busy_and_stores_nothing(
    tmp_path: Path,
) -> None:
    store = await open_store(tmp_path / "node.db")
    store.patience_s = 0.3
    try:
        with write_lock(tmp_path / "node.db"):
            with pytest.raises(StorageBusy) as caught:
                await store.commit(Batch(events=history("oakley", 1)))
            assert caught.value.code == "storage_busy"
            with pytest.raises(StorageBusy):
                async with store.transaction() as db:
                    await db.execute("INSERT INTO meta VALUES ('k', 'v')")
        assert await store.event_count() == 0 and await store.meta("k") is None
        await store.commit(Batch(events=history("oakley", 1)))  # and then it works
        assert await store.event_count() == 1
    finally:
        await store.close()


async def test_a_full_disk_is_still_a_storage_failure(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "node.db")
    try:
        pages = (await store.all("PRAGMA page_count"))[0][0]
        await store.db.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StorageFailure) as caught:
            await store.commit(Batch(events=history("oakley", 200)))
        assert "full" in str(caught.value)
    finally:
        await store.close()


async def test_a_post_during_a_long_lock_answers_storage_busy_and_the_node_runs_on(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    oak = Node(await make_node(tmp_path, "oakley", nats_server.url))
    async with running(oak):
        oak.store.patience_s = 0.5
        async with httpx.AsyncClient(base_url=oak.api_url) as client:
            with write_lock(oak.data / "node.db"):
                r = await client.post("/notes", json={"text": "while locked"})
                assert r.status_code == 503 and r.json()["code"] == "storage_busy"
                assert (await client.get("/status")).status_code == 200  # reads go on
            r = await client.post("/notes", json={"text": "after the lock"})
            assert r.status_code == 201, r.text
        assert oak.failure is None and not oak.stopped.is_set()


async def test_received_events_wait_for_the_lock_and_none_is_lost(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    oak = Node(await make_node(tmp_path, "oakley", nats_server.url), serve_api=False)
    elm = Node(await make_node(tmp_path, "elm", nats_server.url), serve_api=False)
    async with running(oak, elm):
        oak.store.patience_s = 0.2
        await wait_until(lambda: _has(oak, "elm", 1), what="oakley to follow elm")
        with write_lock(oak.data / "node.db"):
            for i in range(5):
                await elm.post(NotePosted(text=f"note {i}"))
            await wait_until(lambda: _true(oak.storage_busy > 0), what="a receive that waits")
        await wait_until(lambda: _has(oak, "elm", 6), what="oakley to store every note")
        assert oak.failure is None and not oak.stopped.is_set()


async def test_the_observer_waits_for_the_lock_too_and_loses_nothing(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    elm = Node(await make_node(tmp_path, "elm", nats_server.url), serve_api=False)
    async with running(elm), observing(tmp_path / "obs", nats_server.url) as obs:
        obs.store.patience_s = 0.2
        with write_lock(tmp_path / "obs" / "observer.db"):
            for i in range(5):
                await elm.post(NotePosted(text=f"note {i}"))
            await wait_until(lambda: _true(obs.storage_busy > 0), what="a receive that waits")
        await wait_until(lambda: _has(obs, "elm", 6), what="the observer to store every note")


def test_a_seven_second_lock_by_another_process_does_not_stop_the_node(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """The case db-locked-stops-node: BEGIN IMMEDIATE held for 7 s by another process."""
    data = anyio.run(make_node, tmp_path, "oakley", nats_server.url)
    port = free_port()
    proc = start_node(data, nats_server.url, port)
    locker: subprocess.Popen[bytes] | None = None
    try:
        wait_ready(port, proc)
        hold = (
            "import sqlite3, sys, time\n"
            "c = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)\n"
            "c.execute('BEGIN IMMEDIATE'); print('locked', flush=True)\n"
            "time.sleep(7); c.execute('ROLLBACK')\n"
        )
        locker = subprocess.Popen(
            [sys.executable, "-c", hold, str(data / "node.db")], stdout=subprocess.PIPE
        )
        assert locker.stdout is not None and locker.stdout.readline() == b"locked\n"
        url = f"http://127.0.0.1:{port}/notes"
        during = httpx.post(url, json={"text": "while busy"}, timeout=30)
        assert during.status_code in (201, 503), during.text
        if during.status_code == 503:
            assert during.json()["code"] == "storage_busy"
        locker.wait(timeout=30)
        assert proc.poll() is None, "the node stopped"
        after = httpx.post(url, json={"text": "after the lock"}, timeout=10)
        assert after.status_code == 201, after.text
    finally:
        if locker is not None:
            if locker.poll() is None:
                locker.kill()
            locker.communicate()
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "STORAGE FAILURE" not in err and "Traceback" not in err


async def _true(value: bool) -> bool:
    return value


async def _has(node: Node | Observer, author: str, seq: int) -> bool:
    head = node.chains.head_of(author)
    return head is not None and head.seq >= seq
