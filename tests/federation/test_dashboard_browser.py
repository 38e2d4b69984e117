"""The dashboard in a real browser: Debian's chromium, driven by Playwright (which never
downloads a browser here). Three nodes trade on a real nats-server; an observer follows
them and serves the dashboard. The page loads without a console error (so without a
Content-Security-Policy violation: waits are arrow functions, which Playwright evaluates
once, not strings it would `eval` under the CSP on every poll), draws every
neighborhood in the flow graph, and a new trade reaches it live, without a reload."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import msgspec
import pytest
from playwright.async_api import ConsoleMessage, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

from coopnet.federation import measures
from coopnet.federation.dashboard import serve_dashboard
from coopnet.federation.observer import Observer
from coopnet.node.engine.config import read_config, write_config
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from coopnet.protocol.offers import OfferPosted
from tests.conftest import NET, converged, make_node, running, wait_until

pytestmark = pytest.mark.timeout(120)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"]
SLUGS = ("oakley", "elm", "ash")
WAIT_MS = 20_000


def eggs(quantity: int) -> OfferPosted:
    return OfferPosted(
        offer="eggs-1", item="eggs", category="dairy-eggs", quantity=quantity, unit="piece",
        unit_price=35, available_until=2**62, area="T1",
    )  # fmt: skip


async def trade_totals(observer: Observer) -> dict[str, int]:
    return await measures.trade_totals(observer.store.db)


def require_chromium() -> None:
    """A failure, not a skip, when the browser is missing: CI installs it (.ci/run)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: the dashboard test needs Debian's chromium "
            "(apt-get install -y --no-install-recommends chromium)",
            pytrace=False,
        )


@asynccontextmanager
async def browser_page(console: list[str]) -> AsyncIterator[Page]:
    """A page in headless chromium; console errors and warnings, uncaught exceptions and
    failed responses are appended to `console`."""

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            console.append(f"console {message.type}: {message.text} ({message.location})")

    def on_page_error(error: PlaywrightError) -> None:
        console.append(f"uncaught: {error}")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("console", on_console)
            page.on("pageerror", on_page_error)
            page.on(
                "response",
                lambda r: console.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None,
            )
            yield page
        finally:
            await browser.close()


async def shown_number(page: Page, element_id: str) -> int:
    text = await page.text_content(f"#{element_id}")
    assert text is not None
    return int(text.replace(",", ""))


async def test_dashboard_loads_shows_every_neighborhood_and_updates_live(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    require_chromium()
    datas = [await make_node(tmp_path, slug, nats_server.url) for slug in SLUGS]
    for data in datas:  # every node answers trades by itself, so they settle
        write_config(data, msgspec.structs.replace(read_config(data), auto_trade=True))
    seller, buyer, other = nodes = [Node(d, serve_api=False) for d in datas]
    observer = Observer(tmp_path / "observer", net=NET, nats_url=nats_server.url)
    console: list[str] = []
    async with running(*nodes), anyio.create_task_group() as tg:
        await tg.start(observer.run)
        url = await tg.start(serve_dashboard, observer, "127.0.0.1", 0)
        await seller.post(eggs(120))
        await wait_until(lambda: converged(*nodes), what="the offer spreads")
        await buyer.trading.propose("oakley", "eggs-1", 12)

        async def settled(n: int) -> bool:
            return (await trade_totals(observer))["settled"] >= n

        await wait_until(lambda: settled(1), what="the observer sees the first trade settled")

        async with browser_page(console) as page:
            await page.goto(url)

            # 1. It loads: the summary is in, and live updates are connected.
            await page.wait_for_selector("#live.on", timeout=WAIT_MS)
            await page.wait_for_function(
                "() => document.getElementById('trades-settled').textContent === '1'",
                timeout=WAIT_MS,
            )
            await page.screenshot(path=tmp_path / "dashboard.png", full_page=True)

            # 2. Every neighborhood is a node of the flow graph; the settled trade an arrow.
            for slug in SLUGS:
                await page.wait_for_selector(f'#flow-graph [data-slug="{slug}"]', timeout=WAIT_MS)
            await page.wait_for_selector(
                '#flow-graph [data-from="oakley"][data-to="elm"]', timeout=WAIT_MS
            )

            # 3. A new trade arrives live: no reload (the marker survives), numbers go up.
            await page.evaluate("window.stillTheSamePage = true")
            before = await shown_number(page, "trades-count")
            await other.trading.propose("oakley", "eggs-1", 6)
            await page.wait_for_function(
                f"() => Number(document.getElementById('trades-count').textContent"
                f".replace(/,/g, '')) > {before}",
                timeout=WAIT_MS,
            )
            await page.wait_for_function(
                "() => document.getElementById('trades-settled').textContent === '2'",
                timeout=WAIT_MS,
            )
            assert await page.evaluate("window.stillTheSamePage === true")
            totals = await trade_totals(observer)
            assert await shown_number(page, "trades-count") == totals["count"]
            # 4. Clicking a node opens that neighborhood's page, with its trade partners.
            await page.click('#flow-graph [data-slug="oakley"] circle')
            await page.wait_for_selector("#hood-page .hood-head", timeout=WAIT_MS)
            assert page.url.endswith("#/n/oakley")
            assert await page.text_content("#hood-page .hood-title") == "Oakley"
            assert await page.locator("#hood-page table.flows tbody tr").count() == 2
        tg.cancel_scope.cancel()
    assert console == []
