"""The readers' consumers are the operator's (PROTOCOL.md §9 "Receiving", "Attaching";
OPERATIONS.md §1, §7), against real nats-servers from a generated federation: a member's
credentials cannot create, delete, reset or change its consumer (push or pull), so the
review's attack (`node-beta` made again as a push consumer on `coopsync.x.y`: the whole
stream at every node) is refused; nodes follow the stream through the consumers
`ensure_stream` makes, wait (and say so) while one is missing, and end up holding every
event after a restart with batches in flight or a store restored from an older backup,
without the right to move their consumer (re-read by sequence, or sync beyond the bound)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import anyio
import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy

from coopnet.deploy import federation as fed
from coopnet.deploy.launcher import ensure_stream
from coopnet.node.engine import bus as bus_module
from coopnet.node.engine.bus import MAX_DELIVER, STREAM, consumer_config
from coopnet.node.engine.config import db_path
from coopnet.node.runtime import Node
from coopnet.protocol import NotePosted
from tests.conftest import running, wait_until
from tests.deploy.test_federation import hubs_of, init, nodes_of

pytestmark = pytest.mark.timeout(180)

# How long a refused JetStream request is waited for (no reply: the server drops it).
REFUSED_S = 1.0


def creds(root: Path, slug: str) -> str:
    return str(fed.neighborhood_dir(root, slug) / "nats.creds")


async def admin_js(root: Path, urls: str) -> Client:
    return await nats.connect(urls, user_credentials=str(root / "nats" / "admin.creds"))


async def _refused(nc: Client, subject: str, payload: bytes = b"") -> bool:
    """True when the server drops the request (a permissions violation: no answer)."""
    try:
        await nc.request(subject, payload, timeout=REFUSED_S)
    except nats.errors.TimeoutError:
        return True
    return False


async def test_the_operator_makes_every_readers_pull_consumer_idempotently(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    config = await init(root, "aa,bb")
    with hubs_of(root):
        await ensure_stream(root, config)
        nc = await admin_js(root, config.urls)
        try:
            js = nc.jetstream()
            names = sorted(c.name for c in await js.consumers_info(STREAM))
            assert names == ["node-aa", "node-bb", "observer-observer"]
            for name in names:
                got = (await js.consumer_info(STREAM, name)).config
                assert got.deliver_subject is None and got.filter_subject == "coop.>"
                assert (got.max_deliver, got.max_ack_pending, got.ack_wait) == (
                    MAX_DELIVER,
                    20_000,
                    60,
                )
            # A push consumer under a member's name (made before members lost the right) is
            # made again as the pull consumer; one that is right keeps its position.
            await js.publish("coop.aa.x", b"1")
            await js.delete_consumer(STREAM, "node-bb")
            push = dataclasses.replace(consumer_config("node-bb"), deliver_subject="coopsync.x.y")
            await js.add_consumer(STREAM, push)
            psub = await js.pull_subscribe_bind("node-aa", STREAM)
            await (await psub.fetch(1, timeout=2))[0].ack_sync()
            await ensure_stream(root, config)
            assert (await js.consumer_info(STREAM, "node-bb")).config.deliver_subject is None
            assert (await js.consumer_info(STREAM, "node-aa")).delivered.stream_seq == 1
        finally:
            await nc.close()


async def test_a_member_cannot_make_its_consumer_a_push_consumer_aimed_at_every_node(
    tmp_path: Path,
) -> None:
    """The review's attack, step by step (/tmp/rev/rogue5.py): with bb's credentials,
    delete `node-bb` and make it again as a push consumer delivering on `coopsync.x.y`
    (which every node subscribes to), or as a pull consumer, or update it, or reset it,
    under both API prefixes. Every request is refused, the consumer stays the operator's
    pull consumer, and a node listening on `coopsync.*.*` receives no stream message."""
    root = tmp_path / "fed"
    config = await init(root, "aa,bb,cc")
    with hubs_of(root):
        await ensure_stream(root, config)
        rogue = await nats.connect(config.urls, user_credentials=creds(root, "bb"),
                                   inbox_prefix="_INBOX.bb")  # fmt: skip
        victim = await nats.connect(config.urls, user_credentials=creds(root, "aa"),
                                    inbox_prefix="_INBOX.aa")  # fmt: skip
        admin = await admin_js(root, config.urls)
        try:
            rjs = rogue.jetstream()
            for _ in range(20):
                await rjs.publish("coop.bb.junk", b"\x01" * 2000)
            heard: list[str] = []

            async def on_sync(msg: Msg) -> None:
                heard.append(msg.subject)

            await victim.subscribe("coopsync.*.*", cb=on_sync)
            await victim.flush()
            push = {
                "name": "node-bb",
                "durable_name": "node-bb",
                "deliver_subject": "coopsync.x.y",
                "deliver_policy": "all",
                "ack_policy": "none",
                "filter_subject": "coop.>",
            }
            pull = {k: v for k, v in push.items() if k != "deliver_subject"}
            for api in ("$JS.API", "$JS.coop.API"):
                assert await _refused(rogue, f"{api}.CONSUMER.DELETE.COOP.node-bb")
                for cfg, action in ((push, ""), (pull, ""), (push, "update"), (pull, "update")):
                    body = json.dumps({"stream_name": STREAM, "config": cfg, "action": action})
                    for subject in (
                        f"{api}.CONSUMER.CREATE.COOP.node-bb.coop.>",
                        f"{api}.CONSUMER.CREATE.COOP.node-bb",
                        f"{api}.CONSUMER.DURABLE.CREATE.COOP.node-bb",
                        f"{api}.CONSUMER.CREATE.COOP",  # an ephemeral one
                    ):
                        assert await _refused(rogue, subject, body.encode()), subject
                assert await _refused(rogue, f"{api}.CONSUMER.RESET.COOP.node-bb", b'{"seq":1}')
            await anyio.sleep(1.0)
            assert heard == []
            info = await admin.jetstream().consumer_info(STREAM, "node-bb")
            assert info.config.deliver_subject is None
            assert info.config.ack_policy == AckPolicy.ALL
            assert info.delivered.stream_seq == 0
        finally:
            for nc in (rogue, victim, admin):
                await nc.close()


async def test_a_member_aiming_its_pulls_at_sync_gets_each_message_there_once(
    tmp_path: Path,
) -> None:
    """What is left, and bounded: nats-server never checks a request's reply subject, so
    a member may ask its own consumer for a batch delivered on `coopsync.x.bb`. Each
    message goes there at most MAX_DELIVER (1) times: a NAK, or an expired ack wait, does
    not deliver it again, and the member may not reset or re-create the consumer."""
    root = tmp_path / "fed"
    config = await init(root, "aa,bb")
    with hubs_of(root):
        await ensure_stream(root, config)
        rogue = await nats.connect(config.urls, user_credentials=creds(root, "bb"),
                                   inbox_prefix="_INBOX.bb")  # fmt: skip
        victim = await nats.connect(config.urls, user_credentials=creds(root, "aa"),
                                    inbox_prefix="_INBOX.aa")  # fmt: skip
        try:
            for i in range(10):
                await rogue.jetstream().publish("coop.bb.junk", b"%d" % i)
            heard: list[Msg] = []

            async def on_sync(msg: Msg) -> None:
                heard.append(msg)

            await victim.subscribe("coopsync.*.*", cb=on_sync)
            await victim.flush()
            for _ in range(3):
                await rogue.publish(
                    "$JS.API.CONSUMER.MSG.NEXT.COOP.node-bb", b'{"batch": 10}', "coopsync.x.bb"
                )
                await rogue.flush()
                await anyio.sleep(0.5)
                for msg in heard:  # NAK: "deliver it again now"
                    if msg.reply:
                        await rogue.publish(msg.reply, b"-NAK")
            await anyio.sleep(0.5)
            assert len(heard) == 10  # each message once, whatever the member asks
        finally:
            await rogue.close()
            await victim.close()


async def test_nodes_follow_through_the_operators_consumers_and_wait_for_a_missing_one(
    tmp_path: Path,
) -> None:
    root = tmp_path / "fed"
    config = await init(root, "aa,bb")
    with hubs_of(root):
        await ensure_stream(root, config)
        nc = await admin_js(root, config.urls)
        try:
            await nc.jetstream().delete_consumer(STREAM, "node-bb")
            async with running(*nodes_of(root, "aa", "bb")) as (aa, bb):
                notes = [await aa.post(NotePosted(text=f"note {i}")) for i in range(5)]

                async def says_missing() -> bool:
                    return "coopnet federation streams" in (await bb.status()).consumer_missing

                await wait_until(says_missing, what="bb's status naming the missing consumer")
                assert (await aa.status()).consumer_missing == ""
                await ensure_stream(root, config)  # the operator's `federation streams`

                async def bb_holds_all() -> bool:
                    held = await bb.store.event_ids()
                    return all(n.id in held for n in notes)

                await wait_until(bb_holds_all, within=30, what="bb following the stream")
                assert (await bb.status()).consumer_missing == ""
                last: int = (await nc.jetstream().stream_info(STREAM)).state.last_seq

                async def bb_at_the_end() -> bool:
                    return (await bb.status()).stream_seq == last

                await wait_until(bb_at_the_end, what="bb's cursor at the stream's end")
                info = await nc.jetstream().consumer_info(STREAM, "node-bb")
                assert info.config.deliver_subject is None and info.delivered.stream_seq == last
        finally:
            await nc.close()


async def _post_and_settle(node: Node, n: int, text: str) -> list[bytes]:
    ids = [(await node.post(NotePosted(text=f"{text} {i}"))).id for i in range(n)]

    async def published() -> bool:
        return (await node.status()).outbox_depth == 0

    await wait_until(published, what=f"{node.slug}'s notes on the bus")
    return ids


async def _deliver_unacked(root: Path, urls: str, slug: str, batch: int) -> int:
    """With the member's own credentials, take a batch from its consumer and never
    acknowledge it (a node stopped with batches in flight); the consumer's delivered seq."""
    nc = await nats.connect(urls, user_credentials=creds(root, slug), inbox_prefix=f"_INBOX.{slug}")
    try:
        js = nc.jetstream()
        psub = await js.pull_subscribe_bind(f"node-{slug}", STREAM)
        await psub.fetch(batch, timeout=2)
        info = await js.consumer_info(STREAM, f"node-{slug}")
        return int(info.delivered.stream_seq or 0)
    finally:
        await nc.close()


async def _holds_all(node: Node, ids: list[bytes]) -> bool:
    held = await node.store.event_ids()
    return all(i in held for i in ids)


async def test_a_node_restarted_with_batches_in_flight_reads_them_again_by_sequence(
    tmp_path: Path,
) -> None:
    """bb's consumer delivered 30 messages bb never committed; aa (the only other holder)
    is stopped, so no peer can sync them: bb reads them again from the stream by sequence
    and holds every event, its cursor at the stream's end."""
    root = tmp_path / "fed"
    config = await init(root, "aa,bb")
    with hubs_of(root):
        await ensure_stream(root, config)
        async with running(*nodes_of(root, "aa")) as (aa,):
            await _post_and_settle(aa, 40, "before")
            everything = await aa.store.event_ids()
        assert await _deliver_unacked(root, config.urls, "bb", 30) == 30
        async with running(*nodes_of(root, "bb")) as (bb,):
            await wait_until(lambda: _holds_all(bb, list(everything)), within=30,
                             what="bb holding every event of the stream")  # fmt: skip
            assert (await bb.status()).rejected == {}


async def test_a_store_restored_from_an_older_backup_gets_every_event_again(
    tmp_path: Path,
) -> None:
    """bb's store is put back to a copy from before it read 25 more events (its consumer
    acknowledged them): bb reads them again by sequence, with aa stopped (no sync)."""
    root = tmp_path / "fed"
    config = await init(root, "aa,bb")
    data = fed.neighborhood_dir(root, "bb")
    backup = tmp_path / "backup"
    with hubs_of(root):
        await ensure_stream(root, config)
        async with running(*nodes_of(root, "aa", "bb")) as (aa, bb):
            await _post_and_settle(aa, 5, "old")
            first = await aa.store.event_ids()
            await wait_until(lambda: _holds_all(bb, list(first)), what="bb reads them")
        shutil.copytree(data, backup)  # the nodes are stopped: a consistent copy
        async with running(*nodes_of(root, "aa", "bb")) as (aa, bb):
            await _post_and_settle(aa, 25, "new")
            everything = await aa.store.event_ids()
            await wait_until(
                lambda: _holds_all(bb, list(everything)), within=45, what="bb reads them"
            )
        restore(db_path(backup), db_path(data))
        async with running(*nodes_of(root, "bb")) as (bb,):
            await wait_until(lambda: _holds_all(bb, list(everything)), within=30,
                             what="bb holding every event again")  # fmt: skip


def restore(saved: Path, db: Path) -> None:
    """Put an SQLite store back to a copy (its WAL and shared memory files too)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
        if Path(f"{saved}{suffix}").exists():
            shutil.copyfile(f"{saved}{suffix}", f"{db}{suffix}")


async def test_beyond_the_re_read_bound_sync_brings_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consumer far beyond the store (REREAD_MAX lowered to 5 here): bb re-reads the
    first 5 by sequence, and the rest comes over sync from aa."""
    monkeypatch.setattr(bus_module, "REREAD_MAX", 5)
    root = tmp_path / "fed"
    config = await init(root, "aa,bb")
    with hubs_of(root):
        await ensure_stream(root, config)
        async with running(*nodes_of(root, "aa")) as (aa,):
            await _post_and_settle(aa, 30, "many")
            assert await _deliver_unacked(root, config.urls, "bb", 40) >= 30
            async with running(*nodes_of(root, "bb")) as (bb,):
                await aa.post(NotePosted(text="later"))  # a gap behind it: sync at once
                everything = await aa.store.event_ids()
                await wait_until(lambda: _holds_all(bb, list(everything)), within=40,
                                 what="bb holding everything, through sync")  # fmt: skip
