"""Display names in the dashboard, in a real browser (Debian's chromium, PROTOCOL.md §18):
a rogue's second "Alpha" is shown with its slug and a warning beside it, and a name with a
right-to-left override and a zero-width space reaches the page without them, so the slug
beside it reads as written."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import anyio
import pytest

from coopnet.federation.dashboard import serve_dashboard
from coopnet.federation.observer import Observer
from coopnet.node.engine.nats_server import NatsServer
from tests.conftest import NET, running, wait_until
from tests.federation.test_audit import holds, honest, publish
from tests.federation.test_dashboard_browser import WAIT_MS, browser_page, require_chromium
from tests.federation.test_names import TRICKY, rogue_founding

pytestmark = pytest.mark.timeout(120)


async def test_the_dashboard_flags_look_alike_names_and_shows_no_hidden_characters(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    require_chromium()
    (alpha,) = await honest(tmp_path, nats_server.url, "alpha")
    observer = Observer(tmp_path / "observer", net=NET, nats_url=nats_server.url)
    console: list[str] = []
    async with running(alpha), anyio.create_task_group() as tg:
        await tg.start(observer.run)
        url = await tg.start(serve_dashboard, observer, "127.0.0.1", 0)
        founded = [rogue_founding("alpha-coop", "Alpha"), rogue_founding("mallory", TRICKY)]
        events = [env for _, env in founded]
        await publish(nats_server.url, *events)
        await wait_until(lambda: holds(observer, *events), what="the observer to hold them")

        async with browser_page(console) as page:
            await page.goto(url)
            row = page.locator('#hoods-table tr[data-slug="alpha-coop"]')
            await row.locator(".name-warning").wait_for(timeout=WAIT_MS)
            assert "Alpha (alpha-coop)" in (await row.inner_text())
            flag = await row.locator(".name-warning").text_content()
            assert flag is not None and "looks like Alpha" in flag
            honest_row = page.locator('#hoods-table tr[data-slug="alpha"]')
            assert await honest_row.locator(".name-warning").count() == 0
            mallory = page.locator('#hoods-table tr[data-slug="mallory"]')
            await mallory.wait_for(timeout=WAIT_MS)
            text = await mallory.inner_text()
            assert "Trusted" in text and "mallory" in text and "yrollam" not in text
            body = await page.locator("body").inner_text()
            assert not [c for c in body if unicodedata.category(c) == "Cf"]
            await page.screenshot(path=tmp_path / "names.png", full_page=True)
        tg.cancel_scope.cancel()
    assert console == []
