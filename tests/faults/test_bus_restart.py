"""The bus goes away in the middle of a trade and comes back: the trade completes, once."""

from __future__ import annotations

from pathlib import Path

import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.market import projection as market
from coopnet.node.runtime import Node
from coopnet.protocol.offers import OfferPosted
from tests.conftest import converged, make_node, running, wait_until

pytestmark = pytest.mark.timeout(120)


async def test_bus_restart_in_the_middle_of_a_trade(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    seller = Node(await make_node(tmp_path, "oakley", nats_server.url), serve_api=False)
    buyer = Node(await make_node(tmp_path, "elm", nats_server.url), serve_api=False)
    async with running(seller, buyer):
        await seller.post(
            OfferPosted(
                offer="jam",
                item="plum jam",
                category="prepared-food",
                quantity=20,
                unit="piece",
                unit_price=550,
                available_until=2**62,
                area="T1",
            )
        )
        await wait_until(lambda: converged(seller, buyer), what="the offer spreads")
        await buyer.trading.propose("oakley", "jam", 4, trade="t-1")

        async def seller_sees(state: str) -> bool:
            t = await market.load_trade(seller.store.db, "elm", "t-1")
            return t is not None and t["state"] == state

        await wait_until(lambda: seller_sees("proposed"), what="the seller sees the proposal")
        nats_server.stop()  # the bus is gone: the seller answers anyway, into its outbox
        await seller.trading.accept("elm", "t-1")
        await seller.trading.ship("elm", "t-1")
        assert await seller.store.outbox_depth() == 2
        nats_server.start()  # back, on the same port with the same stream

        async def buyer_sees(state: str) -> bool:
            t = await market.load_trade(buyer.store.db, "elm", "t-1")
            return t is not None and t["state"] == state

        await wait_until(lambda: buyer_sees("shipped"), within=60, what="shipped reaches the buyer")
        await buyer.trading.receive("elm", "t-1")
        await wait_until(lambda: seller_sees("settled"), within=60, what="settled at the seller")
        for node in (seller, buyer):
            ledger = await market.balances(node.store.db)
            assert ledger == {"oakley": 2200, "elm": -2200}
            assert (await node.status()).rejected == {}
        await wait_until(lambda: converged(seller, buyer), what="convergence")
        assert await seller.store.outbox_depth() == 0
