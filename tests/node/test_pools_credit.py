"""Pools and the credit limit (PROTOCOL.md §12, §19), on real nodes over a real nats-server:
a trade proposal and a pool commitment checked at once never pass the limit together; an
organizer's own commitment to a member supplier's pool and its delivery are checked; and a
close leaves out a rogue's commitment beyond its limit, so the organizer never fronts it."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.refusals import Refused
from coopnet.node.market import projection as market
from coopnet.node.pools import projection as pools
from coopnet.protocol.ledger import DEFAULT_CREDIT_LIMIT
from coopnet.protocol.offers import OfferPosted
from coopnet.protocol.pools import PoolCommitted
from tests.conftest import converged, running, wait_until
from tests.federation.test_audit import Rogue, honest, publish
from tests.node.test_pools import FAR, everywhere

pytestmark = pytest.mark.timeout(180)
LIMIT = DEFAULT_CREDIT_LIMIT  # 50,000 cents: no charter, every node's default


async def test_a_trade_and_a_pool_commitment_at_once_never_pass_the_credit_limit(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """Each alone fits elm's limit (30,000 of 50,000 cents), both together do not: checked
    under the node's one lock, exactly one is signed, whichever came first."""
    elm, ash = await honest(tmp_path, nats_server.url, "elm", "ash")
    async with running(elm, ash):
        await wait_until(lambda: converged(elm, ash), what="the foundings spread")
        offer = OfferPosted(
            offer="oil-1", item="oil", category="household-goods", quantity=10, unit="litre",
            unit_price=30_000, available_until=FAR, area="T1",
        )  # fmt: skip
        await ash.post(offer)
        await ash.pooling.open(
            item="oil", unit="litre", case_size=1, unit_price=30_000, closes_at=FAR,
            supplier_name="Valley Press", pool="oil",
        )  # fmt: skip
        await wait_until(lambda: converged(elm, ash), what="the offer and the pool spread")
        outcomes: list[str] = []

        async def attempt(name: str, step: object) -> None:
            try:
                await step  # type: ignore[misc]
                outcomes.append(f"{name} signed")
            except Refused as exc:
                outcomes.append(f"{name} {exc.code}")

        async with anyio.create_task_group() as tg:
            tg.start_soon(attempt, "trade", elm.trading.propose("ash", "oil-1", 1))
            tg.start_soon(attempt, "commit", elm.pooling.commit("ash", "oil", 1))
        assert sorted(o.split()[1] for o in outcomes) == ["credit_limit_exceeded", "signed"]
        balance, committed = await elm.trading.standing("elm")
        assert (balance, committed) == (0, 30_000)


async def test_an_organizers_own_commitment_and_delivery_are_checked(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """With a member supplier, the organizer pays for every case on delivery: its own
    commitment beyond its limit is refused, and so is a delivery whose own share it cannot
    afford (the others' shares are held on their side)."""
    elm, ash = await honest(tmp_path, nats_server.url, "elm", "ash")
    async with running(elm, ash):
        await wait_until(lambda: converged(elm, ash), what="the foundings spread")
        await elm.pooling.open(
            item="gold", unit="gram", case_size=10, unit_price=1_000, max_cases=100,
            closes_at=FAR, supplier="ash", pool="g",
        )  # fmt: skip
        with pytest.raises(Refused) as refused:
            await elm.pooling.commit("elm", "g", 60)  # 60,000 cents, beyond 50,000
        assert refused.value.code == "credit_limit_exceeded"
        assert "below its credit limit of -500.00 credits" in refused.value.message
        await elm.pooling.commit("elm", "g", 40)  # 40,000 cents fits
        await elm.pooling.close("g")
        await wait_until(everywhere((elm, ash), "elm", "g", "closed"), what="closed")
        # Meanwhile elm bought elsewhere: 20,000 cents held by an open trade.
        await ash.post(
            OfferPosted(
                offer="tea-1", item="tea", category="household-goods", quantity=5,
                unit="kilogram", unit_price=20_000, available_until=FAR, area="T1",
            )
        )  # fmt: skip
        await wait_until(lambda: converged(elm, ash), what="the offer spreads")
        await elm.trading.propose("ash", "tea-1", 1)
        with pytest.raises(Refused) as refused:
            await elm.pooling.deliver("g")  # its share: 40,000 more, 60,000 in all
        assert refused.value.code == "credit_limit_exceeded"
        p = await pools.load_pool(elm.store.db, "elm", "g")
        assert p is not None and p["state"] == "closed"
        assert await market.balances(elm.store.db) == {}


async def test_a_close_leaves_out_a_rogue_commitment_beyond_its_limit(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """zed signs a commitment its own node would refuse (10^9 units at 1,000 cents); elm's
    close counts ash's honest commitment and leaves zed's out, so elm never pays the
    supplier for what zed cannot pay back."""
    url = nats_server.url
    elm, ash, birch = await honest(tmp_path, url, "elm", "ash", "birch")
    zed = Rogue("zed")
    async with running(elm, ash, birch):
        await publish(url, zed.found())
        await wait_until(lambda: converged(elm, ash, birch), what="the foundings spread")
        await elm.pooling.open(
            item="gold", unit="gram", case_size=10, unit_price=1_000, closes_at=FAR,
            supplier="birch", pool="g",
        )  # fmt: skip
        await wait_until(everywhere((elm, ash), "elm", "g", "open"), what="open")
        await ash.pooling.commit("elm", "g", 10)
        await publish(url, zed.next(PoolCommitted(organizer="elm", pool="g", quantity=10**9)))

        async def both_held() -> bool:
            return len(await pools.commitments(elm.store.db, "elm", "g")) == 2

        await wait_until(both_held, what="both commitments at elm")
        await elm.pooling.close("g")
        await wait_until(everywhere((elm, ash), "elm", "g", "closed"), what="closed")
        p = await pools.load_pool(elm.store.db, "elm", "g")
        assert p is not None
        assert {s["participant"]: s["share"] for s in p["shares"]} == {"ash": 10}
        assert p["cases"] == 1
