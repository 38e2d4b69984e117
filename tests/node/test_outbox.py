"""The outbox publisher against a real nats-server: exactly once, in seq order, and the
hand-over of freshly committed events that spares reading them back from the store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import nats
import pytest

from coopnet.node.engine.bus import Bus
from coopnet.node.engine.chains import Chains
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.outbox import Publisher
from coopnet.protocol import Envelope, Identity, NotePosted
from tests.conftest import NET
from tests.processes import stream_messages
from tests.stores import open_node_store

OAK = Identity.from_passphrase("oakley", "outbox")


@asynccontextmanager
async def publishing(url: str, data: Path) -> AsyncIterator[tuple[Chains, Publisher, list[int]]]:
    """A store, chains and a publisher wired as a node wires them; the list counts the
    publisher's reads of the outbox table."""
    store = await open_node_store(data / "node.db", NET)
    bus = Bus(url, name="outbox-test")
    await bus.connect()
    await bus.ensure_stream()
    publisher = Publisher(store, bus, "oakley")
    reads: list[int] = []
    real_batch = store.outbox_batch

    async def counted(limit: int = 256) -> list[tuple[bytes, str, bytes]]:
        rows = await real_batch(limit)
        reads.append(len(rows))
        return rows

    store.outbox_batch = counted  # type: ignore[method-assign]
    chains = Chains(store, NET, on_appended=publisher.wake)
    try:
        yield chains, publisher, reads
    finally:
        await bus.close()
        await store.close()


async def post(chains: Chains, n: int) -> list[Envelope]:
    out = []
    for i in range(n):
        body = OAK.founding_body("Oak", "C1") if chains.head_of("oakley") is None else None
        out.append(await chains.append("oakley", OAK.signing_key, body or NotePosted(text=f"{i}")))
    return out


async def stream_ids(url: str) -> list[str]:
    return [(m.headers or {}).get("Nats-Msg-Id", "") for m in await stream_messages(url)]


def hexes(envs: Sequence[Envelope]) -> list[str]:
    return [e.id.hex() for e in envs]


async def test_fresh_events_are_published_without_reading_them_back(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with publishing(nats_server.url, tmp_path) as (chains, publisher, reads):
        first = await post(chains, 3)
        assert await publisher.drain() == 3  # not caught up yet: read from the table
        assert await publisher.drain() == 0  # the table is empty: caught up
        reads_before = len(reads)
        later = await post(chains, 4)
        assert await publisher.drain() == 4
        assert len(reads) == reads_before  # handed over, not read back
        assert await chains.store.outbox_depth() == 0
        assert await stream_ids(nats_server.url) == hexes(first + later)


async def test_after_a_failed_publish_the_table_decides_again(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    async with publishing(nats_server.url, tmp_path) as (chains, publisher, reads):
        first = await post(chains, 2)
        assert await publisher.drain() == 2
        await publisher.drain()  # caught up
        await publisher.bus.close()  # the bus goes away with events handed over
        stranded = await post(chains, 3)
        with pytest.raises(nats.errors.Error):
            await publisher.drain()
        await publisher.bus.connect()
        reads_before = len(reads)
        more = await post(chains, 2)
        assert await publisher.drain() == 5  # the stranded ones first, from the table
        assert len(reads) > reads_before
        assert await chains.store.outbox_depth() == 0
        assert await stream_ids(nats_server.url) == hexes(first + stranded + more)
