"""The NATS JetStream bus: connection, the COOP stream, the node's durable consumer.

The bus is a transport, not the record (DESIGN.md): the node's store is the source of truth,
and what the stream lost is repaired over sync. nats-py reconnects forever
(`max_reconnect_attempts=-1`); the error callback logs instead of raising.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import nats
import nats.errors
import nats.js.errors
from anyio.abc import TaskGroup
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from coopnet.node.engine.pull import ConsumerGone, Puller

log = logging.getLogger("coopnet.bus")
T = TypeVar("T")

STREAM = "COOP"
SUBJECTS = "coop.>"
# Retried publishes carry the same Nats-Msg-Id; the server drops a repeat inside this window.
# Beyond it a repeat can reach the stream, and every receiver still treats it as a duplicate.
DUPLICATE_WINDOW_S = 3600.0
FETCH_BATCH = 512
# Batches in the receive path at once: the next ones verifying while one commits (2 to 4
# measured alike within noise once verification moved to worker processes; BENCHMARKS.md).
PIPELINE_DEPTH = 4
CURSOR_KEY = "stream_seq"


def stream_config(replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=STREAM,
        subjects=[SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_S,
        max_msg_size=70 * 1024,
        num_replicas=replicas,
    )


class Bus:
    """One NATS connection with JetStream, reconnecting forever."""

    def __init__(
        self, url: str, *, name: str, creds: str | None = None, inbox: str = "_INBOX"
    ) -> None:
        self.url = url
        self.name = name
        self.creds = creds
        # A node's own inbox prefix: its credentials let only it subscribe there.
        self.inbox = inbox
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self.disconnects = 0
        self._closing = False
        # Set when the server closed the connection for good (nats-py does not reconnect
        # after an -ERR such as 'Authorization Violation': revoked or replaced credentials).
        self.lost = anyio.Event()

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def connect(self) -> None:
        async def on_error(exc: Exception) -> None:
            log.warning("%s: NATS error: %s", self.name, exc)

        async def on_disconnected() -> None:
            if self._closing:
                return
            self.disconnects += 1
            log.warning("%s: disconnected from the bus; writes wait in the outbox", self.name)

        async def on_reconnected() -> None:
            log.info("%s: reconnected to the bus", self.name)

        async def on_closed() -> None:
            if not self._closing:
                why = self.nc.last_error if self.nc is not None else None
                log.warning("%s: the server closed the connection (%r)", self.name, why)
                self.lost.set()

        self._closing = False
        self.lost = anyio.Event()
        options: dict[str, Any] = {}
        if self.creds:
            options["user_credentials"] = self.creds
        # A comma-separated list names the servers of a cluster: nats-py tries them all.
        servers = [u.strip() for u in self.url.split(",") if u.strip()]
        self.nc = await nats.connect(
            servers,
            name=self.name,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=2,
            allow_reconnect=True,
            error_cb=on_error,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
            closed_cb=on_closed,
            inbox_prefix=self.inbox,
            **options,
        )
        self.js = self.nc.jetstream()

    async def ensure_stream(self) -> None:
        """Create the COOP stream when it is missing (limits retention, file storage).

        In a federation with credentials the operator creates it (`coopnet federation up`)
        and a node may not: then the node waits for it instead."""
        js = self.jetstream
        try:
            await js.stream_info(STREAM)
        except nats.js.errors.NotFoundError:
            try:
                await js.add_stream(stream_config())
            except (nats.errors.Error, TimeoutError) as exc:
                raise nats.errors.Error(
                    f"stream {STREAM} does not exist and this node may not create it ({exc!r})"
                ) from exc
            log.info("created stream %s on %s", STREAM, SUBJECTS)

    @property
    def jetstream(self) -> JetStreamContext:
        if self.js is None:
            raise RuntimeError("bus not connected")
        return self.js

    @property
    def client(self) -> Client:
        if self.nc is None:
            raise RuntimeError("bus not connected")
        return self.nc

    async def close(self) -> None:
        # close, not drain: nothing in flight needs finishing. Unacked stream messages are
        # delivered again, unacknowledged publishes stay in the outbox.
        self._closing = True
        if self.nc is not None and not self.nc.is_closed:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self.nc.close()
        self.nc = None
        self.js = None

    async def last_event_of(self, author: str) -> bytes | None:
        """The wire of the newest message on `coop.<author>.>` in the stream, if any."""
        try:
            msg = await self.jetstream.get_last_msg(STREAM, f"coop.{author}.>")
        except nats.js.errors.NotFoundError:
            return None
        return bytes(msg.data) if msg.data else None


async def connect_retrying(bus: Bus, ready: Callable[[], Awaitable[T]], *, who: str) -> T:
    """Connect, then `ready()` (the stream is there, or made so); retry both with backoff
    until they succeed, and return what `ready` returned."""
    backoff = 0.2
    while True:
        try:
            await bus.connect()
            return await ready()
        except (OSError, nats.errors.Error, TimeoutError) as exc:
            log.warning("%s: bus at %s not ready (%s); retrying", who, bus.url, exc)
            await bus.close()
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


async def stay_connected(
    bus: Bus,
    ready: Callable[[], Awaitable[T]],
    activities: Callable[[TaskGroup, T], Awaitable[None]],
    *,
    who: str,
) -> None:
    """Connect (`connect_retrying`) and run `activities` in a task group until cancelled.
    When the server closes the connection for good (credentials revoked or replaced:
    nats-py does not reconnect after an -ERR), connect again from scratch, which reads the
    credentials file again, and start the activities anew."""
    while True:
        prepared = await connect_retrying(bus, ready, who=who)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_when_lost, bus, tg.cancel_scope)
            await activities(tg, prepared)
        await bus.close()
        await anyio.sleep(1.0)


async def _cancel_when_lost(bus: Bus, scope: anyio.CancelScope) -> None:
    await bus.lost.wait()
    scope.cancel()


async def keep_running(
    name: str, run: Callable[[], Awaitable[object]], count_failure: Callable[[], None]
) -> None:
    """Run a background activity; if it fails unexpectedly, log it, count it and restart it
    a second later. A bug in one activity must not take the others down with it."""
    while True:
        try:
            await run()
            return
        except Exception:
            count_failure()
            log.exception("%s failed; restarting it in 1s", name)
            await anyio.sleep(1.0)


async def follow(
    bus: Bus,
    durable: str,
    cursor: int,
    handle: Callable[[list[Msg], int], Awaitable[None]],
) -> None:
    """Feed the stream to `handle` in batches, through the node's durable pull consumer.

    `cursor` is the last stream sequence the store committed. If the consumer on the server
    has delivered beyond it (batches in flight when the node stopped or its connection was
    closed for good, or a store restored from a backup), the consumer is recreated from
    cursor + 1, so the node reads again what its store does not hold: within the ack wait
    the server would not deliver those messages again, and an AckAll of a later one would
    acknowledge them unseen (PROTOCOL.md §9). `handle` commits the batch and the new
    cursor; then the batch is acknowledged (AckAll: one ack per batch).

    Up to PIPELINE_DEPTH batches are handled at once, started in stream order, so the next
    batch is verified while the one before commits. `handle` must pass its batch to
    `Chains.receive` before it awaits anything else: receives commit in the order they were
    called, which is then the stream's order.
    """
    while True:
        puller = await _attach(bus, durable, cursor)
        try:
            cursor = await _pull(puller, handle, cursor)
        finally:
            with anyio.CancelScope(shield=True):
                await puller.close()


async def _attach(bus: Bus, durable: str, cursor: int) -> Puller:
    backoff = 0.2
    while True:
        try:
            return await _subscribe(bus.client, bus.jetstream, durable, cursor)
        except (nats.errors.Error, TimeoutError) as exc:  # the bus is down or busy: retry
            log.warning("%s: cannot attach the consumer yet (%r); retrying", durable, exc)
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)


async def _pull(
    puller: Puller, handle: Callable[[list[Msg], int], Awaitable[None]], cursor: int
) -> int:
    """Hand batches to `handle` until the consumer is gone; the last stream seq handled."""
    slots = anyio.Semaphore(PIPELINE_DEPTH)
    handled = cursor

    async def run(msgs: list[Msg], last: int) -> None:
        nonlocal handled
        try:
            await handle(msgs, last)
            handled = max(handled, last)
            try:
                await msgs[-1].ack()
            except nats.errors.Error as exc:  # redelivered later: duplicates are no-ops
                log.info("%s: ack failed (%s); the batch will be seen again", puller.durable, exc)
        finally:
            slots.release()

    async with anyio.create_task_group() as tg:
        while True:
            try:
                msgs = await puller.fetch(FETCH_BATCH)
            except ConsumerGone as exc:
                log.warning("%s; attaching it again", exc)
                break  # the batches in hand finish first
            except nats.errors.Error as exc:  # the connection is closing or reconnecting
                log.info("%s: fetch failed (%r); retrying", puller.durable, exc)
                await anyio.sleep(0.5)
                continue
            await slots.acquire()
            tg.start_soon(run, msgs, msgs[-1].metadata.sequence.stream)
    return handled


async def _subscribe(nc: Client, js: JetStreamContext, durable: str, cursor: int) -> Puller:
    last = (await js.stream_info(STREAM)).state.last_seq
    if last < cursor:
        # A new stream (lost, or the federation moved servers): its sequence numbers are not
        # the ones the store counted. Read it all; what the node holds is a no-op.
        log.warning(
            "%s: the stream ends at seq %d but the store read up to %d: a new stream; "
            "reading it from the start",
            durable,
            last,
            cursor,
        )
        cursor = 0
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_consumer(STREAM, durable)
    exists = True
    try:
        info = await js.consumer_info(STREAM, durable)
        acked = (info.ack_floor.stream_seq or 0) if info.ack_floor is not None else 0
        delivered = (info.delivered.stream_seq or 0) if info.delivered is not None else 0
        if max(acked, delivered) > cursor:
            # Delivered and not committed (in flight at a stop) or acknowledged and lost (an
            # old backup): either way the store lacks it. PROTOCOL.md §9.
            log.log(
                logging.WARNING if acked > cursor else logging.INFO,
                "%s: consumer delivered up to stream seq %d, acknowledged %d, the store"
                " committed %d; reading again from %d",
                durable,
                delivered,
                acked,
                cursor,
                cursor + 1,
            )
            await js.delete_consumer(STREAM, durable)
            exists = False
    except nats.js.errors.NotFoundError:
        exists = False
    config = ConsumerConfig(
        name=durable,
        durable_name=durable,
        filter_subject=SUBJECTS,
        ack_policy=AckPolicy.ALL,
        ack_wait=60,
        max_ack_pending=20_000,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE if cursor else DeliverPolicy.ALL,
        opt_start_seq=cursor + 1 if cursor else None,
    )
    if not exists:
        await js.add_consumer(STREAM, config)
    puller = Puller(nc, STREAM, durable)
    await puller.start()
    return puller
