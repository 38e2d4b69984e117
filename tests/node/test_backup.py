"""`coopnet node backup|restore` (node/engine/backup.py), as processes, on real stores of
nodes that run over a real nats-server: a copy made while the node runs is checked and
private; a restore refuses a running node, a damaged copy and another identity; a node
restored from an old copy recovers its published head before it signs, and never forks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from coopnet.protocol import Head, NotePosted
from tests.conftest import converged, make_node, running, wait_until
from tests.node.test_cli_market import coopnet

pytestmark = pytest.mark.timeout(120)


def head_in(path: Path, author: str) -> tuple[int, bytes]:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            "SELECT head_seq, head_id FROM authors WHERE author = ?", (author,)
        ).fetchone()
    finally:
        conn.close()
    return int(row[0]), bytes(row[1])


async def test_a_node_restored_from_an_old_copy_recovers_its_head_and_never_forks(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    oak_d = await make_node(tmp_path, "oakley", url)
    elm_d = await make_node(tmp_path, "elm", url)
    copy = tmp_path / "backups" / "oakley.db"
    copy.parent.mkdir()
    async with running(Node(elm_d, serve_api=False)) as (elm,):
        async with running(Node(oak_d)) as (oakley,):
            await oakley.post(NotePosted(text="before the copy"))
            # While the node runs.
            code, made = await coopnet("node", "backup", "--data", str(oak_d), str(copy))
            assert code == 0, made
            assert made["path"] == str(copy) and made["bytes"] == copy.stat().st_size
            assert (made["slug"], made["head_seq"], made["marked"]) == ("oakley", 2, True)
            assert made["key"] == oakley.identity.public_key.hex()
            assert made["events"] >= 3 and made["authors"] == 2  # elm's founding too
            assert copy.stat().st_mode & 0o777 == 0o600
            assert sorted(p.name for p in copy.parent.iterdir()) == ["oakley.db"]  # one file
            code, refused = await coopnet("node", "backup", "--data", str(oak_d), str(copy))
            assert (code, refused["code"]) == (1, "backup_refused")
            assert f"{copy} exists" in refused["message"] and "--force" in refused["message"]

            for text in ("after the copy", "and again"):
                await oakley.post(NotePosted(text=text))
            published = head_in(oak_d / "node.db", "oakley")
            assert published[0] == 4
            await wait_until(lambda: converged(oakley, elm), what="oakley's notes at elm")
            code, refused = await coopnet("node", "restore", "--data", str(oak_d), str(copy))
            assert (code, refused["code"]) == (1, "restore_refused")
            assert "is running" in refused["message"], refused

        code, done = await coopnet("node", "restore", "--data", str(oak_d), str(copy))
        assert code == 0, done
        assert done["copy"]["head_seq"] == 2 and done["copy"]["path"] == str(oak_d / "node.db")
        aside = Path(done["set_aside"])
        assert aside.parent == oak_d and aside.name.startswith("node.db.before-restore-")
        assert head_in(aside, "oakley") == published  # the replaced store, whole
        assert head_in(oak_d / "node.db", "oakley")[0] == 2
        assert (oak_d / "node.db").stat().st_mode & 0o777 == 0o600

        # Run again: before signing, the node recovers seqs 3-4 from the bus and its peer.
        async with running(Node(oak_d)) as (oakley,):
            head = oakley.chains.head_of("oakley")
            assert head is not None and (head.seq, head.id) == published
            note = await oakley.post(NotePosted(text="after the restore"))
            assert (note.seq, note.prev) == (5, published[1])
            await wait_until(lambda: converged(oakley, elm), what="the new note at elm")
        assert await elm.store.forks() == []
        assert elm.chains.head_of("oakley") == Head(note.seq, note.id)


async def test_restore_refuses_another_identity_and_a_damaged_copy(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    oak_d = await make_node(tmp_path, "oakley", url)
    elm_d = await make_node(tmp_path, "elm", url)
    other_d = await make_node(tmp_path / "elsewhere", "oakley", url)  # same slug, other key
    copies = tmp_path / "copies"
    copies.mkdir()
    for name, data in (("elm", elm_d), ("other", other_d), ("oak", oak_d)):
        code, made = await coopnet("node", "backup", "--data", str(data), str(copies / name))
        assert code == 0, made  # a stopped node is copied too
    before = (oak_d / "node.db").read_bytes()

    async def refused(copy: Path) -> str:
        code, answer = await coopnet("node", "restore", "--data", str(oak_d), str(copy))
        assert (code, answer["code"]) == (1, "restore_refused"), answer
        assert (oak_d / "node.db").read_bytes() == before  # untouched
        assert sorted(p.name for p in oak_d.iterdir() if p.name.startswith("node.db")) == [
            "node.db"
        ]  # nothing set aside, nothing left staged
        return str(answer["message"])

    assert "a copy of elm's store, not oakley's" in await refused(copies / "elm")
    message = await refused(copies / "other")
    assert "this node's key files hold" in message and "another identity" in message
    damaged = copies / "damaged"
    garbled = bytearray((copies / "oak").read_bytes())
    for i in range(4096, len(garbled), 97):  # every page past the first
        garbled[i] ^= 0xFF
    damaged.write_bytes(bytes(garbled))
    message = await refused(damaged)
    assert "damaged" in message or "cannot be read" in message, message
    assert "not a file" in await refused(copies / "missing")
