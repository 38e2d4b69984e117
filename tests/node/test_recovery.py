"""Own-head recovery trusts signed events, never a claimed head (PROTOCOL.md §9): a member
answering a restarting node's own sync requests with a head of 10^12 and no event cannot
keep it from signing, while a head a peer can prove (events signed by the node's key) is
still restored before the node signs. Real nats-server, real SQLite."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import nats
import pytest
from nats.aio.msg import Msg

from coopnet.node.engine import sync
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node, NotReady
from coopnet.protocol import Identity, NotePosted, seal, unseal
from tests.conftest import converged, make_node, running, wait_until

pytestmark = pytest.mark.timeout(90)


@contextlib.asynccontextmanager
async def lying_peer(
    url: str, victim: str, forged: list[bytes] | None = None
) -> AsyncIterator[list[int]]:
    """A member that answers every sync request for `victim` with a head of 10^12 and no
    event (the `sync-head-poison` case), or with `forged` events; yields how many requests
    it answered."""
    answered: list[int] = []
    nc = await nats.connect(url)

    async def answer(msg: Msg) -> None:
        answered.append(1)
        reply = sync.SyncReply(head=10**12, events=forged or [], by="rogue")
        await nc.publish(f"{msg.reply}.rogue", msgspec.msgpack.encode(reply))

    await nc.subscribe(f"coopsync.{victim}.*", cb=answer)
    await nc.flush()
    try:
        yield answered
    finally:
        await nc.close()


async def test_a_claimed_head_without_a_signed_event_does_not_stop_signing(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    data = await make_node(tmp_path, "alpha", nats_server.url)
    async with running(Node(data, serve_api=False)) as (alpha,):
        await alpha.post(NotePosted(text="before the restart"))
    async with lying_peer(nats_server.url, "alpha") as answered:
        restarted = Node(data, serve_api=False)
        async with running(restarted):  # waits for `ready`: the head was confirmed
            env = await restarted.post(NotePosted(text="after the restart"))
            assert env.seq == 3
        assert answered, "the lying peer was asked"


async def test_a_head_proven_by_signed_events_is_still_restored_first(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """A store restored from an old backup: a peer holds the node's later events, signed
    by its key; the node restores them before it signs, even with a liar answering too."""
    data = await make_node(tmp_path, "alpha", nats_server.url)
    backup = tmp_path / "backup"
    elm = Node(await make_node(tmp_path, "elm", nats_server.url), serve_api=False)
    async with running(elm):
        async with running(Node(data, serve_api=False)) as (alpha,):
            shutil.copytree(data, backup)  # the backup holds seq 1 only
            for i in range(3):
                await alpha.post(NotePosted(text=f"note {i}"))
            await wait_until(lambda: converged(alpha, elm), what="elm holds alpha's notes")
        shutil.rmtree(data)
        shutil.copytree(backup, data)
        async with lying_peer(nats_server.url, "alpha"):
            restored = Node(data, serve_api=False)
            async with running(restored):
                env = await restored.post(NotePosted(text="after the restore"))
                assert env.seq == 5  # after the 4 published, not a second seq 2
                assert (await restored.status()).forks == []


async def test_events_forged_under_the_nodes_name_do_not_stop_a_restore(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """A store restored from an old backup while a member answers the node's own sync
    requests with seqs 1-6 "of alpha" signed by a throwaway key: they are not the node's
    published history (not its key log), so nothing is discarded for them and the node
    restores its real head from the honest peer, then signs after it."""
    data = await make_node(tmp_path, "alpha", nats_server.url)
    backup = tmp_path / "backup"
    elm = Node(await make_node(tmp_path, "elm", nats_server.url), serve_api=False)
    async with running(elm):
        async with running(Node(data, serve_api=False)) as (alpha,):
            shutil.copytree(data, backup)
            for i in range(3):
                await alpha.post(NotePosted(text=f"note {i}"))
            await wait_until(lambda: converged(alpha, elm), what="elm holds alpha's notes")
        shutil.rmtree(data)
        shutil.copytree(backup, data)
        rogue = Identity.generate("alpha")
        forged, prev = [], None
        for seq in range(1, 7):
            body = rogue.founding_body("Alpha", "T1") if seq == 1 else NotePosted(text="x")
            wire = seal(signing_key=rogue.signing_key, net=elm.net, author="alpha", seq=seq,
                        prev=prev, at=elm.clock(), body=body)  # fmt: skip
            prev = unseal(wire, net=elm.net).id
            forged.append(wire)
        async with lying_peer(nats_server.url, "alpha", forged) as answered:
            restored = Node(data, serve_api=False)
            async with running(restored):
                env = await restored.post(NotePosted(text="after the restore"))
                assert env.seq == 5
                assert (await restored.status()).forks == []
            assert answered


async def test_a_node_whose_slug_peers_hold_under_another_key_says_why_it_cannot_sign(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """`slug-squatting` where no ticket protects the slug (no charter admission key,
    PROTOCOL.md §16.6): a member founded "delta" first and elm holds that log. The real
    delta node starts, stays up, signs nothing (every event would be refused as a fork)
    and says why in /status and in the 503 of a post."""
    elm = Node(await make_node(tmp_path, "elm", nats_server.url), serve_api=False)
    async with running(elm):
        squatter = Identity.generate("delta")
        body = squatter.founding_body("Delta", "N4")
        wire = seal(signing_key=squatter.signing_key, net=elm.net, author="delta", seq=1,
                    prev=None, at=elm.clock(), body=body)  # fmt: skip
        nc = await nats.connect(nats_server.url)
        try:
            await nc.jetstream().publish("coop.delta.node.founded", wire)
        finally:
            await nc.close()
        await wait_until(lambda: _holds_author(elm, "delta"), what="elm holds the squatter's log")
        delta = Node(await make_node(tmp_path, "delta", nats_server.url), serve_api=False)
        delta.ready_wait_s = 0.1
        async with running(delta, ready=False):

            async def says_why() -> bool:
                return "another log under this slug" in (await delta.status()).not_ready

            await wait_until(says_why, what="delta's status says why it does not sign")
            assert not delta.ready.is_set()
            with pytest.raises(NotReady, match=squatter.public_key.hex()[:16]):
                await delta.post(NotePosted(text="hello"))


async def _holds_author(node: Node, author: str) -> bool:
    return node.chains.head_of(author) is not None
