"""The dashboard's JSON API speaks of goods (issue 17): what settled trade moved between
neighborhoods (item, quantity and unit), the federation's open offers and needs, and the
currency its amounts are counted in, named once in `/api/summary` while every amount stays
integer cents. A real observer over a day of trade on a real nats-server."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from coopnet.federation import measures
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.store import now_ms
from coopnet.node.market import projection as market
from coopnet.protocol.offers import NeedPosted, OfferWithdrawn
from tests.conftest import wait_until
from tests.federation.test_observer import DAY_MS, market_day, offer

pytestmark = pytest.mark.timeout(90)

CREDITS = {"code": "CRD", "name": "credits", "symbol": "", "minor_units": 2}


def flour(need: str, quantity: int, *, needed_by: int) -> NeedPosted:
    return NeedPosted(
        need=need, item="flour", category="bakery", quantity=quantity, unit="gram",
        max_unit_price=2, needed_by=needed_by, area="T1",
    )  # fmt: skip


async def test_goods_open_market_and_currency_in_the_api(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    async with market_day(tmp_path, nats_server.url) as day, httpx.AsyncClient() as http:
        _, elm, ash = day.nodes
        # Still in time, past its date, withdrawn: only the first is open.
        await ash.post(flour("flour-1", 5000, needed_by=now_ms() + DAY_MS))
        await ash.post(flour("flour-old", 100, needed_by=now_ms() - 1))
        await elm.post(offer("jam-1", "jam", 10, 400))
        await elm.post(OfferWithdrawn(offer="jam-1"))

        async def seen() -> bool:
            rows = await day.obs.store.all("SELECT COUNT(*) FROM needs")
            jam = await market.load_offer(day.obs.store.db, "elm", "jam-1")
            return rows == [(2,)] and jam is not None and jam.state == "withdrawn"

        await wait_until(seen, what="the needs and the withdrawal at the observer")

        # Goods: per pair and item, what moved and in which unit.
        goods = (await http.get(f"{day.url}/api/goods")).json()
        assert goods == [
            {"from": "oakley", "to": "elm", "item": "eggs", "unit": "piece", "quantity": 8,
             "trades": 2, "volume": 280},
            {"from": "elm", "to": "ash", "item": "kale", "unit": "piece", "quantity": 2,
             "trades": 1, "volume": 200},
            {"from": "oakley", "to": "ash", "item": "eggs", "unit": "piece", "quantity": 4,
             "trades": 1, "volume": 140},
        ]  # fmt: skip
        elm_page = (await http.get(f"{day.url}/api/neighborhoods/elm")).json()
        assert [(g["from"], g["to"], g["item"]) for g in elm_page["goods"]] == [
            ("oakley", "elm", "eggs"),
            ("elm", "ash", "kale"),
        ]

        # The open market: what is left of each offer (the seller's reservations taken
        # off), with its price in cents and its date; needs still in time.
        open_ = (await http.get(f"{day.url}/api/market")).json()
        eggs = await market.load_offer(day.obs.store.db, "oakley", "eggs-1")
        kale = await market.load_offer(day.obs.store.db, "elm", "kale-1")
        assert eggs is not None and kale is not None
        assert (eggs.remaining, kale.remaining) == (88, 48)
        assert open_["offers"] == [
            {"seller": "oakley", "offer": "eggs-1", "item": "eggs", "category": "produce",
             "left": 88, "unit": "piece", "unit_price": 35, "min_order": 1,
             "until": eggs.available_until, "area": "T1", "delivery": "pickup"},
            {"seller": "elm", "offer": "kale-1", "item": "kale", "category": "produce",
             "left": 48, "unit": "piece", "unit_price": 100, "min_order": 1,
             "until": kale.available_until, "area": "T1", "delivery": "pickup"},
        ]  # fmt: skip
        (need,) = open_["needs"]
        assert {k: need[k] for k in ("buyer", "need", "item", "quantity", "unit")} == {
            "buyer": "ash", "need": "flour-1", "item": "flour", "quantity": 5000, "unit": "gram",
        }  # fmt: skip
        assert need["max_unit_price"] == 2 and need["until"] > day.obs.clock()
        assert (open_["offers_total"], open_["needs_total"]) == (2, 1)
        capped = await measures.open_market(day.obs.store.db, day.obs.clock(), limit=1)
        assert len(capped["offers"]) == 1 and capped["offers_total"] == 2

        # The currency, once: a federation without a charter counts in credits; amounts
        # elsewhere stay integer cents.
        summary = (await http.get(f"{day.url}/api/summary")).json()
        assert summary["currency"] == CREDITS
        assert summary["trades"]["volume"] == 620
        assert measures.currency(None) == CREDITS
