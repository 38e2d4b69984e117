"""The key log and the chain rules (docs/PROTOCOL.md §5-6), without an event loop."""

from __future__ import annotations

import hashlib

import msgspec
import nacl.signing
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
from coopnet.protocol.history import MAX_CLOCK_SKEW_MS, fold_keys
from coopnet.protocol.kinds import NodeKeyRotated
from coopnet.protocol.membership import MembershipRetired

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


# -- the key log, every cell of PROTOCOL.md §5's table -----------------------------------------

OAK = Identity.from_passphrase("oakley", "history")
FOLLOWING = hashlib.sha256(b"history/following").digest()
# Who signs: K the current key, N the key committed by K's digest, X a stranger.
SIGNERS = {
    "K": OAK,
    "N": OAK.rotated(FOLLOWING)[0],
    "X": Identity.from_passphrase("oakley", "stranger"),
}
KINDS = ("node.founded", "node.key_rotated", "membership.retired", "note.posted")
# PROTOCOL.md §5 (its table), typed cell by cell: (key state, kind, signer) → what happens.
# A rotation signed by N reveals N; signed by K it reveals N too (the key is right, the
# signer is not); signed by X it reveals X. A founding always names K's key.
SPEC_KEY_LOG: dict[tuple[str, str, str], str] = {
    ("none", "node.founded", "K"): "founded",
    ("none", "node.founded", "N"): "wrong_key",
    ("none", "node.founded", "X"): "wrong_key",
    ("none", "node.key_rotated", "K"): "unknown_author",
    ("none", "node.key_rotated", "N"): "unknown_author",
    ("none", "node.key_rotated", "X"): "unknown_author",
    ("none", "membership.retired", "K"): "unknown_author",
    ("none", "membership.retired", "N"): "unknown_author",
    ("none", "membership.retired", "X"): "unknown_author",
    ("none", "note.posted", "K"): "unknown_author",
    ("none", "note.posted", "N"): "unknown_author",
    ("none", "note.posted", "X"): "unknown_author",
    ("current", "node.founded", "K"): "not_authorized",
    ("current", "node.founded", "N"): "not_authorized",
    ("current", "node.founded", "X"): "not_authorized",
    ("current", "node.key_rotated", "K"): "wrong_key",
    ("current", "node.key_rotated", "N"): "rotated",
    ("current", "node.key_rotated", "X"): "wrong_key",
    ("current", "membership.retired", "K"): "retired",
    ("current", "membership.retired", "N"): "wrong_key",
    ("current", "membership.retired", "X"): "wrong_key",
    ("current", "note.posted", "K"): "unchanged",
    ("current", "note.posted", "N"): "wrong_key",
    ("current", "note.posted", "X"): "wrong_key",
    ("retired", "node.founded", "K"): "not_authorized",
    ("retired", "node.founded", "N"): "not_authorized",
    ("retired", "node.founded", "X"): "not_authorized",
    ("retired", "node.key_rotated", "K"): "not_authorized",
    ("retired", "node.key_rotated", "N"): "not_authorized",
    ("retired", "node.key_rotated", "X"): "not_authorized",
    ("retired", "membership.retired", "K"): "not_authorized",
    ("retired", "membership.retired", "N"): "not_authorized",
    ("retired", "membership.retired", "X"): "not_authorized",
    ("retired", "note.posted", "K"): "not_authorized",
    ("retired", "note.posted", "N"): "not_authorized",
    ("retired", "note.posted", "X"): "not_authorized",
}


def _body(kind: str, signer: str) -> Body:
    if kind == "node.founded":
        return OAK.founding_body("Oakley", "N1")
    if kind == "node.key_rotated":
        if signer == "X":  # reveals X, signed by X: not the committed key
            return NodeKeyRotated(key=SIGNERS["X"].public_key, next_key_digest=bytes(32))
        return OAK.rotated(FOLLOWING)[1]  # reveals N
    if kind == "membership.retired":
        return MembershipRetired(reason="moving on")
    return NotePosted(text="hello")


def test_the_key_log_table_covers_every_state_kind_and_signer() -> None:
    assert set(SPEC_KEY_LOG) == {
        (state, kind, signer)
        for state in ("none", "current", "retired")
        for kind in KINDS
        for signer in SIGNERS
    }


@pytest.mark.parametrize(("state", "kind", "signer"), list(SPEC_KEY_LOG))
def test_the_key_log_follows_every_cell_of_the_specs_table(
    state: str, kind: str, signer: str
) -> None:
    """PROTOCOL.md §5 (and its table): seq 1 founds the log or is refused; later events are
    judged against the current key and the committed digest; nothing follows a retirement,
    whatever key signed it."""
    expected = SPEC_KEY_LOG[(state, kind, signer)]
    body = _body(kind, signer)
    if state == "none":
        event = _event(SIGNERS[signer], 1, None, body)
        if expected != "founded":
            with pytest.raises(InvalidEvent) as caught:
                found_key_state(event)
            assert _code(caught) == expected
            return
        founded = found_key_state(event)
        assert (founded.current_key, founded.next_key_digest, founded.since_seq) == (
            OAK.public_key,
            hashlib.sha256(OAK.next_public_key).digest(),
            1,
        )
        assert founded.retired_seq == 0
        return
    history = [_event(OAK, 1, None, OAK.founding_body("Oakley", "N1"))]
    second = NotePosted(text="note") if state == "current" else MembershipRetired()
    history.append(_event(OAK, 2, history[0].id, second))
    before = fold_keys(history)
    event = _event(SIGNERS[signer], 3, history[-1].id, body)
    if expected in ("not_authorized", "wrong_key"):
        with pytest.raises(InvalidEvent) as caught:
            check_key(before, event)
        assert _code(caught) == expected
        if state == "retired":
            assert "oakley retired at seq 2" in caught.value.message
        return
    after = check_key(before, event)
    if expected == "unchanged":
        assert after == before
    elif expected == "retired":
        assert after == msgspec.structs.replace(before, retired_seq=3)
    else:
        assert expected == "rotated"
        assert (after.current_key, after.next_key_digest, after.since_seq) == (
            SIGNERS["N"].public_key,
            hashlib.sha256(SIGNERS["N"].next_public_key).digest(),
            3,
        )
        assert after.retired_seq == 0


def test_a_wrong_key_refusal_names_the_seq_and_both_keys() -> None:
    """PROTOCOL.md §5.2: the refusal an operator reads says which event, which key signed
    it and which key should have."""
    _, events = _history(1)
    thief = Identity.from_passphrase("oakley", "thief")
    with pytest.raises(InvalidEvent) as caught:
        check_key(fold_keys(events), _event(thief, 3, events[-1].id, NotePosted(text="x")))
    assert _code(caught) == "wrong_key"
    message = caught.value.message
    assert "oakley seq 3" in message
    assert thief.public_key.hex()[:16] in message
    assert OAK.public_key.hex()[:16] in message


def test_a_log_that_does_not_start_with_founding_says_what_it_got() -> None:
    """PROTOCOL.md §5.1: `unknown_author`, naming the kind and seq found."""
    with pytest.raises(InvalidEvent) as caught:
        found_key_state(_event(OAK, 1, None, NotePosted(text="hi")))
    assert _code(caught) == "unknown_author"
    assert "got note.posted at 1" in caught.value.message


def test_a_second_rotation_moves_the_key_again() -> None:
    """PROTOCOL.md §5.2: each rotation reveals the key the previous one committed to; after
    the second, neither earlier key signs anything, and neither can rotate again."""
    k0, events = _history(1)
    k1, first = k0.rotated(FOLLOWING)
    events.append(_event(k1, 3, events[-1].id, first))
    k2, second = k1.rotated(hashlib.sha256(b"history/third").digest())
    events.append(_event(k2, 4, events[-1].id, second))
    state = fold_keys(events)
    assert (state.current_key, state.next_key_digest, state.since_seq) == (
        k2.public_key,
        hashlib.sha256(k2.next_public_key).digest(),
        4,
    )
    assert check_key(state, _event(k2, 5, events[-1].id, NotePosted(text="k2"))) == state
    for old in (k0, k1):
        with pytest.raises(InvalidEvent) as caught:
            check_key(state, _event(old, 5, events[-1].id, NotePosted(text="old")))
        assert _code(caught) == "wrong_key"
    # Replaying the first rotation (k1 revealed again, signed by k1): not the committed key.
    with pytest.raises(InvalidEvent) as caught:
        check_key(state, _event(k1, 5, events[-1].id, first))
    assert _code(caught) == "wrong_key"
    # A third rotation to the key the second committed to is accepted.
    k3, third = k2.rotated(hashlib.sha256(b"history/fourth").digest())
    assert check_key(state, _event(k3, 5, events[-1].id, third)).current_key == k3.public_key


def test_nothing_follows_a_retirement_whatever_key_signed_it() -> None:
    """PROTOCOL.md §5.3: after `membership.retired` every event of the author is
    `not_authorized`, by its key, its committed next key or any other; the refusal names the
    seq of the retirement."""
    k0, events = _history(1)
    events.append(_event(k0, 3, events[-1].id, MembershipRetired(reason="merged")))
    state = fold_keys(events)
    assert state.retired_seq == 3
    k1, rotation = k0.rotated(FOLLOWING)
    stranger = Identity.from_passphrase("oakley", "stranger")
    for signer, body in (
        (k0, NotePosted(text="after")),
        (k0, MembershipRetired()),
        (k0, k0.founding_body("Oakley", "N1")),
        (k1, rotation),
        (stranger, NotePosted(text="after")),
    ):
        with pytest.raises(InvalidEvent) as caught:
            check_key(state, _event(signer, 4, events[-1].id, body))
        assert _code(caught) == "not_authorized"
        assert "retired at seq 3" in caught.value.message


def test_a_retirement_must_be_signed_by_the_current_key() -> None:
    """PROTOCOL.md §16.5: "signed by its current key"; another key's retirement is
    `wrong_key` and retires nothing."""
    _, events = _history(1)
    state = fold_keys(events)
    forged = _event(SIGNERS["X"], 3, events[-1].id, MembershipRetired())
    with pytest.raises(InvalidEvent) as caught:
        check_key(state, forged)
    assert _code(caught) == "wrong_key"
    assert state.retired_seq == 0


def test_a_founders_log_must_start_with_the_charters_key() -> None:
    """PROTOCOL.md §5.4, §16.2: a founder's `node.founded` signed by (and naming) a key
    other than the one the charter names for it is `wrong_key`; with the charter's key it
    is founded, and needs no ticket even where the charter names an admission key."""
    other = Identity.from_passphrase("oakley", "squatter")
    squatted = _event(other, 1, None, other.founding_body("Oakley", "N1"))
    with pytest.raises(InvalidEvent) as caught:
        found_key_state(squatted, charter_key=OAK.public_key)
    assert _code(caught) == "wrong_key"
    assert "charter's key" in caught.value.message
    with pytest.raises(InvalidEvent) as caught:
        found_key_state(squatted, OAK.public_key, admission_key=bytes(32))
    assert _code(caught) == "wrong_key"
    genuine = _event(OAK, 1, None, OAK.founding_body("Oakley", "N1"))
    assert found_key_state(genuine, charter_key=OAK.public_key).current_key == OAK.public_key
    admission = bytes(nacl.signing.SigningKey(b"\x09" * 32).verify_key)
    assert found_key_state(genuine, OAK.public_key, admission).current_key == OAK.public_key


def test_the_clock_skew_is_five_minutes() -> None:
    """PROTOCOL.md §6.3: more than 300,000 ms ahead is `future_timestamp`; the refusal says
    how far ahead."""
    assert MAX_CLOCK_SKEW_MS == 300_000
    with pytest.raises(InvalidEvent) as caught:
        check_clock(1_000 + 300_001, 1_000)
    assert "300001 ms ahead" in caught.value.message


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
