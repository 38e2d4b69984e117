"""The outbox publisher: the node's own events, from its store to the stream, exactly once.

An own event is in the log and the outbox before anyone sees it (one synced transaction).
`Publisher.drain` publishes the outbox in seq order with `Nats-Msg-Id` = the event id, a
bounded number in flight, and deletes each row only when JetStream acknowledged it. Events
committed while the publisher is caught up are handed to it (`wake(fresh)`) and published
without reading them back; after any failure the table decides again. A retry
reuses the id, so the server drops a repeat; a crash between ack and delete only means one
retry that the server (or, beyond its window, every receiver) recognizes as a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import anyio
import nats.errors
import nats.js.errors
from nats.js.api import PubAck

from coopnet.node.engine.bus import STREAM, Bus
from coopnet.node.engine.store import Store
from coopnet.protocol import Envelope

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
        # Own events committed since the last drain, handed over by `Chains.append`, so the
        # publisher need not read them back from the store. Used only while `_caught_up`:
        # the last read of the outbox found it empty and nothing failed since, so these are
        # all it holds, in seq order.
        self._fresh: list[tuple[bytes, str, bytes]] = []
        self._caught_up = False

    def wake(self, fresh: Sequence[tuple[Envelope, str]] = ()) -> None:
        """New own events are in the outbox (committed): publish now rather than at the next
        poll. Given the events and their subjects, the publisher skips reading them back."""
        self._fresh.extend((env.id, subject, env.wire) for env, subject in fresh)
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
        emptied = False  # a round left the outbox empty but for what is handed over since
        while True:
            if emptied and self._caught_up and not self._fresh:
                return total  # nothing to read back to be sure of
            if self._caught_up and self._fresh:
                rows, self._fresh = self._fresh[:MAX_IN_FLIGHT], self._fresh[MAX_IN_FLIGHT:]
                complete = True  # the outbox held these and what is still in _fresh
            else:
                self._fresh.clear()  # all in the table, read from there in order
                rows = await self.store.outbox_batch(MAX_IN_FLIGHT)
                # Handed over while the read ran: keep only what it did not see (newer).
                read = {row[0] for row in rows}
                self._fresh = [row for row in self._fresh if row[0] not in read]
                if not rows:
                    self._caught_up = True
                    return total
                complete = len(rows) < MAX_IN_FLIGHT  # the table had nothing more
            self._caught_up = False  # until every row of this round is acknowledged
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
            self._caught_up = emptied = complete
