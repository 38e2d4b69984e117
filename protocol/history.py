"""Pure rules for one author's history: its key log and its hash chain (docs/PROTOCOL.md §5-6).

Both are folds over the author's events in seq order. A node, an observer and a test all
call the same functions, so they classify every event the same way.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import msgspec

from coopnet.protocol import errors
from coopnet.protocol.admission import check_ticket
from coopnet.protocol.envelope import Envelope, key_digest
from coopnet.protocol.kinds import NodeFounded, NodeKeyRotated
from coopnet.protocol.membership import MembershipRetired

# An author's clock may run ahead of ours by this much before its events are refused.
MAX_CLOCK_SKEW_MS = 5 * 60 * 1000


class KeyState(msgspec.Struct, frozen=True, kw_only=True):
    """The key an author signs with now, and the digest its next key must match."""

    author: str
    current_key: bytes
    next_key_digest: bytes
    since_seq: int
    retired_seq: int = 0  # the seq of its `membership.retired`: nothing may follow it (§5.3)


def found_key_state(
    env: Envelope, charter_key: bytes | None = None, admission_key: bytes | None = None
) -> KeyState:
    """The key state an author's first event establishes (§5.1). A founder's log must start
    with the key its federation's charter names (`charter_key`, §16.2); any other log, in a
    federation whose charter names an admission key (`admission_key`, 32 bytes), with a key
    the operator's ticket admits for that slug (§16.6). Raises UnknownAuthor or WrongKey."""
    if env.seq != 1 or not isinstance(env.body, NodeFounded):
        raise errors.UnknownAuthor(
            f"{env.author}: a log starts with node.founded at seq 1, got {env.kind} at {env.seq}"
        )
    if env.body.key != env.key:
        raise errors.WrongKey(f"{env.author}: node.founded must be signed by the key it names")
    if charter_key is not None and env.key != charter_key:
        raise errors.WrongKey(f"{env.author}: a founder must found its log with the charter's key")
    if charter_key is None and admission_key is not None:
        check_ticket(
            admission_key, net=env.net, slug=env.author, key=env.key, ticket=env.body.ticket
        )
    return KeyState(
        author=env.author,
        current_key=env.key,
        next_key_digest=env.body.next_key_digest,
        since_seq=1,
    )


def check_key(state: KeyState, env: Envelope) -> KeyState:
    """Check that `env` (seq > 1) is signed by the author's key; return the state after it.

    A `node.key_rotated` must reveal a key whose digest was committed, and be signed by that
    new key; from then on the old key signs nothing more (§5.2).
    """
    if state.retired_seq:
        raise errors.NotAuthorized(
            f"{env.author} retired at seq {state.retired_seq}: its log holds nothing after"
        )
    if isinstance(env.body, NodeFounded):
        raise errors.NotAuthorized(f"{env.author}: node.founded is allowed only at seq 1")
    if isinstance(env.body, NodeKeyRotated):
        if env.body.key != env.key:
            raise errors.WrongKey(f"{env.author}: a rotation must be signed by the key it reveals")
        if key_digest(env.body.key) != state.next_key_digest:
            raise errors.WrongKey(f"{env.author}: revealed key does not match the committed digest")
        return KeyState(
            author=state.author,
            current_key=env.body.key,
            next_key_digest=env.body.next_key_digest,
            since_seq=env.seq,
        )
    if env.key != state.current_key:
        raise errors.WrongKey(
            f"{env.author} seq {env.seq}: signed by {env.key.hex()[:16]}…, "
            f"current key is {state.current_key.hex()[:16]}…"
        )
    if isinstance(env.body, MembershipRetired):
        return msgspec.structs.replace(state, retired_seq=env.seq)
    return state


def fold_keys(events: list[Envelope]) -> KeyState:
    """The key state after a whole history, given in seq order from seq 1."""
    state = found_key_state(events[0])
    for env in events[1:]:
        state = check_key(state, env)
    return state


def check_clock(at_ms: int, now_ms: int, max_skew_ms: int = MAX_CLOCK_SKEW_MS) -> None:
    """Refuse an event stamped further in the future than the allowed skew (§6.3)."""
    if at_ms > now_ms + max_skew_ms:
        raise errors.FutureTimestamp(
            f"event time {at_ms} is {at_ms - now_ms} ms ahead of this node's clock"
        )


class Verdict(enum.Enum):
    """Where an incoming event stands against the author's chain as held (§6.1)."""

    NEXT = "next"  # extends the head: store it
    DUPLICATE = "duplicate"  # already held: a no-op
    FORK = "fork"  # another event at a seq already held: equivocation, keep both as evidence
    GAP = "gap"  # beyond head + 1: buffer it and fetch the missing range
    STALE = "stale"  # at or below the head, where nothing is held to compare with


class Head(msgspec.Struct, frozen=True):
    """The latest event held for an author."""

    seq: int
    id: bytes


class Classification(msgspec.Struct, frozen=True, kw_only=True):
    verdict: Verdict
    # For FORK: the seq where two histories diverge and the id this node holds there.
    fork_seq: int = 0
    held_id: bytes = b""
    # For GAP: the first and last missing seq.
    missing: tuple[int, int] = (0, 0)


def classify(
    head: Head | None,
    seq: int,
    event_id: bytes,
    prev: bytes | None,
    held_id_at: Callable[[int], bytes | None],
) -> Classification:
    """Classify an event (its seq, id and prev) against the author's chain.

    `held_id_at(n)` returns the id held at seq n, or None. The rules, in order (§6.1):
    beyond head+1 is a gap; at head+1 it must link to the head (else the author signed
    another event at the head's seq: a fork); at or below the head it is a duplicate of what
    is held, a fork of it (another id at that seq), or stale when nothing is held there.
    """
    top = head.seq if head is not None else 0
    if seq > top + 1:
        return Classification(verdict=Verdict.GAP, missing=(top + 1, seq - 1))
    if seq == top + 1:
        if head is None or prev == head.id:
            return Classification(verdict=Verdict.NEXT)
        return Classification(verdict=Verdict.FORK, fork_seq=head.seq, held_id=head.id)
    held = held_id_at(seq)
    if held is None:
        return Classification(verdict=Verdict.STALE)
    if held != event_id:
        return Classification(verdict=Verdict.FORK, fork_seq=seq, held_id=held)
    return Classification(verdict=Verdict.DUPLICATE)
