"""The web app (node/engine/static/app/) counts in the charter's currency, in a real browser
(Debian's chromium, driven by Playwright) on a node under a charter, on a real nats-server:
prices read with the currency's symbol and its `minor_units` decimals ("£4.50", "¥450"),
a price typed in the currency's units is sent as integer cents, one with more decimals
than the currency has is refused in words, and units read as people say them ("3 dozen",
"2 kilograms"). docs/APP.md "The app"."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
from playwright.async_api import Page, expect

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from coopnet.protocol import Currency
from coopnet.protocol.offers import UNITS
from tests.accounts import invitation
from tests.conftest import running
from tests.node.test_app_journeys import (
    WAIT_MS,
    chromium,
    join,
    market,
    ok,
    person,
    tab,
    unexpected,
)
from tests.node.test_currency_config import chartered_node

pytestmark = pytest.mark.timeout(180)


class Case(NamedTuple):
    currency: Currency
    shown: str  # how the app shows 450 cents
    typed: str  # a price a person types for 450 cents
    too_fine: str  # a price with more decimals than the currency has
    why: str  # what the app says of it
    zero: str  # how the app shows 0 cents


POUNDS = Case(
    Currency(code="RVP", name="Riverside pounds", symbol="£", minor_units=2),
    shown="£4.50",
    typed="4.50",
    too_fine="4.505",
    why="has 3 decimal places; Riverside pounds have 2",
    zero="£0.00",
)
YEN = Case(
    Currency(code="JPY", name="yen", symbol="¥", minor_units=0),
    shown="¥450",
    typed="450",
    too_fine="4.5",
    why="yen have no fractions; write a whole number",
    zero="¥0",
)


async def coordinator_at_market(node: Node, page: Page) -> None:
    await join(page, node, await invitation(node, "coordinator"), "ada")
    await tab(page, "Market", "Market")


@pytest.mark.parametrize("case", [POUNDS, YEN], ids=["pounds", "yen"])
async def test_the_app_shows_and_reads_prices_in_the_charters_currency(
    tmp_path: Path, nats_server: NatsServer, case: Case
) -> None:
    node = Node(await chartered_node(tmp_path, case.currency, nats_server.url))
    console: list[str] = []
    async with running(node), httpx.AsyncClient(base_url=node.api_url) as api:
        info = await ok(api.get("/app/info"))
        assert info["currency"] == {
            "name": case.currency.name,
            "code": case.currency.code,
            "symbol": case.currency.symbol,
            "minor_units": case.currency.minor_units,
        }
        await ok(api.post("/offers", json={
            "offer": "eggs-1", "item": "eggs", "category": "dairy-eggs", "quantity": 3,
            "unit": "dozen", "unit_price": 450,
        }))  # fmt: skip
        async with chromium() as browser:
            page = await person(browser, console)
            await coordinator_at_market(node, page)
            eggs = page.get_by_role("article", name="Offer: eggs from oakley")
            await expect(eggs).to_contain_text(f"{case.shown} per dozen", timeout=WAIT_MS)
            await expect(eggs).to_contain_text("3 dozen left of 3 dozen")

            await page.get_by_text("Post an offer").click()
            await page.get_by_label("Item", exact=True).fill("flour")
            await page.get_by_label("Quantity", exact=True).fill("2")
            await page.get_by_label("Unit", exact=True).select_option("kilogram")
            price = page.get_by_label(f"Price per unit ({case.currency.name})")
            await price.fill(case.too_fine)
            await page.get_by_role("button", name="Post offer").click()
            await expect(page.locator("#error")).to_contain_text(
                f"Price: “{case.too_fine}” {case.why}"
                if case.currency.minor_units
                else f"Price: “{case.too_fine}”: {case.why}",
                timeout=WAIT_MS,
            )
            assert [o["offer"] for o in await ok(api.get("/offers"))] == ["eggs-1"]

            await price.fill(case.typed)
            await page.get_by_role("button", name="Post offer").click()
            await expect(page.locator("#status")).to_contain_text("posted", timeout=WAIT_MS)
            [flour] = [o for o in await ok(api.get("/offers")) if o["item"] == "flour"]
            assert (flour["unit_price"], flour["unit"], flour["quantity"]) == (450, "kilogram", 2)
            card = page.get_by_role("article", name="Offer: flour from oakley")
            await expect(card).to_contain_text(f"{case.shown} per kilogram", timeout=WAIT_MS)
            await expect(card).to_contain_text("2 kilograms left of 2 kilograms")

            await market(page, "Balance")
            balance = page.locator(
                "article.figure", has=page.get_by_role("heading", name="Balance", exact=True)
            ).locator(".big")
            await expect(balance).to_have_text(case.zero, timeout=WAIT_MS)
    assert unexpected(console) == []


async def test_the_unit_list_offers_every_unit_of_the_protocol(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """The offer form's units are protocol/offers.py UNITS, each named as people say it."""
    node = Node(await chartered_node(tmp_path, POUNDS.currency, nats_server.url))
    console: list[str] = []
    async with running(node), chromium() as browser:
        page = await person(browser, console)
        await coordinator_at_market(node, page)
        await page.get_by_text("Post an offer").click()
        options = page.get_by_label("Unit", exact=True).locator("option")
        values = await options.evaluate_all("(os) => os.map((o) => o.value)")
        assert sorted(values) == sorted(UNITS)
    assert unexpected(console) == []
