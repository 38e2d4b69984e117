"""Market rules that hold on both sides (PROTOCOL.md §10-12), over real nodes, a real
nats-server and real SQLite: a total beyond its bound, a minimum order, a revision below
what was accepted, an automatic policy offered less than the asking price, and creates
under a client-chosen id answered once."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import httpx
import msgspec
import nacl.signing
import pytest

from coopnet.federation.audit import audit
from coopnet.node.engine.chains import Chains
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store import Store, now_ms
from coopnet.node.market import projection as market
from coopnet.node.runtime import Node
from coopnet.protocol import NodeFounded, seal_envelope, unseal
from coopnet.protocol.aid import AlertRaised
from coopnet.protocol.body import Body
from coopnet.protocol.offers import NeedPosted, NeedWithdrawn, OfferPosted, OfferRevised
from coopnet.protocol.trades import TradeAccepted, TradeProposed
from tests.conftest import NET, converged, make_node, running, wait_until
from tests.node.test_market import configure, trade_state
from tests.stores import open_node_store

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
            escalated = {**request, "request": "r-far", "escalate_now": True}
            assert (await s_api.post("/aid/requests", json=escalated)).status_code == 201
        await wait_until(lambda: converged(seller, buyer), what="offer and request spread")
        async with httpx.AsyncClient(base_url=buyer.api_url) as b_api:
            trade = {"seller": "millbrook", "offer": "o-oat", "quantity": 10, "trade": "t-milk"}
            await _once(b_api, "/trades", trade, {**trade, "quantity": 500})
            # A pledge to another neighborhood's escalated request: a signed event.
            far = {"what": "a pot of soup", "quantity": 1, "pledge": "p-far"}
            path = "/aid/requests/millbrook/r-far/pledges"
            await _once(b_api, path, far, {**far, "what": "two pots"})
        bought = await buyer.store.all(
            "SELECT kind, COUNT(*) FROM events WHERE author = 'ashgrove' GROUP BY kind"
        )
        assert (dict(bought)["trade.proposed"], dict(bought)["aid.pledged"]) == (1, 1)
        kinds = dict(
            await seller.store.all(
                "SELECT kind, COUNT(*) FROM events WHERE author = 'millbrook' GROUP BY kind"
            )
        )
        assert (kinds["offer.posted"], kinds["need.posted"], kinds["alert.raised"]) == (1, 1, 1)
        assert await seller.store.all("SELECT COUNT(*) FROM local_aid") == [(2,)]
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


class Author:
    """An author signing its own log by hand: what a rogue (or any) member's node signs,
    without the checks coopnet makes before signing."""

    def __init__(self, slug: str) -> None:
        self.slug, self.key = slug, nacl.signing.SigningKey.generate()
        self.seq = 0
        self.prev: bytes | None = None
        following = nacl.signing.SigningKey.generate().verify_key
        self.first = self.sign(
            NodeFounded(
                display_name=slug.title(), area="T1", key=bytes(self.key.verify_key),
                next_key_digest=hashlib.sha256(bytes(following)).digest(),
            )
        )  # fmt: skip

    def sign(self, body: Body) -> bytes:
        self.seq += 1
        env = seal_envelope(
            signing_key=self.key, net=NET, author=self.slug, seq=self.seq, prev=self.prev,
            at=now_ms(), body=body,
        )  # fmt: skip
        self.prev = env.id
        return env.wire


async def received(tmp_path: Path, name: str, batches: list[list[bytes]]) -> Store:
    """A real store fed `batches` through `Chains.receive`, as a node's follower would."""
    store = await open_node_store(tmp_path / f"{name}.db", NET)
    chains = Chains(store, NET)
    await chains.load()
    for batch in batches:
        await chains.receive(batch, source="bus")
    return store


async def test_a_third_partys_acceptance_never_takes_the_sellers_reservation(
    tmp_path: Path,
) -> None:
    """A rogue posts an offer under the seller's offer id and accepts the buyer's trade
    first: each seller's log books only its own offer (PROTOCOL.md §10), so the seller's
    offer is reserved whatever the order, and every node holds the same rows."""
    seller, buyer, rogue = Author("seller"), Author("buyer"), Author("rogue")
    posted = [
        seller.first, buyer.first, rogue.first,
        seller.sign(jars(quantity=10)), rogue.sign(jars(quantity=10**6)),
        buyer.sign(TradeProposed(trade="t-1", seller="seller", offer="o-honey", quantity=8,
                                 unit_price=300, expires_at=FAR)),
    ]  # fmt: skip
    terms = {"buyer": "buyer", "trade": "t-1", "offer": "o-honey", "quantity": 8}
    by_rogue = rogue.sign(TradeAccepted(**terms, unit_price=300))  # type: ignore[arg-type]
    by_seller = seller.sign(TradeAccepted(**terms, unit_price=300))  # type: ignore[arg-type]
    rows = []
    for name, order in (
        ("rogue-first", [by_rogue, by_seller]),
        ("seller-first", [by_seller, by_rogue]),
    ):
        store = await received(tmp_path, name, [posted, [order[0]], [order[1]]])
        try:
            offer = await market.load_offer(store.db, "seller", "o-honey")
            assert offer is not None and (offer.reserved, offer.remaining) == (8, 2)
            trade = await market.load_trade(store.db, "buyer", "t-1")
            assert trade is not None and trade["state"] == "accepted"
            folded = await store.projection_rows()
            await store.rebuild_projections()
            assert await store.projection_rows() == folded
            rows.append(folded)
        finally:
            await store.close()
    assert rows[0] == rows[1]


async def test_rules_of_the_sellers_own_log_hold_on_receive(tmp_path: Path) -> None:
    """What the API refuses before signing, a receiver refuses too: a revision below what
    is accepted, a need posted twice under one id, an alert raised twice under one id."""
    seller, buyer = Author("seller"), Author("buyer")
    need = NeedPosted(
        need="n-1", item="flour", category="bakery", quantity=5, unit="gram",
        needed_by=FAR, area="T1",
    )  # fmt: skip
    storm = AlertRaised(alert="a-1", alert_kind="storm", severity="warning", area="T1")
    wires = [
        seller.first, buyer.first, seller.sign(jars(quantity=10)),
        buyer.sign(TradeProposed(trade="t-1", seller="seller", offer="o-honey", quantity=8,
                                 unit_price=300, expires_at=FAR)),
        seller.sign(TradeAccepted(buyer="buyer", trade="t-1", offer="o-honey", quantity=8,
                                  unit_price=300)),
        below := seller.sign(OfferRevised(offer="o-honey", quantity=5)),
        seller.sign(need), seller.sign(NeedWithdrawn(need="n-1")),
        again := seller.sign(msgspec.structs.replace(need, quantity=999)),
        seller.sign(storm),
        twice := seller.sign(msgspec.structs.replace(storm, severity="danger")),
    ]  # fmt: skip
    store = await received(tmp_path, "node", [wires])
    try:
        assert await store.event_count() == len(wires)  # every one stored (§7.1)
        offer = await market.load_offer(store.db, "seller", "o-honey")
        assert offer is not None and (offer.quantity, offer.reserved) == (10, 8)
        assert await store.all("SELECT quantity, state FROM needs") == [(5, "withdrawn")]
        assert await store.all("SELECT severity FROM alerts") == [("warning",)]
        refused = {bytes(r[0]): str(r[1]) for r in await store.all(
            "SELECT id, reason FROM domain_rejections")}  # fmt: skip
        ids = [unseal(w, net=NET).id for w in (below, again, twice)]
        assert set(refused) == set(ids)
        assert "below the 8 already accepted" in refused[ids[0]]
        assert "need n-1 is withdrawn" in refused[ids[1]]
        assert "raised already" in refused[ids[2]]
    finally:
        await store.close()
