"""Membership by consent, retirement and key rotation, between real nodes over a real
nats-server (docs/PROTOCOL.md §5, §16)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import anyio
import pytest

from coopnet.node.cli import init_node
from coopnet.node.engine.chains import Chains
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.refusals import Refused
from coopnet.node.membership.projection import standings
from coopnet.node.runtime import Node
from coopnet.protocol import Identity, NotePosted, seal
from coopnet.protocol.charter import Charter, Founder, Policies, dump_charter, parse_charter
from coopnet.protocol.membership import is_member
from coopnet.protocol.offers import OfferPosted
from tests.conftest import converged, running, wait_until
from tests.stores import open_node_store

pytestmark = pytest.mark.timeout(120)
FOUNDERS = ("ana", "ben", "cai")
DAY = 86_400_000


async def federation(root: Path, url: str, joining: tuple[str, ...] = ("dee",)) -> list[Path]:
    """Three founders under a charter, and neighborhoods that will apply to join."""
    idents = {s: Identity.generate(s) for s in (*FOUNDERS, *joining)}
    charter = Charter(
        name="Test Federation",
        founders=[
            Founder(slug=s, display_name=s.title(), area="T1", key=idents[s].public_key.hex())
            for s in FOUNDERS
        ],
        policies=Policies(quorum_percent=50),
    )
    text = dump_charter(charter)
    _, net = parse_charter(text)
    dirs = []
    for slug, ident in idents.items():
        data = root / slug
        data.mkdir(parents=True)
        (data / "charter.json").write_bytes(text)
        settings: dict[str, object] = {"charter": "charter.json"}
        if slug in joining:
            settings |= {"apply_about": "40 households", "apply_reason": "we grow potatoes"}
        await init_node(
            data, slug=slug, display_name=slug.title(), area="T1", net=net, nats_url=url,
            identity=ident, settings=settings,
        )  # fmt: skip
        dirs.append(data)
    return dirs


async def _count(items: list[Any], n: int) -> bool:
    return len(items) == n


async def _waiting(node: Node) -> bool:
    """Whether posts are parked on the rotation (the queue holds only the rotation)."""
    await anyio.sleep(0.2)  # give every new post the chance to (wrongly) join the queue
    return node.rotating is not None and len(node.chains._own_queue) == 1


async def status_of(node: Node, slug: str) -> str:
    s = (await node.governance.standings()).get(slug)
    return s.status if s else "unknown"


async def everywhere(nodes: tuple[Node, ...], slug: str, status: str) -> None:
    async def check() -> bool:
        return all([await status_of(n, slug) == status for n in nodes])

    await wait_until(check, what=f"{slug} {status} on every node")


async def offer(node: Node, name: str) -> None:
    await node.post(
        OfferPosted(
            offer=name, item="potatoes", category="produce", quantity=100, unit="gram",
            unit_price=50, available_until=node.clock() + DAY, area="T1",
        )
    )  # fmt: skip


async def test_admission_by_consent_blocked_by_an_objection_until_withdrawn(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    dirs = await federation(tmp_path, nats_server.url)
    async with running(*(Node(d, api_port=0) for d in dirs)) as nodes:
        ana, ben, cai, dee = nodes
        await everywhere(nodes, "dee", "applicant")  # it applied by itself at start
        await offer(dee, "dee-1")
        await offer(ana, "ana-1")
        await wait_until(lambda: converged(*nodes), what="offers everywhere")
        # Not admitted: nobody trades with it, and it trades with nobody.
        with pytest.raises(Refused) as refused:
            await ana.trading.propose("dee", "dee-1", 10)
        assert refused.value.code == "not_a_member"
        with pytest.raises(Refused) as refused:
            await dee.trading.propose("ana", "ana-1", 10)
        assert refused.value.code == "not_a_member"
        # An outsider cannot answer applications; a member cannot answer its own... founders.
        with pytest.raises(Refused) as refused:
            await dee.governance.answer("dee", "consent")
        assert refused.value.code == "not_a_member"

        await ana.governance.answer("dee", "consent")
        await cai.governance.answer("dee", "object", "they have not met us yet")
        await ben.governance.answer("dee", "consent")
        await wait_until(lambda: converged(*nodes), what="answers everywhere")
        standing = (await ben.governance.standings())["dee"]
        assert standing.status == "applicant"
        assert standing.objections == ("cai",)
        assert standing.consents == ("ana", "ben")

        with pytest.raises(Refused) as refused:  # nothing to withdraw for ben
            await ben.governance.answer("dee", "withdraw")
        assert refused.value.code == "not_authorized"
        await cai.governance.answer("dee", "withdraw")
        await everywhere(nodes, "dee", "admitted")
        # Now they trade.
        proposal = await ana.trading.propose("dee", "dee-1", 10)
        await wait_until(lambda: converged(*nodes), what="the proposal at dee")
        await dee.trading.accept("ana", proposal.body.trade)  # type: ignore[attr-defined]
        assert (await dee.status()).rejected == {}
        rows = await ana.store.all("SELECT author, wire FROM events ORDER BY pos")
        expected = await ana.governance.standings()
        charter = ana.charter
    # Any arrival order that keeps each author's log order gives the same membership.
    assert charter is not None
    for trial in range(4):
        logs: dict[str, list[bytes]] = {}
        for author, wire in rows:
            logs.setdefault(author, []).append(bytes(wire))
        rnd = random.Random(trial)
        store = await open_node_store(tmp_path / f"replay-{trial}.db", ana.net)
        try:
            chains = Chains(store, ana.net, charter_keys=charter.founder_keys())
            while any(logs.values()):
                author = rnd.choice(sorted(a for a, q in logs.items() if q))
                report = await chains.receive([logs[author].pop(0)], source="replay")
                assert not report.rejected
            assert await standings(store.db, charter) == expected
        finally:
            await store.close()


async def test_retirement_ends_the_log_and_membership(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    dirs = await federation(tmp_path, nats_server.url, joining=())
    async with running(*(Node(d) for d in dirs)) as nodes:
        ana, ben, cai = nodes
        await ben.governance.retire("merged with ana")
        with anyio.fail_after(30):
            await ben.stopped.wait()  # a retired node stops by itself
        await everywhere((ana, cai), "ben", "retired")
        assert "ben retired from the federation" in ben.retired_line
        await offer(ana, "ana-2")
        await wait_until(lambda: converged(ana, cai), what="ana's offer at cai")
        with pytest.raises(Refused) as refused:
            await cai.trading.propose("ben", "whatever", 1)
        assert refused.value.code == "not_a_member"
        # A later event signed by ben's key (a rogue copy of its node) is refused everywhere.
        head = ben.chains.head_of("ben")
        assert head is not None
        rogue = seal(
            signing_key=ben.identity.signing_key, net=ben.net, author="ben", seq=head.seq + 1,
            prev=head.id, at=ben.clock(), body=NotePosted(text="back from retirement"),
        )  # fmt: skip
        report = await cai.chains.receive([rogue], source="test")
        assert report.rejected == {"not_authorized": 1}


async def test_key_rotation_new_key_works_old_key_refused(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    dirs = await federation(tmp_path, nats_server.url, joining=())
    async with running(*(Node(d) for d in dirs)) as nodes:
        ana, ben, _ = nodes
        old = ana.identity
        await ana.rotate_key()
        assert ana.identity.seed == old.next_seed
        note = await ana.post(NotePosted(text="signed by the new key"))
        assert note.key == old.next_public_key
        await wait_until(lambda: converged(*nodes), what="the rotation everywhere")
        head = ben.chains.head_of("ana")
        assert head is not None
        forged = seal(
            signing_key=old.signing_key, net=ana.net, author="ana", seq=head.seq + 1,
            prev=head.id, at=ana.clock(), body=NotePosted(text="signed by the old key"),
        )  # fmt: skip
        assert (await ben.chains.receive([forged], source="test")).rejected == {"wrong_key": 1}
        assert all([is_member(await n.governance.standings(), "ana") for n in nodes])
    # The key files follow the log, across a restart.
    restarted = Node(dirs[0])
    async with running(restarted):
        assert restarted.identity.public_key == old.next_public_key
        await restarted.post(NotePosted(text="after restart"))


async def test_an_interrupted_rotation_is_finished_at_start(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    from coopnet.node.engine.keys import FOLLOWING, prepare_rotation

    dirs = await federation(tmp_path, nats_server.url, joining=())
    node = Node(dirs[0])
    async with running(node):
        old = node.identity
        after, body = prepare_rotation(node.data, node.identity)
        await node.post(body, signer=after)  # signed and committed, then "crash": files old
    assert (dirs[0] / FOLLOWING).exists()
    again = Node(dirs[0])
    async with running(again):
        assert again.identity.public_key == old.next_public_key
        assert not (dirs[0] / FOLLOWING).exists()
        await again.post(NotePosted(text="the log decides which key signs"))


async def test_a_founder_slug_with_another_key_is_refused(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    dirs = await federation(tmp_path, nats_server.url, joining=())
    async with running(Node(dirs[0])) as (ana,):
        impostor = Identity.generate("ben")
        wire = seal(
            signing_key=impostor.signing_key, net=ana.net, author="ben", seq=1, prev=None,
            at=ana.clock(), body=impostor.founding_body("Ben", "T1"),
        )  # fmt: skip
        assert (await ana.chains.receive([wire], source="test")).rejected == {"wrong_key": 1}


async def test_posts_during_a_rotation_all_sign_with_the_right_key(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    dirs = await federation(tmp_path, nats_server.url, joining=())
    async with running(*(Node(d) for d in dirs[:2])) as (ana, ben):
        old = ana.identity
        before: list[bytes] = []
        during: list[bytes] = []

        async def post(i: int, into: list[bytes]) -> None:
            into.append((await ana.post(NotePosted(text=f"busy {i}"))).key)

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(post, i, before)
            await wait_until(lambda: _count(before, 20), what="the first posts")
            # Hold the store's commit lock so that the rotation waits, queued, while more
            # posts arrive: they must not join the queue behind it with the old key.
            async with ana.chains.lock:
                tg.start_soon(ana.rotate_key)
                await wait_until(lambda: _count(ana.chains._own_queue, 1), what="rotation queued")
                for i in range(20):
                    tg.start_soon(post, i, during)
                await wait_until(lambda: _waiting(ana), what="the posts waiting")
        assert set(before) == {old.public_key}
        assert set(during) == {old.next_public_key}  # they waited, then signed with the new key
        await wait_until(lambda: converged(ana, ben), what="everything at ben")
        assert (await ben.status()).rejected == {}
