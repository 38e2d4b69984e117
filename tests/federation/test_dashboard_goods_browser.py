"""The dashboard in a real browser (Debian's chromium) speaks the co-op's language (issue
17): the goods that moved (item, quantity and unit), the open offers and needs, amounts
with the currency's name, every time written one way (how long ago, the exact moment in
its title), and neither at a desktop's width nor at a phone's (390 px) does a page or a
table scroll sideways."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Page

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.store import now_ms
from coopnet.protocol.offers import NeedPosted
from tests.conftest import wait_until
from tests.federation.test_dashboard_browser import WAIT_MS, browser_page, require_chromium
from tests.federation.test_observer import DAY_MS, market_day

pytestmark = pytest.mark.timeout(150)

EXACT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$")  # "2026-12-01 14:05", the reader's zone
RELATIVE = re.compile(r"^(just now|in \S+ (s|min|h|d)|\S+ (s|min|h|d) ago)$")

# What scrolls sideways: the document, or any element that scrolls its overflow.
SIDEWAYS = """() => {
  const out = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > innerWidth) out.push(`the page: ${doc.scrollWidth} > ${innerWidth}`);
  for (const el of document.querySelectorAll('main *, header *')) {
    if (el.closest('[hidden]')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0) continue;
    const scrolls = ['auto', 'scroll'].includes(getComputedStyle(el).overflowX);
    if (scrolls && el.scrollWidth > el.clientWidth + 1) {
      out.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} scrolls:`
        + ` ${el.scrollWidth} > ${el.clientWidth}`);
    }
    if (r.right > innerWidth + 1) {
      out.push(`${el.tagName.toLowerCase()}.${el.className} off screen at ${Math.round(r.right)}`);
    }
  }
  return out;
}"""

TIMES = """() => [...document.querySelectorAll('time')]
  .filter((t) => !t.closest('[hidden]'))
  .map((t) => [t.textContent, t.title, t.getAttribute('datetime')])"""


async def times_shown(page: Page) -> list[list[str]]:
    times: list[list[str]] = await page.evaluate(TIMES)
    return times


def one_way(times: list[list[str]]) -> None:
    """Every time the page shows is written one way: relative text, exact title, ISO."""
    assert times
    for text, title, iso in times:
        assert RELATIVE.match(text), text
        assert EXACT.match(title), title
        assert iso.endswith("Z"), iso


async def test_goods_market_currency_times_and_a_phone(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    require_chromium()
    console: list[str] = []
    async with market_day(tmp_path, nats_server.url) as day:
        ash = day.nodes[2]
        await ash.post(
            NeedPosted(
                need="flour-1", item="flour", category="bakery", quantity=5000, unit="gram",
                max_unit_price=2, needed_by=now_ms() + DAY_MS, area="T1",
            )
        )  # fmt: skip

        async def need_seen() -> bool:
            return await day.obs.store.all("SELECT COUNT(*) FROM needs") == [(1,)]

        await wait_until(need_seen, what="the need at the observer")

        async with browser_page(console) as page:
            await page.goto(day.url)
            await page.wait_for_selector("#goods-table table.goods", timeout=WAIT_MS)
            await page.wait_for_selector("#needs-table table.needs", timeout=WAIT_MS)

            # 1. The goods that moved, with quantity and unit, seller → buyer.
            rows = page.locator("#goods-table tbody tr")
            texts = [await rows.nth(i).inner_text() for i in range(await rows.count())]
            assert len(texts) == 3
            assert "kale" in texts[1] and "2 pieces" in texts[1] and "2.00 credits" in texts[1]
            arrow = '#flow-graph [data-from="oakley"][data-to="elm"] title'
            arrow_title = await page.text_content(arrow)
            assert arrow_title is not None and "2.80 credits (eggs 8 pieces)" in arrow_title
            eggs_to_elm = page.locator('#goods-table tr[data-from="oakley"][data-to="elm"]')
            text = await eggs_to_elm.inner_text()
            assert "eggs" in text and "8 pieces" in text and "2.80 credits" in text

            # 2. Open offers (what is left, its price a unit, the seller, until when) and
            # needs (how much, up to what price, the buyer, by when).
            eggs = await page.locator('#offers-table tr[data-offer="eggs-1"]').inner_text()
            assert "88 pieces" in eggs and "0.35 credits a piece" in eggs and "Oakley" in eggs
            flour = await page.locator('#needs-table tr[data-need="flour-1"]').inner_text()
            assert "5,000 grams" in flour and "0.02 credits a gram" in flour and "Ash" in flour

            # 3. Amounts carry the currency's name.
            assert await page.text_content("#volume") == "6.20 credits"
            assert await page.text_content("#ledger-sum") == "✓ 0.00 credits"
            balances = await page.locator("#balances .amount").all_inner_texts()
            assert sorted(balances) == sorted(["4.20 credits", "−0.80 credits", "−3.40 credits"])

            # 4. Times: one way everywhere (the header, the table, the market, calls for help).
            one_way(await times_shown(page))
            assert await page.locator("#updated-at time").count() == 1
            assert await page.locator("#hoods-table time").count() == 3
            assert await page.locator("#offers-table time").count() == 2
            await page.screenshot(path=tmp_path / "overview-desktop.png", full_page=True)
            assert await page.evaluate(SIDEWAYS) == []  # no table scrolls on a desktop either

            # 5. A neighborhood's page: its partners with the goods, no arrows for words.
            await page.goto(f"{day.url}/#/n/elm")
            await page.wait_for_selector("#hood-page table.flows", timeout=WAIT_MS)
            flows = await page.locator("#hood-page table.flows").inner_text()
            assert "←" not in flows and "→" not in flows
            bought = await page.locator('#hood-page tr[data-from="oakley"]').inner_text()
            assert "bought from" in bought and "eggs: 8 pieces" in bought
            sold = await page.locator('#hood-page tr[data-to="ash"]').inner_text()
            assert "sold to" in sold and "kale: 2 pieces" in sold and "2.00 credits" in sold
            one_way(await times_shown(page))
            page_text = await page.locator("#hood-page").inner_text()
            assert "kale" in page_text  # its open offer
            await page.screenshot(path=tmp_path / "hood-desktop.png", full_page=True)
            assert await page.evaluate(SIDEWAYS) == []

            # 6. At a phone's width: nothing scrolls sideways, on either page.
            await page.set_viewport_size({"width": 390, "height": 844})
            for where, ready in (
                ("#/n/elm", "#hood-page table.offers"),
                ("#/", "#needs-table table"),
            ):
                await page.goto(f"{day.url}/{where}")
                await page.wait_for_selector(ready, timeout=WAIT_MS)
                shot = tmp_path / f"phone-{where.strip('#/').replace('/', '-') or 'overview'}.png"
                await page.screenshot(path=shot, full_page=True)
                assert await page.evaluate(SIDEWAYS) == [], shot
    assert console == []
