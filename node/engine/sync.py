"""Sync: a request/reply service through which any node serves ranges of an author's events.

Outside `coop.>` so it never lands in the stream (PROTOCOL.md §9, "Sync"). Subjects, each
naming who publishes it as its last token, so that the server's permissions prove it:

* a range request `coopsync.<author>.<requester>`, payload `{"from": n, "to": m}` (m = 0:
  up to the responder's head); a heads request `coopsync._heads.<requester>`, empty;
* the request's reply subject is `coopreply.<requester>.<token>` (a fresh random token);
  a responder answers on `coopreply.<requester>.<token>.<responder>`, with
  `{"head": h, "events": [wire, ...], "by": slug}` or `{"heads": {author: seq}, "by": slug}`,
  at most `REPLY_MAX_BYTES`.

Credentials (deploy/nats_auth.py) let a user publish requests only under its own name and
answers only under its own name, and subscribe only to `coopsync.*.*` (the requests, which
are no secret) and `coopreply.<self>.>`: the server matches a subscription's subject against
that allow list token by token, so no wildcard (`coopreply.>`, `coopreply.*.>`, `>`) reaches
another user's replies. Requests stay under `coopsync.`, answers under their own root: any
answer under `coopsync.` would be read by a `coopsync.*.>` subscription, which
`coopsync.*.*` lets through (`*` matches the literal token `>`).

Nothing in a reply is believed but a signed event: the requester hands every wire to its
chains, which verify it under the author's key log. A reply's `head`, and a heads reply as a
whole, are hints: they pick at most `HINTS_PER_ROUND` bounded range requests a round, and
no count of the status comes from them. Answers are capped in bytes on both sides, one
answer per responder per request, at most `MAX_REPLIES` responders; a responder answers each
requester at most 10 requests a second (a token bucket, node/engine/pacing.py). Whatever is
dropped is counted in `SyncStats` (`/status`, `sync`).

Anti-entropy: a node asks for heads when it starts and then every half minute, and fetches
what a peer claims beyond its own heads: so a fresh node learns of authors whose events the
stream no longer has, and a quiet author's lost tail is found.

Giving up (PROTOCOL.md §9): a range whose request left it where it was (no peer had it, or
what peers served was refused) is not asked again, of any peer, before a back-off that
doubles with each fruitless request (`Backoff`: 2 s, 4 s, … 5 min for the gap filler; 30 s,
60 s, … 5 min for anti-entropy). A peer serving an invalid event is thus asked about it a
handful of times an hour, not every 2 s, and the refusal is counted once (node/engine/chains.py).
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import secrets
from collections.abc import Awaitable, Callable

import anyio
import msgspec
import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from coopnet.node.engine.bus import Bus
from coopnet.node.engine.pacing import RETRY_MAX_S
from coopnet.node.engine.pacing import Backoff as Backoff  # re-exported: sync's callers use it
from coopnet.node.engine.pacing import RateLimit as RateLimit
from coopnet.node.engine.store import Store
from coopnet.protocol.envelope import AUTHOR_RE

log = logging.getLogger("coopnet.sync")

PREFIX = "coopsync"  # requests: coopsync.<author>.<requester>, coopsync._heads.<requester>
REPLY_ROOT = "coopreply"  # answers: coopreply.<requester>.<token>.<responder>
HEADS = "_heads"  # not a slug (slugs start with a letter), so never an author
REPLY_MAX_BYTES = 512 * 1024  # the events of one range answer, at most (one event may pass it)
REPLY_ACCEPT_BYTES = REPLY_MAX_BYTES + 80 * 1024  # a larger answer is dropped undecoded
HEADS_MAX_AUTHORS = 8192  # the authors of one heads answer, at most (~350 KiB)
MAX_REPLIES = 64  # answers gathered for one request, one per responder
HINTS_PER_ROUND = 64  # range requests one anti-entropy round may make, at most
UNKNOWN_AUTHORS_PER_ROUND = 1024  # claimed heads of authors not known yet, kept a round
GATHER_S = 0.4
ANTI_ENTROPY_S = 30.0
GAP_POLL_S = 2.0  # the gap filler looks at the open gaps this often, and whenever woken
MAX_SEQ = 2**63 - 1

# A requester or responder token: a slug, or `observer-<name>` (deploy/nats_auth.py).
_NAME_RE = re.compile(r"[a-z][a-z0-9-]{1,63}")


class SyncRequest(msgspec.Struct, kw_only=True, rename={"from_seq": "from", "to_seq": "to"}):
    from_seq: int
    to_seq: int = 0


class SyncReply(msgspec.Struct, kw_only=True):
    head: int  # the responder's head for the author: a hint, never believed
    events: list[bytes]
    by: str = ""  # the responder (also the answer subject's last token, which is proven)


class HeadsReply(msgspec.Struct, kw_only=True):
    heads: dict[str, int]  # claims: a hint for range requests, never believed
    by: str = ""


class SyncStats(msgspec.Struct, kw_only=True):
    """What sync dropped or refused since start (`/status` field `sync`), all counts.

    As a responder: `served` requests answered, `rate_limited` dropped by the per-requester
    limit, `bad_requests` malformed or with a reply subject not the requester's own. As a
    requester: `replies_oversized` answers beyond `REPLY_ACCEPT_BYTES` (dropped undecoded),
    `replies_malformed`, `replies_extra` (a second answer of one responder, or beyond
    `MAX_REPLIES`), `hints_ignored` claimed heads not acted upon (invalid, or beyond a
    round's cap: `HINTS_PER_ROUND`, `UNKNOWN_AUTHORS_PER_ROUND`)."""

    served: int = 0
    rate_limited: int = 0
    bad_requests: int = 0
    replies_oversized: int = 0
    replies_malformed: int = 0
    replies_extra: int = 0
    hints_ignored: int = 0


_request_decoder = msgspec.msgpack.Decoder(SyncRequest)
_reply_decoder = msgspec.msgpack.Decoder(SyncReply)
_heads_decoder = msgspec.msgpack.Decoder(HeadsReply)
_encoder = msgspec.msgpack.Encoder()


def sync_subject(author: str, requester: str) -> str:
    """A range request for `author`'s events, published by `requester`."""
    return f"{PREFIX}.{author}.{requester}"


def heads_subject(requester: str) -> str:
    """A heads request, published by `requester`."""
    return f"{PREFIX}.{HEADS}.{requester}"


def reply_subject(requester: str) -> str:
    """Where answers to one request of `requester` go: `coopreply.<requester>.<token>`,
    each responder appending `.<responder>`. A plain subject that only the requester's
    credentials may subscribe to, rather than an inbox answered through allow_responses,
    which does not cross a leaf link (nats-server #2949)."""
    return f"{REPLY_ROOT}.{requester}.{secrets.token_hex(8)}"


def _requester_of(subject: str, reply: str) -> tuple[str, str] | None:
    """(author or `_heads`, requester) of a request, when its reply subject is the
    requester's own `coopreply.<requester>.<token>`; else None."""
    parts = subject.split(".")
    back = reply.split(".")
    if len(parts) != 3 or len(back) != 3 or back[0] != REPLY_ROOT or not back[2]:
        return None
    _, author, requester = parts
    if back[1] != requester or not _NAME_RE.fullmatch(requester):
        return None
    if author != HEADS and not AUTHOR_RE.fullmatch(author):
        return None
    return author, requester


def heads_window(heads: dict[str, int], turn: int, size: int = HEADS_MAX_AUTHORS) -> dict[str, int]:
    """The heads one answer lists: all of them, or when there are more than `size`, `size`
    of them from a place that moves on with every answer (`turn`), so that in a federation
    larger than one answer every author is listed within a few rounds."""
    if len(heads) <= size:
        return heads
    authors = sorted(heads)
    start = (turn * size) % len(authors)
    picked = (authors + authors)[start : start + size]
    return {a: heads[a] for a in picked}


async def serve(
    bus: Bus,
    store: Store,
    heads: Callable[[], dict[str, int]],
    name: str,
    *,
    stats: SyncStats | None = None,
    limit: RateLimit | None = None,
) -> None:
    """Answer range and heads requests for every author this node holds, until cancelled.

    A request is answered only when its reply subject is its publisher's own
    (`coopreply.<requester>.…`) and the requester's bucket (`limit`) has a token; else it
    is dropped and counted in `stats`. Nodes holding nothing in a range stay silent.
    """
    counts = stats if stats is not None else SyncStats()
    bucket = limit if limit is not None else RateLimit()
    turn = 0

    async def answer(reply: str, payload: bytes) -> None:
        try:
            await bus.client.publish(f"{reply}.{name}", payload)
            counts.served += 1
        except nats.errors.Error as exc:
            log.info("%s: sync reply failed: %s", name, exc)

    async def on_request(msg: Msg) -> None:
        nonlocal turn
        who = _requester_of(msg.subject, msg.reply or "")
        if who is None:
            counts.bad_requests += 1
            return
        author, requester = who
        if requester == name:
            return  # our own request
        if not bucket.allow(requester):
            counts.rate_limited += 1
            return
        if author == HEADS:
            turn += 1
            window = heads_window(heads(), turn)
            await answer(msg.reply, _encoder.encode(HeadsReply(heads=window, by=name)))
            return
        try:
            req = _request_decoder.decode(msg.data)
        except (msgspec.MsgspecError, ValueError):
            counts.bad_requests += 1
            return
        head = heads().get(author, 0)
        if head == 0 or req.from_seq > head or req.from_seq < 1:
            return  # nothing to offer: stay silent, others may answer
        to = head if req.to_seq <= 0 else min(req.to_seq, head)
        wires = await store.range(author, req.from_seq, to, max_bytes=REPLY_MAX_BYTES)
        if wires:
            await answer(msg.reply, _encoder.encode(SyncReply(head=head, events=wires, by=name)))

    sub = await bus.client.subscribe(f"{PREFIX}.*.*", cb=on_request)
    try:
        await anyio.sleep_forever()
    finally:
        await _unsubscribe(sub)


async def _gather(
    bus: Bus,
    subject: str,
    payload: bytes,
    me: str,
    on_reply: Callable[[bytes], None],
    stats: SyncStats,
    gather_s: float,
) -> None:
    """Publish one request as `me` and hand each acceptable answer's bytes to `on_reply`
    for `gather_s` seconds: one answer per responder (named by the answer subject's last
    token, which its credentials prove), none of `me`, at most `MAX_REPLIES`, each at most
    `REPLY_ACCEPT_BYTES` (checked before anything is decoded)."""
    nc = bus.client
    inbox = reply_subject(me)
    responders: set[str] = set()

    async def on_msg(msg: Msg) -> None:
        responder = msg.subject.rsplit(".", 1)[1]
        if responder == me:
            return
        if responder in responders or len(responders) >= MAX_REPLIES:
            stats.replies_extra += 1
            return
        responders.add(responder)
        if len(msg.data) > REPLY_ACCEPT_BYTES:
            stats.replies_oversized += 1
            return
        on_reply(msg.data)

    sub = await nc.subscribe(f"{inbox}.*", cb=on_msg)
    try:
        # No `flush` (a PING round trip): the publish leaves at once, and a flush that times
        # out on a busy loop leaves nats-py a cancelled future it later fails to resolve.
        await nc.publish(subject, payload, reply=inbox)
        await anyio.sleep(gather_s)
    finally:
        await _unsubscribe(sub)


async def request_range(
    bus: Bus,
    author: str,
    from_seq: int,
    to_seq: int = 0,
    *,
    me: str,
    gather_s: float = GATHER_S,
    stats: SyncStats | None = None,
) -> list[bytes]:
    """Ask every peer for an author's events from_seq..to_seq (to_seq 0: up to the peer's
    head), as `me`; return the distinct wires of the answers gathered in `gather_s` seconds.

    Nothing here is believed: the caller verifies every wire (its chains). Answers' `head`
    fields are not returned (PROTOCOL.md §9: a claimed head counts for nothing). Always
    waits the whole `gather_s`: an answer claiming to cover the range may be a rogue's."""
    counts = stats if stats is not None else SyncStats()
    seen: set[bytes] = set()
    wires: list[bytes] = []

    def on_reply(data: bytes) -> None:
        try:
            reply = _reply_decoder.decode(data)
        except (msgspec.MsgspecError, ValueError):
            counts.replies_malformed += 1
            return
        for wire in reply.events:
            if wire not in seen:
                seen.add(wire)
                wires.append(wire)

    request = _encoder.encode(SyncRequest(from_seq=from_seq, to_seq=to_seq))
    await _gather(bus, sync_subject(author, me), request, me, on_reply, counts, gather_s)
    return wires


async def peer_heads(
    bus: Bus,
    ours: dict[str, int],
    *,
    me: str,
    gather_s: float = GATHER_S,
    stats: SyncStats | None = None,
) -> dict[str, int]:
    """What peers claim beyond `ours` (author: seq): the highest claim per author, only
    where it is above our own head. Claims, not evidence (PROTOCOL.md §9): bounded to the
    authors in `ours` plus `UNKNOWN_AUTHORS_PER_ROUND` others; an entry that is no slug or
    no seq (1 .. 2^63-1), or beyond the bounds, is counted in `hints_ignored`."""
    counts = stats if stats is not None else SyncStats()
    best: dict[str, int] = {}
    unknown = 0

    def on_reply(data: bytes) -> None:
        nonlocal unknown
        try:
            reply = _heads_decoder.decode(data)
        except (msgspec.MsgspecError, ValueError):
            counts.replies_malformed += 1
            return
        for author, head in reply.heads.items():
            if not (1 <= head <= MAX_SEQ) or not AUTHOR_RE.fullmatch(author):
                counts.hints_ignored += 1
            elif head <= ours.get(author, 0):
                continue
            elif author in best:
                best[author] = max(best[author], head)
            elif author not in ours and unknown >= UNKNOWN_AUTHORS_PER_ROUND:
                counts.hints_ignored += 1
            else:
                unknown += author not in ours
                best[author] = head

    await _gather(bus, heads_subject(me), b"", me, on_reply, counts, gather_s)
    return best


async def fill_gaps(
    bus: Bus,
    missing: Callable[[], list[tuple[str, int, int]]],
    receive: Callable[[list[bytes]], Awaitable[object]],
    wake: Callable[[], Awaitable[None]],
    *,
    me: str,
    backoff: Backoff | None = None,
    poll_s: float = GAP_POLL_S,
    stats: SyncStats | None = None,
) -> None:
    """Repair every open gap from peers, whenever woken and every `poll_s` seconds.

    `missing()` names the ranges wanted, (author, first, last): gaps behind verified
    events (the gap buffer), never a claimed head. A range is asked again only after its
    back-off (`Backoff`): a gap that no peer can fill, or that a peer fills with an event
    this node refuses, is asked less and less often, never given up.
    """
    retry = backoff if backoff is not None else Backoff()
    while True:
        for author, first, last in missing():
            if not retry.due(author, first):
                continue
            retry.asked(author, first)
            try:
                wires = await request_range(bus, author, first, last, me=me, stats=stats)
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


async def anti_entropy(
    bus: Bus,
    heads: Callable[[], dict[str, int]],
    receive: Callable[[list[bytes]], Awaitable[object]],
    *,
    me: str,
    interval_s: float = ANTI_ENTROPY_S,
    stats: SyncStats | None = None,
    hints_per_round: int = HINTS_PER_ROUND,
) -> None:
    """At start and then every `interval_s`: fetch what peers claim beyond our heads.

    A claim is a hint: it makes at most `hints_per_round` range requests a round (authors
    this node knows first, in random order, so that no rogue list of claims decides which),
    an author's range is asked again in the same round only while the previous answer
    brought verified progress, and a range that brought nothing new waits for its back-off
    (from `interval_s`, doubling). Heads move only by events `receive` accepts.
    """
    counts = stats if stats is not None else SyncStats()
    retry = Backoff(interval_s, max(interval_s, RETRY_MAX_S))
    while True:
        try:
            ours = heads()
            theirs = list((await peer_heads(bus, ours, me=me, stats=counts)).items())
            random.shuffle(theirs)
            theirs.sort(key=lambda item: item[0] not in ours)  # known authors first
            asked = 0
            for i, (author, head) in enumerate(theirs):
                if asked >= hints_per_round:
                    counts.hints_ignored += len(theirs) - i
                    break
                mine = heads().get(author, 0)
                while mine < head and asked < hints_per_round and retry.due(author, mine + 1):
                    retry.asked(author, mine + 1)
                    asked += 1
                    wires = await request_range(bus, author, mine + 1, head, me=me, stats=counts)
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
