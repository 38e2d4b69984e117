"""Pooled purchases and hours on the dashboard, in a real browser (Debian's chromium), with
real nodes on a real nats-server (tests/federation/test_measures_pools_hours.py `pool_day`):
each pool with its state, cases, price a unit in the currency and what pooling saved; the
hours each neighborhood gave and received, written as hours ("3.75 h"), a new transfer
arriving live; a neighborhood's page with its hours; and at a phone's width (390 px)
nothing scrolls sideways."""

from __future__ import annotations

from pathlib import Path

import pytest

from coopnet.node.engine.nats_server import NatsServer
from tests.federation.test_dashboard_browser import WAIT_MS, browser_page, require_chromium
from tests.federation.test_dashboard_goods_browser import SIDEWAYS
from tests.federation.test_measures_pools_hours import UNIT_PRICE, pool_day, time_bank

pytestmark = pytest.mark.timeout(150)


async def test_pools_and_hours_sections_live_and_on_a_phone(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    require_chromium()
    console: list[str] = []
    async with pool_day(tmp_path, nats_server.url) as day, browser_page(console) as page:
        await page.goto(day.url)
        await page.wait_for_selector("#pools-table table.pools", timeout=WAIT_MS)
        await page.wait_for_selector("#hours-table table.hours", timeout=WAIT_MS)

        # 1. Each pool: item and case, organizer, supplier, state, cases, price, saved.
        # (A state is a badge, written in capitals by the style sheet.)
        eggs = await page.locator('#pools-table tr[data-pool="p-eggs"]').inner_text()
        for shown in ("eggs", "cases of 10 pieces", "Elm", "Oakley", "DELIVERED", "3 co-ops",
                      "0.25 credits a piece", "1.00 credits"):  # fmt: skip
            assert shown in eggs, (shown, eggs)
        kale = await page.locator('#pools-table tr[data-pool="p-kale"]').inner_text()
        assert "CANCELLED" in kale and "Valley Farm" in kale
        oil = await page.locator('#pools-table tr[data-pool="p-oil"]').inner_text()
        assert "OPEN" in oil and "5 litres committed" in oil and "Olive Co" in oil
        stats = await page.text_content("#pools-stats")
        assert stats is not None
        assert "3 pools" in stats and "1 delivered: 1 case" in stats
        assert "pooling saved 1.00 credits" in stats
        # The ledger, pooled settlements included, still sums to zero.
        assert await page.text_content("#ledger-sum") == "✓ 0.00 credits"

        # 2. Hours as hours, given and received, per neighborhood.
        elm = await page.locator('#hours-table tr[data-slug="elm"]').inner_text()
        assert "3.75 h" in elm and "1 h" in elm and "2.75 h" in elm
        birch = await page.locator('#hours-table tr[data-slug="birch"]').inner_text()
        assert "2.25 h" in birch and "−2.25 h" in birch
        hours_stats = await page.text_content("#hours-stats")
        assert hours_stats is not None
        assert "4.75 h signed over in 3 transfers" in hours_stats and "0 h ✓" in hours_stats
        # Each transfer is given by one neighborhood and received by another: the transfers
        # under "Hours given" add up to the 3 of the summary, and so do those under "Hours
        # received" (no column counting each transfer on both sides, 6 for 3).
        heads = await page.locator("#hours-table th").all_inner_texts()
        assert [t.strip().lower() for t in heads] == [
            "neighborhood", "hours given", "hours received", "balance"]  # fmt: skip
        for column in (2, 3):
            counts = await page.locator(
                f"#hours-table tbody td:nth-child({column}) .cell-sub"
            ).all_inner_texts()
            assert sum(int(c.split()[0]) for c in counts) == 3, (column, counts)
        assert "2 transfers" in elm  # the two transfers signed over to elm, counted once

        # 3. A new transfer arrives live, without a reload.
        await page.evaluate("window.stillTheSamePage = true")
        await time_bank(day.nodes["elm"]).transfer("birch", 2, transfer="h-live")
        await page.wait_for_function(
            """() => {
                const row = document.querySelector('#hours-table tr[data-slug="birch"]');
                return row !== null && row.innerText.includes('0.5 h');
            }""",
            timeout=WAIT_MS,
        )
        assert await page.evaluate("window.stillTheSamePage === true")
        await page.screenshot(path=tmp_path / "pools-desktop.png", full_page=True)
        assert await page.evaluate(SIDEWAYS) == []

        # 4. A neighborhood's page: its hours and what it paid for pooled shares.
        await page.goto(f"{day.url}/#/n/ash")
        await page.wait_for_selector("#hood-page .hood-head", timeout=WAIT_MS)
        text = await page.locator("#hood-page").inner_text()
        assert "given 1 h · received 1.5 h" in text
        paid = day.shares["ash"] * UNIT_PRICE
        assert f"0.{paid:02d} credits" in text or f"{paid / 100:.2f} credits" in text

        # 5. At a phone's width: nothing scrolls sideways.
        await page.set_viewport_size({"width": 390, "height": 844})
        for where, ready in (("#/n/elm", "#hood-page .hood-head"), ("#/", "#pools-table table")):
            await page.goto(f"{day.url}/{where}")
            await page.wait_for_selector(ready, timeout=WAIT_MS)
            shot = tmp_path / f"phone-{where.strip('#/').replace('/', '-') or 'overview'}.png"
            await page.screenshot(path=shot, full_page=True)
            assert await page.evaluate(SIDEWAYS) == [], shot
    assert console == []
