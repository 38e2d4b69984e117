"""Retiring settles first, and a retired node stops by itself (PROTOCOL.md §16.5), between real
nodes over a real nats-server, and as a real `coopnet node run` process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from coopnet.node.engine.backup import backup, restore
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.refusals import Refused
from coopnet.node.market import projection as market
from coopnet.node.runtime import Node
from coopnet.protocol.membership import MembershipRetired
from tests.conftest import converged, make_node, running, wait_until
from tests.federation.test_audit import eggs, everywhere
from tests.processes import free_port, start_node, wait_ready

pytestmark = pytest.mark.timeout(120)


async def trade(seller: Node, buyer: Node, offer: str, quantity: int, name: str) -> None:
    """A whole trade between two running nodes, settled (35 cents a unit: `eggs`)."""
    await buyer.trading.propose(seller.slug, offer, quantity, trade=name)
    await everywhere([seller], buyer.slug, name, "proposed")
    await seller.trading.accept(buyer.slug, name)
    await seller.trading.ship(buyer.slug, name)
    await everywhere([buyer], buyer.slug, name, "shipped")
    await buyer.trading.receive(buyer.slug, name)
    await everywhere([seller, buyer], buyer.slug, name, "settled")


async def refusal(node: Node) -> Refused:
    with pytest.raises(Refused) as refused:
        await node.governance.retire("moving away")
    assert refused.value.code == "balance_not_settled"
    return refused.value


async def test_a_neighborhood_settles_before_it_retires_then_its_node_stops(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    nodes = [Node(await make_node(tmp_path, s, url), serve_api=False) for s in ("oakley", "elm")]
    async with running(*nodes) as (oakley, elm):
        await oakley.post(eggs(50))
        await wait_until(lambda: converged(oakley, elm), what="oakley's offer at elm")
        await elm.trading.propose("oakley", "eggs-1", 4, trade="t-open")
        await everywhere([oakley], "elm", "t-open", "proposed")
        await oakley.trading.accept("elm", "t-open")
        await everywhere([elm], "elm", "t-open", "accepted")

        # An open trade: both parties are refused, the trade named.
        for node in (elm, oakley):
            message = (await refusal(node)).message
            assert "1 trade(s) are open: elm/t-open" in message, message
            assert "accepted, 140 cents" in message
            assert "balance is 0.00 credits (0 cents)" in message

        await oakley.trading.ship("elm", "t-open")
        await everywhere([elm], "elm", "t-open", "shipped")
        await elm.trading.receive("elm", "t-open")
        await everywhere([oakley, elm], "elm", "t-open", "settled")
        # Settled, but in debt (elm) and in credit (oakley): each is told how to settle.
        debt = (await refusal(elm)).message
        assert "balance is -1.40 credits (-140 cents)" in debt and "sell to members" in debt, debt
        assert "trade(s) are open" not in debt
        credit = (await refusal(oakley)).message
        assert "balance is 1.40 credits (140 cents)" in credit and "buy from members" in credit

        # elm sells back as much: both balances are 0, and elm may retire.
        await elm.post(eggs(10, offer="eggs-elm"))
        await wait_until(lambda: converged(oakley, elm), what="elm's offer at oakley")
        await trade(elm, oakley, "eggs-elm", 4, "t-back")
        assert await market.balances(elm.store.db) == {"oakley": 0, "elm": 0}
        retirement = await elm.governance.retire("merged with oakley")

        # elm's node stops by itself, once its retirement is on the bus, and says why.
        with anyio.fail_after(30):
            await elm.stopped.wait()
        assert elm.retired_line.startswith("elm retired from the federation at ")
        assert f"(event #{retirement.seq} {retirement.id.hex()})" in elm.retired_line
        assert elm.retired_line.endswith(
            "this node stops; its log stays readable (coopnet node status)"
        )

        async def oakley_knows() -> bool:
            return retirement.id in await oakley.store.event_ids()

        await wait_until(oakley_knows, what="elm's retirement at oakley")


async def test_a_retired_node_process_exits_0_and_does_not_start_again(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    data = await make_node(tmp_path, "oakley", nats_server.url)
    port = free_port()
    log = tmp_path / "oakley.log"
    proc = start_node(data, nats_server.url, port, log=log)
    try:
        await anyio.to_thread.run_sync(wait_ready, port, proc)
        answer = await anyio.to_thread.run_sync(
            lambda: httpx.post(
                f"http://127.0.0.1:{port}/membership/retire", json={"reason": "moving away"}
            )
        )
        assert answer.status_code == 201, answer.text
        assert await anyio.to_thread.run_sync(lambda: proc.wait(timeout=60)) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    event = answer.json()["id"]
    assert re.search(
        rf"oakleyretiredfromthefederationat\S+Z\(event#\d+{event}\):thisnodestops;"
        r"itslogstaysreadable\(coopnetnodestatus\)",
        _unwrapped(log.read_text()),
    ), log.read_text()

    # Started again, it stops at once, exit 0, without connecting to the bus: the nats URL
    # given here leads nowhere, and a node that connected would wait for it.
    args = ["node", "run", "--data", str(data), "--api-port", str(free_port()),
            "--nats", f"nats://127.0.0.1:{free_port()}"]  # fmt: skip
    again = await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-m", "coopnet", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    )
    assert again.returncode == 0, again.stderr
    assert "oakleyretiredfromthefederationat" in _unwrapped(again.stderr), again.stderr
    assert f"{event}):thisnodestops" in _unwrapped(again.stderr), again.stderr


def _unwrapped(text: str) -> str:
    """The node's log without whitespace: its handler wraps long lines at the terminal width."""
    return re.sub(r"\s+", "", text)


async def test_a_store_ending_with_an_unpublished_retirement_publishes_it_then_stops(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """Signed while the bus was down (not ready: trusted local head), the retirement waits in
    the outbox: the node stays until it is on the bus, then stops."""
    url = nats_server.url
    data = await make_node(tmp_path, "oakley", url)
    await anyio.to_thread.run_sync(nats_server.stop)
    node = Node(data, serve_api=False, trust_local_head=True)
    async with anyio.create_task_group() as tg:
        await tg.start(node.run)
        retirement = await node.post(MembershipRetired(reason="closing"))
        with anyio.move_on_after(1.0):
            await node.stopped.wait()
        assert not node.stopped.is_set()  # its retirement is not on the bus yet
        await anyio.to_thread.run_sync(nats_server.start)
        with anyio.fail_after(60):
            await node.stopped.wait()
        tg.cancel_scope.cancel()
    assert f"{retirement.id.hex()}" in node.retired_line
    assert "have not reached the bus" not in node.retired_line


async def test_a_node_restored_from_before_its_retirement_learns_it_and_stops(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    data = await make_node(tmp_path, "oakley", nats_server.url)
    copy = tmp_path / "oakley-copy.db"
    node = Node(data, serve_api=False)
    async with running(node):
        net, key = node.net, node.identity.public_key
        await anyio.to_thread.run_sync(lambda: backup(data, copy, net=net, slug="oakley", key=key))
        retirement = await node.governance.retire("closing")
        with anyio.fail_after(30):
            await node.stopped.wait()
    await anyio.to_thread.run_sync(lambda: restore(data, copy, net=net, slug="oakley", key=key))
    again = Node(data, serve_api=False)
    async with anyio.create_task_group() as tg:
        await tg.start(again.run)
        with anyio.fail_after(30):
            await again.stopped.wait()  # after recovering its head from the bus
    assert not again.ready.is_set()  # it never could sign
    assert retirement.id.hex() in again.retired_line
