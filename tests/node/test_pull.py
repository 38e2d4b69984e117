"""Reading the durable consumer in batches (`Puller`) against a real nats-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import nats
import pytest
from anyio.abc import TaskGroup
from nats.aio.msg import Msg

from coopnet.node.engine import pull
from coopnet.node.engine.bus import STREAM, Bus, _subscribe
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.pull import ConsumerGone, Puller


@asynccontextmanager
async def attached(url: str, durable: str = "node-test") -> AsyncIterator[tuple[Bus, Puller]]:
    bus = Bus(url, name="pull-test")
    await bus.connect()
    await bus.ensure_stream()
    puller = (await _subscribe(bus, durable, 0)).puller
    try:
        yield bus, puller
    finally:
        await puller.close()
        await bus.close()


async def publish(bus: Bus, n: int, start: int = 0) -> None:
    acks = [await bus.jetstream.publish_async("coop.aa.note", b"%d" % i) for i in range(start, n)]
    for ack in acks:
        await ack


def seqs(msgs: list[Msg]) -> list[int]:
    return [m.metadata.sequence.stream for m in msgs]


def fetch_into(tg: TaskGroup, puller: Puller) -> list[Msg]:
    """Start one `fetch` in the background; its messages land in the list returned."""
    got: list[Msg] = []

    async def reader() -> None:
        got.extend(await puller.fetch(512))

    tg.start_soon(reader)
    return got


async def fetch_at_least(puller: Puller, n: int) -> list[Msg]:
    with anyio.fail_after(10):
        got = await puller.fetch(512)
        while len(got) < n:
            got += await puller.fetch(512)
    return got


async def filled(got: list[Msg], within: float) -> None:
    with anyio.fail_after(within):
        while not got:  # noqa: ASYNC110
            await anyio.sleep(0.01)


async def test_a_backlog_comes_in_full_batches_in_order(nats_server: NatsServer) -> None:
    async with attached(nats_server.url) as (bus, puller):
        await publish(bus, 1300)
        got: list[int] = []
        sizes = []
        with anyio.fail_after(20):
            while len(got) < 1300:
                batch = await puller.fetch(512)
                sizes.append(len(batch))
                got += seqs(batch)
                await batch[-1].ack()
        assert got == list(range(1, 1301))  # nothing lost, nothing twice, stream order
        assert sizes[:2] == [512, 512]


async def test_a_live_event_does_not_wait_for_a_batch_to_fill(nats_server: NatsServer) -> None:
    async with attached(nats_server.url) as (bus, puller):
        async with anyio.create_task_group() as tg:
            got = fetch_into(tg, puller)
            await anyio.wait_all_tasks_blocked()
            await bus.jetstream.publish("coop.aa.note", b"live")
            await filled(got, within=pull.REQUEST_EXPIRES_S / 2)  # before the request ends
        assert [m.data for m in got] == [b"live"]


async def test_an_expired_request_is_followed_by_a_new_one(
    nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pull, "REQUEST_EXPIRES_S", 0.3)
    async with attached(nats_server.url) as (bus, puller):
        async with anyio.create_task_group() as tg:
            got = fetch_into(tg, puller)
            await anyio.sleep(1.0)  # three request lifetimes pass with nothing to deliver
            asked = puller._requests
            await bus.jetstream.publish("coop.aa.note", b"later")
            await filled(got, within=5)
        assert asked >= 3
        assert [m.data for m in got] == [b"later"]


async def test_a_deleted_consumer_is_reported(nats_server: NatsServer) -> None:
    async with attached(nats_server.url) as (bus, puller):
        async with anyio.create_task_group() as tg:
            raised: list[BaseException] = []

            async def reader() -> None:
                try:
                    await puller.fetch(512)
                except ConsumerGone as exc:
                    raised.append(exc)

            tg.start_soon(reader)
            await anyio.wait_all_tasks_blocked()
            await bus.jetstream.delete_consumer(STREAM, "node-test")
            with anyio.fail_after(10):
                while not raised:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
        assert "node-test" in str(raised[0])


async def test_a_request_lost_with_the_server_is_asked_again(
    nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server restarts while a request is open: the request dies with it, and the
    puller, hearing nothing, asks again after the request's lifetime."""
    monkeypatch.setattr(pull, "REQUEST_EXPIRES_S", 0.5)
    async with attached(nats_server.url) as (bus, puller):
        await publish(bus, 3)
        first = await puller.fetch(512)
        await first[-1].ack()
        async with anyio.create_task_group() as tg:
            got = fetch_into(tg, puller)
            await anyio.wait_all_tasks_blocked()
            await anyio.to_thread.run_sync(nats_server.stop)
            await anyio.to_thread.run_sync(nats_server.start)  # same port, same store
            with anyio.fail_after(20):
                while not bus.connected:  # noqa: ASYNC110
                    await anyio.sleep(0.05)
                await publish(bus, 5, start=3)
            await filled(got, within=20)
        assert seqs(first) == [1, 2, 3]
        assert seqs(got) == [4, 5]


async def test_status_messages_never_reach_the_caller(nats_server: NatsServer) -> None:
    """408s of expired requests and the like are the puller's business: a caller only
    ever gets stream messages."""
    async with attached(nats_server.url) as (bus, puller):
        nc = await nats.connect(nats_server.url)
        try:
            # A stray status on the puller's inbox, as an old request's late 408 would be.
            await nc.publish(
                f"{puller._inbox}.999", b"", headers={"Status": "408", "Description": "x"}
            )
            await nc.flush()
        finally:
            await nc.close()
        await publish(bus, 2)
        assert [m.data for m in await fetch_at_least(puller, 2)] == [b"0", b"1"]


async def test_an_event_with_a_status_header_is_still_an_event(nats_server: NatsServer) -> None:
    """Anyone may publish headers: a stream message carrying "Status: 408" is delivered
    like any other, not taken for the server ending a request."""
    async with attached(nats_server.url) as (bus, puller):
        await bus.jetstream.publish("coop.aa.note", b"odd", headers={"Status": "408"})
        await publish(bus, 1)
        assert [m.data for m in await fetch_at_least(puller, 2)] == [b"odd", b"0"]


async def test_attaching_again_reads_what_was_delivered_but_never_committed(
    nats_server: NatsServer,
) -> None:
    """A node stops (or its connection is closed for good) after the consumer delivered a
    batch and before the node committed it. Within the ack wait the server does not deliver
    that batch again, and the first AckAll of a later message would acknowledge it unseen
    (PROTOCOL.md §9). So attaching sets the consumer back to the store's cursor whenever it
    has delivered beyond it: the node reads the batch again."""
    async with attached(nats_server.url) as (bus, puller):
        await publish(bus, 10)
        got = await fetch_at_least(puller, 10)  # 1-10 delivered
        await got[3].ack_sync()  # only 1-4 committed (AckAll), then the node stops
    bus = Bus(nats_server.url, name="pull-test")
    await bus.connect()
    puller = (await _subscribe(bus, "node-test", 4)).puller  # the store's cursor
    try:
        again = await fetch_at_least(puller, 6)
        assert seqs(again) == list(range(5, 11))  # nothing skipped, well within the ack wait
    finally:
        await puller.close()
        await bus.close()


async def test_a_missing_consumer_is_reported_not_asked_for_in_a_loop(
    nats_server: NatsServer,
) -> None:
    """With no consumer (or no stream) behind a request the server answers 503 "no
    responders" at once: the puller reports the consumer gone instead of asking again and
    again (the busy loop of case `stream-loss-stuck`)."""
    async with attached(nats_server.url) as (bus, puller):
        await bus.jetstream.delete_stream(STREAM)
        with anyio.fail_after(5), pytest.raises(ConsumerGone, match="no consumer answers"):
            while True:
                await puller.fetch(512)
        assert puller._requests <= 2  # the one open at the deletion, the one answered 503


async def test_a_stream_made_again_is_read_from_its_start(nats_server: NatsServer) -> None:
    """A stream deleted and made again is a new stream, even once it holds more than the
    store's cursor: attached with the creation time of the stream the cursor counts in, the
    consumer reads the new one from its start."""
    async with attached(nats_server.url) as (bus, _):
        await publish(bus, 3)
        first = await bus.stream_info()
        await bus.jetstream.delete_stream(STREAM)
        await bus.ensure_stream()
        await publish(bus, 5)  # beyond the cursor (3) already
        again = await _subscribe(bus, "node-test", 3, first.created)
        try:
            assert again.cursor == 0
            assert seqs(await fetch_at_least(again.puller, 5)) == [1, 2, 3, 4, 5]
        finally:
            await again.puller.close()
        same = await _subscribe(bus, "node-test", 5, again.created)  # the same stream: read on
        await same.puller.close()
        assert same.cursor == 5
