"""The gap buffer: events received beyond a gap in their author's chain (PROTOCOL.md §6.4).

An event whose seq is beyond its author's head + 1 cannot be stored yet (its chain would
have a hole); it waits here while the missing range is fetched from peers. What waits is
bounded, so that nobody can fill a receiver's memory with events it cannot check:

- only an event signed by a key of its author's *known* key log is held: the author's
  current key, or the key its current key committed to (a rotation inside the gap), or, for
  an author whose `node.founded` this node does not hold, the key the federation's charter
  names for it. Anything else (a forgery, or a genuine event after rotations this node has
  not seen) is not held: it is refused as `unverifiable_gap`, counted, and the range up to
  it is still asked of peers once;
- at most `MAX_BUFFERED_BYTES_PER_AUTHOR` wire bytes per author and `MAX_BUFFERED_BYTES` in
  all. Beyond a cap the lowest seqs are kept (they are stored first once the gap is filled);
  an event left out is counted (`dropped`) and the range up to it asked of peers again.

Changes are planned in a `Holding` while a receive is checked and installed only after its
commit (the engine's memory changes only after its commit: docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Mapping

from coopnet.protocol import Envelope, InvalidEvent, KeyState, key_digest

MAX_BUFFERED_BYTES_PER_AUTHOR = 4 * 1024 * 1024
"""Wire bytes held beyond a gap for one author (4 MiB: 64 events of the 64 KiB maximum,
thousands of ordinary ones)."""

MAX_BUFFERED_BYTES = 64 * 1024 * 1024
"""Wire bytes held beyond gaps for all authors together (64 MiB)."""

MAX_HINTED_AUTHORS = 1024
"""Authors for which a range up to an event that was not held waits to be asked of peers;
beyond this many, further ones are not remembered (anti-entropy still finds them)."""


class UnverifiableGap(InvalidEvent):
    """An event beyond a gap, not signed by a key of its author's known key log: not held.

    A node's local decision, not a protocol error of PROTOCOL.md §7: the event may be
    genuine (signed after rotations this node has not seen yet), and then it arrives again
    with the range fetched from peers."""

    code = "unverifiable_gap"


def signed_by_known_key(keys: KeyState | None, charter_key: bytes | None, env: Envelope) -> bool:
    """Whether `env` (already unsealed: its signature verifies under its header's key) is
    signed by a key of its author's known key log, so that it may wait beyond a gap.

    `keys` is the author's key state (None when its `node.founded` is not held); then only
    the key the charter names for the author (`charter_key`) is known.
    """
    if keys is None:
        return charter_key is not None and env.key == charter_key
    if keys.retired_seq:
        return False  # nothing follows a retirement (§5.3)
    return env.key == keys.current_key or key_digest(env.key) == keys.next_key_digest


def unverifiable(keys: KeyState | None, charter_key: bytes | None, env: Envelope, top: int) -> str:
    """What is wrong with an event `signed_by_known_key` refused, for the refusal's text."""
    where = f"{env.author} seq {env.seq} (beyond the gap after seq {top})"
    key = f"{env.key.hex()[:16]}…"
    if keys is None:
        if charter_key is None:
            known = f"no node.founded of {env.author} is held and the charter names no key for it"
        else:
            known = f"the charter's key for {env.author} is {charter_key.hex()[:16]}…"
    elif keys.retired_seq:
        known = f"{env.author} retired at seq {keys.retired_seq}"
    else:
        known = (
            f"{env.author}'s current key is {keys.current_key.hex()[:16]}… and its next key "
            "does not match either"
        )
    return f"{where} is signed by {key}; {known}: not buffered, the range is asked of peers"


class GapBuffer:
    """Every author's events held beyond a gap, with their size (wire bytes)."""

    def __init__(
        self,
        *,
        per_author_bytes: int = MAX_BUFFERED_BYTES_PER_AUTHOR,
        total_bytes: int = MAX_BUFFERED_BYTES,
    ) -> None:
        self.per_author_bytes = per_author_bytes
        self.max_bytes = total_bytes
        self.events: dict[str, dict[int, Envelope]] = {}
        self._sizes: dict[str, int] = {}
        self.bytes = 0  # wire bytes held, all authors
        self.dropped = 0  # events left out for a cap since start
        # Ranges to ask of peers once, up to an event that was not held: author -> its seq.
        self.hints: dict[str, int] = {}

    def of(self, author: str) -> Mapping[int, Envelope]:
        return self.events.get(author, {})

    def size_of(self, author: str) -> int:
        """Wire bytes held for `author`."""
        return self._sizes.get(author, 0)

    @property
    def count(self) -> int:
        """Events held, all authors."""
        return sum(len(held) for held in self.events.values())

    def install(self, holding: Holding) -> None:
        """Make one receive's plan the buffer's state (after that receive committed)."""
        for author, held in holding.held.items():
            if held:
                self.events[author] = held
                self._sizes[author] = holding.sizes[author]
            else:
                self.events.pop(author, None)
                self._sizes.pop(author, None)
        self.bytes = holding.total
        self.dropped += holding.dropped
        for author, seq in holding.hints.items():
            if author in self.hints or len(self.hints) < MAX_HINTED_AUTHORS:
                self.hints[author] = max(seq, self.hints.get(author, 0))

    def take_hints(self) -> dict[str, int]:
        """The ranges waiting to be asked of peers, handed out once."""
        hints, self.hints = self.hints, {}
        return hints


class Holding:
    """One receive's plan for the buffer: what each author it touched holds afterwards."""

    def __init__(self, buffer: GapBuffer) -> None:
        self.buffer = buffer
        self.held: dict[str, dict[int, Envelope]] = {}
        self.sizes: dict[str, int] = {}
        self.total = buffer.bytes
        self.hints: dict[str, int] = {}
        self.dropped = 0

    def start(self, author: str) -> None:
        """Plan `author`'s buffer afresh: every event it held is offered again to `hold`."""
        self.held[author] = {}
        self.sizes[author] = 0
        self.total -= self.buffer.size_of(author)

    def hold(self, env: Envelope) -> bool:
        """Hold `env` if the caps allow (offer events in seq order: the lowest are kept).
        False when it was left out (counted in `dropped`, its range hinted)."""
        held = self.held[env.author]
        if env.seq in held:
            return True
        size = len(env.wire)
        if (
            self.sizes[env.author] + size > self.buffer.per_author_bytes
            or self.total + size > self.buffer.max_bytes
        ):
            self.dropped += 1
            self.hint(env.author, env.seq)
            return False
        held[env.seq] = env
        self.sizes[env.author] += size
        self.total += size
        return True

    def hint(self, author: str, seq: int) -> None:
        """Ask peers once for the range up to `seq` of `author`."""
        self.hints[author] = max(seq, self.hints.get(author, 0))
