"""The market over a real nats-server: lifecycle, races, limits, authority, arrival order."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import anyio
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coopnet.node.engine.chains import Chains
from coopnet.node.engine.config import read_config, write_config
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store_io import run_in_db
from coopnet.node.market import projection as market
from coopnet.node.runtime import Node
from coopnet.protocol import Envelope, Identity, seal, unseal
from coopnet.protocol.body import Body
from coopnet.protocol.offers import OfferPosted
from coopnet.protocol.trades import (
    TradeAccepted,
    TradeProposed,
    TradeReceived,
    TradeShipped,
)
from tests.conftest import NET, converged, make_node, running, wait_until
from tests.stores import open_node_store

pytestmark = pytest.mark.timeout(120)
DAY_MS = 86_400_000


def eggs(quantity: int, offer: str = "eggs-1", until: int = 2**62) -> OfferPosted:
    return OfferPosted(
        offer=offer, item="eggs", category="dairy-eggs", quantity=quantity, unit="piece",
        unit_price=35, available_until=until, area="T1",
    )  # fmt: skip


def configure(data: Path, **changes: object) -> None:
    write_config(data, msgspec.structs.replace(read_config(data), **changes))


async def trade_state(node: Node, buyer: str, trade: str) -> str | None:
    t = await market.load_trade(node.store.db, buyer, trade)
    return None if t is None else str(t["state"])


async def test_a_full_trade_lifecycle_across_three_nodes(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    datas = [await make_node(tmp_path, s, nats_server.url) for s in ("oakley", "elm", "ash")]
    seller, buyer, witness = nodes = [Node(d, serve_api=False) for d in datas]
    async with running(*nodes):
        await seller.post(eggs(120))
        await wait_until(lambda: converged(*nodes), what="the offer spreads")
        proposal = await buyer.trading.propose("oakley", "eggs-1", 24, trade="t-1")
        assert isinstance(proposal.body, TradeProposed)
        assert proposal.body.unit_price == 35  # the offer's price by default

        async def everywhere(state: str) -> bool:
            return all([await trade_state(n, "elm", "t-1") == state for n in nodes])

        await wait_until(lambda: everywhere("proposed"), what="proposed everywhere")
        await seller.trading.accept("elm", "t-1")
        await wait_until(lambda: everywhere("accepted"), what="accepted everywhere")
        offer = await market.load_offer(witness.store.db, "oakley", "eggs-1")
        assert offer is not None and offer.remaining == 96
        await seller.trading.ship("elm", "t-1")
        await wait_until(lambda: everywhere("shipped"), what="shipped everywhere")
        await buyer.trading.receive("elm", "t-1")
        await wait_until(lambda: everywhere("settled"), what="settled everywhere")
        for n in nodes:
            ledger = await market.balances(n.store.db)
            assert ledger == {"oakley": 24 * 35, "elm": -24 * 35}
            assert sum(ledger.values()) == 0
        await wait_until(lambda: converged(*nodes), what="convergence")
        rows = [await n.store.projection_rows() for n in nodes]
        assert rows[0] == rows[1] == rows[2]
        # A settled trade is closed: the buyer cannot cancel it any more.
        with pytest.raises(Refused) as refused:
            await buyer.trading.cancel("elm", "t-1")
        assert refused.value.code == "wrong_state"


async def test_ten_buyers_racing_for_one_offer_get_at_most_its_quantity(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    seller_data = await make_node(tmp_path, "oakley", nats_server.url)
    configure(seller_data, auto_trade=True)
    seller = Node(seller_data, serve_api=False)
    buyers = [
        Node(await make_node(tmp_path, f"buyer-{i}", nats_server.url), serve_api=False)
        for i in range(10)
    ]
    async with running(seller, *buyers):
        await seller.post(eggs(10))
        await wait_until(lambda: converged(seller, *buyers), what="the offer spreads")
        async with anyio.create_task_group() as tg:
            for b in buyers:
                tg.start_soon(b.trading.propose, "oakley", "eggs-1", 3)

        async def all_answered() -> bool:
            states = [
                await trade_state(seller, b.slug, t["trade"])
                for b in buyers
                for t in await _trades_of(seller, b.slug)
            ]
            return len(states) == 10 and all(s in ("shipped", "declined") for s in states)

        await wait_until(all_answered, within=60, what="the seller answers all ten")
        await wait_until(lambda: converged(seller, *buyers), within=60, what="convergence")
        for n in (seller, *buyers):
            offer = await market.load_offer(n.store.db, "oakley", "eggs-1")
            assert offer is not None
            assert offer.reserved <= offer.quantity
            got = await n.store.all(
                "SELECT COUNT(*) FROM trades WHERE seller = 'oakley' AND state != 'declined'"
            )
            assert got[0][0] * 3 <= 10
        final = await market.load_offer(seller.store.db, "oakley", "eggs-1")
        assert final is not None
        assert final.reserved == 9  # three buyers got 3 each; seven were declined


async def _trades_of(node: Node, buyer: str) -> list[dict[str, str]]:
    rows = await node.store.all("SELECT trade FROM trades WHERE buyer = ?", (buyer,))
    return [{"trade": str(r[0])} for r in rows]


async def test_a_buyer_at_its_limit_is_refused_before_anything_is_signed(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    buyer_data = await make_node(tmp_path, "elm", nats_server.url)
    configure(buyer_data, credit_limit=1_000)
    seller, buyer = Node(await make_node(tmp_path, "oakley", nats_server.url)), Node(buyer_data)
    seller.serve_api = buyer.serve_api = False
    async with running(seller, buyer):
        await seller.post(eggs(1_000))
        await wait_until(lambda: converged(seller, buyer), what="the offer spreads")
        await buyer.trading.propose("oakley", "eggs-1", 28)  # 980 of 1000
        head = (await buyer.status()).own_head
        with pytest.raises(Refused) as refused:
            await buyer.trading.propose("oakley", "eggs-1", 1)  # 35 more: over the limit
        assert refused.value.code == "credit_limit_exceeded"
        assert refused.value.message == (  # in the federation's currency, not raw cents
            "0.35 credits more would take elm to -10.15 credits (balance 0.00 credits,"
            " 9.80 credits held by open trades and pools), below its credit limit of"
            " -10.00 credits"
        )
        assert (await buyer.status()).own_head == head  # nothing was signed


async def test_a_trade_event_by_the_wrong_party_is_not_authorized_everywhere(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    names = ("oakley", "elm", "ash")
    seller, buyer, intruder = nodes = [
        Node(await make_node(tmp_path, s, nats_server.url), serve_api=False) for s in names
    ]
    async with running(*nodes):
        await seller.post(eggs(50))
        await wait_until(lambda: converged(*nodes), what="the offer spreads")
        await buyer.trading.propose("oakley", "eggs-1", 5, trade="t-1")
        await wait_until(lambda: converged(*nodes), what="the proposal spreads")
        # ash is not the seller, but signs an acceptance and a shipment of elm's trade.
        await intruder.post(
            TradeAccepted(buyer="elm", trade="t-1", offer="eggs-1", quantity=5, unit_price=35)
        )
        await intruder.post(TradeShipped(buyer="elm", trade="t-1"))
        # and oakley signs a receipt in elm's name.
        await seller.post(TradeReceived(buyer="elm", trade="t-1"))

        async def refused_everywhere() -> bool:
            return all([(await n.status()).rejected.get("not_authorized", 0) >= 3 for n in nodes])

        await wait_until(refused_everywhere, what="not_authorized counted on every node")
        for n in nodes:
            assert await trade_state(n, "elm", "t-1") == "proposed"
            assert await market.balances(n.store.db) == {}


# -- projections do not depend on arrival order --------------------------------------------


def _market_histories() -> dict[str, list[bytes]]:
    """Three co-ops: oakley sells eggs and kale; elm and ash buy, one cancels."""
    out: dict[str, list[bytes]] = {}
    heads: dict[str, Envelope] = {}
    idents = {s: Identity.from_passphrase(s, "order") for s in ("oakley", "elm", "ash")}

    def add(author: str, body: Body) -> None:
        prev = heads.get(author)
        seq = prev.seq + 1 if prev else 1
        wire = seal(
            signing_key=idents[author].signing_key, net=NET, author=author, seq=seq,
            prev=prev.id if prev else None, at=1_800_000_000_000 + seq, body=body,
        )  # fmt: skip
        heads[author] = unseal(wire, net=NET)
        out.setdefault(author, []).append(wire)

    for author, ident in idents.items():
        add(author, ident.founding_body(author.title(), "T1"))
    add("oakley", eggs(10))
    add("elm", TradeProposed(trade="a", seller="oakley", offer="eggs-1", quantity=6,
                             unit_price=35, expires_at=2**62))  # fmt: skip
    add("ash", TradeProposed(trade="b", seller="oakley", offer="eggs-1", quantity=6,
                             unit_price=35, expires_at=2**62))  # fmt: skip
    add("oakley", TradeAccepted(buyer="elm", trade="a", offer="eggs-1", quantity=6,
                                unit_price=35))  # fmt: skip
    add(
        "oakley", TradeAccepted(buyer="ash", trade="b", offer="eggs-1", quantity=6, unit_price=35)
    )  # fmt: skip  (would oversell: refused)
    add("oakley", TradeShipped(buyer="elm", trade="a"))
    add("elm", TradeReceived(buyer="elm", trade="a"))
    add("ash", TradeReceived(buyer="ash", trade="b"))  # not shipped: no settlement
    return out


HISTORIES = _market_histories()


@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_projections_are_the_same_for_every_arrival_order(
    tmp_path_factory: pytest.TempPathFactory, seed: int
) -> None:
    anyio.run(_check_order, tmp_path_factory.mktemp("order"), seed)


async def _check_order(tmp: Path, seed: int) -> None:
    rng = random.Random(seed)
    queues = {a: list(w) for a, w in HISTORIES.items()}
    order: list[bytes] = []
    while any(queues.values()):  # an interleaving that respects each author's order
        author = rng.choice([a for a, q in queues.items() if q])
        order.append(queues[author].pop(0))
    results = []
    for name, wires in (
        ("in-order", [w for ws in HISTORIES.values() for w in ws]),
        ("shuffled", order),
    ):
        store = await open_node_store(tmp / f"{name}.db", NET)
        chains = Chains(store, NET, clock=lambda: 1_800_000_000_100)
        i = 0
        while i < len(wires):  # in batches of random size, as a bus would deliver them
            n = rng.randint(1, 4)
            await chains.receive(wires[i : i + n], source=name)
            i += n
        results.append(await store.projection_rows())
        ledger = await market.balances(store.db)
        assert ledger == {"oakley": 210, "elm": -210}
        # One party's standing, as `propose` reads it, agrees with the whole ledger.
        open_ = await market.commitments(store.db, 1_800_000_000_100)
        assert open_ == {"ash": 210}
        for party in ("oakley", "elm", "ash", "nobody"):
            assert await run_in_db(store.db, market.standing_of, party, 1_800_000_000_100) == (
                ledger.get(party, 0),
                open_.get(party, 0),
            )
        await store.close()
    assert results[0] == results[1]
    assert hashlib.sha256(repr(results[0]).encode()).digest()  # (they are not empty)
    assert results[0]["reservations"] == [("oakley", "eggs-1", "elm", "a", 6, 0)]
