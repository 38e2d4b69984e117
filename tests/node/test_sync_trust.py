"""Sync that trusts no claim (PROTOCOL.md §9): a claimed head changes no status and drives
only bounded requests, a responder answers each requester at a bounded rate, and an answer
beyond the size cap is dropped undecoded and counted. Over a real nats-server (no auth: the
permissions are tests/deploy/test_sync_permissions.py's), real SQLite stores."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import msgspec
import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from coopnet.node.engine import sync
from coopnet.node.engine.bus import Bus
from coopnet.node.engine.chains import Chains
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.status import status_dict
from coopnet.node.runtime import Node
from coopnet.protocol import NotePosted, unseal
from tests.conftest import make_node, running, wait_until
from tests.node.test_chains import NET, NOW, OAK, history
from tests.stores import open_node_store

pytestmark = pytest.mark.timeout(60)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def connected(url: str, name: str) -> AsyncIterator[Bus]:
    bus = Bus(url, name=name)
    await bus.connect()
    try:
        yield bus
    finally:
        await bus.close()


@contextlib.asynccontextmanager
async def oakley_holder(
    tmp_path: Path, url: str, n: int, *, limit: sync.RateLimit | None = None
) -> AsyncIterator[tuple[sync.SyncStats, Chains]]:
    """A responder named `holder` that holds oakley's first `n` events and serves sync."""
    store = await open_node_store(tmp_path / "holder.db", NET)
    chains = Chains(store, NET, clock=lambda: NOW)
    await chains.load()
    await chains.receive([e.wire for e in history(OAK, n)], source="bus")
    stats = sync.SyncStats()

    def heads() -> dict[str, int]:
        return {a: st.head.seq for a, st in chains.states.items() if st.head is not None}

    try:
        async with connected(url, "holder") as bus, anyio.create_task_group() as tg:
            tg.start_soon(lambda: sync.serve(bus, store, heads, "holder", stats=stats, limit=limit))
            await bus.client.flush()
            await anyio.sleep(0.1)  # the subscription reaches the server
            yield stats, chains
            tg.cancel_scope.cancel()
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def rogue(
    url: str, answer: Callable[[Msg], bytes | None], name: str = "rogue"
) -> AsyncIterator[list[str]]:
    """A member answering every sync request with `answer(msg)` (None: silence), under its
    own name; yields the subjects of the requests it saw."""
    seen: list[str] = []
    nc: Client = await nats.connect(url)

    async def on_request(msg: Msg) -> None:
        seen.append(msg.subject)
        payload = answer(msg)
        if payload is not None and msg.reply:
            await nc.publish(f"{msg.reply}.{name}", payload)

    await nc.subscribe("coopsync.*.*", cb=on_request)
    await nc.flush()
    try:
        yield seen
    finally:
        await nc.close()


def _fake_heads(count: int) -> bytes:
    heads = {f"fake-{i:05d}": 10**12 for i in range(count)}
    heads |= {"oakley": 10**12, "alpha": 10**12, "Not.A.Slug": 5, "zero": 0, "neg": -4}
    return msgspec.msgpack.encode(sync.HeadsReply(heads=heads, by="rogue"))


def _seqs(wires: list[bytes]) -> list[int]:
    return [unseal(w, net=NET).seq for w in wires]


# --- claimed heads --------------------------------------------------------------------------


async def test_a_hostile_heads_answer_moves_no_head_and_asks_a_bounded_number_of_ranges(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """10^12 for a known author and 5,000 fake authors: each round asks at most
    `hints_per_round` ranges, known authors first; no head moves; the rest is counted."""
    store = await open_node_store(tmp_path / "n.db", NET)
    chains = Chains(store, NET, clock=lambda: NOW)
    await chains.load()
    await chains.receive([e.wire for e in history(OAK, 2)], source="bus")
    stats = sync.SyncStats()
    flood = _fake_heads(5000)

    def heads() -> dict[str, int]:
        return {a: st.head.seq for a, st in chains.states.items() if st.head is not None}

    async def receive(wires: list[bytes]) -> object:
        return await chains.receive(wires, source="sync")

    def answer(msg: Msg) -> bytes | None:
        return flood if msg.subject.startswith("coopsync._heads.") else None

    try:
        async with (
            rogue(nats_server.url, answer) as seen,
            connected(nats_server.url, "asker") as bus,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(
                lambda: sync.anti_entropy(
                    bus, heads, receive, me="asker", interval_s=0.2, stats=stats,
                    hints_per_round=3,
                )
            )  # fmt: skip
            await anyio.sleep(4.5)
            tg.cancel_scope.cancel()
    finally:
        await store.close()
    rounds = [s for s in seen if s == "coopsync._heads.asker"]
    ranges = [s for s in seen if not s.startswith("coopsync._heads.")]
    assert 1 <= len(rounds) <= 4, seen
    assert len(ranges) <= 3 * len(rounds), ranges
    assert ranges[0] == "coopsync.oakley.asker"  # a known author first
    assert heads() == {"oakley": 2}  # believed nothing
    # Per heads answer: 3 invalid entries, 5,001 unknown authors of which 1,024 kept a
    # round, and of the kept ones all but the few asked.
    assert stats.hints_ignored >= max(1, len(rounds) - 1) * (3 + 5001 - 1024)


async def test_a_hostile_heads_answer_changes_no_status_of_a_running_node(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    async with rogue(nats_server.url, lambda m: _fake_heads(2000)) as seen:
        node = Node(await make_node(tmp_path, "alpha", nats_server.url), serve_api=False)
        async with running(node):
            await node.post(NotePosted(text="mine"))
            before = await node.status()
            await wait_until(
                lambda: _async(node.sync_stats.hints_ignored > 0), what="a heads round"
            )
            await anyio.sleep(1.0)  # range requests for the claims
            after = await node.status()
            assert (after.own_head, after.authors, after.ready_to_sign) == (
                before.own_head,
                before.authors,
                True,
            )
            assert after.authors == {"alpha": 2}
            assert after.buffered == 0 and after.rejected == {}
            assert after.sync.hints_ignored >= 3 + 2001 - 1024
            assert status_dict(after)["sync"]["hints_ignored"] == after.sync.hints_ignored
            env = await node.post(NotePosted(text="still signing"))
            assert env.seq == 3
    assert "coopsync._heads.alpha" in seen


async def _async(value: bool) -> bool:
    return value


# --- the rate limit -------------------------------------------------------------------------


def test_a_token_bucket_refills_at_its_rate_and_forgets_the_least_recent_key() -> None:
    clock = FakeClock()
    limit = sync.RateLimit(2.0, 3.0, max_keys=2, clock=clock)
    assert [limit.allow("a") for _ in range(5)] == [True, True, True, False, False]
    clock.now += 1.0  # two tokens back
    assert [limit.allow("a") for _ in range(3)] == [True, True, False]
    assert limit.allow("b")
    assert limit.allow("c")  # a third key: "a", the least recently seen, is forgotten
    assert limit.remembered == 2
    assert [limit.allow("a") for _ in range(4)] == [True, True, True, False]


async def test_a_flooding_requester_gets_bounded_answers_and_others_are_still_served(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    answers: list[str] = []
    limit = sync.RateLimit(5.0, 10.0)
    async with (
        oakley_holder(tmp_path, nats_server.url, 3, limit=limit) as (stats, _),
        connected(nats_server.url, "flooder") as flooder,
        connected(nats_server.url, "honest") as honest,
    ):
        nc = flooder.client

        async def on_answer(msg: Msg) -> None:
            answers.append(msg.subject)

        await nc.subscribe("coopreply.flood.t.*", cb=on_answer)
        request = msgspec.msgpack.encode(sync.SyncRequest(from_seq=1))
        start = anyio.current_time()
        for _ in range(300):
            await nc.publish("coopsync.oakley.flood", request, reply="coopreply.flood.t")
        # Naming another requester in the reply subject is refused, not charged to it.
        for _ in range(50):
            await nc.publish("coopsync.oakley.flood", request, reply="coopreply.honest.t")
        await nc.flush()
        wires = await sync.request_range(honest, "oakley", 1, me="honest")
        elapsed = anyio.current_time() - start
        await anyio.sleep(0.2)
    assert _seqs(wires) == [1, 2, 3]  # the others are still served
    assert 10 <= len(answers) <= 10 + 5 * elapsed + 1, (len(answers), elapsed)
    assert stats.rate_limited == 300 - len(answers)
    assert stats.bad_requests == 50
    assert stats.served == len(answers) + 1


# --- the size cap ---------------------------------------------------------------------------


async def test_an_oversized_answer_is_dropped_undecoded_and_counted(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """A 700 KiB answer (within the server's 1 MiB payload) is dropped before decoding; a
    second answer of the same responder and a malformed one are dropped too; the honest
    responder's events still arrive."""
    huge = msgspec.msgpack.encode(sync.SyncReply(head=10**12, events=[b"x" * 700_000]))

    def big(msg: Msg) -> bytes:
        return huge

    stats = sync.SyncStats()
    async with (
        oakley_holder(tmp_path, nats_server.url, 2) as _,
        rogue(nats_server.url, big),
        rogue(nats_server.url, big),  # the same responder name, a second answer
        rogue(nats_server.url, lambda m: b"\xc1 not msgpack", name="garbler"),
        connected(nats_server.url, "asker") as bus,
    ):
        wires = await sync.request_range(bus, "oakley", 1, me="asker", stats=stats)
        heads = await sync.peer_heads(bus, {}, me="asker", stats=stats)
    assert _seqs(wires) == [1, 2]
    assert heads == {"oakley": 2}  # the honest holder's only
    assert stats.replies_oversized == 2  # one a request
    assert stats.replies_extra == 2
    assert stats.replies_malformed == 2


def test_a_heads_answer_of_a_large_federation_stays_under_the_cap_and_rotates() -> None:
    heads = {f"n{i:05d}-" + "x" * 25: 2**62 for i in range(20_000)}  # 32-character slugs
    listed: set[str] = set()
    for turn in range(3):
        window = sync.heads_window(heads, turn)
        assert len(window) == sync.HEADS_MAX_AUTHORS
        wire = msgspec.msgpack.encode(sync.HeadsReply(heads=window, by="x" * 32))
        assert len(wire) <= sync.REPLY_MAX_BYTES
        listed |= set(window)
    assert listed == set(heads)  # every author within ceil(20,000 / 8,192) answers
    assert sync.heads_window({"a1": 1}, 7) == {"a1": 1}
