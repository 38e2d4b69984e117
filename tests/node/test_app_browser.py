"""The neighborhood's web app (node/engine/static/app/) in a real browser (Debian's
chromium, driven by Playwright) on a phone's screen: the shell renders under the CSP without
a console error, every tab a coordinator sees opens without a violation axe finds, asking
for help takes three taps, and no request leaves the node's origin (docs/APP.md, "The app's
pages")."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, Route, ViewportSize

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from tests.conftest import make_node, running
from tests.federation.test_dashboard_browser import browser_page, require_chromium

pytestmark = pytest.mark.timeout(120)
WAIT_MS = 20_000
PHONE: ViewportSize = {"width": 390, "height": 844}
# What each tab's page is called (its <h1>), in the tab bar's order.
TABS = {
    "Help": "Call 4 Help",
    "Market": "Market",
    "Hours": "Hours",
    "Alerts": "Alerts",
    "Members": "Membership",
    "Me": "Your account",
    "Accounts": "Accounts",
    "Node": "Node",
}


async def sign_in_as_coordinator(page: Page, api: httpx.AsyncClient, url: str) -> None:
    """The node's operator (the CLI's credential: this OS user on the loopback) invites a
    coordinator; the link's join page makes the account and signs it in."""
    answer = await api.post("/accounts/invitations", json={"role": "coordinator"})
    assert answer.status_code == 201, answer.text
    token = answer.json()["link"].split("#/join/", 1)[1]
    await page.goto(f"{url}#/join/{token}")
    await page.get_by_text("coordinator", exact=True).wait_for(timeout=WAIT_MS)
    await page.get_by_label("Name (to sign in)").fill("ada")
    await page.get_by_label("Password", exact=True).fill("correct horse battery")
    await page.get_by_label("Repeat the password").fill("correct horse battery")
    await page.get_by_role("button", name="Create account").click()


async def test_app_shell_renders_on_a_phone_under_the_csp_and_offline(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    require_chromium()
    node = Node(await make_node(tmp_path, "oakley", nats_server.url))
    console: list[str] = []
    elsewhere: list[str] = []
    axe = Axe()

    async def offline(route: Route) -> None:
        if route.request.url.startswith(node.api_url):
            await route.continue_()
        else:  # no CDN, no font service: the app must not need the internet
            elsewhere.append(route.request.url)
            await route.abort()

    async with (
        running(node),
        httpx.AsyncClient(base_url=node.api_url) as api,
        browser_page(console) as page,
    ):
        await page.set_viewport_size(PHONE)
        await page.route("**/*", offline)
        await sign_in_as_coordinator(page, api, node.api_url + "/")
        tabs = page.get_by_role("navigation", name="Main")
        await tabs.get_by_role("link", name="Help", exact=True).wait_for(timeout=WAIT_MS)
        await page.get_by_role("heading", level=1, name="Call 4 Help").wait_for(timeout=WAIT_MS)
        assert await page.text_content("#hood-name") == "Oakley"
        assert await tabs.get_by_role("link").all_text_contents() == list(TABS)
        await page.screenshot(path=tmp_path / "help.png", full_page=True)

        # Three taps: "Ask for help", a category, "Send".
        await page.get_by_role("link", name="Ask for help").click()
        await page.get_by_text("Food", exact=True).click()
        await page.get_by_role("button", name="Send").click()
        await page.get_by_role("article", name="Call for help: Food, normal").wait_for(
            timeout=WAIT_MS
        )
        assert "sent" in (await page.text_content("#status") or "")
        listed = (await api.get("/aid/requests")).json()
        assert [(r["category"], r["urgency"], r["quantity"]) for r in listed] == [
            ("food", "normal", 1)
        ]

        for tab, heading in TABS.items():
            await tabs.get_by_role("link", name=tab, exact=True).click()
            await page.get_by_role("heading", level=1, name=heading).wait_for(timeout=WAIT_MS)
            await page.wait_for_selector(".loading", state="detached", timeout=WAIT_MS)
            assert await page.is_hidden("#error"), await page.text_content("#error")
            checked = await axe.run(page)
            assert checked.violations_count == 0, checked.generate_report()
            await page.screenshot(path=tmp_path / f"{tab.lower()}.png", full_page=True)

    assert elsewhere == []
    assert console == []  # a CSP violation would be a console error
