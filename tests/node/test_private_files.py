"""Stores hold private data (a neighborhood's local calls for help): their folder is 0700,
the database and its WAL 0600, whatever the umask; looser modes found are tightened."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from coopnet.federation.observer import open_observer_store
from coopnet.node.engine.config import db_path
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.private_files import private_database
from coopnet.node.engine.store import Batch
from coopnet.node.runtime import Node
from tests.conftest import NET, make_node, running
from tests.node.test_store import history, open_store


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def private(folder: Path, db: str) -> dict[str, int]:
    """The modes of `folder` and of every file of the database `db` in it."""
    found = {p.name: mode(p) for p in folder.iterdir() if p.name.startswith(db)}
    return {"(folder)": mode(folder), **found}


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o000])
async def test_a_new_store_its_wal_and_folder_are_private_whatever_the_umask(
    tmp_path: Path, mask: int
) -> None:
    folder = tmp_path / "data"
    with umask(mask):
        store = await open_store(folder / "node.db")
        try:
            await store.commit(Batch(events=history("oakley", 3)))
            modes = private(folder, "node.db")
        finally:
            await store.close()
    assert {"node.db", "node.db-wal", "node.db-shm"} <= set(modes)
    assert modes == {"(folder)": 0o700, **{k: 0o600 for k in modes if k != "(folder)"}}


async def test_an_existing_store_with_loose_modes_is_tightened_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "data"
    store = await open_store(folder / "node.db")
    await store.commit(Batch(events=history("oakley", 2)))
    await store.close()
    os.chmod(folder, 0o755)
    for p in folder.glob("node.db*"):
        os.chmod(p, 0o644)
    caplog.set_level(logging.WARNING, logger="coopnet.files")
    store = await open_store(folder / "node.db")
    await store.close()
    tightened = [r for r in caplog.records if "tightened" in r.getMessage()]
    assert {Path(r.getMessage().split(" was ")[0]).name for r in tightened} >= {"data", "node.db"}
    assert set(private(folder, "node.db").values()) <= {0o700, 0o600}
    caplog.clear()
    store = await open_store(folder / "node.db")  # already private: nothing to say
    await store.close()
    assert not [r for r in caplog.records if "tightened" in r.getMessage()]


async def test_the_observer_store_is_private(tmp_path: Path) -> None:
    with umask(0o022):
        store = await open_observer_store(tmp_path / "obs" / "observer.db", NET)
        await store.close()
    assert set(private(tmp_path / "obs", "observer.db").values()) == {0o700, 0o600}


async def test_a_node_made_and_run_under_a_loose_umask_keeps_its_data_private(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """The case node-db-world-readable: `node init` then `node run`, and a local request
    for help (text that never leaves the neighborhood) in the store."""
    url = nats_server.url
    with umask(0o000):
        data = await make_node(tmp_path, "oakley", url)
        node = Node(data, serve_api=False)
        async with running(node):
            await node.aid.request(  # a local request: stored, never published
                category="eldercare",
                urgency="low",
                quantity=1,
                description="Flat 3B: help getting to dialysis on Tuesdays",
                needed_in_min=600,
            )
    assert mode(data) == 0o700
    assert mode(db_path(data)) == 0o600
    for p in data.glob("node.db*"):
        assert mode(p) == 0o600, p


def test_a_shared_folder_is_not_taken_from_the_others(tmp_path: Path) -> None:
    """A store put straight into a shared folder (sticky bit, as /tmp) leaves the folder's
    mode alone; the file itself is still private."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    private_database(shared / "node.db")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert mode(shared / "node.db") == 0o600
