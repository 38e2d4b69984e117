"""The outbox publisher: the node's own events, from its store to the stream, exactly once.

An own event is in the log and the outbox before anyone sees it (one synced transaction).
`Publisher.drain` publishes the outbox in seq order with `Nats-Msg-Id` = the event id, a
bounded number in flight, and deletes each row only when JetStream acknowledged it. Events
committed while the publisher is caught up are handed to it (`wake(fresh)`) and published
without reading them back; after any failure the table decides again. A retry
reuses the id, so the server drops a repeat; a crash between ack and delete only means one
retry that the server (or, beyond its window, every receiver) recognizes as a duplicate.

When the bus refuses to store the node's events (its member stream is at its quota, the
bus is full, no stream takes its subjects: `refusal_of`), the events stay in the outbox;
the publisher says so once per episode at ERROR, keeps the refusal in the store
(`REFUSED_META`, shown by `/status` and `coopnet node status`) and asks again every
5 to 60 s, never in a busy loop (OPERATIONS.md §12). When no stream takes them (the server
lost its store, the stream was deleted), the bus makes the stream again where this node
may (`Bus.stream_info`), and the publisher asks every 5 s: the stream comes back at once
(OPERATIONS.md §7), and the outbox then goes out again under the same ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import anyio
import msgspec
import nats.errors
import nats.js.errors
from nats.js.api import PubAck

from coopnet.node.engine.bus import Bus, member_stream
from coopnet.node.engine.store import Batch, Store, now_ms
from coopnet.protocol import Envelope

log = logging.getLogger("coopnet.outbox")

ACK_TIMEOUT_S = 5.0
MAX_IN_FLIGHT = 256
# JetStream's err_code for a store that refused a message; with discard NEW and "maximum
# bytes/messages exceeded" it is a member stream at its quota (OPERATIONS.md §12).
STREAM_STORE_FAILED = 10077
# The server or the account has no room for the stream's data ("insufficient resources").
INSUFFICIENT_RESOURCES = 10047
# While the bus refuses this node's publishes, it asks again this often (first, then
# doubling to the last): a quota frees room only as the member's oldest messages age out.
REFUSED_RETRY_S = (5.0, 60.0)
# Where the refusal in force is kept (store meta, JSON), so that `coopnet node status`
# shows it too; "" when none.
REFUSED_META = "publish_refused"


class PublishRefused(msgspec.Struct, kw_only=True):
    """Why the bus refuses this node's publishes, since when: `code` is `quota_exceeded`
    (its member stream is full: OPERATIONS.md §12), `bus_full` (the server or the account
    has no room) or `no_stream` (no stream takes its subjects); `reason` is the server's
    own words; `since` in ms since the Unix epoch. The events wait in the outbox."""

    code: str
    reason: str
    since: int


def refusal_of(exc: BaseException, slug: str) -> tuple[str, str] | None:
    """(code, reason) when `exc` is the bus refusing to store a publish, not a transient
    failure (a reconnect, a timeout), else None."""
    if isinstance(exc, nats.js.errors.NoStreamResponseError):
        return "no_stream", (
            f"no stream on the bus takes coop.{slug}.>: in a federation the operator makes "
            f"its member stream {member_stream(slug)} (`coopnet federation streams DIR`)"
        )
    if isinstance(exc, nats.js.errors.APIError):
        what = exc.description or ""
        if exc.err_code == STREAM_STORE_FAILED and "maximum" in what:
            return "quota_exceeded", (
                f"{what}: {member_stream(slug)} holds this node's whole quota; its events "
                "wait in the outbox until the oldest age out or the operator raises it"
            )
        if exc.err_code == INSUFFICIENT_RESOURCES:
            return "bus_full", f"{what}: the bus has no room; the events wait in the outbox"
    return None


_encoder = msgspec.json.Encoder()


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
        self.refused: PublishRefused | None = None  # the refusal in force, if any

    def wake(self, fresh: Sequence[tuple[Envelope, str]] = ()) -> None:
        """New own events are in the outbox (committed): publish now rather than at the next
        poll. Given the events and their subjects, the publisher skips reading them back."""
        self._fresh.extend((env.id, subject, env.wire) for env, subject in fresh)
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.1
        refused_wait = REFUSED_RETRY_S[0]
        if await self.store.meta(REFUSED_META):  # from before a restart: asked again now
            await self.store.commit(Batch(meta={REFUSED_META: ""}))
        while True:
            try:
                if self.refused is not None:
                    await self._probe()  # one event, not a window of refusals
                sent = await self.drain()
                backoff = 0.1
                refused_wait = REFUSED_RETRY_S[0]
                await self._accepted()
            except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
                self.failures += 1
                why: BaseException = exc
                if isinstance(exc, TimeoutError) and self.refused is None:
                    why = await self._why_unacked() or exc
                if isinstance(why, nats.js.errors.NoStreamResponseError):
                    await self._stream_lost()
                refusal = refusal_of(why, self.name)
                if refusal is not None:  # no busy loop: wait, ask again, say it once
                    await self._refused(*refusal, retry_s=refused_wait)
                    await anyio.sleep(refused_wait)
                    # A missing stream comes back all at once (re-made here, or by the
                    # operator's `federation streams`): ask every 5 s, not up to a minute.
                    longest = REFUSED_RETRY_S[0 if refusal[0] == "no_stream" else 1]
                    refused_wait = min(refused_wait * 2, longest)
                    continue
                log.info("%s: publish failed (%r); retrying in %.1fs", self.name, why, backoff)
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if sent == 0:
                with anyio.move_on_after(1.0):
                    await self._wake.wait()
                self._wake = anyio.Event()

    async def _probe(self) -> None:
        """Publish the oldest outbox event alone and wait for its ack; raise what the bus
        answers instead. nats-py 2.16 never completes a `publish_async` whose ack is a
        JetStream error (its handler raises the APIError into the error callback instead of
        setting it on the future), so a refusal shows in `drain` only as acks that time
        out: a plain `publish` gets the server's answer as an exception."""
        rows = await self.store.outbox_batch(1)
        if not rows:
            return
        event_id, subject, wire = rows[0]
        headers = {"Nats-Msg-Id": event_id.hex()}  # the same id: a repeat is dropped
        ack = await self.bus.jetstream.publish(
            subject, wire, timeout=ACK_TIMEOUT_S, headers=headers
        )
        await self.store.outbox_done([event_id])
        self.published += 1
        self.duplicates += 1 if ack.duplicate else 0

    async def _why_unacked(self) -> BaseException | None:
        """After acks timed out: the bus's refusal, if that is why (see `_probe`)."""
        try:
            await self._probe()
        except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
            return exc
        return None

    async def _refused(self, code: str, reason: str, *, retry_s: float) -> None:
        """Log a refusal once per episode (and again if its code changes), at ERROR, and
        keep it in the store for `/status` and `coopnet node status`."""
        if self.refused is not None and self.refused.code == code:
            log.debug("%s: still refused (%s); asking again in %.0fs", self.name, code, retry_s)
            return
        self.refused = PublishRefused(code=code, reason=reason, since=now_ms())
        depth = await self.store.outbox_depth()
        log.error(
            "%s: the bus refuses this node's events (%s): %s; %d event(s) wait in the outbox,"
            " asked again every %.0f-%.0fs",
            self.name, code, reason, depth, *REFUSED_RETRY_S,
        )  # fmt: skip
        await self.store.commit(Batch(meta={REFUSED_META: _encoder.encode(self.refused).decode()}))

    async def _accepted(self) -> None:
        """The bus takes this node's events again: end the refusal episode."""
        if self.refused is None:
            return
        since, self.refused = self.refused, None
        log.warning(
            "%s: the bus takes this node's events again (refused %s for %.0fs)",
            self.name, since.code, (now_ms() - since.since) / 1000,
        )  # fmt: skip
        await self.store.commit(Batch(meta={REFUSED_META: ""}))

    async def _stream_lost(self) -> None:
        """No stream took the publish (the server lost its store, the stream was deleted):
        make it again where this node may, or let the status say it is missing (Bus.
        stream_info). The rows stay in the outbox and go out again once it is back, with
        their ids, so whatever the old stream already held is not stored twice."""
        with contextlib.suppress(nats.errors.Error, TimeoutError):  # said by stream_info
            await self.bus.stream_info()

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
                # No expected stream: with credentials a member's events land in its own
                # stream COOP_<slug>, which COOP sources (OPERATIONS.md §12).
                fut = await js.publish_async(subject, wire, headers={"Nats-Msg-Id": event_id.hex()})
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
