"""Market rules that hold on both sides (PROTOCOL.md §10-12), over real nodes, a real
nats-server and real SQLite: a total beyond its bound, a minimum order, a revision below
what was accepted, an automatic policy offered less than the asking price, and creates
under a client-chosen id answered once."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from coopnet.federation.audit import audit
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store import now_ms
from coopnet.node.market import projection as market
from coopnet.node.runtime import Node
from coopnet.protocol.offers import OfferPosted
from coopnet.protocol.trades import TradeProposed
from tests.conftest import converged, make_node, running, wait_until
from tests.node.test_market import configure, trade_state

pytestmark = pytest.mark.timeout(90)
FAR = 4_000_000_000_000


def jars(quantity: int = 10, unit_price: int = 300, min_order: int = 1) -> OfferPosted:
    return OfferPosted(
        offer="o-honey", item="honey jars", category="prepared-food", quantity=quantity,
        unit="piece", unit_price=unit_price, min_order=min_order, available_until=FAR,
        area="T1",
    )  # fmt: skip


async def pair(tmp_path: Path, url: str, **seller_config: object) -> tuple[Node, Node]:
    seller_data = await make_node(tmp_path, "millbrook", url)
    if seller_config:
        configure(seller_data, **seller_config)
    return Node(seller_data), Node(await make_node(tmp_path, "ashgrove", url))


async def test_a_total_beyond_its_bound_is_refused_by_signer_and_receiver(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """The signer says no before signing (400 `out_of_bounds`); a proposal signed anyway
    (here by a node that skips the check) is stored by every receiver, refused alone, and
    the author's next event is stored after it: nothing overflows, nothing is lost."""
    seller, buyer = await pair(tmp_path, nats_server.url)
    async with running(seller, buyer):
        await seller.post(jars(quantity=10**12, unit_price=10**12))
        await wait_until(lambda: converged(seller, buyer), what="the offer spreads")
        async with httpx.AsyncClient(base_url=buyer.api_url) as api:
            r = await api.post(
                "/trades",
                json={"seller": "millbrook", "offer": "o-honey", "quantity": 10**7, "trade": "t"},
            )
        assert (r.status_code, r.json()["code"]) == (400, "out_of_bounds")
        big = TradeProposed(
            trade="t-big", seller="millbrook", offer="o-honey", quantity=10**12,
            unit_price=10**12, expires_at=FAR,
        )  # fmt: skip
        env = await buyer.post(big)  # straight to the log: what a rogue node would sign
        after = await buyer.post(jars())  # the author's next event, any kind
        await wait_until(lambda: converged(seller, buyer), what="both events everywhere")
        for node in (seller, buyer):
            assert await node.store.has_id(env.id) and await node.store.has_id(after.id)
            rows = await node.store.all(
                "SELECT code FROM domain_rejections WHERE id = ?", (env.id,)
            )
            assert rows == [("out_of_bounds",)]
            assert await trade_state(node, "ashgrove", "t-big") is None
            assert node.internal_errors == 0


async def test_an_acceptance_below_the_minimum_order_is_refused_before_signing(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    seller, buyer = await pair(tmp_path, nats_server.url)
    async with running(seller, buyer):
        await seller.post(jars(min_order=5))
        await wait_until(lambda: converged(seller, buyer), what="the offer spreads")
        with pytest.raises(Refused) as below:
            await buyer.trading.propose("millbrook", "o-honey", 4, trade="t-4")
        assert below.value.code == "below_min_order"
        # A proposal below it, signed anyway, reaches the seller, who will not accept it.
        await buyer.post(
            TradeProposed(trade="t-2", seller="millbrook", offer="o-honey", quantity=2,
                          unit_price=300, expires_at=FAR)
        )  # fmt: skip
        await wait_until(
            lambda: _has_trade(seller, "ashgrove", "t-2"), what="the proposal reaches the seller"
        )
        with pytest.raises(Refused) as refused:
            await seller.trading.accept("ashgrove", "t-2")
        assert refused.value.code == "below_min_order"
        assert "minimum order of 5" in refused.value.message
        await buyer.trading.propose("millbrook", "o-honey", 5, trade="t-5")
        await wait_until(lambda: _has_trade(seller, "ashgrove", "t-5"), what="t-5 arrives")
        await seller.trading.accept("ashgrove", "t-5")  # exactly the minimum: accepted


async def _has_trade(node: Node, buyer: str, trade: str) -> bool:
    return await market.load_trade(node.store.db, buyer, trade) is not None


async def test_a_revision_below_what_was_accepted_is_refused_and_the_audit_stays_quiet(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """8 of 10 accepted: revising to 5 would turn a kept promise into an oversell, so the
    node refuses before signing (409) and every receiver refuses such a revision."""
    seller, buyer = await pair(tmp_path, nats_server.url)
    async with running(seller, buyer):
        await seller.post(jars())
        await wait_until(lambda: converged(seller, buyer), what="the offer spreads")
        await buyer.trading.propose("millbrook", "o-honey", 8, trade="t-honey")
        await wait_until(lambda: _has_trade(seller, "ashgrove", "t-honey"), what="proposal")
        await seller.trading.accept("ashgrove", "t-honey")
        async with httpx.AsyncClient(base_url=seller.api_url) as api:
            r = await api.post("/offers/o-honey/revise", json={"quantity": 5})
            assert (r.status_code, r.json()["code"]) == (409, "not_authorized")
            assert "below the 8 already accepted" in r.json()["message"]
            ok = await api.post("/offers/o-honey/revise", json={"quantity": 8})
            assert ok.status_code == 201, ok.text
        offer = await market.load_offer(seller.store.db, "millbrook", "o-honey")
        assert offer is not None and (offer.quantity, offer.remaining) == (8, 0)
        await wait_until(lambda: converged(seller, buyer), what="the revision spreads")
        # The same audit an observer runs finds nothing wrong: no oversold offer.
        findings = await audit(buyer.store.db, None, now_ms=now_ms())
        assert [f.code for f in findings if f.severity == "critical"] == []


async def test_the_automatic_policy_declines_less_than_the_asking_price(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    seller, buyer = await pair(tmp_path, nats_server.url, auto_trade=True)
    async with running(seller, buyer):
        await seller.post(jars(quantity=40, unit_price=450))
        await wait_until(lambda: converged(seller, buyer), what="the offer spreads")
        await buyer.trading.propose("millbrook", "o-honey", 40, unit_price=0, trade="t-free")
        await buyer.trading.propose("millbrook", "o-honey", 2, unit_price=450, trade="t-fair")

        async def answered() -> bool:
            return await trade_state(
                buyer, "ashgrove", "t-free"
            ) == "declined" and await trade_state(buyer, "ashgrove", "t-fair") in (
                "shipped",
                "settled",
            )

        await wait_until(answered, what="the policy's answers")
        reason = await buyer.store.all(
            "SELECT body FROM trade_events WHERE trade = 't-free' AND kind = 'trade.declined'"
        )
        assert b"below the offer's 450" in bytes(reason[0][0])


async def test_a_create_retried_under_its_id_is_answered_once(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """Offers, needs, trades, calls for help, pledges and alerts: the same request twice
    gives the same answer and one event; another request under the same id is a 409."""
    seller, buyer = await pair(tmp_path, nats_server.url)
    async with running(seller, buyer):
        async with httpx.AsyncClient(base_url=seller.api_url) as s_api:
            offer = {"item": "oat milk", "category": "dairy-eggs", "quantity": 5000,
                     "unit": "millilitre", "unit_price": 1, "offer": "o-oat"}  # fmt: skip
            await _once(s_api, "/offers", offer, {**offer, "quantity": 4000})
            need = {"item": "flour", "category": "produce", "quantity": 10, "unit": "gram",
                    "need": "n-flour"}  # fmt: skip
            await _once(s_api, "/needs", need, {**need, "quantity": 11})
            alert = {"kind": "storm", "severity": "warning", "alert": "a-storm"}
            await _once(s_api, "/alerts", alert, {**alert, "severity": "danger"})
            request = {"category": "food", "urgency": "low", "quantity": 2,
                       "description": "soup for two", "request": "r-soup"}  # fmt: skip
            await _once(s_api, "/aid/requests", request, {**request, "quantity": 3})
            pledge = {"what": "a pot of soup", "quantity": 1, "pledge": "p-pot"}
            await _once(
                s_api, "/aid/requests/millbrook/r-soup/pledges", pledge, {**pledge, "quantity": 2}
            )
        await wait_until(lambda: converged(seller, buyer), what="the offer spreads")
        async with httpx.AsyncClient(base_url=buyer.api_url) as b_api:
            trade = {"seller": "millbrook", "offer": "o-oat", "quantity": 10, "trade": "t-milk"}
            await _once(b_api, "/trades", trade, {**trade, "quantity": 500})
        bought = await buyer.store.all(
            "SELECT kind, COUNT(*) FROM events WHERE author = 'ashgrove' GROUP BY kind"
        )
        assert dict(bought)["trade.proposed"] == 1
        kinds = dict(
            await seller.store.all(
                "SELECT kind, COUNT(*) FROM events WHERE author = 'millbrook' GROUP BY kind"
            )
        )
        assert (kinds["offer.posted"], kinds["need.posted"], kinds["alert.raised"]) == (1, 1, 1)
        assert await seller.store.all("SELECT COUNT(*) FROM local_aid") == [(1,)]
        assert await seller.store.all("SELECT COUNT(*) FROM local_pledges") == [(1,)]


async def _once(
    api: httpx.AsyncClient, path: str, body: Mapping[str, object], other: Mapping[str, object]
) -> None:
    first = await api.post(path, json=body)
    assert first.status_code == 201, first.text
    again = await api.post(path, json=body)
    assert (again.status_code, again.json()) == (201, first.json())
    clash = await api.post(path, json=other)
    assert (clash.status_code, clash.json()["code"]) == (409, "duplicate"), clash.text
