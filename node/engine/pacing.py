"""How often: a back-off per range asked of peers, and a token bucket per requester.

Two small pacing tools of sync (node/engine/sync.py, PROTOCOL.md §9): `Backoff` decides
when a range that brought nothing may be asked again, `RateLimit` how many requests a
responder answers per requester. Both take a clock in seconds (monotonic by default) so
that tests can drive them, and both keep bounded memory. Our own code rather than a
library's: `aiolimiter` limits one key only, and `limits` brings storage back-ends and an
expiry timer thread for what is here an ordered dict of at most 1,024 entries.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

RETRY_FIRST_S = 2.0  # the first back-off of a range whose request brought nothing new
RETRY_MAX_S = 300.0  # the longest back-off
RATE_PER_S = 10.0  # requests a responder answers per requester and second, on average
RATE_BURST = 40.0  # … and in a burst
RATE_MAX_REQUESTERS = 1024  # requesters a responder remembers (least recently seen go)


class RateLimit:
    """A token bucket per key (the requester), in bounded memory.

    Each key may take `burst` requests at once and `rate` a second (float, per second) on
    average after that. At most `max_keys` keys are remembered: the least recently seen is
    forgotten first (a forgotten key starts again with a full bucket, so memory is bounded
    without refusing anyone for good). `clock` is in seconds (monotonic).
    """

    def __init__(
        self,
        rate: float = RATE_PER_S,
        burst: float = RATE_BURST,
        *,
        max_keys: int = RATE_MAX_REQUESTERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst, self.max_keys, self.clock = rate, burst, max_keys, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key: (tokens, at)

    def allow(self, key: str) -> bool:
        """Take one token of `key`'s bucket; False (and nothing taken) when it is empty."""
        now = self.clock()
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        ok = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if ok else tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return ok

    @property
    def remembered(self) -> int:
        return len(self._buckets)


class Backoff:
    """When a range of an author's events may be asked of peers again.

    A range is named by (author, first seq asked). Each request of the same range waits
    twice as long as the one before it (`first_s`, 2 × `first_s`, … up to `max_s`, in
    seconds): when a request brings the author's head forward, the next one asks from a new
    first seq, a new range, at once. A range not asked again for `max_s` after it was due
    is forgotten (its gap closed), so the memory holds only ranges asked lately.
    """

    def __init__(
        self,
        first_s: float = RETRY_FIRST_S,
        max_s: float = RETRY_MAX_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.clock = clock
        self._next: dict[tuple[str, int], tuple[float, float]] = {}  # range: (due, wait)

    def due(self, author: str, first: int) -> bool:
        """Whether the range may be asked now."""
        entry = self._next.get((author, first))
        return entry is None or self.clock() >= entry[0]

    def asked(self, author: str, first: int) -> None:
        """The range was just asked: the next request of it waits (twice longer each time)."""
        now = self.clock()
        self._next = {k: v for k, v in self._next.items() if now <= v[0] + self.max_s}
        entry = self._next.get((author, first))
        wait = self.first_s if entry is None else min(entry[1] * 2, self.max_s)
        self._next[(author, first)] = (now + wait, wait)

    @property
    def remembered(self) -> int:
        """How many ranges it remembers."""
        return len(self._next)
