"""Every author's chain as this node holds it: verify, classify, buffer, store (PROTOCOL.md §4-6).

`Chains.receive` takes wire bytes from anywhere (the bus, a sync reply, a relay): it unseals
them over the cores (`Verifier`: threads for a few events, worker processes for many), then,
under one lock and in the order the receives were called, checks each event against its
author's key log and chain, buffers what arrives ahead of a gap, keeps fork evidence, and
commits everything it accepted in one transaction. A caller may verify its next batch while
the one before commits. `Chains.append` seals the node's own next event and stores it with
its outbox entry in one transaction. Nothing here raises for bad input: every refusal is
counted by code, once per distinct event, and logged with the event id.

The engine's memory (heads, key states, fork status, the gap buffer) changes only after the
commit that records the same change: a receive works on copies (`_Step`) and installs them
once `Store.commit` has returned, and an own write likewise. A commit that fails leaves the
memory as it was, so the same events are judged afresh when they come again.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence

import anyio
import msgspec
import nacl.signing

from coopnet.node.engine.evidence import LogBudget, RecentIds, claimed
from coopnet.node.engine.gaps import (
    MAX_BUFFERED_BYTES,
    MAX_BUFFERED_BYTES_PER_AUTHOR,
    GapBuffer,
    Holding,
    UnverifiableGap,
    signed_by_known_key,
    unverifiable,
)
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
    key_digest,
    seal_envelope,
    unseal_stored,
)
from coopnet.protocol import errors as E

log = logging.getLogger("coopnet.chains")

REFUSALS_REMEMBERED = 65_536
"""Distinct refusals (evidence and code) remembered so that a re-delivery is not counted
again; the newest are also read back from `rejected_events` at start."""

UNKNOWN_AUTHORS_ASKED = 8
"""Ranges of authors this node does not know asked of peers per round of the gap filler."""

__all__ = ["AuthorState", "Chains", "LogBudget", "RecentIds", "Report", "subject_of"]


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

    def copy(self) -> AuthorState:
        """A copy to change while a receive is checked (Head and KeyState are immutable)."""
        other = AuthorState(self.author)
        other.head, other.keys, other.forked_seq = self.head, self.keys, self.forked_seq
        return other

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
    """What one `receive` did (`rejected` counts every refusal of this call, repeats too)."""

    accepted: int = 0
    duplicates: int = 0
    buffered: int = 0
    stale: int = 0
    rejected: dict[str, int] = msgspec.field(default_factory=dict)
    gaps: list[tuple[str, int, int]] = msgspec.field(default_factory=list)
    forks: list[tuple[str, int]] = msgspec.field(default_factory=list)


class _Step:
    """One receive under the lock: its report, the batch it commits, and every change to the
    engine's memory, installed only once the batch is committed (`Chains._install`)."""

    def __init__(self, report: Report, batch: Batch, source: str, gaps: GapBuffer) -> None:
        self.report = report
        self.batch = batch
        self.source = source
        self.states: dict[str, AuthorState] = {}  # copies of the authors this receive touched
        self.holding = Holding(gaps)
        self.refused: set[bytes] = set()  # evidence + code of refusals counted for the first time
        self.rejected: Counter[str] = Counter()


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
        admission_key: bytes | None = None,
        buffer_bytes_per_author: int = MAX_BUFFERED_BYTES_PER_AUTHOR,
        buffer_bytes: int = MAX_BUFFERED_BYTES,
    ) -> None:
        self.store = store
        # The founders' keys from the federation's charter (PROTOCOL.md §5.4, §16.2).
        self.charter_keys: Mapping[str, bytes] = charter_keys or {}
        # The charter's admission key: other logs must be founded with its ticket (§16.6).
        self.admission_key = admission_key
        self.net = net
        self.clock = clock
        self.on_accepted = on_accepted
        # Own events just committed with their outbox entries (event, subject): the publisher.
        self.on_appended = on_appended
        self.states: dict[str, AuthorState] = {}
        self.gaps = GapBuffer(per_author_bytes=buffer_bytes_per_author, total_bytes=buffer_bytes)
        # Distinct refusals since start, by code (a re-delivered event is counted once).
        self.rejected_since_start: Counter[str] = Counter()
        self.lock = anyio.Lock()
        self.verifier = Verifier(net)
        self._log_budget = LogBudget()
        self._evidence_budget = LogBudget(quiet=True)  # rows in rejected_events
        # Refusals already counted (evidence + code), so that a re-delivery is not counted
        # again: the `rejections` table counts distinct events (PROTOCOL.md §9).
        self._refused = RecentIds(capacity=REFUSALS_REMEMBERED)
        self._own_queue: list[_OwnWrite] = []
        self.recent = RecentIds()
        # Receives commit in the order they were called, whatever order their verification
        # finishes in: a caller may verify the next batch while this one commits.
        self._turn: anyio.Event | None = None

    async def load(self) -> None:
        """Load every author's head, key state and fork status from the store, and the
        refusals already counted."""
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
        rows = await self.store.all(
            "SELECT evidence, code FROM rejected_events ORDER BY at DESC LIMIT ?",
            (REFUSALS_REMEMBERED,),
        )
        self._refused.add(bytes(r[0]) + str(r[1]).encode() for r in reversed(rows))

    @property
    def buffer(self) -> Mapping[str, Mapping[int, Envelope]]:
        """The events held beyond a gap, by author and seq (PROTOCOL.md §6.4)."""
        return self.gaps.events

    def head_of(self, author: str) -> Head | None:
        st = self.states.get(author)
        return st.head if st else None

    def missing(self) -> list[tuple[str, int, int]]:
        """Every gap now open: (author, first missing seq, last missing seq).

        Only events signed by a key of their author's known key log are held beyond a gap
        (PROTOCOL.md §6.4), so a gap here always follows events this node verified: forged
        events claiming a seq far ahead open none (the audit's `unrepaired_gap`).
        """
        gaps = []
        for author, held in sorted(self.gaps.events.items()):
            head = self.head_of(author)
            gaps.append((author, (head.seq if head else 0) + 1, min(held) - 1))
        return gaps

    def gaps_to_fetch(self) -> list[tuple[str, int, int]]:
        """What the gap filler asks peers for, (author, first, last): every open gap
        (`missing`) and, once each, the range up to an event that was not held
        (unverifiable, or beyond a cap). Authors this node knows (it holds their log, or
        the charter names them) come first; of the others, whose slugs anyone can make up,
        at most `UNKNOWN_AUTHORS_ASKED` a call, the rest forgotten (anti-entropy still
        finds an author that exists), so forged events cannot keep the filler busy."""
        wanted = {author: (first, last) for author, first, last in self.missing()}
        strangers: list[tuple[str, int, int]] = []
        for author, seq in sorted(self.gaps.take_hints().items()):
            head = self.head_of(author)
            first = (head.seq if head else 0) + 1
            if seq < first:
                continue  # filled meanwhile
            if head is None and author not in self.charter_keys:
                strangers.append((author, first, seq))
                continue
            low, high = wanted.get(author, (first, seq))
            wanted[author] = (low, max(high, seq))
        known = [(author, first, last) for author, (first, last) in sorted(wanted.items())]
        return known + strangers[:UNKNOWN_AUTHORS_ASKED]

    async def unseal_many(self, wires: Sequence[bytes]) -> list[Envelope | InvalidEvent]:
        """Unseal over the cores (threads or worker processes), results in input order."""
        return await self.verifier.unseal_many(wires)

    # -- receiving ----------------------------------------------------------------------------

    async def receive(
        self, wires: Sequence[bytes], *, source: str, meta: dict[str, str] | None = None
    ) -> Report:
        """Verify, check and store a batch of events from `source`. Never raises for input.

        Raises what `Store.commit` raises (StorageFailure) when the batch cannot be stored;
        then the engine's memory (heads, key states, fork status, the gap buffer, the
        refusals counted) is exactly as it was before the call.
        """
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
            batch = Batch(meta=dict(meta or {}))
            step = _Step(Report(duplicates=repeats), batch, source, self.gaps)
            now = self.clock()
            by_author: dict[str, list[Envelope]] = {}
            for wire, item in zip(fresh, results, strict=True):
                if isinstance(item, InvalidEvent):
                    self._reject(step, item, None, wire=wire)
                    continue
                try:
                    check_clock(item.at, now)
                except InvalidEvent as exc:
                    self._reject(step, exc, item)
                    continue
                by_author.setdefault(item.author, []).append(item)
            for author, envs in by_author.items():
                await self._process(author, envs, step)
            # The log invariant (docs/ARCHITECTURE.md): memory follows the commit, never
            # leads it. If the commit raises, nothing below runs and the same events are
            # judged afresh when they come again.
            await self.store.commit(step.batch, received=True)
            self._install(step)
        if step.batch.events and self.on_accepted is not None:
            self.on_accepted(step.batch.events)
        return step.report

    def _install(self, step: _Step) -> None:
        """Make a committed receive's changes the engine's memory."""
        for author, st in step.states.items():
            if st.head is not None:  # an author of whom nothing is stored stays unknown
                self.states[author] = st
        self.gaps.install(step.holding)
        self._refused.add(step.refused)
        self.rejected_since_start.update(step.rejected)
        self.recent.add(e.wire for e in step.batch.events)

    async def _process(self, author: str, incoming: list[Envelope], step: _Step) -> None:
        known = self.states.get(author)
        st = step.states[author] = known.copy() if known else AuthorState(author)
        report, batch = step.report, step.batch
        # What was held beyond a gap is judged again with what came: some of it may now
        # follow the head. The buffer is planned afresh (`Holding`), installed after commit.
        candidates = dict(self.gaps.of(author))
        step.holding.start(author)
        # A second, different event at a seq already among the candidates is a rival: if
        # the first is refused (a forgery at the next seq, say), the rival is judged in its
        # place at once, so the events after it are not left behind a seq the head could
        # have taken; if the first took the seq, the rival is judged after all the others,
        # as a fork in the making (PROTOCOL.md §6.5).
        rivals_at: dict[int, list[Envelope]] = {}
        for e in incoming:
            if e.seq in candidates and candidates[e.seq].id != e.id:
                rivals_at.setdefault(e.seq, []).append(e)
            else:
                candidates[e.seq] = e
        held = await self._held_ids(author, st, candidates)
        gap_reported = advanced = False

        async def judge(env: Envelope) -> None:
            nonlocal gap_reported, advanced
            seq = env.seq
            top = st.head.seq if st.head else 0
            if st.forked_seq is not None:
                if seq <= top and held.get(seq) == env.id:
                    report.duplicates += 1
                else:
                    self._reject(
                        step,
                        E.Fork(f"{author} equivocated at seq {st.forked_seq}: nothing newer"),
                        env,
                        quiet=True,
                    )
                return
            c = classify(st.head, env.seq, env.id, env.prev, held.get)
            if c.verdict is Verdict.NEXT:
                try:
                    keys = self.found(env) if env.seq == 1 else check_key(_k(st), env)
                except InvalidEvent as exc:
                    self._reject(step, exc, env)
                    return
                st.head, st.keys = Head(env.seq, env.id), keys
                held[env.seq] = env.id
                batch.events.append(env)
                advanced = True
                report.accepted += 1
            elif c.verdict is Verdict.DUPLICATE:
                report.duplicates += 1
            elif c.verdict is Verdict.GAP:
                self._hold(st, env, step)
                if not gap_reported:
                    report.gaps.append((author, c.missing[0], c.missing[1]))
                    gap_reported = True
            elif c.verdict is Verdict.STALE:
                report.stale += 1
            else:
                await self._fork(st, env, c.fork_seq, c.held_id, step)

        later: list[Envelope] = []
        for seq in sorted(candidates):
            await judge(candidates[seq])
            for rival in rivals_at.get(seq, ()):
                if (st.head.seq if st.head else 0) >= seq:
                    later.append(rival)  # the seq is taken: judged as a fork, after the rest
                else:
                    await judge(rival)
        for rival in later:
            await judge(rival)
        if advanced:
            batch.authors[author] = st.row()

    def found(self, env: Envelope) -> KeyState:
        """The key state `env` (seq 1) founds, under this federation's charter: a founder's
        key (§5.4), or a key the operator's ticket admits (§16.6). Raises InvalidEvent."""
        return found_key_state(env, self.charter_keys.get(env.author), self.admission_key)

    def _hold(self, st: AuthorState, env: Envelope, step: _Step) -> None:
        """Hold an event beyond a gap, if its key is in the author's known key log and the
        caps allow (PROTOCOL.md §6.4); either way its range is asked of peers."""
        charter_key = self.charter_keys.get(st.author)
        if not signed_by_known_key(st.keys, charter_key, env):
            top = st.head.seq if st.head else 0
            text = unverifiable(st.keys, charter_key, env, top)
            self._reject(step, UnverifiableGap(text), env)
            step.holding.hint(st.author, env.seq)
        elif step.holding.hold(env):
            step.report.buffered += 1

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
        self, st: AuthorState, env: Envelope, fork_seq: int, held_id: bytes, step: _Step
    ) -> None:
        batch = step.batch
        held = await self.store.event_at(st.author, fork_seq)
        held_wire = held[1] if held else _wire_in(batch, st.author, fork_seq)
        # Only the author's own key can equivocate: another key is a forgery, not a fork
        # (PROTOCOL.md §6.5 step 3).
        try:
            keys = _k(st)
        except InvalidEvent as exc:  # unreachable: a held head comes with its key state
            self._reject(step, exc, env)
            return
        expected = _key_at(held_wire, self.net) if env.seq == fork_seq else keys.current_key
        if expected is not None and env.key != expected:
            if env.key != keys.current_key and key_digest(env.key) != keys.next_key_digest:
                self._reject(step, _forgery(st, env, expected, keys), env)
                return
            try:
                check_key(keys, env)
            except InvalidEvent as exc:
                self._reject(step, exc, env)
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
        step.report.forks.append((st.author, fork_seq))
        log.error(
            "FORK: %s signed two histories at seq %d (held %s…, received %s… from %s); "
            "nothing newer from %s is accepted",
            st.author,
            fork_seq,
            held_id.hex()[:16],
            env.id.hex()[:16],
            step.source,
            st.author,
        )
        text = (
            f"{st.author} signed two events at seq {fork_seq} (held {held_id.hex()[:16]}…, "
            f"this one {env.id.hex()[:16]}…): equivocation"
        )
        self._reject(step, E.Fork(text), env, quiet=True)

    def _reject(
        self,
        step: _Step,
        exc: InvalidEvent,
        env: Envelope | None,
        *,
        quiet: bool = False,
        wire: bytes = b"",
    ) -> None:
        """Refuse one event: counted in the report always, in the store and the status once
        per distinct event (its id, or SHA-256 of bytes that could not be unsealed)."""
        report, batch = step.report, step.batch
        report.rejected[exc.code] = report.rejected.get(exc.code, 0) + 1
        if env is not None:
            evidence, author, seq, kind = env.id, env.author, env.seq, env.kind
        else:
            evidence = hashlib.sha256(wire).digest()
            author, seq, kind = claimed(wire)
        counted = evidence + exc.code.encode()
        if counted in step.refused or self._refused.holds(counted):
            return  # a re-delivery of an event already refused: counted and logged once
        step.refused.add(counted)
        step.rejected[exc.code] += 1
        batch.rejections[exc.code] = batch.rejections.get(exc.code, 0) + 1
        if self._evidence_budget.allow(exc.code):
            batch.rejected.append(
                RejectedRow(
                    evidence=evidence,
                    author=author,
                    seq=seq,
                    kind=kind,
                    code=exc.code,
                    reason=exc.message[:500],
                    source=step.source,
                    at=self.clock(),
                )
            )
        if not quiet and self._log_budget.allow(exc.code):
            if env is not None:
                what = f"{author}#{seq} {evidence.hex()[:16]}…"
            else:
                what = f"event claiming {author}#{seq}" if author else "event"
            log.warning("rejected %s from %s: %s", what, step.source, exc)

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
                keys = self.found(env) if env.seq == 1 else check_key(_k(st), env)
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


def _k(st: AuthorState | None) -> KeyState:
    if st is None or st.keys is None:
        who = st.author if st is not None else "the author"
        raise E.UnknownAuthor(f"{who}: no node.founded of this author is held")
    return st.keys


def _forgery(st: AuthorState, env: Envelope, expected: bytes, keys: KeyState) -> InvalidEvent:
    """The refusal of an event at a seq already held, signed by a key that is not the
    author's: a forgery, not a fork (PROTOCOL.md §6.2). Says whose key it is not."""
    there = "founded its log" if env.seq == 1 else f"signed its seq {env.seq}"
    return E.WrongKey(
        f"{st.author} seq {env.seq}: signed by {env.key.hex()[:16]}…, which is not "
        f"{st.author}'s key ({st.author} {there} with {expected.hex()[:16]}…, and signs with "
        f"{keys.current_key.hex()[:16]}… now): a forgery, not a fork"
    )


def _wire_in(batch: Batch, author: str, seq: int) -> bytes | None:
    for e in batch.events:
        if e.author == author and e.seq == seq:
            return e.wire
    return None


def _key_at(wire: bytes | None, net: bytes) -> bytes | None:
    if wire is None:
        return None
    try:  # a stored wire: opaque, or refused by a kind known since (PROTOCOL.md §8.1), too
        return unseal_stored(wire, net=net).key
    except InvalidEvent:
        return None
