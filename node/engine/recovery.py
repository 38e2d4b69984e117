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
from coopnet.node.engine.gaps import signed_by_known_key
from coopnet.node.engine.store import Store
from coopnet.node.engine.sync import SyncStats, request_range
from coopnet.protocol import Body, Envelope, InvalidEvent, unseal

log = logging.getLogger("coopnet.recovery")


class RecoveryError(RuntimeError):
    """The published history could not be restored; the node must not sign."""


class SlugTaken(RecoveryError):
    """Peers hold another log under this node's slug, founded with another key that their
    rules accept (a squatter, in a federation whose charter asks for no admission ticket,
    PROTOCOL.md §16.6): every event this node signs would be refused, so it signs none."""


def _own_key(chains: Chains, author: str, env: Envelope) -> bool:
    """Whether `env` is signed by a key of the author's known key log, its current key or
    the one it committed to next (PROTOCOL.md §5; the gap buffer's rule): what a rogue
    cannot forge."""
    st = chains.states.get(author)
    return signed_by_known_key(st.keys if st else None, None, env)


async def published_head(
    bus: Bus, chains: Chains, author: str, *, stats: SyncStats | None = None
) -> int:
    """The highest seq of `author` that the stream or a peer holds *a signed event of*.

    A peer's claimed head is a claim, not evidence: only events signed by the author's own
    key count (PROTOCOL.md §9, "Recovering one's own head"), so a member answering with a
    head of 10^12 and no event cannot keep a node from signing. 0: none beyond the store.
    """
    best = 0
    wire = await bus.last_event_of(author)
    if wire is not None:
        try:
            env = unseal(wire, net=chains.net)
            if env.author == author and _own_key(chains, author, env):
                best = env.seq
        except InvalidEvent as exc:
            log.warning("newest stream message of %s is invalid: %s", author, exc)
    local = chains.head_of(author)
    beyond = await _fetch_beyond(bus, chains, author, local.seq if local else 0, stats)
    signed = [e.seq for e in beyond]
    return max(best, *signed) if signed else best


async def _fetch_beyond(
    bus: Bus, chains: Chains, author: str, top: int, stats: SyncStats | None
) -> list[Envelope]:
    """Every event of `author` above seq `top`, signed by its own key, that peers serve,
    asked for range by range until a range brings nothing higher (a reply is capped in
    bytes). Only own-key events move the next range on: a rogue serving events it signed
    itself under the author's name cannot keep the node asking forever."""
    found: dict[int, Envelope] = {}
    frm = top + 1
    while True:
        part = await request_range(bus, author, frm, 0, me=author, stats=stats)
        higher = [
            e
            for e in _unsealed(part, chains.net)
            if e.author == author and e.seq >= frm and _own_key(chains, author, e)
        ]
        if not higher:
            return [found[s] for s in sorted(found)]
        for e in higher:
            found.setdefault(e.seq, e)
        frm = max(e.seq for e in higher) + 1


def _unsealed(wires: list[bytes], net: bytes) -> list[Envelope]:
    out = []
    for wire in wires:
        try:
            out.append(unseal(wire, net=net))
        except InvalidEvent:
            continue
    return out


async def check_slug_free(bus: Bus, chains: Chains, author: str) -> None:
    """Raise SlugTaken if peers serve a seq 1 of `author` founded with a key other than this
    node's that this federation's rules accept (`Chains.found`). Asked only while nothing
    of the node's own has been seen published: a log peers already hold is not in doubt."""
    wires = await request_range(bus, author, 1, 1, me=author)
    own = chains.states.get(author)
    mine = own.keys.current_key if own and own.keys else None
    for env in _unsealed(wires, chains.net):
        if env.author != author or env.seq != 1 or _own_key(chains, author, env):
            continue
        try:
            chains.found(env)
        except InvalidEvent:
            continue  # a squatter's log the rules refuse (no admission ticket): harmless
        raise SlugTaken(
            f"{author}: peers hold another log under this slug, founded with key "
            f"{env.key.hex()[:16]}… (this node's is {mine.hex()[:16] if mine else '?'}…); "
            "every event this node signed would be refused as a fork. The operator must "
            "retire that log or give this neighborhood another slug (docs/OPERATIONS.md §3)"
        )


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
    bus: Bus, store: Store, chains: Chains, author: str, *, stats: SyncStats | None = None
) -> tuple[int, list[Body]]:
    """Bring the store up to the published head of `author`.

    Returns the published head and the bodies of own events that had to be taken out of the
    log (signed, never published, at seqs the published history uses) for re-signing.
    """
    local = chains.head_of(author)
    local_seq = local.seq if local else 0
    remote = await published_head(bus, chains, author, stats=stats)
    if remote == 0:
        await check_slug_free(bus, chains, author)
    if remote <= local_seq:
        return local_seq, []
    log.warning(
        "%s: the store's head is seq %d but seq %d was published: restoring before signing",
        author,
        local_seq,
        remote,
    )
    # From seq 1, not only beyond the head: published events at seqs this store holds
    # other events at (signed here after a restore, never published) must be seen, so
    # that those are re-signed rather than taken for a fork (`_discard_conflicting`).
    wires: list[bytes] = []
    got = 0
    while got < remote:
        part = await request_range(bus, author, max(got + 1, 1), remote, me=author, stats=stats)
        if not part:
            break
        wires.extend(part)
        signed = [e.seq for e in _unsealed(part, chains.net) if _own_key(chains, author, e)]
        if not signed or max(signed) <= got:
            break
        got = max(signed)
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
        # Only events the node's own key log signed can show that another history of it
        # was published; anyone can serve a wire that names it (PROTOCOL.md §9).
        if env.author == author and _own_key(chains, author, env):
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
    try:
        envs = await store.discard_own_after(author, first - 1)
    except RuntimeError as exc:  # the store refuses to drop what was published: do not sign
        raise RecoveryError(str(exc)) from exc
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
