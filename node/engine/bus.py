"""The NATS JetStream bus: connection, the COOP stream, the node's durable consumer.

The bus is a transport, not the record (DESIGN.md): the node's store is the source of truth,
and what the stream lost is repaired over sync. nats-py reconnects forever
(`max_reconnect_attempts=-1`); the error callback logs instead of raising.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, TypeVar

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
    ConsumerInfo,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamInfo,
)

from coopnet.node.engine.pull import REQUEST_EXPIRES_S, ConsumerGone, Puller
from coopnet.node.engine.tls import client_context

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
# A reader's durable pull consumer on COOP (PROTOCOL.md §9 "Receiving"): every message on
# `coop.>`, AckAll with an ack wait of ACK_WAIT_S, at most MAX_ACK_PENDING unacknowledged,
# each message delivered at most MAX_DELIVER times (a NAK or an expired ack wait does not
# deliver it again: a reader re-reads by sequence instead, and so a member aiming its pulls
# at another subject gets each message there once, PROTOCOL.md §9 "Who may publish what").
ACK_WAIT_S = 60.0
MAX_ACK_PENDING = 20_000
MAX_DELIVER = 1
# A reader that may not reset its consumer (a federation with credentials) reads again by
# sequence what its consumer delivered or acknowledged beyond its cursor, up to this many
# messages (batches in flight at a stop are at most about 7 x FETCH_BATCH), REREAD_PARALLEL
# requests at a time; sync and anti-entropy bring what lies beyond (PROTOCOL.md §9).
REREAD_MAX = 8 * FETCH_BATCH
REREAD_PARALLEL = 32
# How long an attaching reader waits for pull requests of its earlier connection to end
# (`Puller` requests expire after REQUEST_EXPIRES_S).
STALE_REQUESTS_S = REQUEST_EXPIRES_S + 1.0
# How long a first connect over TLS may take before it is given up and tried again (Bus.connect).
TLS_CONNECT_WITHIN_S = 15.0


# The largest message a stream takes: an event (64 KiB at most, PROTOCOL.md §2) and room.
MAX_MSG_SIZE = 70 * 1024
# In a federation with credentials each member publishes into its own stream, which holds
# its quota, and COOP sources them all (deploy/quotas.py, OPERATIONS.md §12).
MEMBER_STREAM_PREFIX = f"{STREAM}_"


def member_stream(slug: str) -> str:
    """The stream that takes a member's publishes, `COOP_<slug>`."""
    return f"{MEMBER_STREAM_PREFIX}{slug}"


def member_subjects(slug: str) -> str:
    """What a member's stream captures: its own events, `coop.<slug>.>`."""
    return f"coop.{slug}.>"


def stream_config(replicas: int = 1) -> StreamConfig:
    """The single COOP stream on `coop.>` of a federation without credentials (a dev
    federation on a plain nats-server, the demo, the bench): no quota. A federation with
    credentials has member streams and an aggregate instead (deploy/quotas.py)."""
    return StreamConfig(
        name=STREAM,
        subjects=[SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_S,
        max_msg_size=MAX_MSG_SIZE,
        num_replicas=replicas,
    )


def consumer_config(name: str, start: int = 1) -> ConsumerConfig:
    """A reader's durable pull consumer `name` on COOP (`node-<slug>`, `observer-<name>`),
    delivering from stream seq `start` (1: all). The operator makes it with `start` = 1
    (deploy/streams.py `ensure_consumers`); a reader without credentials makes its own from
    its cursor + 1. Pull: no `deliver_subject`, whose maker would choose where the stream
    goes (PROTOCOL.md §9 "Receiving")."""
    return ConsumerConfig(
        name=name,
        durable_name=name,
        filter_subject=SUBJECTS,
        ack_policy=AckPolicy.ALL,
        ack_wait=ACK_WAIT_S,
        max_ack_pending=MAX_ACK_PENDING,
        max_deliver=MAX_DELIVER,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE if start > 1 else DeliverPolicy.ALL,
        opt_start_seq=start if start > 1 else None,
    )


class StreamMissing(nats.errors.Error):
    """The COOP stream does not exist on the server and this bus does not create it (the
    operator does: `coopnet federation streams`, docs/OPERATIONS.md §7). `str()` says why."""


class ConsumerMissing(nats.errors.Error):
    """A reader's consumer is not on the server (or is not the operator's pull consumer)
    and this bus does not create it: the operator does (`coopnet federation streams`,
    PROTOCOL.md §9 "Attaching"). `str()` says why."""


class Bus:
    """One NATS connection with JetStream, reconnecting forever.

    `makes_stream`: a missing COOP stream is created (at start) and re-created (when the
    server lost it) by this bus; a node sets it when it runs without credentials (a dev
    federation on a plain nats-server). With credentials the operator creates the stream
    and the node's user may not (OPERATIONS.md §1, "Credentials and what they allow").

    `makes_consumer` (default: no `creds`): the reader's durable consumer is created, and
    deleted and created again to move it, by this bus. With credentials the operator makes
    it and the bus only reads it (`follow`, PROTOCOL.md §9 "Attaching")."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        creds: str | None = None,
        inbox: str = "_INBOX",
        makes_stream: bool = False,
        makes_consumer: bool | None = None,
        tls_ca: str | None = None,
    ) -> None:
        """`url`: one NATS URL or several, comma-separated (a cluster); `tls_ca`: a PEM file
        of the CA the servers' TLS certificates are checked against (OPERATIONS.md §11),
        read now: a ConfigError if it cannot be. A `tls://` URL without it trusts the
        system's CAs; a server that requires TLS is never talked to in plain text."""
        self.url = url
        self.name = name
        self.creds = creds
        self.tls: ssl.SSLContext | None = client_context(tls_ca) if tls_ca else None
        # A node's own inbox prefix: its credentials let only it subscribe there.
        self.inbox = inbox
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self.disconnects = 0
        self._closing = False
        # Set when the server closed the connection for good (nats-py does not reconnect
        # after an -ERR such as 'Authorization Violation': revoked or replaced credentials).
        self.lost = anyio.Event()
        # Whether this bus creates the COOP stream when it finds it missing (a node, in a
        # federation without credentials); cleared for good once the server refused.
        self.makes_stream = makes_stream
        # Why the stream is missing, "" while it is there (`GET /status`: stream_missing).
        self.stream_missing = ""
        self._stream_lock = anyio.Lock()
        # Whether this bus creates (and moves) its reader's consumer: never with credentials.
        self.makes_consumer = creds is None if makes_consumer is None else makes_consumer
        # Why the consumer is missing, "" while it is there (`GET /status`: consumer_missing).
        self.consumer_missing = ""

    def note_consumer(self, durable: str, missing: str = "") -> None:
        """Record (and log once) why `durable` cannot be read, or that it can again."""
        if missing and missing != self.consumer_missing:
            log.warning("%s: %s", self.name, missing)
        elif not missing and self.consumer_missing:
            log.warning("%s: consumer %s is there again", self.name, durable)
        self.consumer_missing = missing

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
        if self.tls is not None:
            options["tls"] = self.tls
        # A comma-separated list names the servers of a cluster: nats-py tries them all.
        servers = [u.strip() for u in self.url.split(",") if u.strip()]
        # nats-py 2.x never returns from a first connect whose TLS handshake failed (a hub
        # certificate the CA did not issue: its close then waits for the plain transport
        # start_tls replaced, nats.py issue #718). Bounded, the caller's backoff tries again
        # and logs why each time (connect_retrying); without TLS it keeps nats-py's own loop.
        tls = self.tls is not None or any(u.startswith("tls://") for u in servers)
        with anyio.fail_after(TLS_CONNECT_WITHIN_S if tls else None):
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

    async def ensure_stream(self) -> StreamInfo:
        """The COOP stream's info, creating the stream if it is missing (limits retention,
        file storage), whatever `makes_stream` says: for tools and tests on a plain server.

        In a federation with credentials the operator creates it (`coopnet federation
        streams`, or `up`; OPERATIONS.md §2, §7) and a node may not: `StreamMissing` then
        says so. Other `nats.errors.Error`s and `TimeoutError` mean the server did not
        answer (retry)."""
        return await self.stream_info(create=True)

    async def stream_info(self, *, create: bool | None = None) -> StreamInfo:
        """The COOP stream's info; a missing stream is re-created where this bus may
        (`create`, default `makes_stream`), once per call, never after a refusal.

        Followers and the outbox call it when the server answers "no stream", "no
        consumer" or "no responders" (a server that lost its JetStream store, a stream
        deleted): the stream is back at once in a federation without credentials, and
        `stream_missing` tells `GET /status` why it is not otherwise. Raises
        `StreamMissing` (the stream is not there), another `nats.errors.Error` or
        `TimeoutError` (the server did not answer)."""
        js = self.jetstream
        async with self._stream_lock:  # callers that notice together make one check
            try:
                info = await js.stream_info(STREAM)
            except nats.js.errors.NotFoundError:
                pass
            else:
                if self.stream_missing:
                    log.warning("%s: stream %s is there again", self.name, STREAM)
                self.stream_missing = ""
                return info
            why = "this node does not create it"
            if self.makes_stream if create is None else create:
                try:
                    info = await js.add_stream(stream_config())
                    log.info("%s: created stream %s on %s", self.name, STREAM, SUBJECTS)
                    self.stream_missing = ""
                    return info
                except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError):
                    raise  # the connection, not a refusal: the caller retries
                except (nats.errors.Error, TimeoutError) as exc:
                    try:
                        info = await js.stream_info(STREAM)  # another node made it meanwhile?
                    except nats.js.errors.NotFoundError:
                        # Credentials without the right (an operator-run federation), or a
                        # leaf's link: JetStream answers 'not authorized' or, for a publish
                        # permission, nothing at all. Never asked again on this bus.
                        self.makes_stream = False
                        why = f"this node may not create it ({exc!r})"
                    else:
                        self.stream_missing = ""
                        return info
            reason = (
                f"stream {STREAM} does not exist and {why}: the operator creates it"
                " (`coopnet federation streams DIR`, docs/OPERATIONS.md §7)"
            )
            if reason != self.stream_missing:
                log.warning("%s: %s", self.name, reason)
            self.stream_missing = reason
            raise StreamMissing(reason)

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
    (0.2 s doubling to 5 s) until they succeed, and return what `ready` returned. While
    `ready` raises `StreamMissing` the connection stays up (`bus_connected`, and the
    status says why in `stream_missing`) and only `ready` is tried again."""
    backoff = 0.2
    while True:
        try:
            if bus.nc is None:
                await bus.connect()
            return await ready()
        except StreamMissing:
            pass  # said once by Bus.stream_info; asked again, connected, after the backoff
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
    """Feed the stream to `handle` in batches, through the reader's durable pull consumer.

    `cursor` is the last stream sequence the store committed. If the consumer on the server
    has delivered or acknowledged beyond it (batches in flight when the node stopped or its
    connection was closed for good, or a store restored from a backup), the node reads
    again what its store does not hold: within the ack wait the server would not deliver
    those messages again, and an AckAll of a later one would acknowledge them unseen
    (PROTOCOL.md §9 "Attaching"). A bus that makes its consumer (no credentials) deletes it
    and creates it again from cursor + 1. One that may not (credentials: the operator made
    it) first reads stream seqs cursor + 1 … that point by sequence (`STREAM.MSG.GET`, at
    most REREAD_MAX messages; sync and anti-entropy bring any beyond), handing them to
    `handle` like a batch, then pulls. Messages the consumer delivers at or below the
    cursor it attached with (a consumer behind the store: made again by the operator) are
    acknowledged without being handled; seqs the consumer skipped (delivered elsewhere) are
    read by sequence in front of the batch that shows the hole (`_pull`). Before any of
    this, pull requests still open from an earlier connection are waited out (at most
    STALE_REQUESTS_S). `handle` commits the batch and the new cursor; then the batch is
    acknowledged (AckAll: one ack per batch).

    A consumer that is gone (its stream lost with the server's store, deleted, re-created)
    is attached again: to a new stream (its last seq below the cursor, or another creation
    time than the stream this follower read) from its start, the cursor then following the
    new stream's seqs (PROTOCOL.md §9). A consumer missing on a bus that may not make it is
    waited for (`ConsumerMissing`, said in `bus.consumer_missing`). Re-attachments that
    deliver nothing back off (0.5 s doubling to 5 s), and a missing stream or consumer is
    asked about again 0.2 s doubling to 5 s apart, so a server without them costs a few
    requests, not a busy loop.

    Up to PIPELINE_DEPTH batches are handled at once, started in stream order, so the next
    batch is verified while the one before commits. `handle` must pass its batch to
    `Chains.receive` before it awaits anything else: receives commit in the order they were
    called, which is then the stream's order.
    """
    created: datetime.datetime | None = None  # the stream this follower read, by creation
    idle = 0.5
    while True:
        attached = await _attach(bus, durable, cursor, created)
        start, created = attached.cursor, attached.created
        cursor = start
        try:
            whole = True
            if attached.reread > cursor:
                cursor, whole = await _reread(bus, durable, attached, handle)
            handled = (
                await _pull(bus, attached.puller, handle, cursor, attached.first)
                if whole
                else cursor
            )
        finally:
            with anyio.CancelScope(shield=True):
                await attached.puller.close()
        if handled > start:
            idle = 0.5
        else:  # the consumer went away before delivering anything: do not hammer the server
            await anyio.sleep(idle)
            idle = min(idle * 2, 5.0)
        cursor = handled


class Attached(NamedTuple):
    """A pull consumer attached to the stream: read it from `cursor` + 1; `created` names
    the stream it reads (StreamInfo.created), to tell a re-created stream apart. `reread`:
    the last stream seq the consumer delivered or acknowledged, when that is beyond
    `cursor` and the bus may not move the consumer (0 otherwise); `first`: the stream's
    first seq."""

    puller: Puller
    cursor: int
    created: datetime.datetime | None
    reread: int = 0
    first: int = 0


async def _attach(
    bus: Bus, durable: str, cursor: int, created: datetime.datetime | None
) -> Attached:
    backoff = 0.2
    while True:
        try:
            return await _subscribe(bus, durable, cursor, created)
        except (StreamMissing, ConsumerMissing):
            pass  # Bus.stream_info / Bus.note_consumer said why (and made it where it may)
        except (nats.errors.Error, TimeoutError) as exc:  # the bus is down or busy: retry
            log.warning("%s: cannot attach the consumer yet (%r); retrying", durable, exc)
        await anyio.sleep(backoff)
        backoff = min(backoff * 2, 5.0)


async def _messages_at(bus: Bus, first: int, last: int) -> list[Msg]:
    """The stream's messages at seqs `first` … `last`, read by sequence (`STREAM.MSG.GET`,
    REREAD_PARALLEL requests at a time), in seq order; seqs the stream no longer holds
    (discarded, aged out) are left out. They have no ack subject. Raises
    `nats.errors.Error` or `TimeoutError` when the server does not answer."""
    js, client = bus.jetstream, bus.client
    limit = anyio.Semaphore(REREAD_PARALLEL)
    found: dict[int, Msg] = {}

    async def get(n: int) -> None:
        async with limit:
            try:
                raw = await js.get_msg(STREAM, seq=n)
            except nats.js.errors.NotFoundError:
                return  # no longer in the stream: its author and peers hold it
        found[n] = Msg(client, subject=raw.subject or "", data=raw.data or b"",
                       headers=raw.headers)  # fmt: skip

    failed: BaseException | None = None
    try:
        async with anyio.create_task_group() as tg:
            for n in range(first, last + 1):
                tg.start_soon(get, n)
    except* (nats.errors.Error, TimeoutError) as group:
        failed = group.exceptions[0]
    if failed is not None:
        raise failed
    return [found[n] for n in sorted(found)]


async def _reread(
    bus: Bus,
    durable: str,
    attached: Attached,
    handle: Callable[[list[Msg], int], Awaitable[None]],
) -> tuple[int, bool]:
    """Hand `handle` the stream's messages from `attached.cursor` + 1 to `attached.reread`
    (at most REREAD_MAX of them), read by sequence (`_messages_at`), in batches of up to
    FETCH_BATCH seqs, each committed with its last seq as the cursor. Returns (the cursor
    now, whether every seq of the window was read: False when the server stopped
    answering, to attach again). The messages are not acknowledged."""
    cursor = attached.cursor
    end = min(attached.reread, cursor + REREAD_MAX)
    if attached.reread > end:
        log.warning(
            "%s: the consumer is %d messages beyond the store; reading the first %d again,"
            " the rest comes over sync (PROTOCOL.md §9)",
            durable,
            attached.reread - cursor,
            REREAD_MAX,
        )
    seq = max(cursor + 1, attached.first)
    while seq <= end:
        last = min(seq + FETCH_BATCH - 1, end)
        try:
            found = await _messages_at(bus, seq, last)
        except (nats.errors.Error, TimeoutError) as exc:
            log.info("%s: re-reading stopped at seq %d (%r)", durable, seq, exc)
            return cursor, False
        if found:
            await handle(found, last)
            cursor = last
        seq = last + 1
    log.info("%s: re-read stream seqs %d…%d by sequence", durable, attached.cursor + 1, end)
    return max(cursor, end), True


async def _pull(
    bus: Bus,
    puller: Puller,
    handle: Callable[[list[Msg], int], Awaitable[None]],
    cursor: int,
    first: int = 0,
) -> int:
    """Hand batches to `handle` until the consumer is gone; the last stream seq handled.
    Messages at or below `cursor` (the store holds them) are acknowledged, not handled.
    A batch that starts beyond the seq that should come next (from `cursor` + 1, or the
    stream's `first` seq): those messages were delivered elsewhere (into a connection lost
    and re-established by the client library, to a member's own pull aimed at another
    subject, to a request of an earlier connection still open after STALE_REQUESTS_S),
    so they are read by sequence (`_messages_at`, up to REREAD_MAX) and handled in front of
    the batch before anything beyond them is acknowledged; sync brings any beyond the bound
    (PROTOCOL.md §9 "Attaching")."""
    slots = anyio.Semaphore(PIPELINE_DEPTH)
    handled = cursor
    expected = max(cursor + 1, first)

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
            last = msgs[-1].metadata.sequence.stream
            begins = msgs[0].metadata.sequence.stream
            if begins <= cursor:  # a consumer behind the store
                if last <= cursor:
                    with contextlib.suppress(nats.errors.Error):
                        await msgs[-1].ack()
                    continue
                msgs = [m for m in msgs if m.metadata.sequence.stream > cursor]
                begins = msgs[0].metadata.sequence.stream
            if begins > expected:
                msgs = await _fill_hole(bus, puller.durable, expected, begins - 1) + msgs
            expected = max(expected, last + 1)
            await slots.acquire()
            tg.start_soon(run, msgs, last)
    return handled


async def _fill_hole(bus: Bus, durable: str, first: int, last: int) -> list[Msg]:
    """The messages at seqs `first` … `last` that the consumer delivered elsewhere, read
    by sequence (at most REREAD_MAX of them; none if the server does not answer: sync
    brings them)."""
    end = min(last, first + REREAD_MAX - 1)
    log.warning(
        "%s: stream seqs %d…%d were delivered elsewhere; reading %d…%d by sequence",
        durable,
        first,
        last,
        first,
        end,
    )
    try:
        return await _messages_at(bus, first, end)
    except (nats.errors.Error, TimeoutError) as exc:
        log.info("%s: cannot read them (%r); sync brings them", durable, exc)
        return []


def _beyond(info: ConsumerInfo) -> int:
    """The last stream seq the consumer delivered or acknowledged (0: none)."""
    acked = (info.ack_floor.stream_seq or 0) if info.ack_floor is not None else 0
    delivered = (info.delivered.stream_seq or 0) if info.delivered is not None else 0
    return max(acked, delivered)


async def _after_stale_requests(
    js: JetStreamContext, durable: str, info: ConsumerInfo
) -> ConsumerInfo | None:
    """The consumer's info once the pull requests waiting on it have ended, or after
    STALE_REQUESTS_S at most (checked every 0.25 s). A reader's consumer serves only that
    reader, so a request waiting when it attaches is one of its own earlier connection,
    which a hub with leaf links goes on delivering into until it expires: pulling now, the
    reader would share the next messages with it, and a last one would wait for
    anti-entropy (PROTOCOL.md §9 "Attaching"). None if the consumer went away meanwhile."""
    log.info("%s: %d earlier pull request(s) still open; waiting for them to end",
             durable, info.num_waiting)  # fmt: skip
    with anyio.move_on_after(STALE_REQUESTS_S):
        while info.num_waiting:
            await anyio.sleep(0.25)
            try:
                info = await js.consumer_info(STREAM, durable)
            except nats.js.errors.NotFoundError:
                return None
    return info


async def _subscribe(
    bus: Bus, durable: str, cursor: int, created: datetime.datetime | None = None
) -> Attached:
    """Attach `durable` to the stream from `cursor` + 1. A bus that makes its consumer
    creates (or re-creates) it where the one on the server would not deliver exactly that;
    one that may not raises `ConsumerMissing` when it is not there (or is not a pull
    consumer) and otherwise says in `Attached.reread` how far to read again by sequence.
    `created` is the creation time of the stream the cursor counts in, if this process
    read one."""
    js = bus.jetstream
    stream = await bus.stream_info()  # re-made here if lost, where this bus may
    last = stream.state.last_seq
    renewed = created is not None and stream.created is not None and stream.created != created
    if cursor and (last < cursor or renewed):
        # A new stream (lost, or the federation moved servers): its sequence numbers are not
        # the ones the store counted. Read it all; what the node holds is a no-op.
        log.warning(
            "%s: a new stream %s (it ends at seq %d%s; the store read up to %d): "
            "reading it from the start",
            durable,
            STREAM,
            last,
            ", created since this node read it" if renewed else "",
            cursor,
        )
        cursor = 0
        if bus.makes_consumer:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_consumer(STREAM, durable)
    try:
        info: ConsumerInfo | None = await js.consumer_info(STREAM, durable)
    except nats.js.errors.NotFoundError:
        info = None
    if (
        info is not None
        and info.num_waiting
        and not (bus.makes_consumer and _beyond(info) > cursor)
    ):
        info = await _after_stale_requests(js, durable, info)
    beyond = 0
    if info is not None and _beyond(info) > cursor:
        # Delivered and not committed (in flight at a stop) or acknowledged and lost (an
        # old backup): either way the store lacks it. PROTOCOL.md §9.
        beyond = _beyond(info)
        acked = info.ack_floor.stream_seq if info.ack_floor is not None else 0
        log.log(
            logging.WARNING if (acked or 0) > cursor else logging.INFO,
            "%s: consumer delivered or acknowledged up to stream seq %d, the store committed"
            " %d; reading again from %d",
            durable,
            beyond,
            cursor,
            cursor + 1,
        )
    if bus.makes_consumer:
        if info is not None and beyond:
            await js.delete_consumer(STREAM, durable)
            info, beyond = None, 0
        if info is None:
            await js.add_consumer(STREAM, consumer_config(durable, cursor + 1))
            log.info("%s: consumer created, reading from stream seq %d", durable, cursor + 1)
    elif info is None or info.config.deliver_subject:
        why = "missing" if info is None else "a push consumer, not the operator's"
        reason = (
            f"consumer {durable} on stream {STREAM} is {why} and this node may not create it:"
            " the operator makes it (`coopnet federation streams DIR`, docs/OPERATIONS.md §7)"
        )
        bus.note_consumer(durable, reason)
        raise ConsumerMissing(reason)
    bus.note_consumer(durable)
    puller = Puller(bus.client, STREAM, durable)
    await puller.start()
    return Attached(puller, cursor, stream.created, beyond, stream.state.first_seq)
