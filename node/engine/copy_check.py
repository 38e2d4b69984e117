"""Every log in a copy of a node's store verified as the node judges what it receives
(`coopnet node backup|restore`, node/engine/backup.py): each event unsealed (PROTOCOL.md §4),
linked to the one before (§6), signed by its author's key log from the founding under the
charter's founder keys and admission tickets (§5, §16.2, §16.6), each `authors` row equal to
what its log gives, fork records real evidence and the outbox the node's own. From
`PROCESS_MIN` events the signatures are checked in worker processes, one per core.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

from coopnet.protocol import (
    Envelope,
    InvalidEvent,
    KeyState,
    decode_unsealed,
    key_digest,
    unseal_stored,
)
from coopnet.protocol.history import check_key, found_key_state


class CopyRefused(Exception):
    """A copy whose logs or records are not what the node would hold: the first fault,
    naming the author and seq."""


# Events read and verified at a time, and from how many events of a copy the signatures
# are checked in worker processes (one per core) rather than in this one.
VERIFY_BLOCK = 8192
PROCESS_MIN = 2048


class _Fold:
    """One author's log as `verify_logs` walks it: the last seq and id, the key state."""

    __slots__ = ("author", "commitments", "keys", "prev", "seq", "signers")

    def __init__(self, author: str) -> None:
        self.author = author
        self.seq = 0
        self.prev: bytes | None = None
        self.keys: KeyState | None = None
        self.signers: set[bytes] = set()  # every key that signed one of its events
        self.commitments: set[bytes] = set()  # every next-key digest its key log committed


def verify_logs(
    conn: sqlite3.Connection,
    path: Path,
    net: bytes,
    slug: str,
    charter_keys: Mapping[str, bytes],
    admission_key: bytes | None,
) -> None:
    """Every author's log in the copy verified from seq 1 as the node judges what it
    receives (node/engine/chains.py): each event unsealed (§4), linked to the one before
    (§6), signed by its author's key log from the founding, under the charter's founder
    keys and admission tickets (§5, §16.2, §16.6). The `authors` rows must be what these
    folds give, every fork on record evidence of one (`_verify_forks`), and every outbox
    entry one of `slug`'s events. The projections are not read:
    `restore` has them rebuilt from this log. The copy is trusted for nothing else."""
    claimed = {
        str(r[0]): r
        for r in conn.execute(
            "SELECT author, head_seq, head_id, current_key, next_key_digest, key_since,"
            " retired_seq FROM authors"
        )
    }
    total = int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    rows = conn.execute(
        "SELECT author, seq, id, kind, at, key, wire FROM events ORDER BY author, seq"
    )
    folds: dict[str, _Fold] = {}
    fold: _Fold | None = None
    with _Unsealer(net, processes=total >= PROCESS_MIN) as unsealer:
        for row, result in unsealer.each(rows):
            author = str(row[0])
            if fold is None or fold.author != author:
                if fold is not None:
                    _check_record(path, fold, claimed.pop(fold.author, None))
                fold = folds[author] = _Fold(author)
            _step(path, fold, row, result, charter_keys.get(author), admission_key)
    if fold is not None:
        _check_record(path, fold, claimed.pop(fold.author, None))
    for author, row in claimed.items():
        raise CopyRefused(
            f"{path}: {author}'s record claims head #{row[1]} but the copy holds none of"
            f" {author}'s events: the copy was altered or damaged; use another copy"
        )
    orphan = conn.execute(
        "SELECT o.seq FROM outbox o WHERE o.id NOT IN"
        " (SELECT id FROM events WHERE author = ?) LIMIT 1",
        (slug,),
    ).fetchone()
    if orphan is not None:
        raise CopyRefused(
            f"{path}: its outbox holds an entry (seq {orphan[0]}) that is no event of"
            f" {slug}'s log: the copy was altered or damaged; use another copy"
        )
    _verify_forks(conn, path, net, folds)


def _verify_forks(
    conn: sqlite3.Connection, path: Path, net: bytes, folds: Mapping[str, _Fold]
) -> None:
    """Each fork on record is evidence of one (PROTOCOL.md §6.5): at a seq of its author's
    verified log (`folds`), another event than the log's, valid, signed by one of the keys
    of that log's key log (one that signed in it, or whose digest it committed); and each
    author's `forked_seq` is its first such seq (a record made up would silence a
    neighborhood for good)."""
    first: dict[str, int] = {}
    forks = conn.execute(
        "SELECT f.author, f.seq, f.held_id, f.other_id, f.other_wire, e.id FROM forks f"
        " LEFT JOIN events e ON e.author = f.author AND e.seq = f.seq"
    )
    for author, seq, held_id, other_id, other_wire, log_id in forks:
        why = _not_evidence(
            net, author, seq, bytes(held_id), bytes(other_id), bytes(other_wire),
            None if log_id is None else bytes(log_id), folds.get(author),
        )  # fmt: skip
        if why:
            raise CopyRefused(
                f"{path}: {author}'s fork on record at #{seq} is no evidence of one: {why};"
                " the copy was altered; use another copy"
            )
        first[author] = min(seq, first.get(author, seq))
    for author, forked in conn.execute("SELECT author, forked_seq FROM authors"):
        if forked != first.get(author):
            raise CopyRefused(
                f"{path}: {author}'s record (its forked seq {forked}) differs from the forks"
                f" on record ({first.get(author)}): the copy was altered; use another copy"
            )


def _not_evidence(
    net: bytes,
    author: str,
    seq: int,
    held_id: bytes,
    other_id: bytes,
    other_wire: bytes,
    log_id: bytes | None,
    fold: _Fold | None,
) -> str:
    """Why a fork row is not evidence of a fork ("" if it is)."""
    if log_id is None or fold is None:
        return "the log holds no event there"
    if held_id != log_id:
        return "its held event is not the log's"
    try:
        other = unseal_stored(other_wire, net=net)
    except InvalidEvent as exc:
        return f"its other event is invalid ({exc})"
    if (other.author, other.seq, other.id) != (author, seq, other_id) or other.id == log_id:
        return "its other event is not another event at that seq"
    if other.key not in fold.signers and key_digest(other.key) not in fold.commitments:
        return f"its other event is signed by a key that is not in {author}'s key log"
    return ""


def _step(
    path: Path,
    fold: _Fold,
    row: Sequence[Any],
    result: Envelope | InvalidEvent,
    charter_key: bytes | None,
    admission_key: bytes | None,
) -> None:
    """Take one stored event (`row`: author, seq, id, kind, at, key, wire) into `fold`."""
    author, seq = fold.author, row[1]
    where = f"{path}: {author}#{seq}"
    altered = "the copy was altered or damaged; use another copy"
    if seq != fold.seq + 1:
        raise CopyRefused(
            f"{where} follows #{fold.seq}: the log misses seq {fold.seq + 1}; {altered}"
        )
    if isinstance(result, InvalidEvent):
        kind = "another federation's" if result.code == "wrong_network" else "an invalid"
        raise CopyRefused(f"{where} is {kind} event ({result.code}: {result.message}); {altered}")
    env = result
    stored = (author, seq, bytes(row[2]), row[3], row[4], bytes(row[5]))
    if (env.author, env.seq, env.id, env.kind, env.at, env.key) != stored:
        raise CopyRefused(f"{where}: the row does not describe the event it stores; {altered}")
    if env.prev != fold.prev:
        raise CopyRefused(f"{where} does not link to #{fold.seq} (its prev differs); {altered}")
    try:
        fold.keys = (
            found_key_state(env, charter_key, admission_key)
            if fold.keys is None
            else check_key(fold.keys, env)
        )
    except InvalidEvent as exc:
        raise CopyRefused(f"{where} is refused by its key log ({exc}); {altered}") from None
    fold.seq, fold.prev = seq, env.id
    fold.signers.add(env.key)
    fold.commitments.add(fold.keys.next_key_digest)


def _check_record(path: Path, fold: _Fold, row: Sequence[Any] | None) -> None:
    """The copy's `authors` row of `fold.author` must say what its verified log gives."""
    author = fold.author
    if row is None:
        raise CopyRefused(
            f"{path}: {author}'s log (to #{fold.seq}) has no record in authors: the copy"
            " was altered or damaged; use another copy"
        )
    assert fold.keys is not None and fold.prev is not None
    given = {
        "head seq": fold.seq,
        "head id": fold.prev,
        "current key": fold.keys.current_key,
        "next key digest": fold.keys.next_key_digest,
        "key since": fold.keys.since_seq,
        "retired seq": fold.keys.retired_seq,
    }
    held = [row[1], *(bytes(v) for v in row[2:5]), row[5], row[6]]
    for (name, value), record in zip(given.items(), held, strict=True):
        if value != record:
            raise CopyRefused(
                f"{path}: {author}'s record (its {name}) differs from what its log gives"
                f" up to #{fold.seq}: the copy was altered; use another copy"
            )


class _Unsealer:
    """`unseal_stored` for many wires, in this process or over the cores (worker processes:
    each sends back only its verdict, and the accepted bytes are decoded here without being
    verified again, as node/engine/verify.py does)."""

    def __init__(self, net: bytes, *, processes: bool) -> None:
        self.net = net
        workers = os.cpu_count() or 1
        self.pool = ProcessPoolExecutor(workers) if processes and workers > 1 else None
        self.chunk = max(1, VERIFY_BLOCK // (2 * workers))

    def __enter__(self) -> _Unsealer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def each(self, rows: sqlite3.Cursor) -> Iterator[tuple[Sequence[Any], Envelope | InvalidEvent]]:
        """Each row of `rows` (the wire last) with its event unsealed, or its refusal. Read
        `VERIFY_BLOCK` rows at a time; with worker processes, the next block is verified
        while the caller goes through this one."""
        ahead: tuple[list[Any], list[Future[list[InvalidEvent | None]]]] | None = None
        while True:
            block = rows.fetchmany(VERIFY_BLOCK)
            started = self._start(block)
            if ahead is not None:
                yield from zip(ahead[0], self._finish(*ahead), strict=True)
            if not block:
                return
            ahead = block, started

    def _start(self, block: list[Any]) -> list[Future[list[InvalidEvent | None]]]:
        if self.pool is None or not block:
            return []
        wires = [bytes(r[-1]) for r in block]
        return [
            self.pool.submit(_verdicts, wires[i : i + self.chunk], self.net)
            for i in range(0, len(wires), self.chunk)
        ]

    def _finish(
        self, block: list[Any], started: list[Future[list[InvalidEvent | None]]]
    ) -> list[Envelope | InvalidEvent]:
        wires = [bytes(r[-1]) for r in block]
        if self.pool is None:
            return _unseal_all(wires, self.net)
        verdicts = [v for job in started for v in job.result()]
        return [
            decode_unsealed(w) if v is None else v for w, v in zip(wires, verdicts, strict=True)
        ]


def _unseal_all(wires: list[bytes], net: bytes) -> list[Envelope | InvalidEvent]:
    out: list[Envelope | InvalidEvent] = []
    for wire in wires:
        try:
            out.append(unseal_stored(wire, net=net))
        except InvalidEvent as exc:
            out.append(exc)
    return out


def _verdicts(wires: list[bytes], net: bytes) -> list[InvalidEvent | None]:
    """Run in a worker process: each wire's refusal by `unseal_stored`, or None."""
    return [r if isinstance(r, InvalidEvent) else None for r in _unseal_all(wires, net)]
