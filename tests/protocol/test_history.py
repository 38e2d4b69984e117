"""The key log and the chain rules (docs/PROTOCOL.md §5-6), without an event loop."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coopnet.protocol import (
    Envelope,
    Head,
    Identity,
    InvalidEvent,
    NotePosted,
    Verdict,
    check_clock,
    check_key,
    classify,
    found_key_state,
    seal,
    unseal,
)
from coopnet.protocol.body import Body
from coopnet.protocol.history import fold_keys

NET = hashlib.sha256(b"history").digest()[:16]


def _event(
    signer: Identity, seq: int, prev: bytes | None, body: Body, author: str = "oakley"
) -> Envelope:
    wire = seal(
        signing_key=signer.signing_key,
        net=NET,
        author=author,
        seq=seq,
        prev=prev,
        at=seq,
        body=body,
    )
    return unseal(wire, net=NET)


def _history(n_notes: int = 2) -> tuple[Identity, list[Envelope]]:
    oak = Identity.from_passphrase("oakley", "history")
    events = [_event(oak, 1, None, oak.founding_body("Oakley", "N1"))]
    for i in range(n_notes):
        events.append(_event(oak, len(events) + 1, events[-1].id, NotePosted(text=f"note {i}")))
    return oak, events


def _code(exc: pytest.ExceptionInfo[InvalidEvent]) -> str:
    return exc.value.code


def test_founding_sets_the_key_and_commitment() -> None:
    oak, events = _history(0)
    state = found_key_state(events[0])
    assert state.current_key == oak.public_key
    assert state.next_key_digest == hashlib.sha256(oak.next_public_key).digest()


def test_a_log_must_start_with_founding() -> None:
    oak = Identity.from_passphrase("oakley", "history")
    first = _event(oak, 1, None, NotePosted(text="hi"))
    with pytest.raises(InvalidEvent) as caught:
        found_key_state(first)
    assert _code(caught) == "unknown_author"


def test_founding_must_be_signed_by_the_key_it_names() -> None:
    oak = Identity.from_passphrase("oakley", "history")
    other = Identity.from_passphrase("oakley", "impostor")
    first = _event(other, 1, None, oak.founding_body("Oakley", "N1"))
    with pytest.raises(InvalidEvent) as caught:
        found_key_state(first)
    assert _code(caught) == "wrong_key"


def test_rotation_moves_the_key_and_retires_the_old_one() -> None:
    oak, events = _history(1)
    rotated, rotation = oak.rotated()
    rot = _event(rotated, 3, events[-1].id, rotation)
    state = fold_keys([*events, rot])
    assert state.current_key == rotated.public_key
    assert state.since_seq == 3
    # The new key signs from now on.
    after = _event(rotated, 4, rot.id, NotePosted(text="new key"))
    assert check_key(state, after) == state
    # The old key signs nothing more.
    late = _event(oak, 4, rot.id, NotePosted(text="old key"))
    with pytest.raises(InvalidEvent) as caught:
        check_key(state, late)
    assert _code(caught) == "wrong_key"


def test_rotation_to_an_uncommitted_key_is_refused() -> None:
    _, events = _history(1)
    state = fold_keys(events)
    stranger = Identity.from_passphrase("oakley", "stranger")
    _, rotation = stranger.rotated()
    rogue = Identity(author="oakley", seed=stranger.next_seed, next_seed=stranger.seed)
    rot = _event(rogue, 3, events[-1].id, rotation)
    with pytest.raises(InvalidEvent) as caught:
        check_key(state, rot)
    assert _code(caught) == "wrong_key"


def test_rotation_signed_by_the_old_key_is_refused() -> None:
    oak, events = _history(1)
    state = fold_keys(events)
    _, rotation = oak.rotated()
    rot = _event(oak, 3, events[-1].id, rotation)  # reveals the right key, signed by the old
    with pytest.raises(InvalidEvent) as caught:
        check_key(state, rot)
    assert _code(caught) == "wrong_key"


def test_second_founding_is_not_authorized() -> None:
    oak, events = _history(1)
    state = fold_keys(events)
    again = _event(oak, 3, events[-1].id, oak.founding_body("Oakley again", "N1"))
    with pytest.raises(InvalidEvent) as caught:
        check_key(state, again)
    assert _code(caught) == "not_authorized"


def test_another_key_is_refused() -> None:
    _, events = _history(1)
    state = fold_keys(events)
    thief = Identity.from_passphrase("oakley", "thief")
    forged = _event(thief, 3, events[-1].id, NotePosted(text="mine now"))
    with pytest.raises(InvalidEvent) as caught:
        check_key(state, forged)
    assert _code(caught) == "wrong_key"


def test_clock_skew() -> None:
    check_clock(1_000 + 300_000, 1_000)
    with pytest.raises(InvalidEvent) as caught:
        check_clock(1_000 + 300_001, 1_000)
    assert _code(caught) == "future_timestamp"


# --- chain classification -----------------------------------------------------------------


def _ids(n: int, salt: bytes = b"") -> list[bytes]:
    return [hashlib.sha256(salt + i.to_bytes(8, "big")).digest() for i in range(1, n + 1)]


def test_table_of_verdicts() -> None:
    ids = _ids(5)
    held = {i + 1: x for i, x in enumerate(ids[:3])}
    nothing: dict[int, bytes] = {}
    head = Head(3, ids[2])
    other = hashlib.sha256(b"other").digest()
    assert classify(None, 1, ids[0], None, nothing.get).verdict is Verdict.NEXT
    assert classify(None, 2, ids[1], ids[0], nothing.get).missing == (1, 1)
    assert classify(head, 4, ids[3], ids[2], held.get).verdict is Verdict.NEXT
    fork = classify(head, 4, other, other, held.get)
    assert (fork.verdict, fork.fork_seq, fork.held_id) == (Verdict.FORK, 3, ids[2])
    assert classify(head, 2, ids[1], ids[0], held.get).verdict is Verdict.DUPLICATE
    fork2 = classify(head, 2, other, ids[0], held.get)
    assert (fork2.verdict, fork2.fork_seq, fork2.held_id) == (Verdict.FORK, 2, ids[1])
    gap = classify(head, 6, other, other, held.get)
    assert (gap.verdict, gap.missing) == (Verdict.GAP, (4, 5))
    assert classify(head, 2, ids[1], ids[0], {3: ids[2]}.get).verdict is Verdict.STALE


@given(order=st.permutations(list(range(1, 9))))
@settings(max_examples=200)
def test_any_delivery_order_converges_to_the_same_chain(order: list[int]) -> None:
    """Buffer gaps, apply what links: every order of delivery (with duplicates) ends the same."""
    ids = _ids(8)
    prevs = [None, *ids[:-1]]
    head: Head | None = None
    held: dict[int, bytes] = {}
    buffered: dict[int, int] = {}
    for seq in [*order, *order[:3]]:  # every event once, three of them twice
        buffered[seq] = seq
        progress = True
        while progress:
            progress = False
            for s in sorted(buffered):
                c = classify(head, s, ids[s - 1], prevs[s - 1], held.get)
                assert c.verdict is not Verdict.FORK
                if c.verdict is Verdict.NEXT:
                    head, held[s] = Head(s, ids[s - 1]), ids[s - 1]
                    del buffered[s]
                    progress = True
                elif c.verdict is Verdict.DUPLICATE:
                    del buffered[s]
    assert head == Head(8, ids[7])
    assert held == {i + 1: x for i, x in enumerate(ids)}
    assert not buffered


@given(n=st.integers(min_value=1, max_value=20), at=st.integers(min_value=1, max_value=20))
def test_a_second_history_is_always_a_fork(n: int, at: int) -> None:
    ids = _ids(n)
    held = {i + 1: x for i, x in enumerate(ids)}
    head = Head(n, ids[-1])
    seq = min(at, n)
    other = _ids(n, b"other")[seq - 1]
    prev = ids[seq - 2] if seq > 1 else None
    c = classify(head, seq, other, prev, held.get)
    assert c.verdict is Verdict.FORK
    assert c.fork_seq == seq
