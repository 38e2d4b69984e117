"""Reading a durable JetStream pull consumer in batches, cheaply (DESIGN.md, "The bus").

nats-py's `PullSubscription.fetch` waits for each message of a batch with its own
`asyncio.wait_for`, which creates a task per message: about 100 µs an event on this kind of
machine, as much as verifying its signature (BENCHMARKS.md, "Catch-up"). `Puller` asks the
consumer for a batch with the same JetStream request (`CONSUMER.MSG.NEXT`, PROTOCOL.md §9
permits it) and collects the deliveries in one subscription callback into a buffer.

- A request asks for up to `batch` messages and lingers up to `REQUEST_EXPIRES_S` on the
  server. `fetch` returns as soon as anything is buffered, so a live event is handled the
  moment it arrives; the request stays open and goes on delivering into the buffer. Only
  while a backlog streams in (the server counts messages still pending) does `fetch` wait
  up to `FILL_WAIT_S` for a full batch.
- When the request has delivered its whole batch, the next one is asked for at once, so the
  following batch travels while the node verifies and commits this one.
- The server ends a request with a status message on its reply subject (404 no messages,
  408 expired, 409 …). Each request has its own reply subject, so a late status of an old
  request is told apart. A request lost in a reconnect is given up locally after its expiry.
- 409 "Consumer Deleted", and 503 "no responders" (no consumer, or no stream, behind the
  request: a server that came back without its JetStream store), raise `ConsumerGone`: the
  caller attaches the consumer again, after a pause if it got nothing (`bus.follow`). A
  503 is never asked again at once, so a missing consumer cannot make the node spin.
"""

from __future__ import annotations

import collections
import time

import anyio
import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

REQUEST_EXPIRES_S = 5.0
# The longest a batch waits for the rest of itself while a backlog streams in.
FILL_WAIT_S = 0.05
# How long after its expiry an unanswered request is taken for lost (a reconnect).
LOST_AFTER_S = 1.0


class ConsumerGone(Exception):
    """The server deleted the consumer, or nothing answers for it (the server lost it or
    its stream): attach it again. `str()` says which."""


class Puller:
    """Batches from one durable pull consumer (AckAll: the caller acks each batch's last)."""

    def __init__(self, nc: Client, stream: str, durable: str, *, api: str = "$JS.API") -> None:
        self.nc = nc
        self.durable = durable
        self._next_subject = f"{api}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = ""
        self._sub: Subscription | None = None
        self._buffer: collections.deque[Msg] = collections.deque()
        self._wake = anyio.Event()
        self._requests = 0
        self._reply = ""  # reply subject of the request open now ("" when none is)
        self._owed = 0  # messages the open request may still deliver
        self._expires_at = 0.0
        self._gone: str | None = None
        self._retry_at = 0.0  # after a refused request, wait a little before asking again

    async def start(self) -> None:
        self._inbox = self.nc.new_inbox()
        self._sub = await self.nc.subscribe(f"{self._inbox}.*", cb=self._on_msg)

    async def close(self) -> None:
        if self._sub is not None and not self.nc.is_closed:
            await self._sub.unsubscribe()
        self._sub = None

    async def fetch(self, batch: int) -> list[Msg]:
        """Up to `batch` messages, as soon as there is one (waits as long as it takes)."""
        while not self._buffer:
            if self._gone is not None:
                raise ConsumerGone(f"{self.durable}: {self._gone}")
            now = time.monotonic()
            if self._reply and now > self._expires_at + LOST_AFTER_S:
                self._reply = ""  # never answered: lost with a connection
            if not self._reply and now >= self._retry_at:
                await self._ask(batch)
            # Wake at the latest when the open request should have ended, or to ask again.
            wait = self._expires_at + LOST_AFTER_S - now if self._reply else self._retry_at - now
            with anyio.move_on_after(max(wait, 0.01)):
                await self._wake.wait()
            self._wake = anyio.Event()
        # Catching up, the rest of a batch is still on its way (the server counts messages
        # pending after the last one): wait for it, briefly, so a backlog is handled in full
        # batches rather than in whatever the socket held. A live event waits for nothing.
        while len(self._buffer) < batch and self._reply and _pending_after(self._buffer[-1]):
            with anyio.move_on_after(FILL_WAIT_S) as waited:
                await self._wake.wait()
            self._wake = anyio.Event()
            if waited.cancelled_caught:
                break
        taken = [self._buffer.popleft() for _ in range(min(batch, len(self._buffer)))]
        if not self._reply and not self._buffer and time.monotonic() >= self._retry_at:
            await self._ask(batch)  # the next batch travels while this one is handled
        return taken

    async def _ask(self, batch: int) -> None:
        self._requests += 1
        self._reply = f"{self._inbox}.{self._requests}"
        self._owed = batch
        self._expires_at = time.monotonic() + REQUEST_EXPIRES_S
        request = {"batch": batch, "expires": int(REQUEST_EXPIRES_S * 1e9)}
        await self.nc.publish(self._next_subject, msgspec.json.encode(request), self._reply)

    async def _on_msg(self, msg: Msg) -> None:
        # A stream message always comes with its ack subject as reply; only the server's
        # status messages come without. (A publisher can put a "Status" header on an event:
        # it must not make the event vanish as if it were the end of a request.)
        status = msg.headers.get("Status") if msg.headers and not msg.reply else None
        if status is None:
            self._buffer.append(msg)
            self._owed -= 1
            if self._owed <= 0:
                self._reply = ""
            self._wake.set()
            return
        if msg.subject != self._reply or status == "100":
            return  # an old request's last word, or a heartbeat nobody asked for
        self._reply = ""  # 404 no messages, 408 expired, 409 the request was refused
        if status == "409":  # MaxWaiting, a leader change, the consumer deleted …
            description = (msg.headers or {}).get("Description", "")
            if "deleted" in description.lower():
                self._gone = description
            self._retry_at = time.monotonic() + 0.5
        elif status == "503":  # no responders: nothing on the server serves this consumer
            self._gone = "no consumer answers (the server lost it, or its stream)"
            self._retry_at = time.monotonic() + 0.5
        self._wake.set()


def _pending_after(msg: Msg) -> int:
    """Messages of the consumer not yet delivered after `msg` (from its ack subject)."""
    try:
        return int(msg.metadata.num_pending or 0)
    except (ValueError, IndexError, TypeError, AttributeError):  # not a JetStream delivery
        return 0
