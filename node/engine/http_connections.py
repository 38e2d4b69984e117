"""Connections to the HTTP servers (the node's API, the observer's dashboard): a deadline
for each request to arrive, a connection limit sized from the file-descriptor limit, and
accept errors logged at a bounded rate (docs/OPERATIONS.md §13, "The API's doors").

uvicorn (0.54) has no timeout for a request whose headers never finish: its keep-alive
timer runs only between requests, and every byte received resets it (uvicorn issue #157,
"--timeout-request-start", still open). ASGI middleware cannot help either: it runs once
the headers are complete. So `guarded_protocol` subclasses uvicorn's h11 protocol:

- a connection must deliver a whole request (headers and body) within
  `REQUEST_TIMEOUT_S` of being opened or of its previous answer, or it is closed;
- at most `Budget.limit` connections are open at once, across every server of the
  process; a new one beyond that closes the oldest connection still waiting for its
  request, or, when every open connection is busy with a request, itself;
- `raise_fd_limit` raises the soft RLIMIT_NOFILE to the hard limit at start, and the
  budget is half of it, so the store, the bus and the embedded nats-server's pipes never
  run short of descriptors;
- CPython's accept loop (asyncio/selector_events.py) logs one error with a traceback per
  failed accept, up to `backlog` times per wake-up, when descriptors run out: a log flood.
  `RateLimitedLog` passes the first such line and then one per `LOG_EVERY_S` with the count
  left out; uvicorn's per-request "Invalid HTTP request" warning gets the same filter.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import Counter
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("coopnet.http")
REQUEST_TIMEOUT_S = 10.0  # a whole request (headers, then a body of at most 256 KiB)
KEEP_ALIVE_S = 5  # an idle connection between requests (uvicorn's own timer)
MAX_HEADER_BYTES = 16 * 1024  # h11's limit on an unfinished request line and headers
MAX_CONNECTIONS = 4096  # whatever the descriptor limit: a neighborhood's API needs far fewer
FD_LIMIT_CAP = 1 << 20  # an "unlimited" hard limit is raised to this
LOG_EVERY_S = 60.0
_THROTTLED = ("socket.accept() out of system resource", "Invalid HTTP request received.")


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (at most 2^20); return the soft limit
    now in force. A refusal (a sandbox) leaves the limit as it was."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = FD_LIMIT_CAP if hard == resource.RLIM_INFINITY else min(hard, FD_LIMIT_CAP)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return FD_LIMIT_CAP if soft == resource.RLIM_INFINITY else soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def connection_limit(fd_limit: int) -> int:
    """How many HTTP connections a process with `fd_limit` descriptors keeps open: half of
    them (the rest for its store, its bus and its child processes), at least 16, at most
    `MAX_CONNECTIONS`."""
    return max(16, min(MAX_CONNECTIONS, fd_limit // 2))


class ConnectionCounts:
    """What one server's connection guard did since start: connections closed for taking
    longer than `REQUEST_TIMEOUT_S` (`request_timeout`), to make room (`evicted`), or
    refused because every open connection was busy (`over_limit`)."""

    def __init__(self) -> None:
        self.closed: Counter[str] = Counter()

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict, reasons sorted."""
        return dict(sorted(self.closed.items()))


class Budget:
    """The connections open in this process, across its servers, oldest first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: dict[GuardedH11Protocol, None] = {}  # insertion order: oldest first
        self._last_log = 0.0
        self._unlogged: Counter[str] = Counter()

    def admit(self, conn: GuardedH11Protocol) -> bool:
        """Register a new connection; at the limit, close the oldest one still waiting for
        its request to make room. False (and nothing registered) when none waits."""
        if len(self.open) >= self.limit:
            victim = next((c for c in self.open if c.waiting_for_request()), None)
            if victim is None:
                self.note(conn, "over_limit")
                return False
            self.note(victim, "evicted")
            self.open.pop(victim)
            victim.close_now()
        self.open[conn] = None
        return True

    def forget(self, conn: GuardedH11Protocol) -> None:
        """A connection closed: it no longer counts."""
        self.open.pop(conn, None)

    def note(self, conn: GuardedH11Protocol, reason: str) -> None:
        """Count a closed connection; log at most one line per `LOG_EVERY_S`."""
        conn.counts.closed[reason] += 1
        self._unlogged[reason] += 1
        now = time.monotonic()
        if self._last_log and now - self._last_log < LOG_EVERY_S:
            return
        self._last_log = now
        what = ", ".join(f"{n} {reason}" for reason, n in sorted(self._unlogged.items()))
        self._unlogged.clear()
        log.warning(
            "HTTP connections closed: %s (limit %d open, %.0f s per request; at most one "
            "such line per %.0f s)", what, self.limit, REQUEST_TIMEOUT_S, LOG_EVERY_S,
        )  # fmt: skip


_budget: Budget | None = None


def process_budget() -> Budget:
    """The process's connection budget, made on first use from the raised fd limit."""
    global _budget
    if _budget is None:
        _budget = Budget(connection_limit(raise_fd_limit()))
    return _budget


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request deadline and the process's connection budget
    (see the module). Subclassed per server by `guarded_protocol`, which sets `counts`."""

    budget: ClassVar[Budget]
    counts: ClassVar[ConnectionCounts]
    request_timeout_s: ClassVar[float] = REQUEST_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        if not self.budget.admit(self):
            self.close_now()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.budget.forget(self)
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets its own deadline

    def waiting_for_request(self) -> bool:
        """Whether this connection is still receiving a request (its headers or its
        body), rather than being answered."""
        if self.transport.is_closing():
            return False
        return self.conn.their_state in (h11.IDLE, h11.SEND_BODY)

    def close_now(self) -> None:
        """Close the connection; anything unread is dropped."""
        self._disarm()
        if not self.transport.is_closing():
            self.transport.close()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout_s, self._expire)

    def _disarm(self) -> None:
        deadline = getattr(self, "_deadline", None)
        if deadline is not None:
            deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.waiting_for_request() and not self.transport.is_closing():
            self.budget.note(self, "request_timeout")
            self.close_now()


def guarded_protocol(counts: ConnectionCounts) -> type[GuardedH11Protocol]:
    """The protocol class for one server (uvicorn's `Config(http=...)`), counting into
    `counts`; the budget is the process's."""
    return type(
        "ServerH11Protocol",
        (GuardedH11Protocol,),
        {"budget": process_budget(), "counts": counts},
    )


class RateLimitedLog(logging.Filter):
    """Lets through the first record of each throttled message, then one per `every_s`
    seconds, noting how many were left out, without their tracebacks."""

    def __init__(self, every_s: float = LOG_EVERY_S) -> None:
        super().__init__()
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._dropped: Counter[str] = Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        key = next((t for t in _THROTTLED if message.startswith(t)), None)
        if key is None:
            return True
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.every_s:
            self._dropped[key] += 1
            return False
        self._last[key] = now
        dropped, self._dropped[key] = self._dropped[key], 0
        record.msg = f"{key} (like {dropped} more in the last {self.every_s:.0f} s; at most one line per {self.every_s:.0f} s)"  # noqa: E501
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        return True


_log_filter = RateLimitedLog()


def throttle_server_logs() -> None:
    """Install `RateLimitedLog` on the loggers that repeat per failed accept or request
    (asyncio's, uvicorn's); once per process."""
    for name in ("asyncio", "uvicorn.error"):
        logger = logging.getLogger(name)
        if _log_filter not in logger.filters:
            logger.addFilter(_log_filter)


def server_options(counts: ConnectionCounts) -> dict[str, Any]:
    """uvicorn.Config options for a guarded server counting into `counts`."""
    throttle_server_logs()
    budget = process_budget()
    return {
        "http": guarded_protocol(counts),
        "ws": "none",  # neither server speaks WebSocket
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "timeout_keep_alive": KEEP_ALIVE_S,
        # The client is the socket's peer, never what an X-Forwarded-For says: the node's
        # own-user trust (node/engine/auth.py) and the sign-in throttle read it.
        "proxy_headers": False,
        # The accept queue, and how many accepts CPython tries per wake-up (so also how
        # many errors one wake-up can raise when descriptors run out).
        "backlog": min(budget.limit, 1024),
    }


__all__ = [
    "REQUEST_TIMEOUT_S",
    "Budget",
    "ConnectionCounts",
    "GuardedH11Protocol",
    "RateLimitedLog",
    "connection_limit",
    "guarded_protocol",
    "raise_fd_limit",
    "server_options",
    "throttle_server_logs",
]
