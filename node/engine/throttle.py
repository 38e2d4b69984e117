"""Failed attempts counted per key over a sliding window (sign-ins: docs/APP.md)."""

from __future__ import annotations

import time
from collections import deque


class Throttle:
    """Failed sign-ins, counted in memory per key (a name, a client address) over a
    sliding window: at `limit` failures within `window_s`, the key waits."""

    def __init__(self, limit: int, window_s: float = 15 * 60) -> None:
        self.limit, self.window_s = limit, window_s
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures

    def wait_s(self, key: str, now: float | None = None) -> int:
        """Seconds `key` must wait before trying again (0: it may try now)."""
        now = time.monotonic() if now is None else now
        failures = self._recent(key, now)
        if len(failures) < self.limit:
            return 0
        return max(1, int(failures[-self.limit] + self.window_s - now + 0.999))

    def failed(self, key: str, now: float | None = None) -> None:
        """Count one failure of `key`."""
        now = time.monotonic() if now is None else now
        self._recent(key, now).append(now)
        if len(self._failures) > 100_000:  # a flood of made-up names: forget the oldest
            for stale in list(self._failures)[:50_000]:
                del self._failures[stale]

    def succeeded(self, key: str) -> None:
        """Forget `key`'s failures."""
        self._failures.pop(key, None)


__all__ = ["Throttle"]
