"""A node never forks itself: before it signs, it recovers its own head from the bus and peers.

A store can be behind what the node already published: a power cut lost its latest writes,
or it was restored from an old backup. Signing at a seq already published would be
equivocation. So at start the node asks the stream (the newest message on its subjects) and
its peers (over sync) for its own events beyond its head, stores them, and only then signs.
Own events that were signed but never left the node, at seqs the published history already
uses, are taken out of the log and their bodies signed again on top of the recovered head.
"""

from __future__ import annotations

import logging

import nats.errors
import nats.js.errors

from coopnet.node.engine.bus import STREAM, Bus
from coopnet.node.engine.chains import Chains, RecentIds
from coopnet.node.engine.store import Store
from coopnet.node.engine.sync import request_range
from coopnet.protocol import Body, Envelope, InvalidEvent, unseal

log = logging.getLogger("coopnet.recovery")


class RecoveryError(RuntimeError):
    """The published history could not be restored; the node must not sign."""


async def published_head(bus: Bus, author: str, net: bytes) -> int:
    """The highest seq of `author` that the stream or any peer holds (0: none)."""
    best = 0
    wire = await bus.last_event_of(author)
    if wire is not None:
        try:
            env = unseal(wire, net=net)
            if env.author == author:
                best = env.seq
        except InvalidEvent as exc:
            log.warning("newest stream message of %s is invalid: %s", author, exc)
    head, _ = await request_range(bus, author, 1, 1, exclude=author)
    return max(best, head)


async def scan_stream(bus: Bus, author: str) -> list[bytes]:
    """Every message the stream holds on `coop.<author>.>`, oldest first."""
    js = bus.jetstream
    wires: list[bytes] = []
    seq = 1
    while True:
        try:
            msg = await js.get_msg(STREAM, seq=seq, subject=f"coop.{author}.>", next=True)
        except nats.js.errors.NotFoundError:
            return wires
        if msg.data:
            wires.append(bytes(msg.data))
        if msg.seq is None:
            return wires
        seq = msg.seq + 1


async def recover_own_head(
    bus: Bus, store: Store, chains: Chains, author: str
) -> tuple[int, list[Body]]:
    """Bring the store up to the published head of `author`.

    Returns the published head and the bodies of own events that had to be taken out of the
    log (signed, never published, at seqs the published history uses) for re-signing.
    """
    local = chains.head_of(author)
    local_seq = local.seq if local else 0
    remote = await published_head(bus, author, chains.net)
    if remote <= local_seq:
        return remote, []
    log.warning(
        "%s: the store's head is seq %d but seq %d was published: restoring before signing",
        author,
        local_seq,
        remote,
    )
    wires: list[bytes] = []
    got = 0
    while got < remote:
        _, part = await request_range(bus, author, max(got + 1, 1), remote, exclude=author)
        if not part:
            break
        wires.extend(part)
        got = max(_seq(w, chains.net) for w in part)
    if got < remote:
        try:
            wires.extend(await scan_stream(bus, author))
        except nats.errors.Error as exc:
            raise RecoveryError(f"{author}: could not read the stream: {exc}") from exc
    published = {}
    for wire in wires:
        try:
            env = unseal(wire, net=chains.net)
        except InvalidEvent:
            continue
        if env.author == author:
            published[env.seq] = env
    resign = await _discard_conflicting(store, chains, author, published)
    await chains.receive(list(wires), source="recovery")
    head = chains.head_of(author)
    if head is None or head.seq < remote:
        raise RecoveryError(
            f"{author}: published head is {remote}, restored only up to "
            f"{head.seq if head else 0}; refusing to sign until the rest is found"
        )
    log.info("%s: head restored to seq %d", author, head.seq)
    return remote, resign


async def _discard_conflicting(
    store: Store, chains: Chains, author: str, published: dict[int, Envelope]
) -> list[Body]:
    ours = await store.ids_at(author, sorted(published))
    conflicts = [s for s, pid in ((s, published[s].id) for s in ours) if ours[s] != pid]
    if not conflicts:
        return []
    first = min(conflicts)
    envs = await store.discard_own_after(author, first - 1)
    log.error(
        "%s: %d own events from seq %d were signed but never published, and the published "
        "history differs there; they are re-signed after the restored head",
        author,
        len(envs),
        first,
    )
    chains.states.pop(author, None)
    chains.recent = RecentIds()  # the discarded ids are no longer held
    await chains.load()
    return [e.body for e in envs]


def _seq(wire: bytes, net: bytes) -> int:
    try:
        return unseal(wire, net=net).seq
    except InvalidEvent:
        return 0
