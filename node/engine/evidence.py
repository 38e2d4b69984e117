"""What a node remembers of the events it refused and of those it just stored.

- `claimed`: the author, seq and kind that the header of bytes which could not be unsealed
  claims, read without trusting it, so that the evidence of a refusal names the claimed
  author (an audit finding says "claiming to be ...": nothing proves it);
- `RecentIds`: a bounded memory of digests (the bytes of events just stored, to skip the
  verification of their echoes; refusals already counted, to count each event once);
- `LogBudget`: at most a few log lines per refusal code a minute.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from collections.abc import Iterable

import msgspec

from coopnet.protocol.envelope import AUTHOR_RE, KIND_RE, MAX_KIND_CHARS, MAX_SEQ

log = logging.getLogger("coopnet.chains")

_wire = msgspec.msgpack.Decoder(tuple[bytes, bytes, bytes])
# The nine header fields of PROTOCOL.md §2.1, decoded by type only (nothing is checked).
_header = msgspec.msgpack.Decoder(tuple[int, bytes, str, bytes, int, bytes | None, int, str, bytes])


def claimed(wire: bytes) -> tuple[str, int, str]:
    """(author, seq, kind) as the header of `wire` claims them, or ("", 0, "") where it
    cannot be read. Verifies nothing: for the evidence of a refusal only. Never raises."""
    try:
        header, _, _ = _wire.decode(wire)
        _, _, author, _, seq, _, _, kind, _ = _header.decode(header)
    except (msgspec.MsgspecError, ValueError):
        return "", 0, ""
    if not AUTHOR_RE.fullmatch(author):
        return "", 0, ""
    if not 1 <= seq <= MAX_SEQ:
        seq = 0
    if len(kind) > MAX_KIND_CHARS or not KIND_RE.fullmatch(kind):
        kind = ""
    return author, seq, kind


class RecentIds:
    """Digests of byte strings seen last: the exact bytes of the events this node stored
    (own and received), to recognize their echoes and redeliveries before verifying them
    again; or a refusal's evidence and code, to count each refused event once. Bounded: the
    oldest are forgotten (then a repeat is verified again and found a duplicate in the
    store, or a refusal is counted again)."""

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
