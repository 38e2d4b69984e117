"""The outbox publisher: the node's own events, from its store to the stream, exactly once.

An own event is in the log and the outbox before anyone sees it (one synced transaction).
`Publisher.drain` publishes the outbox in seq order with `Nats-Msg-Id` = the event id, a
bounded number in flight, and deletes each row only when JetStream acknowledged it. A retry
reuses the id, so the server drops a repeat; a crash between ack and delete only means one
retry that the server (or, beyond its window, every receiver) recognizes as a duplicate.
"""

from __future__ import annotations

import asyncio
import logging

import anyio
import nats.errors
import nats.js.errors
from nats.js.api import PubAck

from coopnet.node.bus import STREAM, Bus
from coopnet.node.store import Store

log = logging.getLogger("coopnet.outbox")

ACK_TIMEOUT_S = 5.0
MAX_IN_FLIGHT = 256


class Publisher:
    def __init__(self, store: Store, bus: Bus, name: str) -> None:
        self.store = store
        self.bus = bus
        self.name = name
        self.published = 0
        self.duplicates = 0
        self.failures = 0
        self._wake = anyio.Event()

    def wake(self) -> None:
        """A new own event is in the outbox: publish it now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.1
        while True:
            try:
                sent = await self.drain()
                backoff = 0.1
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
                self.failures += 1
                log.info("%s: publish failed (%s); retrying in %.1fs", self.name, exc, backoff)
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if sent == 0:
                with anyio.move_on_after(1.0):
                    await self._wake.wait()
                self._wake = anyio.Event()

    async def drain(self) -> int:
        """Publish what is in the outbox now; return how many events were acknowledged."""
        total = 0
        while True:
            rows = await self.store.outbox_batch(MAX_IN_FLIGHT)
            if not rows:
                return total
            if not self.bus.connected:
                raise nats.errors.ConnectionReconnectingError
            js = self.bus.jetstream
            futures: list[tuple[bytes, asyncio.Future[PubAck]]] = []
            for event_id, subject, wire in rows:
                fut = await js.publish_async(
                    subject, wire, stream=STREAM, headers={"Nats-Msg-Id": event_id.hex()}
                )
                futures.append((event_id, fut))
            acked: list[bytes] = []
            try:
                with anyio.fail_after(ACK_TIMEOUT_S):
                    for event_id, fut in futures:
                        ack = await fut
                        acked.append(event_id)
                        if ack.duplicate:
                            self.duplicates += 1
            finally:
                for _, fut in futures:
                    if not fut.done():
                        fut.cancel()  # frees its in-flight slot; the row is retried
                    elif not fut.cancelled():
                        fut.exception()  # seen: a failed publish is retried, not reported twice
                with anyio.CancelScope(shield=True):
                    await self.store.outbox_done(acked)
                self.published += len(acked)
                total += len(acked)
