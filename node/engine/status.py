"""A node's status, read from its store and, when it runs, its live parts (`GET /status`,
`coopnet node status`)."""

from __future__ import annotations

from typing import Any

import msgspec

from coopnet.node.engine.bus import CURSOR_KEY
from coopnet.node.engine.config import NodeConfig
from coopnet.node.engine.outbox import REFUSED_META, PublishRefused
from coopnet.node.engine.store import Store
from coopnet.node.engine.sync import SyncStats


class ForkRecord(msgspec.Struct, kw_only=True):
    author: str
    seq: int
    held_id: str
    other_id: str
    detected_at: int


class NodeStatus(msgspec.Struct, kw_only=True):
    slug: str
    display_name: str
    net: str
    own_head: int
    ready_to_sign: bool
    bus_url: str
    bus_connected: bool
    authors: dict[str, int]
    events_stored: int
    outbox_depth: int
    published: int
    rejected: dict[str, int]
    forks: list[ForkRecord]
    buffered: int  # events held beyond a gap, waiting for the missing range (PROTOCOL.md §6.4)
    stream_seq: int
    api_url: str
    internal_errors: int = 0
    buffered_bytes: int = 0  # their wire bytes (capped: node/engine/gaps.py)
    buffer_dropped: int = 0  # events left out of the buffer for a cap, since start
    bus_refused: str = ""  # why the node does not connect to the bus, when it will not
    # Why the COOP stream is missing, "" while it is there (bus_connected can be true
    # meanwhile: the server is up without the stream; OPERATIONS.md §7).
    stream_missing: str = ""
    # Why the node's consumer `node-<slug>` cannot be read, "" while it can: with
    # credentials the operator makes it (`coopnet federation streams`, PROTOCOL.md §9).
    consumer_missing: str = ""
    sync: SyncStats = msgspec.field(default_factory=SyncStats)  # dropped/refused (engine/sync.py)
    not_ready: str = ""  # why the node does not sign yet (its head is unconfirmed), if known
    # Why the bus refuses this node's events (its quota, OPERATIONS.md §12), if it does.
    publish_refused: PublishRefused | None = None
    # HTTP requests refused at the API's doors and connections it closed, by code, since
    # start (node/engine/http_doors.py, http_connections.py; OPERATIONS.md §13).
    http_refused: dict[str, int] = msgspec.field(default_factory=dict)


async def read_status(
    store: Store,
    config: NodeConfig,
    *,
    ready: bool = False,
    bus_url: str = "",
    bus_connected: bool = False,
    published: int = 0,
    buffered: int = 0,
    buffered_bytes: int = 0,
    buffer_dropped: int = 0,
    api_url: str = "",
    internal_errors: int = 0,
    bus_refused: str = "",
    stream_missing: str = "",
    consumer_missing: str = "",
    sync: SyncStats | None = None,
    not_ready: str = "",
) -> NodeStatus:
    """A node's status from its store (and, when it runs, its live parts).

    `rejected` counts distinct refused events by code (a re-delivery is not counted again);
    `buffered`, `buffered_bytes` and `buffer_dropped` describe the gap buffer; `sync` counts
    what sync dropped or refused since start (requests over the rate limit, oversized or
    malformed answers, claimed heads ignored: node/engine/sync.py `SyncStats`).
    """
    authors = await store.authors()
    forks = await store.forks()
    return NodeStatus(
        slug=config.slug,
        display_name=config.display_name,
        net=config.net,
        own_head=authors[config.slug].head_seq if config.slug in authors else 0,
        ready_to_sign=ready,
        bus_url=bus_url,
        bus_connected=bus_connected,
        authors={a: row.head_seq for a, row in sorted(authors.items())},
        events_stored=await store.event_count(),
        outbox_depth=await store.outbox_depth(),
        published=published,
        rejected=await all_rejections(store),
        forks=[
            ForkRecord(
                author=f.author,
                seq=f.seq,
                held_id=f.held_id.hex(),
                other_id=f.other_id.hex(),
                detected_at=f.detected_at,
            )
            for f in forks
        ],
        buffered=buffered,
        buffered_bytes=buffered_bytes,
        buffer_dropped=buffer_dropped,
        stream_seq=int(await store.meta(CURSOR_KEY) or 0),
        api_url=api_url,
        internal_errors=internal_errors,
        bus_refused=bus_refused,
        stream_missing=stream_missing,
        consumer_missing=consumer_missing,
        sync=sync if sync is not None else SyncStats(),
        not_ready=not_ready,
        publish_refused=_refusal(await store.meta(REFUSED_META)),
    )


def _refusal(stored: str | None) -> PublishRefused | None:
    if not stored:
        return None
    try:
        return msgspec.json.decode(stored, type=PublishRefused)
    except msgspec.DecodeError:
        return None


async def all_rejections(store: Store) -> dict[str, int]:
    """Refusals by code: on the way in (transport, PROTOCOL.md §4-6) and by the domain rules."""
    counts = await store.rejections()
    for code, count in await store.all(
        "SELECT code, COUNT(*) FROM domain_rejections GROUP BY code"
    ):
        counts[str(code)] = counts.get(str(code), 0) + int(count)
    return counts


def status_dict(status: NodeStatus) -> dict[str, Any]:
    return msgspec.to_builtins(status)  # type: ignore[no-any-return]
