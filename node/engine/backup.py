"""A node's store, copied while it runs and checked, and put back (`coopnet node backup|restore`).

`backup` copies `DATA/node.db` with SQLite's online backup API: one read transaction, so
a running node keeps writing meanwhile (WAL) and the copy is the store as of one commit.
The copy is then checked before it takes its name: `PRAGMA integrity_check`, the identity
(slug and current key) that of this node, and every author's log, the node's own and its
peers', verified from seq 1 to its head as the node judges what it receives (signatures,
federation, chain links, key log from the founding under the charter's founder keys and
admission tickets: PROTOCOL.md §3-6, §16), each `authors` row equal to what its log gives.
It is one file (no WAL), mode 0600, and carries a marker (`meta.backup_of`: slug, key,
head) that `restore` reads. It is never written inside the node's data directory, where
it could replace the node's key or config.

The key files (`node.key`, `node.next.key`) are not in the copy: a store is data a co-op
can keep on another disk, a key is a secret that stays where it is (0600, in the data
dir); a copy that leaked would then hold nothing that signs. Restoring needs the node's
key files as they are now.

`restore` (the node stopped) checks the copy the same way, refuses one of another
identity (another slug, another key, another federation, another founding) or one whose
log or records were altered, keeps the replaced store aside
(`node.db.before-restore-<time>`) and puts the copy in its place. No projection table of
the copy is trusted: the restored store rebuilds them all from its verified log when the
node next opens it (`REBUILD_META`, node/engine/store.py).
What the node published after the copy was made is not lost: at its next start it
recovers its own head from the stream and its peers before it signs anything
(node/engine/recovery.py), so a restored node never forks itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec

from coopnet.node.engine.client import API_URL_FILE
from coopnet.node.engine.config import db_path
from coopnet.node.engine.copy_check import CopyRefused, verify_logs
from coopnet.node.engine.private_files import PRIVATE_FILE_MODE, private_file
from coopnet.node.engine.store import REBUILD_META
from coopnet.protocol import (
    key_digest,
)

MARKER = "backup_of"  # the meta key of a copy's marker
BUSY_TIMEOUT_MS = 2_000
_COMPANIONS = ("-wal", "-shm", "-journal")


class BackupError(Exception):
    """A copy that cannot be made, checked or restored: one line saying why and what to do."""


class CopyFacts(msgspec.Struct, kw_only=True):
    """What a checked copy holds (`bytes`: its size; `head_id`, `key`: hex)."""

    path: str
    bytes: int
    slug: str
    key: str
    head_seq: int
    head_id: str
    events: int
    authors: int
    marked: bool  # carries the marker `backup` writes (a copy made otherwise does not)


class Restored(msgspec.Struct, kw_only=True):
    """What `restore` did: the copy put in place, and where the replaced store went."""

    data: str
    restored_from: str
    copy: CopyFacts
    set_aside: str  # the replaced store's new name, or "" when there was none


# -- backup ---------------------------------------------------------------------------------


def backup(
    data: Path,
    out: Path,
    *,
    net: bytes,
    slug: str,
    key: bytes,
    force: bool = False,
    charter_keys: Mapping[str, bytes] | None = None,
    admission_key: bytes | None = None,
) -> CopyFacts:
    """Copy the store of the node in `data` (running or not) to `out` and check the copy.

    `net` (16 bytes), `slug` and `key` (its current public key, 32 bytes) are the
    federation and identity the copy must hold; `charter_keys` and `admission_key` its
    charter's, as `verify_copy` takes them. Refuses an `out` inside `data` (symlinks
    followed), whatever `force` says: it could replace the node's key or config. Refuses
    to replace an existing `out` unless `force`. Raises BackupError."""
    source = db_path(data)
    if not source.exists():
        raise BackupError(f"{source} does not exist: is {data} a node's data directory?")
    inside = _inside(out, data)
    if inside:
        raise BackupError(
            f"{out} is inside the node's data directory {inside} (it could replace the"
            " node's key, config or store): write the copy elsewhere, ideally on another disk"
        )
    if out.exists() and not force:
        raise BackupError(f"{out} exists: choose another name, or --force to replace it")
    if out.resolve() == source.resolve():
        raise BackupError(f"{out} is the store itself: choose another name")
    part = out.with_name(f"{out.name}.part-{os.getpid()}")
    try:
        _online_copy(source, part)
        head = _own_head(part, slug)
        with _connect(part) as conn:
            marker = {"slug": slug, "key": key.hex(), "head_seq": head[0], "head_id": head[1]}
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                (MARKER, json.dumps(marker | {"made_at": _now_iso()})),
            )
            conn.commit()
        facts = verify_copy(part, net=net, slug=slug, key=key, charter_keys=charter_keys,
                            admission_key=admission_key, named=out)  # fmt: skip
        _fsync(part)
        if out.exists() and not force:  # made meanwhile
            raise BackupError(f"{out} exists: choose another name, or --force to replace it")
        os.replace(part, out)
        _fsync(out.parent)
    finally:
        for p in (part, *(part.with_name(part.name + c) for c in _COMPANIONS)):
            p.unlink(missing_ok=True)
    return msgspec.structs.replace(facts, path=str(out))


def _inside(out: Path, data: Path) -> Path | None:
    """`data` resolved, if `out` (resolved: `..` and every symlink followed, its own too)
    is that directory or inside it; else None."""
    home = data.resolve()
    where = out.resolve()
    return home if where == home or where.is_relative_to(home) else None


def _online_copy(source: Path, dest: Path) -> None:
    """SQLite's online backup of `source` into a new file `dest` (0600 from its first byte),
    made one self-contained file (no WAL)."""
    dest.unlink(missing_ok=True)
    private_file(dest)
    try:
        src = sqlite3.connect(str(source), timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            src.execute("PRAGMA query_only=ON")
            with _connect(dest) as dst:
                src.backup(dst)  # all pages in one step: one consistent snapshot
                dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            src.close()
    except (sqlite3.Error, ValueError) as exc:  # ValueError: text a damaged file garbled
        raise BackupError(
            f"{source} cannot be copied: damaged, or not an SQLite database ({exc})"
        ) from exc


# -- checking a copy ------------------------------------------------------------------------


@contextlib.contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        yield conn
    finally:
        conn.close()


def _own_head(path: Path, slug: str) -> tuple[int, str]:
    with _connect(path) as conn:
        try:
            row = conn.execute(
                "SELECT head_seq, head_id FROM authors WHERE author = ?", (slug,)
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{path} is not a node's store: {exc}") from exc
    if row is None:
        raise BackupError(f"{path} holds no log of {slug}")
    return int(row[0]), bytes(row[1]).hex()


def verify_copy(
    path: Path,
    *,
    net: bytes,
    slug: str,
    key: bytes,
    charter_keys: Mapping[str, bytes] | None = None,
    admission_key: bytes | None = None,
    named: Path | None = None,
) -> CopyFacts:
    """Check the store copy at `path` as the node `slug` of federation `net` whose current
    key is `key` (32 bytes); return what it holds. Every author's log is verified from
    seq 1 as the node judges a log it receives, under its charter (`charter_keys`: the
    founders' keys by slug; `admission_key`: 32 bytes, or None): `verify_logs`
    (node/engine/copy_check.py). Raises BackupError naming the first fault (the author and
    seq, for a log), and the copy as `named` (the file it was staged from, say) or else
    `path`."""
    shown = named or path
    with _connect(path) as conn:
        conn.execute("PRAGMA query_only=ON")
        try:
            problems = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
            if problems != ["ok"]:
                raise BackupError(f"{shown} is damaged: {'; '.join(problems[:3])}")
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if not {"events", "authors", "meta", "outbox"} <= tables:
                raise BackupError(f"{shown} is not a node's store (no events, authors or meta)")
            marker = _marker(conn)
            if marker is not None and marker.get("slug") != slug:
                raise BackupError(
                    f"{shown} is a copy of {marker.get('slug')}'s store, not {slug}'s"
                )
            row = conn.execute(
                "SELECT head_seq, head_id, current_key, next_key_digest FROM authors"
                " WHERE author = ?",
                (slug,),
            ).fetchone()
            if row is None:
                held = [r[0] for r in conn.execute("SELECT author FROM authors LIMIT 5")]
                raise BackupError(
                    f"{shown} holds no log of {slug} (it holds {', '.join(held) or 'none'}):"
                    " a copy of another node's store"
                )
            head_seq, head_id, current = int(row[0]), bytes(row[1]), bytes(row[2])
            others = _foreign_outbox(conn, slug)
            if others:
                raise BackupError(
                    f"{shown} is a copy of {others}'s store (its outbox holds {others}'s"
                    f" events), not {slug}'s"
                )
            if current != key:  # the identity first: a log of another key is refused anyway
                raise BackupError(_other_key(shown, slug, current, key, bytes(row[3])))
            try:
                verify_logs(conn, shown, net, slug, charter_keys or {}, admission_key)
            except CopyRefused as exc:
                raise BackupError(str(exc)) from None
            events = int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
            authors = int(conn.execute("SELECT COUNT(*) FROM authors").fetchone()[0])
        except (sqlite3.DatabaseError, ValueError) as exc:  # ValueError: garbled text
            raise BackupError(f"{shown} cannot be read as a node's store: {exc}") from exc
    return CopyFacts(
        path=str(path), bytes=path.stat().st_size, slug=slug, key=current.hex(),
        head_seq=head_seq, head_id=head_id.hex(), events=events, authors=authors,
        marked=marker is not None,
    )  # fmt: skip


def _other_key(path: Path, slug: str, current: bytes, key: bytes, next_digest: bytes) -> str:
    return (
        f"{path}: its log of {slug} signs with key {current.hex()[:16]}…, this node's key "
        f"files hold {key.hex()[:16]}…"
        + (
            " (the copy was made before a key rotation: the node could not start with"
            " it; use a copy made since)"
            if key_digest(key) == next_digest
            else ": a copy of another identity"
        )
    )


def _marker(conn: sqlite3.Connection) -> dict[str, object] | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (MARKER,)).fetchone()
    if row is None:
        return None
    try:
        found = json.loads(row[0])
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _foreign_outbox(conn: sqlite3.Connection, slug: str) -> str:
    """The author of events waiting in the copy's outbox, if not `slug` (own events only
    ever wait there: subjects `coop.<author>.<kind>`)."""
    for (subject,) in conn.execute("SELECT subject FROM outbox LIMIT 50"):
        author = str(subject).split(".")[1] if str(subject).count(".") >= 2 else ""
        if author and author != slug:
            return author
    return ""


# -- restore --------------------------------------------------------------------------------


def node_running(data: Path) -> str:
    """Why the node in `data` looks running ("" if it does not): its API answers, or its
    store is open in another process."""
    try:
        base = (data / API_URL_FILE).read_text().strip()
    except OSError:
        base = ""
    if base:
        with contextlib.suppress(httpx.TransportError):
            httpx.get(base + "/health", timeout=2)
            return f"the node in {data} is running (its API answers at {base})"
    return ""


def restore(
    data: Path,
    source: Path,
    *,
    net: bytes,
    slug: str,
    key: bytes,
    now: datetime | None = None,
    charter_keys: Mapping[str, bytes] | None = None,
    admission_key: bytes | None = None,
) -> Restored:
    """Put the checked copy `source` in place of the store of the (stopped) node in `data`,
    the replaced store kept aside as `node.db.before-restore-<UTC time>`. The restored
    store rebuilds every projection from its verified log when the node next opens it
    (`REBUILD_META`). Raises BackupError when the node runs, or the copy is damaged,
    altered, or of another identity."""
    running = node_running(data)
    if running:
        raise BackupError(f"{running}: stop it first, then restore")
    if not source.is_file():
        raise BackupError(f"{source} is not a file")
    live = db_path(data)
    staged = live.with_name(f"{live.name}.restoring-{os.getpid()}")
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    aside = live.with_name(f"{live.name}.before-restore-{stamp}")
    try:
        _online_copy(source, staged)
        facts = verify_copy(staged, net=net, slug=slug, key=key, charter_keys=charter_keys,
                            admission_key=admission_key, named=source)  # fmt: skip
        if live.exists():
            _same_founding(live, staged, slug, source)
            _release(live)
            for suffix in ("", *_COMPANIONS):
                p = live.with_name(live.name + suffix)
                if p.exists():
                    os.replace(p, aside.with_name(aside.name + suffix))
        with _connect(staged) as conn:  # the marker describes a copy, not a store
            conn.execute("DELETE FROM meta WHERE key = ?", (MARKER,))
            # Only the log is verified: every projection is rebuilt from it at next open.
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                (REBUILD_META, _now_iso()),
            )
            conn.commit()
        _fsync(staged)
        os.replace(staged, live)
        os.chmod(live, PRIVATE_FILE_MODE)
        _fsync(live.parent)
    finally:
        for p in (staged, *(staged.with_name(staged.name + c) for c in _COMPANIONS)):
            p.unlink(missing_ok=True)
    return Restored(
        data=str(data),
        restored_from=str(source),
        copy=msgspec.structs.replace(facts, path=str(live)),
        set_aside=str(aside) if aside.exists() else "",
    )


def _same_founding(live: Path, copy: Path, slug: str, source: Path) -> None:
    """The copy's log of `slug` starts with the event the replaced store's does (another
    founding under the same slug is another identity); the copy is named as `source`. A
    damaged store is not asked."""
    try:
        theirs = _founding(live, slug)
    except sqlite3.DatabaseError:
        return
    mine = _founding(copy, slug)
    if theirs is not None and mine is not None and theirs != mine:
        raise BackupError(
            f"{source} holds another log of {slug} (founded as {mine.hex()[:16]}…, this"
            f" node's as {theirs.hex()[:16]}…): a copy of another identity"
        )


def _founding(path: Path, slug: str) -> bytes | None:
    with _connect(path) as conn:
        sql = "SELECT id FROM events WHERE author = ? AND seq = 1"
        row = conn.execute(sql, (slug,)).fetchone()
    return bytes(row[0]) if row is not None else None


def _release(live: Path) -> None:
    """Fold the replaced store's WAL into it, so that the file set aside is whole; refuse if
    another process holds it open (a node running without its API, a status read)."""
    try:
        with _connect(live) as conn:
            mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise BackupError(
                f"{live} is open in another process (is the node running?): stop it first"
            ) from exc
        return  # damaged: set aside as it is
    except sqlite3.DatabaseError:
        return
    if mode is not None and str(mode[0]).lower() == "wal":
        raise BackupError(f"{live} is open in another process (is the node running?): stop it")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["BackupError", "CopyFacts", "Restored", "backup", "node_running", "restore"]
