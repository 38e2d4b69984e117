"""Every author's chain as this node holds it: verify, classify, buffer, store (PROTOCOL.md §4-6).

`Chains.receive` takes wire bytes from anywhere (the bus, a sync reply, a relay): it unseals
them over the cores (`Verifier`: threads for a few events, worker processes for many), then,
under one lock and in the order the receives were called, checks each event against its
author's key log and chain, buffers what arrives ahead of a gap, keeps fork evidence, and
commits everything it accepted in one transaction. A caller may verify its next batch while
the one before commits. `Chains.append` seals the node's own next event and stores it with
its outbox entry in one transaction. Nothing here raises for bad input: every refusal is
counted by code and logged with the event id.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import anyio
import msgspec
import nacl.signing

from coopnet.node.engine.store import AuthorRow, Batch, ForkRow, RejectedRow, Store, now_ms
from coopnet.node.engine.verify import Verifier
from coopnet.protocol import (
    Body,
    Envelope,
    Head,
    InvalidEvent,
    KeyState,
    Verdict,
    check_clock,
    check_key,
    classify,
    found_key_state,
    seal_envelope,
    unseal,
)
from coopnet.protocol import errors as E

log = logging.getLogger("coopnet.chains")

MAX_BUFFERED_PER_AUTHOR = 50_000


def subject_of(author: str, kind: str) -> str:
    """The bus subject of an event: `coop.<author>.<kind>` (DESIGN.md, "The bus")."""
    return f"coop.{author}.{kind}"


class AuthorState:
    """What this node holds of one author: chain head, key log, fork status."""

    __slots__ = ("author", "forked_seq", "head", "keys")

    def __init__(self, author: str) -> None:
        self.author = author
        self.head: Head | None = None
        self.keys: KeyState | None = None
        self.forked_seq: int | None = None

    def row(self) -> AuthorRow:
        assert self.head is not None and self.keys is not None
        return AuthorRow(
            author=self.author,
            head_seq=self.head.seq,
            head_id=self.head.id,
            current_key=self.keys.current_key,
            next_key_digest=self.keys.next_key_digest,
            key_since=self.keys.since_seq,
            forked_seq=self.forked_seq,
            retired_seq=self.keys.retired_seq,
        )


class Report(msgspec.Struct, kw_only=True):
    """What one `receive` did."""

    accepted: int = 0
    duplicates: int = 0
    buffered: int = 0
    stale: int = 0
    rejected: dict[str, int] = msgspec.field(default_factory=dict)
    gaps: list[tuple[str, int, int]] = msgspec.field(default_factory=list)
    forks: list[tuple[str, int]] = msgspec.field(default_factory=list)


class Chains:
    def __init__(
        self,
        store: Store,
        net: bytes,
        *,
        clock: Callable[[], int] = now_ms,
        on_accepted: Callable[[Sequence[Envelope]], None] | None = None,
        on_appended: Callable[[Sequence[tuple[Envelope, str]]], None] | None = None,
        charter_keys: Mapping[str, bytes] | None = None,
    ) -> None:
        self.store = store
        # The founders' keys from the federation's charter (PROTOCOL.md §5.4, §16.2).
        self.charter_keys: Mapping[str, bytes] = charter_keys or {}
        self.net = net
        self.clock = clock
        self.on_accepted = on_accepted
        # Own events just committed with their outbox entries (event, subject): the publisher.
        self.on_appended = on_appended
        self.states: dict[str, AuthorState] = {}
        self.buffer: dict[str, dict[int, Envelope]] = {}
        self.rejected_since_start: Counter[str] = Counter()
        self.lock = anyio.Lock()
        self.verifier = Verifier(net)
        self._log_budget = LogBudget()
        self._evidence_budget = LogBudget(quiet=True)  # rows in rejected_events
        self._own_queue: list[_OwnWrite] = []
        self.recent = RecentIds()
        # Receives commit in the order they were called, whatever order their verification
        # finishes in: a caller may verify the next batch while this one commits.
        self._turn: anyio.Event | None = None

    async def load(self) -> None:
        """Load every author's head, key state and fork status from the store."""
        for row in (await self.store.authors()).values():
            st = AuthorState(row.author)
            st.head = Head(row.head_seq, row.head_id)
            st.keys = KeyState(
                author=row.author,
                current_key=row.current_key,
                next_key_digest=row.next_key_digest,
                since_seq=row.key_since,
                retired_seq=row.retired_seq,
            )
            st.forked_seq = row.forked_seq
            self.states[row.author] = st

    def head_of(self, author: str) -> Head | None:
        st = self.states.get(author)
        return st.head if st else None

    def missing(self) -> list[tuple[str, int, int]]:
        """Every gap now open: (author, first missing seq, last missing seq)."""
        gaps = []
        for author, buffered in list(self.buffer.items()):
            if not buffered:  # being processed right now
                continue
            head = self.head_of(author)
            gaps.append((author, (head.seq if head else 0) + 1, min(buffered) - 1))
        return gaps

    async def unseal_many(self, wires: Sequence[bytes]) -> list[Envelope | InvalidEvent]:
        """Unseal over the cores (threads or worker processes), results in input order."""
        return await self.verifier.unseal_many(wires)

    # -- receiving ----------------------------------------------------------------------------

    async def receive(
        self, wires: Sequence[bytes], *, source: str, meta: dict[str, str] | None = None
    ) -> Report:
        """Verify, check and store a batch of events from `source`. Never raises for input."""
        # The very bytes of an event stored a moment ago (the stream's echo of our own, a
        # redelivery) are a duplicate: recognizing them skips the Ed25519 verify, the costly
        # part. Anything else, a tampered copy of a held event included, is verified.
        before, mine = self._turn, anyio.Event()
        self._turn = mine
        try:
            known = [self.recent.holds(wire) for wire in wires]
            fresh = [w for w, k in zip(wires, known, strict=True) if not k]
            results = await self.unseal_many(fresh)
            if before is not None:
                await before.wait()
            return await self._commit_received(
                len(wires) - len(fresh), fresh, results, source, meta
            )
        finally:
            mine.set()

    async def _commit_received(
        self,
        repeats: int,
        fresh: list[bytes],
        results: list[Envelope | InvalidEvent],
        source: str,
        meta: dict[str, str] | None,
    ) -> Report:
        async with self.lock:
            report = Report(duplicates=repeats)
            batch = Batch(meta=dict(meta or {}))
            now = self.clock()
            by_author: dict[str, list[Envelope]] = {}
            for wire, item in zip(fresh, results, strict=True):
                if isinstance(item, InvalidEvent):
                    self._reject(report, batch, item, None, source, wire=wire)
                    continue
                try:
                    check_clock(item.at, now)
                except InvalidEvent as exc:
                    self._reject(report, batch, exc, item, source)
                    continue
                by_author.setdefault(item.author, []).append(item)
            for author, envs in by_author.items():
                await self._process(author, envs, report, batch, source)
            await self.store.commit(batch, received=True)
            self.recent.add(e.wire for e in batch.events)
        if batch.events and self.on_accepted is not None:
            self.on_accepted(batch.events)
        return report

    async def _process(
        self,
        author: str,
        incoming: list[Envelope],
        report: Report,
        batch: Batch,
        source: str,
    ) -> None:
        st = self.states.get(author)
        if st is None:
            st = self.states[author] = AuthorState(author)
        buffered = self.buffer.setdefault(author, {})
        candidates = dict(buffered)
        buffered.clear()
        # A second, different event at a seq already among the candidates is a fork in the
        # making: it is judged after the first has been placed in the chain.
        rivals: list[Envelope] = []
        for e in incoming:
            if e.seq in candidates and candidates[e.seq].id != e.id:
                rivals.append(e)
            else:
                candidates[e.seq] = e
        held = await self._held_ids(author, st, candidates)
        gap_reported = advanced = False
        ordered = [candidates[seq] for seq in sorted(candidates)]
        for env in [*ordered, *rivals]:
            seq = env.seq
            top = st.head.seq if st.head else 0
            if st.forked_seq is not None:
                if seq <= top and held.get(seq) == env.id:
                    report.duplicates += 1
                else:
                    self._reject(
                        report,
                        batch,
                        E.Fork(f"{author} equivocated at seq {st.forked_seq}: nothing newer"),
                        env,
                        source,
                        quiet=True,
                    )
                continue
            c = classify(st.head, env.seq, env.id, env.prev, held.get)
            if c.verdict is Verdict.NEXT:
                try:
                    keys = (
                        found_key_state(env, self.charter_keys.get(env.author))
                        if env.seq == 1
                        else check_key(_k(st), env)
                    )
                except InvalidEvent as exc:
                    self._reject(report, batch, exc, env, source)
                    continue
                st.head, st.keys = Head(env.seq, env.id), keys
                held[env.seq] = env.id
                batch.events.append(env)
                advanced = True
                report.accepted += 1
            elif c.verdict is Verdict.DUPLICATE:
                report.duplicates += 1
            elif c.verdict is Verdict.GAP:
                if len(buffered) < MAX_BUFFERED_PER_AUTHOR and env.seq not in buffered:
                    buffered[env.seq] = env
                    report.buffered += 1
                if not gap_reported:
                    report.gaps.append((author, c.missing[0], c.missing[1]))
                    gap_reported = True
            elif c.verdict is Verdict.STALE:
                report.stale += 1
            else:
                await self._fork(st, env, c.fork_seq, c.held_id, report, batch, source)
        if advanced:
            batch.authors[author] = st.row()
        if not buffered:
            del self.buffer[author]

    async def _held_ids(
        self, author: str, st: AuthorState, candidates: dict[int, Envelope]
    ) -> dict[int, bytes]:
        top = st.head.seq if st.head else 0
        wanted = [s for s in candidates if s < top]
        held = await self.store.ids_at(author, wanted) if wanted else {}
        if st.head is not None:
            held[st.head.seq] = st.head.id
        return held

    async def _fork(
        self,
        st: AuthorState,
        env: Envelope,
        fork_seq: int,
        held_id: bytes,
        report: Report,
        batch: Batch,
        source: str,
    ) -> None:
        held = await self.store.event_at(st.author, fork_seq)
        held_wire = held[1] if held else _wire_in(batch, st.author, fork_seq)
        # Only the author's own key can equivocate: another key is a forgery, not a fork.
        expected = _key_at(held_wire, self.net) if env.seq == fork_seq else _k(st).current_key
        if expected is not None and env.key != expected:
            try:
                check_key(_k(st), env)
            except InvalidEvent as exc:
                self._reject(report, batch, exc, env, source)
                return
        st.forked_seq = fork_seq if st.forked_seq is None else min(st.forked_seq, fork_seq)
        batch.authors[st.author] = st.row()
        batch.forks.append(
            ForkRow(
                author=st.author,
                seq=fork_seq,
                held_id=held_id,
                held_wire=held_wire,
                other_id=env.id,
                other_wire=env.wire,
                detected_at=self.clock(),
            )
        )
        report.forks.append((st.author, fork_seq))
        log.error(
            "FORK: %s signed two histories at seq %d (held %s…, received %s… from %s); "
            "nothing newer from %s is accepted",
            st.author,
            fork_seq,
            held_id.hex()[:16],
            env.id.hex()[:16],
            source,
            st.author,
        )
        self._reject(report, batch, E.Fork("equivocation"), env, source, quiet=True)

    def _reject(
        self,
        report: Report,
        batch: Batch,
        exc: InvalidEvent,
        env: Envelope | None,
        source: str,
        *,
        quiet: bool = False,
        wire: bytes = b"",
    ) -> None:
        report.rejected[exc.code] = report.rejected.get(exc.code, 0) + 1
        batch.rejections[exc.code] = batch.rejections.get(exc.code, 0) + 1
        self.rejected_since_start[exc.code] += 1
        if self._evidence_budget.allow(exc.code):
            batch.rejected.append(
                RejectedRow(
                    evidence=env.id if env else hashlib.sha256(wire).digest(),
                    author=env.author if env else "",
                    seq=env.seq if env else 0,
                    kind=env.kind if env else "",
                    code=exc.code,
                    reason=exc.message[:500],
                    source=source,
                    at=self.clock(),
                )
            )
        if not quiet and self._log_budget.allow(exc.code):
            what = f"{env.author}#{env.seq} {env.id.hex()[:16]}…" if env else "event"
            log.warning("rejected %s from %s: %s", what, source, exc)

    # -- the node's own events ----------------------------------------------------------------

    async def append(
        self, author: str, signing_key: nacl.signing.SigningKey, body: Body
    ) -> Envelope:
        """Seal `body` as the node's next event; store it and its outbox entry, synced.

        Group commit: appends that arrive while a commit is running wait for it, and the
        next one to take the lock seals and commits all of them in one synced transaction.
        Each caller still returns only once its own event is on disk.
        """
        mine = _OwnWrite(author, signing_key, body)
        self._own_queue.append(mine)
        async with self.lock:
            if not mine.done:
                waiting, self._own_queue = self._own_queue, []
                await self._commit_own(waiting)
        if mine.error is not None:
            raise mine.error
        assert mine.env is not None
        return mine.env

    async def _commit_own(self, writes: list[_OwnWrite]) -> None:
        batch = Batch()
        heads: dict[str, AuthorState] = {}
        for w in writes:
            st = heads.get(w.author) or self.states.get(w.author)
            try:
                if st is not None and st.forked_seq is not None:
                    raise E.Fork(f"{w.author} has a fork on record at seq {st.forked_seq}")
                head = st.head if st else None
                env = seal_envelope(
                    signing_key=w.signing_key,
                    net=self.net,
                    author=w.author,
                    seq=head.seq + 1 if head else 1,
                    prev=head.id if head else None,
                    at=self.clock(),
                    body=w.body,
                )
                keys = (
                    found_key_state(env, self.charter_keys.get(env.author))
                    if env.seq == 1
                    else check_key(_k(st), env)
                )
            except InvalidEvent as exc:
                w.error, w.done = exc, True
                continue
            new = AuthorState(w.author)
            new.head, new.keys = Head(env.seq, env.id), keys
            heads[w.author] = new
            batch.events.append(env)
            batch.outbox.append((env, subject_of(w.author, env.kind)))
            batch.authors[w.author] = new.row()
            w.env = env
        try:
            if batch.events:
                await self.store.commit(batch)
        except Exception as exc:  # nothing of this batch is stored: every writer hears why
            for w in writes:
                if not w.done:
                    w.env, w.error, w.done = None, exc, True
            return
        self.states.update(heads)
        self.recent.add(e.wire for e in batch.events)
        for w in writes:
            w.done = True
        if batch.outbox and self.on_appended is not None:
            self.on_appended(batch.outbox)
        if batch.events and self.on_accepted is not None:
            self.on_accepted(batch.events)


class _OwnWrite:
    """One caller's own event waiting to be sealed and committed (see `Chains.append`)."""

    __slots__ = ("author", "body", "done", "env", "error", "signing_key")

    def __init__(self, author: str, signing_key: nacl.signing.SigningKey, body: Body) -> None:
        self.author = author
        self.signing_key = signing_key
        self.body = body
        self.done = False
        self.env: Envelope | None = None
        self.error: Exception | None = None


class RecentIds:
    """Digests of the exact bytes of the events this node stored last (own and received),
    to recognize their echoes and redeliveries before verifying them again. Bounded: the
    oldest are forgotten (then a repeat is verified and found a duplicate in the store)."""

    def __init__(self, capacity: int = 65_536) -> None:
        self.capacity = capacity
        self._digests: dict[bytes, None] = {}

    def add(self, wires: Iterable[bytes]) -> None:
        for wire in wires:
            self._digests[hashlib.blake2b(wire, digest_size=16).digest()] = None
        excess = len(self._digests) - self.capacity
        if excess > 0:
            for old in list(itertools.islice(self._digests, excess)):
                del self._digests[old]

    def holds(self, wire: bytes) -> bool:
        return hashlib.blake2b(wire, digest_size=16).digest() in self._digests


class LogBudget:
    """At most `per_window` log lines per code per window: a flood of bad events is counted
    in full (status, rejections table) but cannot flood the log."""

    def __init__(
        self, per_window: int = 20, window_s: float = 60.0, *, quiet: bool = False
    ) -> None:
        self.per_window = per_window
        self.window_s = window_s
        self.quiet = quiet
        self._spent: dict[str, tuple[float, int, int]] = {}  # code: (start, logged, dropped)

    def allow(self, code: str) -> bool:
        now = time.monotonic()
        start, logged, dropped = self._spent.get(code, (now, 0, 0))
        if now - start >= self.window_s:
            if dropped and not self.quiet:
                log.warning("%d more %s rejections were not logged (see status)", dropped, code)
            start, logged, dropped = now, 0, 0
        if logged < self.per_window:
            self._spent[code] = (start, logged + 1, dropped)
            return True
        self._spent[code] = (start, logged, dropped + 1)
        return False


def _k(st: AuthorState | None) -> KeyState:
    if st is None or st.keys is None:
        raise E.UnknownAuthor("author has no founded log")
    return st.keys


def _wire_in(batch: Batch, author: str, seq: int) -> bytes | None:
    for e in batch.events:
        if e.author == author and e.seq == seq:
            return e.wire
    return None


def _key_at(wire: bytes | None, net: bytes) -> bytes | None:
    if wire is None:
        return None
    try:
        return unseal(wire, net=net).key
    except InvalidEvent:
        return None
