"""The node's API in a real browser (Debian's chromium, driven by Playwright): a page served
from another origin fails to make the node sign by every means a browser offers (a form
post, a `text/plain` fetch, a `no-cors` fetch, a JSON fetch that needs a preflight); the
status page at `/` and the API reference at `/schema` work offline, under the CSP, without
a console error. Cases `resident-api-csrf` and `localhost-csrf` (OPERATIONS.md §13)."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Route

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from tests.conftest import make_node, running
from tests.federation.test_dashboard_browser import browser_page, require_chromium
from tests.node.test_app_browser import sign_in_as_coordinator

pytestmark = pytest.mark.timeout(120)
WAIT_MS = 20_000

EVIL_PAGE = """<!doctype html>
<title>cute cats</title>
<form id="form" method="post" action="{node}/notes" enctype="text/plain">
  <input name='{{"text": "posted by a form on another origin", "x": "' value='"}}'>
</form>
<script>
const node = "{node}";
const body = JSON.stringify({{text: "posted by a page on another origin"}});
const outcome = (p) => p.then((r) => r.type + " " + r.status, (e) => "failed: " + e.name);
window.attack = async () => [
  await outcome(fetch(node + "/notes",
    {{method: "POST", headers: {{"content-type": "text/plain"}}, body}})),
  await outcome(fetch(node + "/notes",
    {{method: "POST", mode: "no-cors", headers: {{"content-type": "text/plain"}}, body}})),
  await outcome(fetch(node + "/notes",
    {{method: "POST", mode: "no-cors", body: new URLSearchParams({{text: "x"}})}})),
  await outcome(fetch(node + "/notes",
    {{method: "POST", headers: {{"content-type": "application/json"}}, body}})),
  await outcome(fetch(node + "/status")),
];
</script>
"""


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def other_origin(folder: Path) -> Iterator[str]:
    """A second local web server (another origin: another port) serving `folder`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def own_kinds(api_url: str) -> list[str]:
    async with httpx.AsyncClient(base_url=api_url) as api:
        page = (await api.get("/log", params={"author": "oakley"})).json()
        return [e["kind"] for e in page["events"]]


async def test_a_page_on_another_origin_cannot_make_the_node_sign(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    require_chromium()
    node = Node(await make_node(tmp_path, "oakley", nats_server.url))
    site = tmp_path / "evil"
    site.mkdir()
    console: list[str] = []
    async with running(node):
        (site / "index.html").write_text(EVIL_PAGE.format(node=node.api_url))
        with other_origin(site) as evil:
            async with browser_page(console) as page:
                await page.goto(f"{evil}/index.html")
                outcomes = await page.evaluate("window.attack()")
                # The simple requests reach the node and are refused there (the page sees
                # a failure: no CORS grant, and Cross-Origin-Resource-Policy keeps even an
                # opaque answer from it); the JSON one stops at its preflight, the read at
                # the same-origin rule.
                assert all(o.startswith("failed") for o in outcomes), outcomes
                async with page.expect_navigation():
                    await page.evaluate("document.getElementById('form').submit()")
                assert "origin_not_allowed" in await page.content()
        assert await own_kinds(node.api_url) == ["node.founded"]
        async with httpx.AsyncClient(base_url=node.api_url) as api:
            refused = (await api.get("/status")).json()["http_refused"]
        # The text/plain fetch, both no-cors fetches and the form; the preflighted JSON
        # fetch never left the browser.
        assert refused["origin_not_allowed"] == 4
    # The refusals show in the browser's console as failed requests (403, CORS): expected.
    assert all("403" in line or "CORS" in line or "Failed" in line for line in console), console


async def test_node_page_and_api_reference_work_offline_under_the_csp(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """The app's Node page (what the status page was) and the API reference, signed in as
    a coordinator: both ship in the package, need no internet and break no CSP rule."""
    require_chromium()
    node = Node(await make_node(tmp_path, "oakley", nats_server.url))
    console: list[str] = []
    elsewhere: list[str] = []

    async def offline(route: Route) -> None:
        if route.request.url.startswith(node.api_url):
            await route.continue_()
        else:  # no CDN, no font service: the page must not need the internet
            elsewhere.append(route.request.url)
            await route.abort()

    async with (
        running(node),
        httpx.AsyncClient(base_url=node.api_url) as api,
        browser_page(console) as page,
    ):
        await page.route("**/*", offline)
        await sign_in_as_coordinator(page, api, node.api_url + "/")
        tabs = page.get_by_role("navigation", name="Main")
        await tabs.get_by_role("link", name="Node", exact=True).click()
        bus = page.get_by_test_id("bus")
        await bus.filter(has_text="connected").wait_for(timeout=WAIT_MS)
        await page.get_by_test_id("ready").filter(has_text="yes").wait_for(timeout=WAIT_MS)
        assert await page.get_by_test_id("head").text_content() == "1"
        assert await page.get_by_test_id("outbox").text_content() == "0"
        assert await page.get_by_test_id("rejected-total").text_content() == "0"
        await page.screenshot(path=tmp_path / "node.png", full_page=True)

        await page.click("text=API reference")
        await page.wait_for_selector("details.op", timeout=WAIT_MS)
        paths = await page.locator("details.op .path").all_text_contents()
        assert {"/notes", "/status", "/aid/requests", "/offers", "/auth/sign-in"} <= set(paths)
        await page.locator("details.op", has_text="Post a public note").first.click()
        await page.wait_for_selector("details.op[open] td:text('text')", timeout=WAIT_MS)
        await page.screenshot(path=tmp_path / "schema.png", full_page=True)
    assert elsewhere == []
    assert console == []  # a CSP violation would be a console error
