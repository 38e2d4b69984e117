"""Sync answers reach only the requester (PROTOCOL.md §9, "Who may publish what"): with a
node's minted credentials, no subscription of any wildcard form, plain or in a queue group,
at the hub or through the member's own leaf server, receives another member's sync answers;
and a user publishes requests and answers under its own name only. Real nats-server with
the federation's auth (tests/deploy/nats_fixtures.py), real sync (node/engine/sync.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest
from nats.aio.msg import Msg

from coopnet.deploy.nats_auth import node_permissions, observer_permissions
from coopnet.deploy.nats_config import leaf_config
from coopnet.node.engine import sync
from coopnet.node.engine.bus import Bus
from coopnet.node.engine.chains import Chains
from coopnet.node.engine.nats_server import NatsServer
from tests.conftest import wait_until
from tests.deploy.nats_fixtures import Hub, Session, running_hub, session
from tests.node.test_chains import NET, NOW, OAK, history
from tests.processes import free_ports
from tests.stores import open_node_store

pytestmark = pytest.mark.timeout(90)

# Every way a subscription could try to cover `coopreply.gamma.<token>.<responder>` or the
# old `coopsync._reply.gamma.<token>`: full and partial wildcards at every depth, and the
# literal prefixes of gamma's and the observer's answers.
SNOOPS = (
    ">", "*", "*.>", "*.*", "*.*.*", "*.*.*.*", "*.*.*.*.*",
    "coopsync.>", "coopsync.*", "coopsync.*.>", "coopsync.*.*", "coopsync.*.*.*",
    "coopsync.*.*.>", "coopsync._reply.>", "coopsync._reply.gamma.>",
    "coopreply.>", "coopreply.*", "coopreply.*.>", "coopreply.*.*", "coopreply.*.*.*",
    "coopreply.*.*.>", "coopreply.*.*.*.*", "coopreply.gamma.>", "coopreply.gamma.*",
    "coopreply.gamma.*.*", "coopreply.gamma.*.>", "coopreply.observer-audit.>",
    "coopreply.*.*.holder", "_INBOX.>", "_INBOX.*.>", "_INBOX.gamma.>",
)  # fmt: skip
# What the request rule `coopsync.*.*` lets through (its `*` matches any literal token,
# `_reply`, `*` and `>` too): these receive requests, which are no secret, and nothing else,
# since no answer is published under `coopsync.` any more.
HARMLESS = {"coopsync.*.>", "coopsync.*.*", "coopsync._reply.>"}


@contextlib.asynccontextmanager
async def connected(url: str, creds: Path | None, user: str) -> AsyncIterator[Bus]:
    bus = Bus(url, name=user, creds=str(creds) if creds else None, inbox=f"_INBOX.{user}")
    await bus.connect()
    try:
        yield bus
    finally:
        await bus.close()


@contextlib.asynccontextmanager
async def holder(hub: Hub, tmp_path: Path) -> AsyncIterator[None]:
    """The node `holder`, with its own creds, serving oakley's first 3 events over sync."""
    store = await open_node_store(tmp_path / "holder.db", NET)
    chains = Chains(store, NET, clock=lambda: NOW)
    await chains.load()
    await chains.receive([e.wire for e in history(OAK, 3)], source="bus")

    def heads() -> dict[str, int]:
        return {a: st.head.seq for a, st in chains.states.items() if st.head is not None}

    creds = hub.creds("holder", node_permissions("holder"))
    try:
        async with connected(hub.url, creds, "holder") as bus, anyio.create_task_group() as tg:
            tg.start_soon(sync.serve, bus, store, heads, "holder")
            await bus.client.flush()
            yield
            tg.cancel_scope.cancel()
    finally:
        await store.close()


async def spy_everywhere(spy: Session) -> list[str]:
    """Subscribe with every form of SNOOPS, plain and in a queue group; return the list
    the subjects received are appended to."""
    got: list[str] = []

    async def on_msg(msg: Msg) -> None:
        got.append(msg.subject)

    for subject in SNOOPS:
        for queue in ("", "snoop"):
            await spy.nc.subscribe(subject, queue=queue, cb=on_msg)
    await spy.nc.flush()
    return got


async def ask_as(hub: Hub, user: str, creds: Path) -> tuple[list[bytes], dict[str, int]]:
    """One range request and one heads request, as `user` with its own creds, through the
    real sync client (node/engine/sync.py)."""
    async with connected(hub.url, creds, user) as bus:
        wires = await sync.request_range(bus, "oakley", 1, me=user)
        heads = await sync.peer_heads(bus, {}, me=user)
    return wires, heads


def _answers(subjects: list[str]) -> list[str]:
    return [s for s in subjects if s.startswith(("coopreply.", "coopsync._reply."))]


async def test_no_subscription_of_a_member_reads_another_users_sync_answers(
    tmp_path: Path,
) -> None:
    with running_hub(tmp_path) as hub:
        beta = hub.creds("beta", node_permissions("beta"))
        gamma = hub.creds("gamma", node_permissions("gamma"))
        audit = hub.creds("observer-audit", observer_permissions("audit"))
        async with holder(hub, tmp_path), session(hub.url, beta, user="beta") as spy:
            got = await spy_everywhere(spy)
            await anyio.sleep(0.3)
            # The real thing: gamma and the observer ask, the holder answers them.
            for user, creds in (("gamma", gamma), ("observer-audit", audit)):
                wires, heads = await ask_as(hub, user, creds)
                assert len(wires) == 3 and heads == {"oakley": 3}, user
            await anyio.sleep(0.3)
            refused = {v.split('"')[1] for v in spy.violations()}
        # Every form was refused but the request forms, and those saw requests only.
        allowed = {s.lower() for s in SNOOPS} - refused
        assert allowed == HARMLESS, allowed
        assert _answers(got) == []
        assert "coopsync.oakley.gamma" in got and "coopsync._heads.observer-audit" in got


async def test_through_its_own_leaf_no_member_reads_another_users_sync_answers(
    tmp_path: Path,
) -> None:
    """A leaf link is checked differently: the hub takes a wildcard interest that covers
    an allowed subject (a reverse match) and filters each message it sends down the link
    against the leaf user's permissions. Spies on beta's own leaf still get nothing."""
    with running_hub(tmp_path) as hub:
        beta = hub.creds("beta", node_permissions("beta"))
        gamma = hub.creds("gamma", node_permissions("gamma"))
        with _leaf(tmp_path, hub, "beta", beta) as leaf:
            async with holder(hub, tmp_path), session(leaf.url, user="beta") as spy:
                got = await spy_everywhere(spy)

                async def linked() -> bool:  # beta's own answers do come through the leaf
                    async with connected(leaf.url, None, "beta") as bus:
                        return len(await sync.request_range(bus, "oakley", 1, me="beta")) == 3

                await wait_until(linked, what="the leaf carries beta's own answers")
                for _ in range(3):
                    wires, _ = await ask_as(hub, "gamma", gamma)
                    assert len(wires) == 3
                await anyio.sleep(0.3)
        assert [s for s in _answers(got) if not s.startswith("coopreply.beta.")] == []


async def test_requests_and_answers_go_out_only_under_ones_own_name(tmp_path: Path) -> None:
    """So the requester a responder rate-limits, and the responder a requester takes one
    answer of, are the real publishers."""
    with running_hub(tmp_path) as hub:
        beta = hub.creds("beta", node_permissions("beta"))
        audit = hub.creds("observer-audit", observer_permissions("audit"))
        async with session(hub.url, beta, user="beta") as b, session(hub.url, audit) as o:
            await b.nc.publish("coopsync.oakley.gamma", b"", reply="coopreply.gamma.t")
            await b.nc.publish("coopsync._heads.gamma", b"", reply="coopreply.gamma.t")
            await b.nc.publish("coopsync.oakley", b"", reply="coopreply.beta.t")  # old form
            await b.nc.publish("coopreply.gamma.t.holder", b"forged")
            await b.nc.publish("coopsync.oakley.beta", b"", reply="coopreply.beta.t")  # own
            await b.nc.publish("coopreply.gamma.t.beta", b"")  # an answer as itself: allowed
            await o.nc.publish("coopreply.gamma.t.observer-audit", b"")  # answers no one
            await b.nc.flush()
            await o.nc.flush()
            await anyio.sleep(0.3)
            assert sorted(v.split('"')[1] for v in b.violations()) == [
                "coopreply.gamma.t.holder",
                "coopsync._heads.gamma",
                "coopsync.oakley",
                "coopsync.oakley.gamma",
            ]
            assert [v.split('"')[1] for v in o.violations()] == ["coopreply.gamma.t.observer-audit"]


@contextlib.contextmanager
def _leaf(root: Path, hub: Hub, slug: str, creds: Path) -> Iterator[NatsServer]:
    port, http_port = free_ports(2)
    config = root / f"leaf-{slug}.conf"
    config.write_text(
        leaf_config(
            slug=slug,
            port=port,
            hub_leaf_urls=[hub.leaf_url],
            creds_path=creds,
            http_port=http_port,
        )
    )
    leaf = NatsServer(root / f"leaf-{slug}", port=port, config=config)
    leaf.start()
    try:
        yield leaf
    finally:
        leaf.stop()
