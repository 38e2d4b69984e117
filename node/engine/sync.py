"""Sync: a request/reply service through which any node serves ranges of an author's events.

Outside `coop.>` so it never lands in the stream: a request goes to `coopsync.<author>`
with `{"from": n, "to": m}` (m = 0: up to the responder's head); every node holding events
of that author in the range replies with `{"head": h, "events": [wire, ...]}` (at most
~512 KiB a reply). The requester gathers replies for a short while and hands every wire to
its chains: a validly signed event is accepted whoever relays it. Replies go to the
request's reply subject, `coopsync._reply.<requester>.<token>` (see `reply_subject`).

Anti-entropy: `coopsync._heads` (not a slug, so never an author) asks every node for the
heads it holds, `{"heads": {author: seq}}`. A node does this when it starts and then every
half minute, and fetches whatever a peer holds beyond its own heads: so a fresh node learns
of authors whose events the stream no longer has, and a quiet author's lost tail is found.

Giving up (PROTOCOL.md §9): a range whose request left it where it was (no peer had it, or
what peers served was refused) is not asked again, of any peer, before a back-off that
doubles with each fruitless request (`Backoff`: 2 s, 4 s, … 5 min for the gap filler; 30 s,
60 s, … 5 min for anti-entropy). A peer serving an invalid event is thus asked about it a
handful of times an hour, not every 2 s, and the refusal is counted once (node/engine/chains.py).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import anyio
import msgspec
import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from coopnet.node.engine.bus import Bus
from coopnet.node.engine.store import Store

log = logging.getLogger("coopnet.sync")

PREFIX = "coopsync"
REPLY_PREFIX = f"{PREFIX}._reply"
HEADS_SUBJECT = f"{PREFIX}._heads"
REPLY_MAX_BYTES = 512 * 1024
GATHER_S = 0.4
ANTI_ENTROPY_S = 30.0
GAP_POLL_S = 2.0  # the gap filler looks at the open gaps this often, and whenever woken
RETRY_FIRST_S = 2.0  # the first back-off of a range whose request brought nothing new
RETRY_MAX_S = 300.0  # the longest back-off


class SyncRequest(msgspec.Struct, kw_only=True, rename={"from_seq": "from", "to_seq": "to"}):
    from_seq: int
    to_seq: int = 0


class SyncReply(msgspec.Struct, kw_only=True):
    head: int
    events: list[bytes]
    by: str = ""  # the responder, so that a node can ignore its own replies


class HeadsReply(msgspec.Struct, kw_only=True):
    heads: dict[str, int]
    by: str = ""


_request_decoder = msgspec.msgpack.Decoder(SyncRequest)
_reply_decoder = msgspec.msgpack.Decoder(SyncReply)
_heads_decoder = msgspec.msgpack.Decoder(HeadsReply)
_encoder = msgspec.msgpack.Encoder()


def sync_subject(author: str) -> str:
    return f"{PREFIX}.{author}"


async def serve(bus: Bus, store: Store, heads: Callable[[], dict[str, int]], name: str) -> None:
    """Answer range and heads requests for every author this node holds, until cancelled."""

    async def on_request(msg: Msg) -> None:
        author = msg.subject.split(".", 1)[1] if "." in msg.subject else ""
        if not msg.reply or not author:
            return
        if msg.subject == HEADS_SUBJECT:
            with contextlib.suppress(nats.errors.Error):
                await msg.respond(_encoder.encode(HeadsReply(heads=heads(), by=name)))
            return
        try:
            req = _request_decoder.decode(msg.data)
        except (msgspec.MsgspecError, ValueError):
            log.info("%s: malformed sync request on %s", name, msg.subject)
            return
        head = heads().get(author, 0)
        if head == 0 or req.from_seq > head or req.from_seq < 1:
            return  # nothing to offer: stay silent, others may answer
        to = head if req.to_seq <= 0 else min(req.to_seq, head)
        wires = await store.range(author, req.from_seq, to, max_bytes=REPLY_MAX_BYTES)
        if not wires:
            return
        try:
            await msg.respond(_encoder.encode(SyncReply(head=head, events=wires, by=name)))
        except nats.errors.Error as exc:
            log.info("%s: sync reply failed: %s", name, exc)

    sub = await bus.client.subscribe(f"{PREFIX}.*", cb=on_request)
    try:
        await anyio.sleep_forever()
    finally:
        await _unsubscribe(sub)


def reply_subject(bus: Bus, requester: str) -> str:
    """Where answers to one request go: `coopsync._reply.<requester>.<token>` (PROTOCOL.md
    §9). A subject the requester's credentials may subscribe to, and every node may publish
    to, rather than an inbox answered through allow_responses, which does not cross a leaf
    link (nats-server #2949): so a neighborhood behind a leaf serves sync like any other."""
    if not requester:
        return bus.client.new_inbox()
    token = bus.client.new_inbox().rsplit(".", 1)[1]
    return f"{REPLY_PREFIX}.{requester}.{token}"


async def request_range(
    bus: Bus,
    author: str,
    from_seq: int,
    to_seq: int = 0,
    *,
    exclude: str = "",
    gather_s: float = GATHER_S,
) -> tuple[int, list[bytes]]:
    """Ask every peer for an author's events from_seq..to_seq; return (best head, wires).

    Gathers replies for up to `gather_s` seconds, or until one reply covers the whole range.
    Replies by `exclude` (the asking node itself) are ignored.
    """
    nc = bus.client
    inbox = reply_subject(bus, exclude)
    replies: list[SyncReply] = []
    done = anyio.Event()

    async def on_reply(msg: Msg) -> None:
        try:
            reply = _reply_decoder.decode(msg.data)
        except (msgspec.MsgspecError, ValueError):
            return
        if exclude and reply.by == exclude:
            return
        replies.append(reply)
        if to_seq and len(reply.events) >= to_seq - from_seq + 1:
            done.set()

    sub = await nc.subscribe(inbox, cb=on_reply)
    try:
        await nc.publish(
            sync_subject(author),
            _encoder.encode(SyncRequest(from_seq=from_seq, to_seq=to_seq)),
            reply=inbox,
        )
        # No `flush` (a PING round trip): the publish leaves at once, and a flush that times
        # out on a busy loop leaves nats-py a cancelled future it later fails to resolve.
        with anyio.move_on_after(gather_s):
            await done.wait()
    finally:
        await _unsubscribe(sub)
    head = max((r.head for r in replies), default=0)
    seen: set[bytes] = set()
    wires: list[bytes] = []
    for reply in replies:
        for wire in reply.events:
            if wire not in seen:
                seen.add(wire)
                wires.append(wire)
    return head, wires


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


async def fill_gaps(
    bus: Bus,
    missing: Callable[[], list[tuple[str, int, int]]],
    receive: Callable[[list[bytes]], Awaitable[object]],
    wake: Callable[[], Awaitable[None]],
    *,
    me: str,
    backoff: Backoff | None = None,
    poll_s: float = GAP_POLL_S,
) -> None:
    """Repair every open gap from peers, whenever woken and every `poll_s` seconds.

    `missing()` names the ranges wanted, (author, first, last). A range is asked again
    only after its back-off (`Backoff`): a gap that no peer can fill, or that a peer fills
    with an event this node refuses, is asked less and less often, never given up.
    """
    retry = backoff if backoff is not None else Backoff()
    while True:
        for author, first, last in missing():
            if not retry.due(author, first):
                continue
            retry.asked(author, first)
            try:
                _, wires = await request_range(bus, author, first, last, exclude=me)
            except (nats.errors.Error, TimeoutError) as exc:
                log.info("sync of %s %d..%d failed: %s", author, first, last, exc)
                continue
            if wires:
                log.info(
                    "sync: %d events of %s from peers (%d..%d)", len(wires), author, first, last
                )
                await receive(wires)
        with anyio.move_on_after(poll_s):
            await wake()


async def peer_heads(bus: Bus, *, exclude: str = "", gather_s: float = GATHER_S) -> dict[str, int]:
    """The highest head any peer (other than `exclude`) holds, per author."""
    nc = bus.client
    inbox = reply_subject(bus, exclude)
    best: dict[str, int] = {}

    async def on_reply(msg: Msg) -> None:
        try:
            reply = _heads_decoder.decode(msg.data)
        except (msgspec.MsgspecError, ValueError):
            return
        if exclude and reply.by == exclude:
            return
        for author, head in reply.heads.items():
            best[author] = max(best.get(author, 0), head)

    sub = await nc.subscribe(inbox, cb=on_reply)
    try:
        await nc.publish(HEADS_SUBJECT, b"", reply=inbox)
        await anyio.sleep(gather_s)
    finally:
        await _unsubscribe(sub)
    return best


async def anti_entropy(
    bus: Bus,
    heads: Callable[[], dict[str, int]],
    receive: Callable[[list[bytes]], Awaitable[object]],
    *,
    me: str,
    interval_s: float = ANTI_ENTROPY_S,
) -> None:
    """At start and then every `interval_s`: fetch what peers hold beyond our heads. A
    range that brought nothing new waits for its back-off (from `interval_s`, doubling)."""
    retry = Backoff(interval_s, max(interval_s, RETRY_MAX_S))
    while True:
        try:
            theirs = await peer_heads(bus, exclude=me)
            ours = heads()
            for author, head in sorted(theirs.items()):
                mine = ours.get(author, 0)
                while mine < head and retry.due(author, mine + 1):
                    retry.asked(author, mine + 1)
                    _, wires = await request_range(bus, author, mine + 1, head, exclude=me)
                    if not wires:
                        break
                    log.info("anti-entropy: %d events of %s from peers", len(wires), author)
                    await receive(wires)
                    if heads().get(author, 0) <= mine:
                        break  # no progress (refused, or a gap still open): next round
                    mine = heads().get(author, 0)
        except (nats.errors.Error, TimeoutError) as exc:
            log.info("anti-entropy round failed: %s", exc)
        await anyio.sleep(interval_s)


async def _unsubscribe(sub: Subscription) -> None:
    """Unsubscribe, even while cancelled; a connection already closed has nothing to undo."""
    with (
        anyio.CancelScope(shield=True),
        anyio.move_on_after(2),
        contextlib.suppress(nats.errors.Error),
    ):
        await sub.unsubscribe()
