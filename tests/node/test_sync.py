"""Sync that gives up (PROTOCOL.md §9): a range whose request brought nothing new is asked
again only after a back-off that doubles, and an invalid event a peer keeps serving is
counted once. Over a real nats-server, with a rogue peer answering sync requests."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import msgspec
import nats
import pytest
from nats.aio.msg import Msg

from coopnet.node.engine import sync
from coopnet.node.engine.bus import Bus
from coopnet.node.engine.chains import Chains
from coopnet.node.engine.nats_server import NatsServer
from coopnet.protocol.envelope import encode_wire
from tests.node.test_chains import NET, NOW, OAK, history
from tests.stores import open_node_store

pytestmark = pytest.mark.timeout(30)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_up_to_its_cap_per_range() -> None:
    clock = FakeClock()
    retry = sync.Backoff(2.0, 10.0, clock=clock)
    assert retry.due("oakley", 5)
    waits = []
    for _ in range(5):
        retry.asked("oakley", 5)
        start = clock.now
        while not retry.due("oakley", 5):
            clock.now += 0.5
        waits.append(clock.now - start)
    assert waits == [2.0, 4.0, 8.0, 10.0, 10.0]
    # Another range (the head moved on: a new first seq) is asked at once.
    assert retry.due("oakley", 6) and retry.due("elm", 5)
    # A range not asked again for max_s after it was due is forgotten (its gap closed).
    clock.now += 10.5
    retry.asked("elm", 5)
    assert retry.remembered == 1
    retry.asked("oakley", 5)
    clock.now += 2.0
    assert retry.due("oakley", 5)  # starts again from first_s


@contextlib.asynccontextmanager
async def rogue_peer(url: str, served: list[bytes], asked: list[float]) -> AsyncIterator[None]:
    """A peer that answers every sync request for oakley with `served` (invalid events)."""
    nc = await nats.connect(url)

    async def answer(msg: Msg) -> None:
        asked.append(anyio.current_time())
        reply = sync.SyncReply(head=99, events=served, by="rogue")
        await nc.publish(f"{msg.reply}.rogue", msgspec.msgpack.encode(reply))

    await nc.subscribe("coopsync.oakley.*", cb=answer)
    try:
        yield
    finally:
        await nc.close()


async def test_a_peer_serving_an_invalid_event_is_not_asked_every_poll(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    store = await open_node_store(tmp_path / "n.db", NET)
    chains = Chains(store, NET, clock=lambda: NOW)
    await chains.load()
    events = history(OAK, 5)
    await chains.receive([events[0].wire, events[4].wire], source="bus")
    assert chains.missing() == [("oakley", 2, 4)]
    # The rogue covers the whole range 2..4, every event with a broken signature.
    broken = []
    for e in events[1:4]:
        header, sig, body = msgspec.msgpack.decode(e.wire, type=tuple[bytes, bytes, bytes])
        broken.append(encode_wire(header, bytes([sig[0] ^ 1]) + sig[1:], body))
    asked: list[float] = []
    bus = Bus(nats_server.url, name="requester")
    await bus.connect()

    async def receive(wires: list[bytes]) -> object:
        return await chains.receive(wires, source="sync")

    async def never_woken() -> None:
        await anyio.sleep_forever()

    try:
        async with rogue_peer(nats_server.url, broken, asked), anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: sync.fill_gaps(
                    bus, chains.gaps_to_fetch, receive, never_woken, me="requester",
                    backoff=sync.Backoff(0.2, 10.0), poll_s=0.02,
                )
            )  # fmt: skip
            await anyio.sleep(1.7)
            tg.cancel_scope.cancel()
    finally:
        await bus.close()
    # Asked at about 0, 0.4, 0.8 and 1.6 s (each request gathers answers for 0.4 s; polling
    # every 0.02 s without the back-off would have asked some 40 times); each broken event
    # counted once, however often it came.
    assert 3 <= len(asked) <= 5, asked
    assert await store.rejections() == {"bad_signature": 3}
    assert chains.rejected_since_start == {"bad_signature": 3}
    assert chains.missing() == [("oakley", 2, 4)]  # never given up
    await store.close()
