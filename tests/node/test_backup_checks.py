"""What `verify_copy` and `restore` (node/engine/backup.py) trust of a copy: nothing but
what they verify. On real SQLite stores filled by the node's own `Chains`, a copy altered
in any author's log or record is refused naming the author and seq; a copy whose
projections were rewritten is restored with them rebuilt from its log; and `backup`
never writes inside the node's data directory, `--force` or not."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from coopnet.node.engine import copy_check
from coopnet.node.engine.backup import BackupError, restore, verify_copy
from coopnet.node.engine.chains import Chains
from coopnet.node.engine.config import db_path
from coopnet.protocol import Identity, NotePosted, seal, unseal
from tests.conftest import NET, make_node
from tests.node.test_cli_market import coopnet
from tests.stores import open_node_store

pytestmark = pytest.mark.timeout(120)
NOW = 1_800_000_000_000
OAK = Identity.from_passphrase("oakley", "x")
ELM = Identity.from_passphrase("elm", "x")
MALLORY = Identity.from_passphrase("mallory", "x")


def chain(ident: Identity, slug: str, notes: int) -> list[bytes]:
    """`slug`'s log: its founding, then `notes` notes, signed by `ident`."""
    first = seal(signing_key=ident.signing_key, net=NET, author=slug, seq=1, prev=None,
                 at=NOW, body=ident.founding_body(slug.title(), "T1"))  # fmt: skip
    wires, prev = [first], unseal(first, net=NET).id
    for seq in range(2, notes + 2):
        wire = sign_as(ident, slug, seq, prev, f"note {seq}")
        wires.append(wire)
        prev = unseal(wire, net=NET).id
    return wires


def sign_as(ident: Identity, slug: str, seq: int, prev: bytes | None, text: str) -> bytes:
    return seal(signing_key=ident.signing_key, net=NET, author=slug, seq=seq, prev=prev,
                at=NOW, body=NotePosted(text=text))  # fmt: skip


async def fill(path: Path, wires: list[bytes]) -> None:
    """Store `wires` as the node receives them (verified, chained, projected)."""
    store = await open_node_store(path, NET)
    try:
        chains = Chains(store, NET, clock=lambda: NOW)
        await chains.load()
        report = await chains.receive(wires, source="test")
        assert not report.rejected, report
    finally:
        await store.close()


@pytest.fixture
async def store(tmp_path: Path) -> Path:
    """A node's store (oakley's) holding oakley's log and elm's, 4 events each."""
    path = tmp_path / "node.db"
    await fill(path, chain(OAK, "oakley", 3) + chain(ELM, "elm", 3))
    return path


def altered(original: Path, *sql: tuple[str, tuple[object, ...]]) -> Path:
    """A copy of `original` with `sql` run on it, as someone with the file could."""
    copy = original.with_name(f"copy-{len(list(original.parent.iterdir()))}.db")
    shutil.copy(original, copy)
    conn = sqlite3.connect(copy)
    try:
        for statement, params in sql:
            conn.execute(statement, params)
        conn.commit()
    finally:
        conn.close()
    return copy


def check(
    copy: Path, charter_keys: dict[str, bytes] | None = None, admission_key: bytes | None = None
) -> None:
    verify_copy(copy, net=NET, slug="oakley", key=OAK.public_key, charter_keys=charter_keys,
                admission_key=admission_key)  # fmt: skip


def refused(
    copy: Path, charter_keys: dict[str, bytes] | None = None, admission_key: bytes | None = None
) -> str:
    with pytest.raises(BackupError) as caught:
        check(copy, charter_keys, admission_key)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(copy)), message
    return message


def elm_id(path: Path, seq: int) -> bytes:
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT id FROM events WHERE author='elm' AND seq=?", (seq,)).fetchone()
    finally:
        conn.close()
    return bytes(row[0])


async def test_the_reviewers_copy_is_refused(store: Path) -> None:
    """elm's key record set to mallory's, elm#2's wire garbled, its notes rewritten."""
    copy = altered(
        store,
        ("UPDATE authors SET current_key=? WHERE author='elm'", (MALLORY.public_key,)),
        ("UPDATE events SET wire=X'00' WHERE author='elm' AND seq=2", ()),
        ("UPDATE notes SET text='forged' WHERE author='elm'", ()),
    )
    message = refused(copy)
    assert "elm#2 is an invalid event (malformed" in message and "another copy" in message


async def test_an_altered_record_of_another_author_is_refused(store: Path) -> None:
    copy = altered(
        store, ("UPDATE authors SET current_key=? WHERE author='elm'", (MALLORY.public_key,))
    )
    assert "elm's record (its current key) differs from what its log gives" in refused(copy)
    copy = altered(store, ("UPDATE authors SET next_key_digest=? WHERE author='elm'", (b"0" * 32,)))
    assert "elm's record (its next key digest)" in refused(copy)
    copy = altered(store, ("UPDATE authors SET retired_seq=2 WHERE author='elm'", ()))
    assert "elm's record (its retired seq)" in refused(copy)
    copy = altered(store, ("UPDATE authors SET head_seq=3 WHERE author='elm'", ()))
    assert "elm's record (its head seq)" in refused(copy)
    copy = altered(store, ("DELETE FROM authors WHERE author='elm'", ()))
    assert "elm's log (to #4) has no record" in refused(copy)
    copy = altered(
        store,
        ("INSERT INTO authors SELECT 'ghost', head_seq, head_id, current_key, next_key_digest,"
         " key_since, forked_seq, retired_seq FROM authors WHERE author='elm'", ()),
    )  # fmt: skip
    assert "ghost's record claims head #4" in refused(copy)


async def test_an_event_signed_by_another_key_is_refused_at_its_seq(store: Path) -> None:
    """A well-formed, well-linked elm#2 signed by mallory: the key log refuses it."""
    forged = sign_as(MALLORY, "elm", 2, elm_id(store, 1), "I am elm")
    env = unseal(forged, net=NET)
    copy = altered(
        store,
        ("UPDATE events SET wire=?, id=?, key=? WHERE author='elm' AND seq=2",
         (forged, env.id, env.key)),
    )  # fmt: skip
    assert "elm#2 is refused by its key log (wrong_key" in refused(copy)


async def test_a_broken_chain_or_a_row_that_lies_is_refused(store: Path) -> None:
    copy = altered(store, ("DELETE FROM events WHERE author='elm' AND seq=2", ()))
    assert "elm#3 follows #1: the log misses seq 2" in refused(copy)
    relinked = sign_as(ELM, "elm", 3, elm_id(store, 1), "linked past #2")  # elm's own key
    env = unseal(relinked, net=NET)
    copy = altered(
        store,
        ("UPDATE events SET wire=?, id=? WHERE author='elm' AND seq=3", (relinked, env.id)),
    )
    assert "elm#3 does not link to #2" in refused(copy)
    copy = altered(
        store, ("UPDATE events SET kind='offer.posted' WHERE author='elm' AND seq=2", ())
    )
    assert "elm#2: the row does not describe the event it stores" in refused(copy)
    copy = altered(
        store,
        ("INSERT INTO outbox VALUES (?, 99, 'coop.oakley.note.posted', 0)", (b"\x01" * 32,)),
    )
    assert "outbox holds an entry (seq 99) that is no event of oakley's log" in refused(copy)
    copy = altered(  # an entry of elm's event: the node would publish it as its own
        store,
        ("INSERT INTO outbox VALUES (?, 98, 'coop.oakley.note.posted', 0)", (elm_id(store, 2),)),
    )
    assert "outbox holds an entry (seq 98) that is no event of oakley's log" in refused(copy)


async def test_logs_are_judged_under_the_charter(store: Path) -> None:
    """Founder keys and admission tickets (PROTOCOL.md §16.2, §16.6), as the node judges."""
    check(store, charter_keys={"oakley": OAK.public_key, "elm": ELM.public_key})
    message = refused(store, charter_keys={"elm": MALLORY.public_key})
    assert "elm#1 is refused by its key log (wrong_key" in message and "charter" in message
    message = refused(
        store, charter_keys={"oakley": OAK.public_key}, admission_key=MALLORY.public_key
    )
    assert "elm#1 is refused by its key log (wrong_key" in message and "ticket" in message


async def test_signatures_are_checked_over_the_cores(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From PROCESS_MIN events the signatures are checked in worker processes, in blocks
    that span authors: the verdicts stay those of the events they belong to."""
    monkeypatch.setattr(copy_check, "PROCESS_MIN", 1)
    monkeypatch.setattr(copy_check, "VERIFY_BLOCK", 3)
    check(store)
    copy = altered(store, ("UPDATE events SET wire=X'00' WHERE author='oakley' AND seq=3", ()))
    assert "oakley#3 is an invalid event (malformed" in refused(copy)


async def test_a_restored_store_rebuilds_its_projections_from_its_log(
    store: Path, tmp_path: Path
) -> None:
    """Projection tables are not verified, so `restore` has them all rebuilt at the next
    open: rewritten notes and a forged domain refusal are gone, the log's notes back."""
    copy = altered(
        store,
        ("UPDATE notes SET text='forged' WHERE author='elm'", ()),
        ("INSERT INTO domain_rejections SELECT id, author, seq, kind, 'bad_body', 'forged'"
         " FROM events WHERE author='elm' AND seq=2", ()),
    )  # fmt: skip
    check(copy)  # the log is whole: the copy is fine, its projections are not trusted
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    shutil.copy(store, db_path(data))
    restore(data, copy, net=NET, slug="oakley", key=OAK.public_key)
    restored = await open_node_store(db_path(data), NET)
    try:
        notes = await restored.all("SELECT seq, text FROM notes WHERE author='elm' ORDER BY seq")
        assert notes == [(2, "note 2"), (3, "note 3"), (4, "note 4")]
        assert await restored.all("SELECT * FROM domain_rejections") == []
        assert await restored.meta("rebuild_projections") is None  # once, not at every open
    finally:
        await restored.close()


@pytest.mark.parametrize(
    "where",
    [
        lambda d: d / "node.key",
        lambda d: d / "node.toml",
        lambda d: d.parent / "links" / "into-data",  # a symlink to the data dir's node.key
        lambda d: d.parent / "elsewhere" / ".." / d.name / "node.key",
    ],
    ids=["node.key", "node.toml", "symlink", "dotdot"],
)
async def test_backup_never_writes_inside_the_data_directory(
    tmp_path: Path, where: Callable[[Path], Path]
) -> None:
    data = await make_node(tmp_path, "oakley", "nats://127.0.0.1:4222")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "links").mkdir()
    os.symlink(data / "node.key", tmp_path / "links" / "into-data")
    before = {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()}
    out = where(data)
    code, answer = await coopnet("node", "backup", "--data", str(data), str(out), "--force")
    assert (code, answer["code"]) == (1, "backup_refused"), answer
    message = answer["message"]
    assert "inside the node's data directory" in message and "elsewhere" in message, message
    assert {p.name: p.read_bytes() for p in data.iterdir() if p.is_file()} == before


async def test_restore_refuses_a_tampered_copy_in_one_line(tmp_path: Path) -> None:
    """As an operator meets it: `coopnet node restore` of a copy whose elm log was altered."""
    data = await make_node(tmp_path, "oakley", "nats://127.0.0.1:4222")
    await fill(db_path(data), chain(ELM, "elm", 3))
    copies = tmp_path / "copies"
    copies.mkdir()
    code, made = await coopnet("node", "backup", "--data", str(data), str(copies / "good.db"))
    assert code == 0 and made["authors"] == 2, made
    bad = altered(
        copies / "good.db",
        ("UPDATE authors SET current_key=? WHERE author='elm'", (MALLORY.public_key,)),
    )
    before = db_path(data).read_bytes()
    code, answer = await coopnet("node", "restore", "--data", str(data), str(bad))
    assert (code, answer["code"]) == (1, "restore_refused"), answer
    assert "elm's record (its current key)" in answer["message"]
    assert db_path(data).read_bytes() == before


async def test_a_fork_on_record_must_be_evidence_of_one(store: Path, tmp_path: Path) -> None:
    """A real equivocation (elm signed two #3) is kept; a made-up fork record, which would
    silence elm for good, is refused (PROTOCOL.md §6.5)."""
    second = sign_as(ELM, "elm", 3, elm_id(store, 2), "another #3")
    forked = tmp_path / "forked.db"
    shutil.copy(store, forked)
    store_ = await open_node_store(forked, NET)
    try:
        chains = Chains(store_, NET, clock=lambda: NOW)
        await chains.load()
        assert (await chains.receive([second], source="test")).forks == [("elm", 3)]
    finally:
        await store_.close()
    check(forked)  # real evidence: the copy is fine
    copy = altered(forked, ("UPDATE authors SET forked_seq=NULL WHERE author='elm'", ()))
    assert "elm's record (its forked seq None) differs from the forks on record (3)" in refused(
        copy
    )
    copy = altered(store, ("UPDATE authors SET forked_seq=2 WHERE author='elm'", ()))
    assert "elm's record (its forked seq 2)" in refused(copy)
    by_mallory = sign_as(MALLORY, "elm", 3, elm_id(store, 2), "elm lied")
    copy = altered(
        forked,
        ("UPDATE forks SET other_wire=?, other_id=?", (by_mallory, unseal(by_mallory, net=NET).id)),
    )
    message = refused(copy)
    assert "elm's fork on record at #3 is no evidence of one" in message
    assert "not in elm's key log" in message
    copy = altered(forked, ("UPDATE forks SET held_id=other_id", ()))
    assert "its held event is not the log's" in refused(copy)
