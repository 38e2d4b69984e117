"""Replication over a real nats-server: convergence, catch-up, outages, repair, forks."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import nats
import pytest

from coopnet.node.engine.chains import Chains
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from coopnet.protocol import Envelope, Identity, NotePosted, seal, unseal
from coopnet.protocol.body import Body
from tests.conftest import NET, converged, make_node, running, wait_until
from tests.processes import delete_from_stream, stream_seqs
from tests.stores import open_node_store

pytestmark = pytest.mark.timeout(90)


async def post_notes(node: Node, n: int, prefix: str = "note") -> list[Envelope]:
    return [await node.post(NotePosted(text=f"{prefix} {i}")) for i in range(n)]


async def outbox_empty(*nodes: Node) -> bool:
    return all([await n.store.outbox_depth() == 0 for n in nodes])


def signed_history(
    ident: Identity, n: int, start: list[Envelope] | None = None, tag: str = ""
) -> list[Envelope]:
    out = list(start or [])
    for _ in range(n):
        seq = len(out) + 1
        body: Body = (
            ident.founding_body("Zed", "Z1") if seq == 1 else NotePosted(text=f"zed {seq}{tag}")
        )
        wire = seal(
            signing_key=ident.signing_key,
            net=NET,
            author=ident.author,
            seq=seq,
            prev=out[-1].id if out else None,
            at=1_700_000_000_000 + seq,
            body=body,
        )
        out.append(unseal(wire, net=NET))
    return out


async def publish_raw(url: str, wires: list[tuple[str, bytes]]) -> None:
    """Publish bytes straight into the stream, as a misbehaving or replaying client would."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    for subject, wire in wires:
        await js.publish(subject, wire)
    await nc.close()


def node(data: Path) -> Node:
    return Node(data, serve_api=False)


async def test_three_nodes_converge(tmp_path: Path, nats_server: NatsServer) -> None:
    datas = [await make_node(tmp_path, s, nats_server.url) for s in ("oakley", "elm", "ash")]
    nodes = [node(d) for d in datas]
    async with running(*nodes):
        for n in nodes:
            await post_notes(n, 15, n.slug)
        await wait_until(lambda: converged(*nodes), what="three nodes converge")
        await wait_until(lambda: outbox_empty(*nodes), what="outboxes drain")
        ids = await nodes[0].store.event_ids()
        assert len(ids) == 3 * 16
        for n in nodes:
            status = await n.status()
            assert status.rejected == {}
            assert status.authors == {"ash": 16, "elm": 16, "oakley": 16}
            assert await n.store.projection_rows() == await nodes[0].store.projection_rows()


async def test_stopped_node_catches_up_after_restart(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    a_data = await make_node(tmp_path, "oakley", nats_server.url)
    b_data = await make_node(tmp_path, "elm", nats_server.url)
    a = node(a_data)
    async with running(a):
        b = node(b_data)
        async with running(b):
            await post_notes(a, 3)
            await wait_until(lambda: converged(a, b), what="first convergence")
        await post_notes(a, 25, "while elm is away")
        b = node(b_data)
        async with running(b):
            await wait_until(lambda: converged(a, b), what="elm catches up")
            assert (await b.status()).authors["oakley"] == 29


async def test_bus_outage_writes_locally_then_drains(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    a = node(await make_node(tmp_path, "oakley", nats_server.url))
    b = node(await make_node(tmp_path, "elm", nats_server.url))
    async with running(a, b):
        await post_notes(a, 2)
        await wait_until(lambda: converged(a, b), what="first convergence")
        nats_server.stop()
        offline = await post_notes(a, 10, "offline")
        assert await a.store.outbox_depth() == 10
        assert offline[-1].seq == 13
        nats_server.start()  # same port, same JetStream store
        await wait_until(lambda: outbox_empty(a), what="outbox drains after the outage")
        await wait_until(lambda: converged(a, b), what="convergence after the outage")
        assert (await b.status()).authors["oakley"] == 13


async def test_messages_removed_from_the_stream_are_repaired_from_the_author(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    a = node(await make_node(tmp_path, "oakley", nats_server.url))
    async with running(a):
        await post_notes(a, 10)
        await wait_until(lambda: outbox_empty(a), what="published")
        seqs = await stream_seqs(nats_server.url, "coop.oakley.>")
        assert len(seqs) == 11
        await delete_from_stream(nats_server.url, seqs[3:7])
        c = node(await make_node(tmp_path, "cedar", nats_server.url))
        async with running(c):
            await wait_until(lambda: converged(a, c), what="cedar repairs the gap over sync")
            assert (await c.status()).authors["oakley"] == 11


async def test_event_relayed_by_a_third_node_is_accepted(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    a_data = await make_node(tmp_path, "oakley", nats_server.url)
    a, b = node(a_data), node(await make_node(tmp_path, "elm", nats_server.url))
    async with running(b):
        async with running(a):
            await post_notes(a, 6)
            await wait_until(lambda: converged(a, b), what="elm holds oakley's events")
        # oakley is gone and the stream lost its events: only elm can relay them.
        gone = await stream_seqs(nats_server.url, "coop.oakley.>")
        await delete_from_stream(nats_server.url, gone)
        c = node(await make_node(tmp_path, "cedar", nats_server.url))
        async with running(c):
            # cedar starts fresh: anti-entropy asks the peers' heads and fetches from elm.
            async def relayed() -> bool:
                return (await c.status()).authors.get("oakley") == 7

            await wait_until(relayed, what="cedar holds oakley's events relayed by elm")
            assert (await c.status()).rejected == {}


async def test_duplicated_and_reordered_delivery_changes_nothing(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    zed = Identity.from_passphrase("zed", "replay")
    events = signed_history(zed, 12)
    deliveries = [(f"coop.zed.{e.kind}", e.wire) for e in events]
    deliveries += random.sample(deliveries, 6)
    random.shuffle(deliveries)
    # zed is no founder of a charter: its events can wait beyond a gap only once its
    # node.founded is held (PROTOCOL.md §6.4), and no peer could serve them again here.
    deliveries.insert(
        0, deliveries.pop(deliveries.index(("coop.zed.node.founded", events[0].wire)))
    )
    a = node(await make_node(tmp_path, "oakley", nats_server.url))
    b = node(await make_node(tmp_path, "elm", nats_server.url))
    async with running(a, b):
        await publish_raw(nats_server.url, deliveries)
        await wait_until(lambda: converged(a, b), what="convergence")

        async def holds_zed() -> bool:
            return all([(await n.status()).authors.get("zed") == 12 for n in (a, b)])

        await wait_until(holds_zed, what="both hold all of zed")
        for n in (a, b):
            assert (await n.status()).rejected == {}
            assert not n.chains.buffer


async def test_injected_fork_is_detected_on_every_node(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    zed = Identity.from_passphrase("zed", "fork")
    events = signed_history(zed, 4)
    rival = signed_history(zed, 1, start=events[:2], tag=" (the other history)")[2]
    nodes = [node(await make_node(tmp_path, s, nats_server.url)) for s in ("oakley", "elm")]
    async with running(*nodes):
        await publish_raw(nats_server.url, [(f"coop.zed.{e.kind}", e.wire) for e in events])
        await publish_raw(nats_server.url, [("coop.zed.note.posted", rival.wire)])

        async def all_see_fork() -> bool:
            return all([len((await n.status()).forks) == 1 for n in nodes])

        await wait_until(all_see_fork, what="every node records the fork")
        for n in nodes:
            status = await n.status()
            assert status.forks[0].author == "zed" and status.forks[0].seq == 3
            assert {status.forks[0].held_id, status.forks[0].other_id} == {
                events[2].id.hex(),
                rival.id.hex(),
            }
            # Where a node stopped depends on how delivery batched the events; after the
            # fork it accepts nothing newer.
            assert 3 <= status.authors["zed"] <= 4
        heads = [(await n.status()).authors["zed"] for n in nodes]
        later = signed_history(zed, 1, start=events)[4]
        await publish_raw(nats_server.url, [("coop.zed.note.posted", later.wire)])

        async def later_refused() -> bool:
            return all([(await n.status()).rejected.get("fork", 0) >= 2 for n in nodes])

        await wait_until(later_refused, what="events after the fork refused with 'fork'")
        assert [(await n.status()).authors["zed"] for n in nodes] == heads


async def test_forged_and_tampered_events_are_rejected_and_counted(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    zed = Identity.from_passphrase("zed", "forged")
    events = signed_history(zed, 2)
    import msgspec

    from coopnet.protocol.envelope import encode_wire

    header, sig, body = msgspec.msgpack.decode(events[1].wire, type=tuple[bytes, bytes, bytes])
    tampered = encode_wire(header, sig, msgspec.msgpack.encode({"text": "tampered"}))
    forged = encode_wire(header, bytes(64), body)
    a = node(await make_node(tmp_path, "oakley", nats_server.url))
    async with running(a):
        await publish_raw(
            nats_server.url,
            [
                ("coop.zed.node.founded", events[0].wire),
                ("coop.zed.note.posted", tampered),
                ("coop.zed.note.posted", forged),
                ("coop.zed.note.posted", b"\x93not an event"),
            ],
        )

        async def counted() -> bool:
            return sum((await a.status()).rejected.values()) == 3

        await wait_until(counted, what="three rejections counted")
        assert (await a.status()).rejected == {
            "body_hash_mismatch": 1,
            "bad_signature": 1,
            "malformed": 1,
        }
        assert (await a.status()).authors["zed"] == 1
        # The node keeps working.
        await post_notes(a, 1)


async def test_restored_backup_recovers_its_head_and_does_not_fork(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    a_data = await make_node(tmp_path, "oakley", nats_server.url)
    b = node(await make_node(tmp_path, "elm", nats_server.url))
    backup = tmp_path / "backup"
    async with running(b):
        a = node(a_data)
        async with running(a):
            await post_notes(a, 5, "before backup")
            await wait_until(lambda: outbox_empty(a), what="published")
        backup.mkdir()
        for f in a_data.glob("node.db*"):
            shutil.copy2(f, backup / f.name)
        a = node(a_data)
        async with running(a):
            await post_notes(a, 5, "after backup")
            await wait_until(lambda: converged(a, b), what="elm holds seq 11")
        # Disaster: the store is restored from the old backup (head 6, published 11).
        for f in a_data.glob("node.db*"):
            f.unlink()
        for f in backup.glob("node.db*"):
            shutil.copy2(f, a_data / f.name)
        # While offline, the restored node also signed a note at seq 7 that never left it.
        store = await open_node_store(a_data / "node.db", NET)
        chains = Chains(store, NET)
        await chains.load()
        assert chains.head_of("oakley").seq == 6  # type: ignore[union-attr]
        a_ident = Node(a_data, serve_api=False).identity
        lost = await chains.append("oakley", a_ident.signing_key, NotePosted(text="offline"))
        assert lost.seq == 7
        await store.close()

        a = node(a_data)
        async with running(a):
            await wait_until(lambda: _ready(a), what="oakley confirms its head")
            status = await a.status()
            assert status.own_head == 12  # 11 recovered, the offline note signed again
            newest = await a.store.event_at("oakley", 12)
            assert newest is not None
            assert unseal(newest[1], net=NET).body == NotePosted(text="offline")
            env = await a.post(NotePosted(text="after recovery"))
            assert env.seq == 13
            await wait_until(lambda: converged(a, b), what="convergence after recovery")
            assert (await b.status()).forks == []
            assert (await a.status()).forks == []


async def _ready(n: Node) -> bool:
    return n.ready.is_set()


async def test_a_new_stream_is_read_from_its_start(tmp_path: Path) -> None:
    """The stream is replaced (lost, or the federation moved to new servers): its sequence
    numbers restart below the store's cursor, and the node reads it from the start instead
    of waiting for sequences it has already counted."""
    first = NatsServer(tmp_path / "first")
    first.start()
    try:
        a_data = await make_node(tmp_path, "oakley", first.url)
        b_data = await make_node(tmp_path, "elm", first.url)
        async with running(Node(a_data), Node(b_data)) as (a, b):
            for i in range(20):
                await a.post(NotePosted(text=f"before {i}"))
            await wait_until(lambda: converged(a, b), what="convergence on the first stream")
    finally:
        first.stop()
    second = NatsServer(tmp_path / "second")
    second.start()
    try:
        a, b = Node(a_data, nats_url=second.url), Node(b_data, nats_url=second.url)
        async with running(a, b):
            notes = [await a.post(NotePosted(text=f"after {i}")) for i in range(3)]

            async def b_read_them() -> bool:
                held = await b.store.event_ids()
                return all(n.id in held for n in notes)

            await wait_until(b_read_them, within=10, what="elm reading the new stream")
    finally:
        second.stop()
