"""Receiving events: verify, classify, buffer, fork evidence, counted refusals (no bus)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import anyio
import msgspec
import nacl.signing
import pytest

from coopnet.node.engine.chains import Chains, Report
from coopnet.node.engine.store import Batch, StorageFailure
from coopnet.protocol import Envelope, Head, Identity, InvalidEvent, NotePosted, seal, unseal
from coopnet.protocol.admission import issue_ticket
from coopnet.protocol.body import Body
from coopnet.protocol.envelope import encode_wire
from tests.stores import open_node_store

NET = hashlib.sha256(b"chains tests").digest()[:16]
NOW = 1_800_000_000_000


def history(ident: Identity, n: int, *, start: list[Envelope] | None = None) -> list[Envelope]:
    out = list(start or [])
    for _ in range(n):
        seq = len(out) + 1
        body: Body = (
            ident.founding_body(ident.author.title(), "C1")
            if seq == 1
            else NotePosted(text=f"{ident.author} {seq} {random.random()}")
        )
        wire = seal(
            signing_key=ident.signing_key,
            net=NET,
            author=ident.author,
            seq=seq,
            prev=out[-1].id if out else None,
            at=NOW - 1000 + seq,
            body=body,
        )
        out.append(unseal(wire, net=NET))
    return out


@pytest.fixture
async def chains(tmp_path: Path) -> AsyncIterator[Chains]:
    store = await open_node_store(tmp_path / "node.db", NET)
    c = Chains(store, NET, clock=lambda: NOW)
    await c.load()
    try:
        yield c
    finally:
        await store.close()


OAK = Identity.from_passphrase("oakley", "chains")
ELM = Identity.from_passphrase("elm", "chains")


async def test_in_order_history_is_accepted(chains: Chains) -> None:
    events = history(OAK, 10)
    report = await chains.receive([e.wire for e in events], source="test")
    assert report.accepted == 10
    assert chains.head_of("oakley") is not None
    assert chains.head_of("oakley").seq == 10  # type: ignore[union-attr]
    assert await chains.store.event_count() == 10


async def test_any_order_and_duplicates_give_the_same_store(tmp_path: Path) -> None:
    events = history(OAK, 12) + history(ELM, 7)
    expected: set[bytes] = {e.id for e in events}
    # Founders of a charter: events beyond a gap are held even before their node.founded,
    # since the charter names the key that must sign them (PROTOCOL.md §6.4).
    founders = {"oakley": OAK.public_key, "elm": ELM.public_key}
    for attempt in range(3):
        store = await open_node_store(tmp_path / f"n{attempt}.db", NET)
        chains = Chains(store, NET, clock=lambda: NOW, charter_keys=founders)
        wires = [e.wire for e in events] + [e.wire for e in random.sample(events, 8)]
        random.shuffle(wires)
        # Deliver in random batches.
        while wires:
            cut = random.randint(1, 6)
            await chains.receive(wires[:cut], source="shuffled")
            wires = wires[cut:]
        assert await store.event_ids() == expected
        assert not chains.buffer
        assert await store.rejections() == {}
        await store.close()


async def test_gap_is_buffered_and_reported(chains: Chains) -> None:
    events = history(OAK, 6)
    report = await chains.receive([events[0].wire, events[4].wire, events[5].wire], source="t")
    assert report.accepted == 1
    assert report.buffered == 2
    assert report.gaps == [("oakley", 2, 4)]
    assert chains.missing() == [("oakley", 2, 4)]
    report = await chains.receive([e.wire for e in events[1:4]], source="sync")
    assert report.accepted == 5
    assert chains.missing() == []


async def test_duplicate_is_a_no_op(chains: Chains) -> None:
    events = history(OAK, 3)
    await chains.receive([e.wire for e in events], source="t")
    report = await chains.receive([events[1].wire, events[2].wire], source="t")
    assert (report.accepted, report.duplicates) == (0, 2)
    assert await chains.store.rejections() == {}


async def test_fork_is_kept_as_evidence_and_freezes_the_author(chains: Chains) -> None:
    events = history(OAK, 4)
    other = history(OAK, 1, start=events[:2])[2]  # a different seq 3
    await chains.receive([e.wire for e in events], source="t")
    report = await chains.receive([other.wire], source="evil")
    assert report.forks == [("oakley", 3)]
    forks = await chains.store.forks()
    assert len(forks) == 1
    assert {forks[0].held_id, forks[0].other_id} == {events[2].id, other.id}
    assert forks[0].held_wire == events[2].wire and forks[0].other_wire == other.wire
    # Nothing newer from the author is accepted.
    later = history(OAK, 1, start=events)[4]
    report = await chains.receive([later.wire], source="t")
    assert report.accepted == 0
    assert report.rejected == {"fork": 1}
    assert (await chains.store.rejections())["fork"] == 2


async def test_fork_by_prev_at_head_plus_one(chains: Chains) -> None:
    events = history(OAK, 3)
    alt = history(OAK, 2, start=events[:2])  # another seq 3, then seq 4 on top of it
    await chains.receive([e.wire for e in events], source="t")
    report = await chains.receive([alt[3].wire], source="t")  # seq 4 whose prev is not ours
    assert report.forks == [("oakley", 3)]


async def test_fork_inside_one_batch(chains: Chains) -> None:
    events = history(OAK, 2)
    alt = history(OAK, 1, start=events[:1])[1]
    report = await chains.receive([events[0].wire, events[1].wire, alt.wire], source="t")
    assert report.accepted == 2
    assert report.forks == [("oakley", 2)]


async def test_other_key_at_a_held_seq_is_a_forgery_not_a_fork(chains: Chains) -> None:
    events = history(OAK, 3)
    thief = Identity(author="oakley", seed=ELM.seed, next_seed=ELM.next_seed)
    forged = history(thief, 1, start=events[:1])[1]
    await chains.receive([e.wire for e in events], source="t")
    report = await chains.receive([forged.wire], source="evil")
    assert report.forks == []
    assert report.rejected == {"wrong_key": 1}
    assert await chains.store.forks() == []


async def test_wrong_key_at_head_plus_one(chains: Chains) -> None:
    events = history(OAK, 2)
    await chains.receive([e.wire for e in events], source="t")
    thief = Identity(author="oakley", seed=ELM.seed, next_seed=ELM.next_seed)
    forged = history(thief, 1, start=events)[2]
    report = await chains.receive([forged.wire], source="evil")
    assert report.rejected == {"wrong_key": 1}
    assert chains.head_of("oakley").seq == 2  # type: ignore[union-attr]


async def test_a_log_that_does_not_start_with_founding(chains: Chains) -> None:
    wire = seal(
        signing_key=OAK.signing_key,
        net=NET,
        author="oakley",
        seq=1,
        prev=None,
        at=NOW,
        body=NotePosted(text="no founding"),
    )
    report = await chains.receive([wire], source="t")
    assert report.rejected == {"unknown_author": 1}


async def test_future_timestamp(chains: Chains) -> None:
    wire = seal(
        signing_key=OAK.signing_key,
        net=NET,
        author="oakley",
        seq=1,
        prev=None,
        at=NOW + 10 * 60 * 1000,
        body=OAK.founding_body("Oakley", "C1"),
    )
    report = await chains.receive([wire], source="t")
    assert report.rejected == {"future_timestamp": 1}


async def test_tampered_and_forged_are_counted_by_code(chains: Chains) -> None:
    events = history(OAK, 2)
    header, sig, body = msgspec.msgpack.decode(events[1].wire, type=tuple[bytes, bytes, bytes])
    tampered = encode_wire(header, sig, msgspec.msgpack.encode({"text": "changed"}))
    flipped = encode_wire(header, bytes([sig[0] ^ 1]) + sig[1:], body)
    wrong_net = seal(
        signing_key=OAK.signing_key,
        net=b"\x00" * 16,
        author="oakley",
        seq=1,
        prev=None,
        at=NOW,
        body=OAK.founding_body("Oakley", "C1"),
    )
    report = await chains.receive(
        [events[0].wire, tampered, flipped, wrong_net, b"\x00garbage", b"x" * 70_000],
        source="evil",
    )
    assert report.accepted == 1
    assert report.rejected == {
        "body_hash_mismatch": 1,
        "bad_signature": 1,
        "wrong_network": 1,
        "malformed": 1,
        "too_large": 1,
    }
    assert await chains.store.rejections() == report.rejected
    assert chains.rejected_since_start["bad_signature"] == 1
    # Evidence for audits: the unverifiable ones by the hash of their bytes, from `source`.
    rows = await chains.store.all("SELECT evidence, author, code, source FROM rejected_events")
    evidence = {r[2]: (bytes(r[0]), r[1], r[3]) for r in rows}
    # The header of bytes that fail verification is still readable: the evidence names the
    # author it claims (nothing proves it), and bytes with no readable header name none.
    assert evidence["bad_signature"] == (hashlib.sha256(flipped).digest(), "oakley", "evil")
    assert evidence["malformed"] == (hashlib.sha256(b"\x00garbage").digest(), "", "evil")
    claimed = await chains.store.all(
        "SELECT seq, kind FROM rejected_events WHERE code = 'bad_signature'"
    )
    assert [tuple(r) for r in claimed] == [(2, "note.posted")]
    assert set(evidence) == set(report.rejected)


async def test_stateful_refusals_keep_the_event_id_as_evidence(chains: Chains) -> None:
    events = history(OAK, 3)
    await chains.receive([events[0].wire], source="bus")
    forged = seal(
        signing_key=ELM.signing_key, net=NET, author="oakley", seq=2, prev=events[0].id,
        at=NOW, body=NotePosted(text="not oakley's"),
    )  # fmt: skip
    await chains.receive([forged], source="relay")
    rows = await chains.store.all("SELECT evidence, author, seq, kind, code FROM rejected_events")
    assert [(bytes(r[0]), r[1], r[2], r[3], r[4]) for r in rows] == [
        (unseal(forged, net=NET).id, "oakley", 2, "note.posted", "wrong_key")
    ]


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    store = await open_node_store(tmp_path / "n.db", NET)
    events = history(OAK, 5)
    await Chains(store, NET, clock=lambda: NOW).receive([e.wire for e in events], source="t")
    again = Chains(store, NET, clock=lambda: NOW)
    await again.load()
    assert again.head_of("oakley").seq == 5  # type: ignore[union-attr]
    more = history(OAK, 2, start=events)
    report = await again.receive([e.wire for e in more[5:]], source="t")
    assert report.accepted == 2
    await store.close()


async def test_append_own_events_goes_to_log_and_outbox(chains: Chains) -> None:
    first = await chains.append("oakley", OAK.signing_key, OAK.founding_body("Oakley", "C1"))
    second = await chains.append("oakley", OAK.signing_key, NotePosted(text="hi"))
    assert (first.seq, second.seq, second.prev) == (1, 2, first.id)
    assert await chains.store.outbox_depth() == 2
    assert [r[1] for r in await chains.store.outbox_batch()] == [
        "coop.oakley.node.founded",
        "coop.oakley.note.posted",
    ]


def test_log_budget_limits_lines_per_code_not_counts() -> None:
    from coopnet.node.engine.chains import LogBudget

    budget = LogBudget(per_window=3, window_s=3600)
    allowed = [budget.allow("bad_signature") for _ in range(10)]
    assert allowed == [True] * 3 + [False] * 7
    assert budget.allow("malformed")  # each code has its own budget


async def test_a_flood_of_bad_events_is_counted_in_full(chains: Chains) -> None:
    report = await chains.receive([b"\x00junk %d" % i for i in range(500)], source="flood")
    assert report.rejected == {"malformed": 500}
    assert (await chains.store.rejections())["malformed"] == 500


async def test_concurrent_own_writes_share_commits(chains: Chains) -> None:
    """Group commit: 64 residents posting at once get 64 consecutive events, in fewer
    synced transactions than events, and each caller returns its own event."""
    await chains.append("oakley", OAK.signing_key, OAK.founding_body("Oakley", "C1"))
    commits = 0
    real_commit = chains.store.commit

    async def counting(batch: Batch, *, received: bool = False) -> None:
        nonlocal commits
        commits += 1
        await real_commit(batch, received=received)

    chains.store.commit = counting  # type: ignore[method-assign]
    results: dict[int, Envelope] = {}

    async def post(i: int) -> None:
        results[i] = await chains.append("oakley", OAK.signing_key, NotePosted(text=f"n{i}"))

    async with anyio.create_task_group() as tg:
        for i in range(64):
            tg.start_soon(post, i)
    assert sorted(e.seq for e in results.values()) == list(range(2, 66))
    assert all(results[i].body == NotePosted(text=f"n{i}") for i in range(64))
    assert await chains.store.event_count() == 65
    assert commits < 64
    chain = {e.seq: e for e in results.values()}
    assert all(chain[s].prev == chain[s - 1].id for s in range(3, 66))


async def test_exact_repeats_skip_verification_but_tampered_copies_do_not(
    chains: Chains,
) -> None:
    events = history(OAK, 3)
    await chains.receive([e.wire for e in events], source="bus")
    verified: list[int] = []
    unseal_many = chains.unseal_many

    async def counting(wires: Sequence[bytes]) -> list[Envelope | InvalidEvent]:
        verified.append(len(wires))
        return await unseal_many(wires)

    chains.unseal_many = counting  # type: ignore[method-assign]
    again = await chains.receive([e.wire for e in events], source="bus")
    assert (again.duplicates, again.accepted, verified) == (3, 0, [0])
    header, sig, _ = msgspec.msgpack.decode(events[1].wire, type=tuple[bytes, bytes, bytes])
    tampered = encode_wire(header, sig, msgspec.msgpack.encode({"text": "changed"}))
    report = await chains.receive([tampered], source="relay")
    assert report.rejected == {"body_hash_mismatch": 1}
    assert verified == [0, 1]
    # Own events are known too: the stream's echo of them costs no verify.
    own = await chains.append("elm", ELM.signing_key, ELM.founding_body("Elm", "C2"))
    echo = await chains.receive([own.wire], source="bus")
    assert (echo.duplicates, verified) == (1, [0, 1, 0])


async def test_receives_commit_in_the_order_they_were_called(chains: Chains) -> None:
    """A caller verifies its next batch while the one before commits: whichever finishes
    verifying first, the commits follow the calls, so the later batch finds its chain
    linked and is not buffered behind a gap."""
    events = history(OAK, 6)
    release_first = anyio.Event()
    unseal_many = chains.unseal_many

    async def slow_first(wires: Sequence[bytes]) -> list[Envelope | InvalidEvent]:
        if wires and wires[0] == events[0].wire:
            await release_first.wait()
        return await unseal_many(wires)

    chains.unseal_many = slow_first  # type: ignore[method-assign]
    reports: dict[str, object] = {}

    async def first() -> None:
        reports["first"] = await chains.receive([e.wire for e in events[:3]], source="bus")

    async def second() -> None:
        reports["second"] = await chains.receive([e.wire for e in events[3:]], source="bus")
        reports["order"] = list(reports)

    async with anyio.create_task_group() as tg:
        tg.start_soon(first)
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(second)
        await anyio.wait_all_tasks_blocked()
        assert "second" not in reports  # verified, but waiting for the first to commit
        release_first.set()
    first_report, second_report = reports["first"], reports["second"]
    assert isinstance(first_report, Report) and isinstance(second_report, Report)
    assert (first_report.accepted, second_report.accepted) == (3, 3)
    assert (second_report.buffered, second_report.gaps) == (0, [])
    assert reports["order"] == ["first", "second"]
    assert chains.head_of("oakley") == Head(6, events[-1].id)


# -- the engine's memory follows its commits (docs/ARCHITECTURE.md, issue 14) -----------------


def fail_next_commit(chains: Chains) -> list[Batch]:
    """INJECTED FAULT: the store's next commit raises StorageFailure (a full disk, say) and
    writes nothing; the commits after it go through. Returns the batches that failed."""
    real_commit = chains.store.commit
    failed: list[Batch] = []

    async def commit_once_failing(batch: Batch, *, received: bool = False) -> None:
        if not failed:
            failed.append(batch)
            raise StorageFailure("injected fault: the disk is full")
        await real_commit(batch, received=received)

    chains.store.commit = commit_once_failing  # type: ignore[method-assign]
    return failed


def memory_of(chains: Chains) -> object:
    """Everything `Chains` holds in memory about the authors it follows, as plain values."""
    return (
        {a: (st.head, st.keys, st.forked_seq) for a, st in chains.states.items()},
        {a: dict(held) for a, held in chains.buffer.items()},
        chains.gaps.bytes,
        chains.gaps.hints,
        dict(chains.rejected_since_start),
    )


async def test_a_receive_whose_commit_fails_leaves_memory_as_it_was(chains: Chains) -> None:
    events = history(OAK, 8)
    elm = history(ELM, 3)
    await chains.receive([e.wire for e in events[:2]] + [events[6].wire], source="bus")
    assert chains.missing() == [("oakley", 3, 6)]
    before = memory_of(chains)
    forged = seal(
        signing_key=ELM.signing_key, net=NET, author="oakley", seq=3, prev=events[1].id,
        at=NOW, body=NotePosted(text="not oakley's"),
    )  # fmt: skip
    header, sig, body = msgspec.msgpack.decode(events[7].wire, type=tuple[bytes, bytes, bytes])
    flipped = encode_wire(header, bytes([sig[0] ^ 1]) + sig[1:], body)
    # Next events of oakley (some filling the gap), a new author, a forgery, a bad signature
    # and an event beyond the gap: every kind of change to memory, in one failing receive.
    batch = [
        *(e.wire for e in events[2:5]), *(e.wire for e in elm), forged, flipped,
        events[7].wire,
    ]  # fmt: skip
    failed = fail_next_commit(chains)
    with pytest.raises(StorageFailure):
        await chains.receive(batch, source="bus")
    assert failed and failed[0].events  # it did try to store them
    assert memory_of(chains) == before
    assert chains.head_of("oakley") == Head(2, events[1].id)
    assert chains.head_of("elm") is None
    assert await chains.store.event_count() == 2  # events[6] waits in the buffer
    # The same events, delivered again, are judged afresh and stored.
    report = await chains.receive(batch, source="bus")
    assert report.accepted == 3 + 3
    assert chains.head_of("oakley") == Head(5, events[4].id)
    assert chains.head_of("elm") == Head(3, elm[-1].id)
    assert await chains.store.rejections() == {"wrong_key": 1, "bad_signature": 1}
    assert chains.missing() == [("oakley", 6, 6)]
    await chains.receive([events[5].wire], source="sync")
    assert chains.head_of("oakley") == Head(8, events[7].id)
    assert not chains.buffer


async def test_an_own_write_whose_commit_fails_changes_nothing(chains: Chains) -> None:
    first = await chains.append("oakley", OAK.signing_key, OAK.founding_body("Oakley", "C1"))
    before = memory_of(chains)
    fail_next_commit(chains)
    with pytest.raises(StorageFailure):
        await chains.append("oakley", OAK.signing_key, NotePosted(text="lost to a full disk"))
    assert memory_of(chains) == before
    again = await chains.append("oakley", OAK.signing_key, NotePosted(text="after"))
    assert (again.seq, again.prev) == (2, first.id)


# -- refusals: counted once, and saying what was wrong ----------------------------------------


async def test_a_redelivered_refusal_is_counted_once(tmp_path: Path) -> None:
    """A peer serving one invalid event again and again: the status counts one event."""
    store = await open_node_store(tmp_path / "n.db", NET)
    chains = Chains(store, NET, clock=lambda: NOW)
    await chains.load()
    events = history(OAK, 2)
    header, sig, body = msgspec.msgpack.decode(events[1].wire, type=tuple[bytes, bytes, bytes])
    flipped = encode_wire(header, bytes([sig[0] ^ 1]) + sig[1:], body)
    forged = seal(
        signing_key=ELM.signing_key, net=NET, author="oakley", seq=2, prev=events[0].id,
        at=NOW, body=NotePosted(text="not oakley's"),
    )  # fmt: skip
    await chains.receive([events[0].wire], source="bus")
    for _ in range(5):
        report = await chains.receive([flipped, forged, flipped], source="sync")
        assert report.rejected == {"bad_signature": 2, "wrong_key": 1}  # what this call saw
    assert await store.rejections() == {"bad_signature": 1, "wrong_key": 1}
    assert chains.rejected_since_start == {"bad_signature": 1, "wrong_key": 1}
    # After a restart too: the refusals on record are known again.
    again = Chains(store, NET, clock=lambda: NOW)
    await again.load()
    await again.receive([flipped, forged], source="sync")
    assert await store.rejections() == {"bad_signature": 1, "wrong_key": 1}
    await store.close()


async def test_a_forged_founding_says_the_key_is_not_the_authors(chains: Chains) -> None:
    """A second seq-1 node.founded signed by a random key is a forgery, refused as such
    (not "node.founded is allowed only at seq 1", nor a fork)."""
    await chains.receive([e.wire for e in history(OAK, 2)], source="bus")
    stranger = Identity.generate("oakley")
    forged = history(stranger, 1)[0]
    report = await chains.receive([forged.wire], source="evil")
    assert (report.rejected, report.forks) == ({"wrong_key": 1}, [])
    rows = await chains.store.all("SELECT code, reason FROM rejected_events")
    assert len(rows) == 1
    code, reason = rows[0]
    assert code == "wrong_key"
    assert f"signed by {stranger.public_key.hex()[:16]}…, which is not oakley's key" in reason
    assert f"founded its log with {OAK.public_key.hex()[:16]}…" in reason
    assert "allowed only at seq 1" not in reason


async def test_a_founding_not_matching_the_charter_says_so(tmp_path: Path) -> None:
    store = await open_node_store(tmp_path / "n.db", NET)
    chains = Chains(store, NET, clock=lambda: NOW, charter_keys={"oakley": OAK.public_key})
    squatter = history(Identity.generate("oakley"), 1)[0]
    assert (await chains.receive([squatter.wire], source="evil")).rejected == {"wrong_key": 1}
    (reason,) = (await store.all("SELECT reason FROM rejected_events"))[0]
    assert "charter's key" in reason
    await store.close()


async def test_with_an_admission_key_only_a_ticketed_log_is_founded(tmp_path: Path) -> None:
    """PROTOCOL.md §16.6 at a receiver: a squatter's log (no ticket, or the real
    neighborhood's ticket on another key) is refused `wrong_key` and never held; the log
    founded with the operator's ticket for its slug and key is; its later events follow."""
    admission = nacl.signing.SigningKey(b"\x05" * 32)
    store = await open_node_store(tmp_path / "n.db", NET)
    chains = Chains(store, NET, clock=lambda: NOW, admission_key=bytes(admission.verify_key))
    real, squatter = Identity.generate("dee"), Identity.generate("dee")
    ticket = issue_ticket(admission, NET, "dee", real.public_key)

    def founded(ident: Identity, t: bytes | None) -> bytes:
        return seal(signing_key=ident.signing_key, net=NET, author="dee", seq=1, prev=None,
                    at=NOW, body=ident.founding_body("Dee", "N9", t))  # fmt: skip

    squats = [founded(squatter, None), founded(squatter, ticket)]
    assert (await chains.receive(squats, source="evil")).rejected == {"wrong_key": 2}
    assert chains.head_of("dee") is None
    first = unseal(founded(real, ticket), net=NET)
    log = history(real, 2, start=[first])
    report = await chains.receive([e.wire for e in log], source="bus")
    assert report.rejected == {} and chains.head_of("dee") == Head(seq=3, id=log[-1].id)
    reasons = [r for (r,) in await store.all("SELECT reason FROM rejected_events")]
    assert any("carries no admission ticket" in r for r in reasons)
    await store.close()
