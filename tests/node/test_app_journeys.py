"""Whole journeys through the neighborhood's web app (node/engine/static/app/), in a real
browser (Debian's chromium, driven by Playwright), on nodes talking over a real nats-server,
checked against docs/APP.md: a resident asks for help on a phone in three taps and another
neighborhood answers; two coordinators trade; a page on another origin (but the same site)
fails to make the node sign while a coordinator is signed in; every page passes axe and
works with the keyboard alone; the main pages fit a phone's and a desktop's width."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Request,
    async_playwright,
    expect,
)
from playwright.async_api import Error as PlaywrightError

from coopnet.node.engine.config import read_config, write_config
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from tests.accounts import PASSWORD, invitation
from tests.conftest import make_node, running, wait_until
from tests.federation.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS, require_chromium
from tests.node.test_api_browser import other_origin

pytestmark = pytest.mark.timeout(180)
WAIT_MS = 30_000
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}

# ---- browsers, people, nodes -------------------------------------------------------------------


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's headless chromium (never a downloaded one)."""
    require_chromium()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


async def person(browser: Browser, console: list[str], *, phone: bool = False) -> Page:
    """A page in a browser context of its own (its own cookies: one person's browser), on a
    phone (390×844, touch, mobile) or a desktop (1280×800). Console errors and warnings and
    uncaught exceptions are appended to `console`."""
    context = await browser.new_context(
        viewport=PHONE if phone else DESKTOP,  # type: ignore[arg-type]
        is_mobile=phone,
        has_touch=phone,
        device_scale_factor=2 if phone else 1,
        locale="en-US",
    )
    page = await context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            console.append(f"console {message.type}: {message.text} ({message.location})")

    def on_page_error(error: PlaywrightError) -> None:
        console.append(f"uncaught: {error}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    return page


def unexpected(console: list[str]) -> list[str]:
    """Console lines other than the refusals the app expects: the 401 of `GET /auth/me`
    with no session (how it learns to show the sign-in page) and the 400 of `POST
    /auth/invitation` for an unusable link (how it learns to say so)."""
    expected = (("status of 401", "/auth/me"), ("status of 400", "/auth/invitation"))
    return [
        line for line in console
        if not any(status in line and path in line for status, path in expected)
    ]  # fmt: skip


async def configured(tmp_path: Path, slug: str, nats_url: str, **config: object) -> Node:
    data = await make_node(tmp_path, slug, nats_url)
    if config:
        write_config(data, msgspec.structs.replace(read_config(data), **config))
    return Node(data)


def operator(node: Node) -> httpx.AsyncClient:
    """The node's operator (this OS user on the loopback, no browser's headers): a
    coordinator's view of the API, as the CLI has."""
    return httpx.AsyncClient(base_url=node.api_url)


async def ok(response: Awaitable[httpx.Response]) -> Any:
    answer = await response
    assert answer.status_code in (200, 201), answer.text
    return answer.json()


async def make_account(node: Node, role: str, name: str, contact: str = "") -> None:
    """An account made from an invitation over HTTP (so a browser can then sign in)."""
    body = {"invitation": await invitation(node, role), "name": name, "password": PASSWORD}  # type: ignore[arg-type]
    if contact:
        body["contact"] = contact
    async with httpx.AsyncClient(base_url=node.api_url) as web:
        await ok(web.post("/auth/join", json=body))


async def join(page: Page, node: Node, secret: str, name: str) -> None:
    """Open an invitation link `#/join/<secret>`, make the account; land on Call 4 Help."""
    await page.goto(f"{node.api_url}/#/join/{secret}")
    await page.get_by_role("heading", level=1, name="Join your neighborhood").wait_for(
        timeout=WAIT_MS
    )
    await page.get_by_label("Name (to sign in)").fill(name)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Repeat the password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await page.get_by_role("heading", level=1, name="Call 4 Help").wait_for(timeout=WAIT_MS)


async def sign_in(page: Page, node: Node, name: str) -> None:
    await page.goto(f"{node.api_url}/#/sign-in")
    await page.get_by_role("heading", level=1, name="Sign in").wait_for(timeout=WAIT_MS)
    await page.get_by_label("Name").fill(name)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", level=1, name="Call 4 Help").wait_for(timeout=WAIT_MS)


async def tab(page: Page, name: str, heading: str) -> None:
    """Open a tab of the "Main" navigation; wait for its page to be loaded."""
    nav = page.get_by_role("navigation", name="Main")
    await nav.get_by_role("link", name=name, exact=True).click()
    await loaded(page, heading)


async def loaded(page: Page, heading: str) -> None:
    await page.get_by_role("heading", level=1, name=heading, exact=True).wait_for(timeout=WAIT_MS)
    await page.wait_for_selector("#view .loading", state="detached", timeout=WAIT_MS)


async def market(page: Page, sub: str) -> None:
    """A sub-page of the market (Offers, Needs, Trades, Balance), from its sub-navigation."""
    subnav = page.get_by_role("navigation", name="Market")
    await subnav.get_by_role("link", name=re.compile(f"^{sub}")).click()
    await page.wait_for_function(
        f"() => location.hash === '#/market/{sub.lower()}'", timeout=WAIT_MS
    )
    await loaded(page, "Market")


FIGURES = (
    ("Balance", "balance"),
    ("Committed", "committed"),
    ("Credit limit", "credit_limit"),
    ("Available", "available"),
)


def credits(cents: int) -> str:
    """What the app shows for an amount (docs/APP.md: the currency with two decimals)."""
    sign = "\u2212" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100:,}.{abs(cents) % 100:02d} credits"


# ---- 1. Call 4 Help across two neighborhoods -----------------------------------------------


async def test_a_resident_asks_on_a_phone_in_three_taps_and_another_neighborhood_helps(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """A resident of oakley opens an invitation link on a phone (390×844, touch), makes the
    account and asks for help in three taps after sign-in: "Ask for help", a category,
    "Send". What counts as a tap: every tap on a link, button or choice after the account
    exists; the description is not typed at all (choosing a category fills it), so no tap
    into a text field is needed either. oakley escalates calls after 1 s (node.toml
    `escalate_normal_s = 1`), so the call reaches elm; elm's coordinator pledges in elm's
    app; oakley's coordinator accepts the pledge and confirms the call fulfilled in oakley's
    app. The API then says fulfilled with the pledge accepted, on both nodes, and the call
    leaves the resident's list of open calls."""
    oakley = await configured(tmp_path, "oakley", nats_server.url, escalate_normal_s=1)
    elm = await configured(tmp_path, "elm", nats_server.url)
    console: list[str] = []
    async with (
        running(oakley, elm),
        operator(oakley) as api,
        operator(elm) as elm_api,
        chromium() as browser,
    ):
        resident = await person(browser, console, phone=True)
        await join(resident, oakley, await invitation(oakley, "resident"), "rosa")

        taps = 0

        async def tap(target: Locator) -> None:
            nonlocal taps
            await target.tap()
            taps += 1

        await tap(resident.get_by_role("link", name="Ask for help"))
        await loaded(resident, "Ask for help")
        await tap(resident.get_by_text("Food", exact=True))
        described = await resident.get_by_label("Describe what you need").input_value()
        assert described == "Help needed: food"
        await tap(resident.get_by_role("button", name="Send"))
        mine = resident.get_by_role("article", name="Call for help: Food, normal")
        await mine.wait_for(timeout=WAIT_MS)
        assert taps <= 3, f"asking for help took {taps} taps"
        await expect(resident.locator("#status")).to_contain_text("sent")
        asked = (await ok(api.get("/aid/requests")))[0]
        rid = asked["request"]
        assert (asked["category"], asked["asked_by"]["name"]) == ("food", "rosa")

        async def escalated() -> bool:
            listed = await ok(elm_api.get("/aid/requests"))
            return [(r["requester"], r["request"]) for r in listed] == [("oakley", rid)]

        await wait_until(escalated, what="the call reaches elm")

        helper = await person(browser, console)
        await join(helper, elm, await invitation(elm, "coordinator"), "eli")
        call = helper.get_by_role("article", name="Call for help: Food · oakley, normal")
        await call.get_by_role("button", name="Pledge help").click()
        await call.get_by_label("What you offer").fill("a hot meal")
        assert await call.get_by_label("How many").input_value() == "1"
        await call.get_by_role("button", name="Send pledge").click()
        await expect(helper.locator("#status")).to_contain_text("pledge is sent")

        coordinator = await person(browser, console)
        await join(coordinator, oakley, await invitation(oakley, "coordinator"), "ada")
        ours = coordinator.get_by_role("article", name="Call for help: Food, normal")
        await ours.get_by_role("button", name="Accept the pledge from elm: a hot meal").click(
            timeout=WAIT_MS
        )
        await expect(coordinator.locator("#status")).to_contain_text("accepted")
        await ours.locator(".badge", has_text="accepted").wait_for(timeout=WAIT_MS)
        await ours.get_by_role("button", name="Confirm fulfilled").click()
        await expect(coordinator.locator("#status")).to_contain_text("fulfilled")

        for node_api in (api, elm_api):

            async def fulfilled(node_api: httpx.AsyncClient = node_api) -> bool:
                listed = await ok(node_api.get("/aid/requests", params={"all": "true"}))
                found = [r for r in listed if r["request"] == rid]
                return bool(found) and found[0]["state"] == "fulfilled"

            await wait_until(fulfilled, what=f"fulfilled as {node_api.base_url} sees it")
        listed = await ok(api.get("/aid/requests", params={"all": "true"}))
        found = [r for r in listed if r["request"] == rid]
        [done] = [r for r in found if r["escalated"]]
        assert (done["state"], done["accepted"]) == ("fulfilled", 1)
        assert [(p["pledger"], p["what"], p["accepted"], p["state"]) for p in done["pledges"]] == [
            ("elm", "a hot meal", True, "pledged")
        ]
        # The resident's list of open calls updates by itself (live updates).
        await mine.wait_for(state="detached", timeout=WAIT_MS)
        # Closed calls, shown on asking: this one once, fulfilled.
        await coordinator.get_by_label("Show closed").check()
        await ours.locator(".badge", has_text="fulfilled").first.wait_for(timeout=WAIT_MS)
        shown = await ours.count()
        await coordinator.screenshot(path=tmp_path / "closed-calls.png", full_page=True)
    assert unexpected(console) == []
    # One call is listed once, not again as a local copy (escalated false, no pledges).
    assert len(found) == 1, found
    assert shown == 1, f"the fulfilled call shows {shown} times under Show closed"


# ---- 2. A coordinator answers a trade proposal ----------------------------------------------


async def test_coordinators_trade_and_the_balances_show_in_credits(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """oakley offers tomatoes at 4.50 credits (posted through the API); elm's coordinator
    proposes a trade for three in elm's app (the total shown: 13.50 credits); oakley's
    coordinator, on a phone, sees the Trades count, accepts the trade waiting for its
    answer and marks it shipped; elm's coordinator confirms receipt. Both Balance pages then
    show the figures of `GET /balance` in the currency of `GET /app/info`, with two
    decimals (13.50 and −13.50 credits), and the statement lists the trade."""
    oakley = await configured(tmp_path, "oakley", nats_server.url)
    elm = await configured(tmp_path, "elm", nats_server.url)
    console: list[str] = []
    async with running(oakley, elm), operator(oakley) as api, operator(elm) as elm_api:
        info = await ok(api.get("/app/info"))
        assert info["currency"]["name"] == "credits" and info["currency"]["minor_units"] == 2
        await ok(api.post("/offers", json={
            "offer": "tomatoes-1", "item": "tomatoes", "category": "produce", "quantity": 20,
            "unit": "piece", "unit_price": 450,
        }))  # fmt: skip

        async def offered() -> bool:
            return [o["offer"] for o in await ok(elm_api.get("/offers"))] == ["tomatoes-1"]

        await wait_until(offered, what="the offer reaches elm")
        async with chromium() as browser:
            buyer = await person(browser, console)
            await join(buyer, elm, await invitation(elm, "coordinator"), "eli")
            await tab(buyer, "Market", "Market")
            offer = buyer.get_by_role("article", name="Offer: tomatoes from oakley")
            await expect(offer).to_contain_text("4.50 credits per piece")
            await offer.get_by_role(
                "button", name="Propose a trade for tomatoes from oakley"
            ).click()
            await offer.get_by_label(re.compile("^Quantity")).fill("3")
            price = offer.get_by_label("Price per piece (credits)")
            assert await price.input_value() == "4.50"
            await expect(offer).to_contain_text("Total 13.50 credits")
            await offer.get_by_role("button", name="Send proposal").click()
            await expect(buyer.locator("#status")).to_contain_text("Trade proposed to oakley")
            [proposed] = await ok(elm_api.get("/trades"))
            assert (proposed["quantity"], proposed["unit_price"], proposed["total"]) == (
                3,
                450,
                1350,
            )
            trade_id = proposed["trade"]

            seller = await person(browser, console, phone=True)
            await join(seller, oakley, await invitation(oakley, "coordinator"), "ada")
            await tab(seller, "Market", "Market")
            trades_link = seller.get_by_role("navigation", name="Market").get_by_role(
                "link", name=re.compile("^Trades")
            )
            await expect(trades_link).to_contain_text("1", timeout=WAIT_MS)
            await market(seller, "Trades")
            waiting = seller.locator(
                "section", has=seller.get_by_role("heading", name="Waiting for our answer")
            )
            card = waiting.get_by_test_id(f"trade-elm-{trade_id}")
            await expect(card).to_contain_text("3 pieces at 4.50 credits per piece: 13.50 credits")
            await card.get_by_role("button", name="Accept: tomatoes to elm").tap()
            await expect(seller.locator("#status")).to_contain_text("Trade accepted")
            await waiting.get_by_role("button", name="Mark shipped: tomatoes to elm").tap(
                timeout=WAIT_MS
            )
            await expect(seller.locator("#status")).to_contain_text("shipped")

            await market(buyer, "Trades")
            await buyer.get_by_role("button", name="Confirm received: tomatoes from oakley").click(
                timeout=WAIT_MS
            )
            await expect(buyer.locator("#status")).to_contain_text("settles")

            for page, node_api, sign in ((seller, api, "+"), (buyer, elm_api, "\u2212")):

                async def settled(node_api: httpx.AsyncClient = node_api) -> bool:
                    balance: int = (await ok(node_api.get("/balance")))["balance"]
                    return balance != 0

                await wait_until(settled, what=f"settled as {node_api.base_url} sees it")
                balance = await ok(node_api.get("/balance"))
                assert abs(balance["balance"]) == 1350
                await market(page, "Balance")
                for title, key in FIGURES:
                    figure = page.locator(
                        "article.figure", has=page.get_by_role("heading", name=title, exact=True)
                    ).locator(".big")
                    await expect(figure).to_have_text(credits(balance[key]), timeout=WAIT_MS)
                row = page.get_by_role("row", name=re.compile("tomatoes"))
                await expect(row).to_contain_text(f"{sign}13.50 credits", timeout=WAIT_MS)
                await page.screenshot(path=tmp_path / f"balance-{node_api.base_url.port}.png")
            # docs/APP.md: `GET /app/info` (role resident) → {slug, display_name, currency, role}.
            info_seen = await buyer.evaluate("() => fetch('/app/info').then((r) => r.json())")
    assert unexpected(console) == []
    assert (info_seen["slug"], info_seen.get("role")) == ("elm", "coordinator"), info_seen


# ---- 3. Another origin, the same site ----------------------------------------------------------

EVIL_PAGE = """<!doctype html>
<title>cute cats</title>
<form id="form" method="post" action="{node}/alerts" enctype="text/plain">
  <input name='{{"kind": "fire", "severity": "danger", "advice": "run", "x": "' value='"}}'>
</form>
<script>
const node = "{node}";
const alert = JSON.stringify({{kind: "fire", severity: "danger", advice: "from another origin"}});
const note = JSON.stringify({{text: "posted by a page on another origin"}});
const outcome = (p) => p.then(
  async (r) => r.type + " " + r.status + " " + (await r.text()).slice(0, 200),
  (e) => "failed: " + e.name,
);
const include = {{credentials: "include"}};
window.attack = async () => ({{
  text_plain: await outcome(fetch(node + "/alerts", {{...include, method: "POST",
    headers: {{"content-type": "text/plain"}}, body: alert}})),
  no_cors: await outcome(fetch(node + "/notes", {{...include, method: "POST", mode: "no-cors",
    headers: {{"content-type": "text/plain"}}, body: note}})),
  no_cors_form: await outcome(fetch(node + "/notes", {{...include, method: "POST",
    mode: "no-cors", body: new URLSearchParams({{text: "x"}})}})),
  json: await outcome(fetch(node + "/alerts", {{...include, method: "POST",
    headers: {{"content-type": "application/json"}}, body: alert}})),
  beacon: String(navigator.sendBeacon(node + "/notes", note)),
  read_requests: await outcome(fetch(node + "/aid/requests", include)),
  read_me: await outcome(fetch(node + "/auth/me", include)),
  read_accounts: await outcome(fetch(node + "/accounts", include)),
}});
window.frame = () => new Promise((resolve) => {{
  const f = document.createElement("iframe");
  f.src = node + "/#/accounts";
  f.onload = () => {{
    try {{ resolve("readable: " + f.contentDocument.body.innerText.slice(0, 200)); }}
    catch (e) {{ resolve("not readable: " + e.name); }}
  }};
  document.body.append(f);
}});
</script>
"""


async def test_a_page_on_the_same_site_cannot_use_a_signed_in_coordinators_session(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """A coordinator of oakley is signed in (the session cookie, SameSite=Strict, is in the
    browser). In the same browser a page served from another port of 127.0.0.1 — another
    origin but the same site, so the browser does send that cookie with its requests —
    tries a form post (text/plain), a text/plain fetch with credentials, two no-cors
    fetches, a beacon, a JSON fetch (which needs a preflight), reading the calls for help
    (with a resident's contact in them), `GET /auth/me` (the CSRF token) and the accounts,
    and framing the app. The node signs nothing (`GET /log`, as the coordinator, in the
    app's origin), posts no note nor alert, and the page reads nothing private."""
    node = await configured(tmp_path, "oakley", nats_server.url)
    site = tmp_path / "evil"
    site.mkdir()
    console: list[str] = []
    secret_contact = "flat 3, ring twice"
    async with running(node), operator(node) as api:
        async with httpx.AsyncClient(base_url=node.api_url) as web:
            joined = await ok(web.post("/auth/join", json={
                "invitation": await invitation(node, "resident"), "name": "rosa",
                "password": PASSWORD, "contact": secret_contact,
            }))  # fmt: skip
            web.headers["x-csrf-token"] = joined["csrf"]
            await ok(web.post("/aid/requests", json={
                "category": "food", "urgency": "normal", "quantity": 1,
                "description": "Meals for one",
            }))  # fmt: skip
        before: int = (await ok(api.get("/status")))["http_refused"].get("origin_not_allowed", 0)
        (site / "index.html").write_text(EVIL_PAGE.format(node=node.api_url))
        async with chromium() as browser:
            app = await person(browser, console)
            await join(app, node, await invitation(node, "coordinator"), "ada")
            cookies = await app.context.cookies(node.api_url)
            assert [(c["name"], c["sameSite"]) for c in cookies] == [("coopnet_session", "Strict")]
            with other_origin(site) as evil_url:
                assert evil_url.split(":")[1] == node.api_url.split(":")[1]  # the same site
                evil = await app.context.new_page()
                sent: list[Request] = []
                evil.on(
                    "request", lambda r: sent.append(r) if r.url.startswith(node.api_url) else None
                )
                await evil.goto(f"{evil_url}/index.html")
                outcomes: dict[str, str] = await evil.evaluate("window.attack()")
                framed: str = await evil.evaluate("window.frame()")
                # The browser refuses to frame the app (frame-ancestors 'none', DENY): the
                # frame holds the browser's error page, so no click can be stolen in it.
                frames = [f.url for f in evil.frames if f != evil.main_frame]
                assert frames and not any(u.startswith(node.api_url) for u in frames), frames
                async with evil.expect_navigation():
                    await evil.evaluate("document.getElementById('form').submit()")
                form_answer = await evil.content()

                async def beacon_arrived() -> bool:
                    refused = (await ok(api.get("/status")))["http_refused"]
                    # the form, the text/plain fetch, two no-cors fetches and the beacon
                    count: int = refused.get("origin_not_allowed", 0)
                    return count - before >= 5

                await wait_until(beacon_arrived, what="the beacon reaches the node's doors")
            # The premise: the browser did send the coordinator's session along.
            carried = [
                r.method + " " + r.url for r in sent
                if "coopnet_session=" in ((await r.all_headers()).get("cookie") or "")
            ]  # fmt: skip
            assert any(c.startswith("POST") for c in carried), carried
            reads = {k: v for k, v in outcomes.items() if k != "beacon"}
            assert all(v.startswith("failed") for v in reads.values()), outcomes
            assert not any(secret_contact in v or "csrf" in v for v in outcomes.values())
            assert framed.startswith("not readable"), framed
            assert "origin_not_allowed" in form_answer
            assert secret_contact not in form_answer
            # The coordinator's own session, in the app's origin, sees nothing signed.
            log = await app.evaluate("() => fetch('/log?author=oakley').then((r) => r.json())")
            assert [e["kind"] for e in log["events"]] == ["node.founded"]
            assert await ok(api.get("/notes")) == []
            assert await ok(api.get("/alerts")) == []
            # The session still works for the coordinator (the attack did not end it).
            me = await app.evaluate("() => fetch('/auth/me').then((r) => r.json())")
            assert me["name"] == "ada"
    # The refusals show in the console as failed requests (403, CORS, blocked frames).
    assert not [line for line in console if line.startswith("uncaught")], console


# ---- 4. Accessibility and the keyboard -------------------------------------------------------


async def populate(oakley: Node, elm: Node) -> None:
    """Something on every page: oakley's offer, need, alert and a resident's call; elm's
    offer (fitting oakley's need), an escalated call, a trade waiting for oakley and a pool
    oakley commits to; hours oakley signed over to elm and a resident's own hours."""
    async with operator(oakley) as api, operator(elm) as elm_api:
        await ok(api.post("/offers", json={
            "offer": "tomatoes-1", "item": "tomatoes", "category": "produce", "quantity": 20,
            "unit": "piece", "unit_price": 450,
        }))  # fmt: skip
        await ok(api.post("/needs", json={
            "need": "flour-1", "item": "flour", "category": "bakery", "quantity": 5000,
            "unit": "gram", "max_unit_price": 1,
        }))  # fmt: skip
        await ok(api.post("/alerts", json={
            "kind": "storm", "severity": "warning", "advice": "Tie down what the wind takes.",
        }))  # fmt: skip
        await ok(elm_api.post("/offers", json={
            "offer": "flour-9", "item": "flour", "category": "bakery", "quantity": 20000,
            "unit": "gram", "unit_price": 1,
        }))  # fmt: skip
        await ok(elm_api.post("/aid/requests", json={
            "category": "shelter", "urgency": "high", "quantity": 2,
            "description": "Beds for a family for two nights", "escalate_now": True,
        }))  # fmt: skip

        async def elm_sees_the_offer() -> bool:
            return any(o["offer"] == "tomatoes-1" for o in await ok(elm_api.get("/offers")))

        await wait_until(elm_sees_the_offer, what="oakley's offer reaches elm")
        await ok(elm_api.post("/trades", json={
            "trade": "t-1", "seller": "oakley", "offer": "tomatoes-1", "quantity": 4,
            "expires_in_s": 86400,
        }))  # fmt: skip
        async with httpx.AsyncClient(base_url=oakley.api_url) as web:
            joined = await ok(web.post("/auth/join", json={
                "invitation": await invitation(oakley, "resident"), "name": "sam",
                "password": PASSWORD, "display_name": "Sam", "contact": "flat 3",
            }))  # fmt: skip
            web.headers["x-csrf-token"] = joined["csrf"]
            await ok(web.post("/aid/requests", json={
                "category": "transport", "urgency": "normal", "quantity": 1,
                "description": "A lift to the clinic on Monday",
            }))  # fmt: skip
            await ok(api.post("/hours/credit", json={
                "resident": "sam", "quarters": 6, "what": "the co-op's stall",
            }))  # fmt: skip
        await ok(elm_api.post("/pools", json={
            "pool": "rice-1", "item": "rice", "unit": "kilogram", "case_size": 25,
            "unit_price": 180, "supplier_name": "Paddy & Sons", "closes_in_s": 86400,
        }))  # fmt: skip

        async def oakley_sees_elm() -> bool:
            trades = await ok(api.get("/trades"))
            calls = await ok(api.get("/aid/requests"))
            offers = await ok(api.get("/offers"))
            return (
                any(t["trade"] == "t-1" for t in trades)
                and any(r["requester"] == "elm" for r in calls)
                and any(o["author"] == "elm" for o in offers)
                and any(p["pool"] == "rice-1" for p in await ok(api.get("/pools")))
            )

        await wait_until(oakley_sees_elm, what="elm's offer, call, trade and pool reach oakley")
        await ok(api.post("/pools/elm/rice-1/commit", json={"quantity": 20, "tolerance": 5}))
        await ok(api.post("/hours/transfers", json={"to": "elm", "quarters": 4}))


async def visit(page: Page, hash_: str, heading: str) -> None:
    await page.evaluate(f"() => {{ location.hash = '{hash_}'; }}")
    await page.wait_for_function(f"() => location.hash === '{hash_}'", timeout=WAIT_MS)
    await loaded(page, heading)


RESIDENT_PAGES = [
    ("#/help", "Call 4 Help"),
    ("#/help/ask", "Ask for help"),
    ("#/market/offers", "Market"),
    ("#/market/needs", "Market"),
    ("#/market/trades", "Market"),
    ("#/market/balance", "Market"),
    ("#/market/pools", "Market"),
    ("#/hours", "Hours"),
    ("#/alerts", "Alerts"),
    ("#/membership", "Membership"),
    ("#/account", "Your account"),
]
COORDINATOR_PAGES = [*RESIDENT_PAGES, ("#/accounts", "Accounts"), ("#/node", "Node")]


async def open_forms(page: Page, hash_: str) -> None:
    """Unfold what a page folds, so axe and the screenshots see the forms too."""
    folded = page.locator("#view details:not([open]) > summary")
    while await folded.count():
        await folded.first.click()
    if hash_ == "#/help":
        pledge = page.get_by_role("button", name="Pledge help").first
        if await pledge.count():
            await pledge.click()
    if hash_ == "#/market/offers":
        propose = page.get_by_role("button", name=re.compile("^Propose a trade for")).first
        if await propose.count():
            await propose.click()
    if hash_ == "#/market/pools":
        commit = page.get_by_role("button", name=re.compile("^(Commit|Change our commitment) to"))
        if await commit.count():
            await commit.first.click()
    if hash_ == "#/accounts":
        await page.get_by_role("button", name="Create invitation link").click()
        await page.get_by_role("button", name="Copy link").wait_for(timeout=WAIT_MS)


async def axe_check(page: Page, axe: Axe, where: str, minor: list[str]) -> list[str]:
    """axe's serious and critical violations on the page now (as strings); the others go
    to `minor`."""
    result = await axe.run(page)
    serious: list[str] = []
    for v in result.response["violations"]:
        nodes = "; ".join(n["target"][0] if n["target"] else "?" for n in v["nodes"][:5])
        line = f"{where}: {v['id']} ({v['impact']}) {v['help']}: {nodes}"
        (serious if v["impact"] in ("serious", "critical") else minor).append(line)
    return serious


FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const shown = el.matches('.choice input') ? el.nextElementSibling : el;
  const s = getComputedStyle(shown);
  const label = el.getAttribute('aria-label')
    || (el.labels && el.labels.length ? el.labels[0].textContent : '')
    || el.textContent || '';
  return {
    tag: el.tagName.toLowerCase(), type: el.getAttribute('type') || '',
    name: label.trim().replace(/\\s+/g, ' '),
    checked: Boolean(el.checked), in_main: Boolean(el.closest('#view')),
    in_nav: Boolean(el.closest('nav')),
    visible: (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0)
      || s.boxShadow !== 'none',
    style: s.outlineStyle + ' ' + s.outlineWidth + ' / ' + s.boxShadow,
  };
}"""


async def tab_to(
    page: Page, wanted: Callable[[dict[str, Any]], bool], *, back: bool = False, most: int = 60
) -> dict[str, Any]:
    """Press Tab (Shift+Tab if `back`) until the focused element is `wanted`; on the way,
    every element that takes the focus must show it (an outline or a shadow)."""
    seen = []
    for _ in range(most):
        await page.keyboard.press("Shift+Tab" if back else "Tab")
        focused: dict[str, Any] | None = await page.evaluate(FOCUSED)
        if focused is None:
            continue
        seen.append(f"{focused['tag']} {focused['name']!r}")
        assert focused["visible"], f"focus not visible on {focused}"
        if wanted(focused):
            return focused
    raise AssertionError(f"never reached the element wanted; focus went through {seen}")


async def test_every_page_passes_axe_and_the_keyboard_alone_asks_and_alerts(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """axe-core finds no serious or critical violation on any page of the app: sign-in,
    join, an unusable join link, reset, every tab for a resident (on a phone) and for a
    coordinator (on a desktop), the ask form and the market's sub-pages with their folded
    forms open, an open pledge form and the accounts page showing a fresh invitation link
    (minor and moderate ones are printed, not failed). Then, with the keyboard alone (Tab,
    Shift+Tab, Enter, Space, typing, and an arrow key inside a radio group; no click), a
    resident signs in and asks for help,
    and a coordinator raises an alert; every element the focus reaches shows it (an outline
    or a box shadow), and after following a link the focus is in the new page, not lost on
    <body>."""
    oakley = await configured(tmp_path, "oakley", nats_server.url)
    elm = await configured(tmp_path, "elm", nats_server.url)
    console: list[str] = []
    axe = Axe()
    serious: list[str] = []
    minor: list[str] = []
    async with running(oakley, elm), operator(oakley) as api:
        await populate(oakley, elm)
        await make_account(oakley, "resident", "rosa")
        await make_account(oakley, "coordinator", "ada", contact="the green door")
        reset = await ok(api.post("/accounts/rosa/reset"))
        async with chromium() as browser:
            public = await person(browser, console, phone=True)
            await public.goto(f"{oakley.api_url}/#/sign-in")
            await loaded(public, "Sign in")
            serious += await axe_check(public, axe, "sign-in", minor)
            await public.goto(f"{oakley.api_url}/#/join/{await invitation(oakley, 'resident')}")
            await loaded(public, "Join your neighborhood")
            serious += await axe_check(public, axe, "join", minor)
            await public.goto(f"{oakley.api_url}/#/join/{'x' * 43}")
            await public.get_by_text("This invitation link cannot be used").wait_for(
                timeout=WAIT_MS
            )
            serious += await axe_check(public, axe, "join (unusable link)", minor)
            await public.goto(reset["link"])
            await loaded(public, "Choose a new password")
            serious += await axe_check(public, axe, "reset", minor)

            for role, name, phone, pages in (
                ("resident", "rosa", True, RESIDENT_PAGES),
                ("coordinator", "ada", False, COORDINATOR_PAGES),
            ):
                page = await person(browser, console, phone=phone)
                await sign_in(page, oakley, name)
                for hash_, heading in pages:
                    await visit(page, hash_, heading)
                    serious += await axe_check(page, axe, f"{role} {hash_}", minor)
                    await open_forms(page, hash_)
                    serious += await axe_check(page, axe, f"{role} {hash_} (forms open)", minor)

            # The keyboard alone: a resident signs in and asks for help.
            keys = await person(browser, console, phone=True)
            await keys.goto(f"{oakley.api_url}/#/sign-in")
            await loaded(keys, "Sign in")
            await tab_to(keys, lambda f: f["tag"] == "input" and f["name"] == "Name")
            await keys.keyboard.type("rosa")
            await tab_to(keys, lambda f: f["tag"] == "input" and f["name"] == "Password")
            await keys.keyboard.type(PASSWORD)
            await keys.keyboard.press("Enter")
            await loaded(keys, "Call 4 Help")
            await tab_to(keys, lambda f: f["tag"] == "a" and f["name"] == "Ask for help")
            await keys.keyboard.press("Enter")
            await loaded(keys, "Ask for help")
            after_link = await keys.evaluate(FOCUSED)
            await tab_to(keys, lambda f: f["type"] == "radio" and f["name"] == "Food")
            await keys.keyboard.press("Space")
            assert (await keys.evaluate(FOCUSED))["checked"]
            await tab_to(keys, lambda f: f["tag"] == "button" and f["name"] == "Send")
            await keys.keyboard.press("Enter")
            await keys.get_by_role("article", name="Call for help: Food, normal").wait_for(
                timeout=WAIT_MS
            )
            calls = await ok(api.get("/aid/requests"))
            assert [r["asked_by"]["name"] for r in calls if r["category"] == "food"] == ["rosa"]

            # The keyboard alone: a coordinator raises an alert.
            await keys.context.clear_cookies()
            await keys.goto(f"{oakley.api_url}/#/sign-in")
            await keys.reload()
            await loaded(keys, "Sign in")
            await tab_to(keys, lambda f: f["tag"] == "input" and f["name"] == "Name")
            await keys.keyboard.type("ada")
            await tab_to(keys, lambda f: f["tag"] == "input" and f["name"] == "Password")
            await keys.keyboard.type(PASSWORD)
            await tab_to(keys, lambda f: f["tag"] == "button" and f["name"] == "Sign in")
            await keys.keyboard.press("Space")
            await loaded(keys, "Call 4 Help")
            await tab_to(keys, lambda f: f["in_nav"] and f["name"] == "Alerts", back=True)
            await keys.keyboard.press("Enter")
            await loaded(keys, "Alerts")
            after_tab = await keys.evaluate(FOCUSED)
            await tab_to(keys, lambda f: f["tag"] == "summary" and f["name"] == "Raise an alert")
            await keys.keyboard.press("Enter")
            # Tab enters a radio group at its checked choice (Warning); an arrow key moves
            # within the group, as in every radio group.
            await tab_to(keys, lambda f: f["type"] == "radio" and f["name"] == "Warning")
            await keys.keyboard.press("ArrowUp")
            danger = await keys.evaluate(FOCUSED)
            assert (danger["name"], danger["checked"], danger["visible"]) == ("Danger", True, True)
            await tab_to(keys, lambda f: f["tag"] == "textarea")
            await keys.keyboard.type("Stay indoors until the wind drops.")
            await tab_to(keys, lambda f: f["tag"] == "button" and f["name"] == "Raise alert")
            await keys.keyboard.press("Enter")
            await keys.get_by_role("article", name="Alert: Storm · oakley, danger").wait_for(
                timeout=WAIT_MS
            )
            alerts = await ok(api.get("/alerts"))
            assert [
                (a["kind"], a["severity"], a["advice"]) for a in alerts if a["severity"] == "danger"
            ] == [("storm", "danger", "Stay indoors until the wind drops.")]
    print("\n".join(["axe, minor and moderate:", *minor]))
    assert serious == [], "\n".join(serious)
    # After following a link with the keyboard, the focus is on the new page (its h1 or
    # inside it), not dropped on <body> where the next Tab starts over from the top.
    assert unexpected(console) == []
    landed = {"after 'Ask for help'": after_link, "after the Alerts tab": after_tab}
    assert all(f is not None and f["in_main"] for f in landed.values()), landed


# ---- 5. Screenshots at a phone's and a desktop's width ------------------------------------------

CLIPPED = """() => {
  const out = [];
  const sel = 'button, .button, a, summary, .badge, .tabs a span, .subtabs a, .choice span,'
    + ' label, h1, h2, h3, input, select, textarea';
  const fields = ['INPUT', 'TEXTAREA', 'SELECT'];  // their text scrolls inside them
  for (const el of document.querySelectorAll(sel)) {
    const s = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    if (s.display === 'none' || s.visibility === 'hidden' || r.width === 0) continue;
    if (el.closest('[hidden]') || s.display === 'inline') continue;
    const text = (el.textContent || el.value || '').trim().slice(0, 40);
    const what = `${el.tagName.toLowerCase()}.${el.className} "${text}"`;
    if (el.scrollWidth > el.clientWidth + 1 && !fields.includes(el.tagName)) {
      const how = s.overflowX === 'visible' ? 'spills out' : 'cut';
      out.push(`${how}: ${what} ${el.scrollWidth} > ${el.clientWidth}`);
    }
    if (!el.classList.contains('skip') && (r.right > innerWidth + 1 || r.left < -1)) {
      out.push(`off screen: ${what} ${Math.round(r.left)}..${Math.round(r.right)}`);
    }
  }
  return out;
}"""


async def test_the_main_pages_fit_a_phone_and_a_desktop(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """Every main page, as a coordinator sees it (with data on it and its folded forms
    open), and the sign-in and join pages, at a phone's width (390×844) and a desktop's
    (1280×800): screenshots are saved under the test's tmp_path; no page scrolls sideways
    (document.documentElement.scrollWidth <= the viewport's width) and no button, tab,
    badge, choice or heading has its text cut or spilling out of its box, nor sits off
    the screen."""
    oakley = await configured(tmp_path, "oakley", nats_server.url)
    elm = await configured(tmp_path, "elm", nats_server.url)
    console: list[str] = []
    shots = tmp_path / "screens"
    shots.mkdir()
    problems: list[str] = []
    async with running(oakley, elm):
        await populate(oakley, elm)
        await make_account(oakley, "coordinator", "ada", contact="the green door")
        async with chromium() as browser:
            for width, phone in (("phone", True), ("desktop", False)):
                page = await person(browser, console, phone=phone)

                async def check(label: str, page: Page = page, width: str = width) -> None:
                    path = shots / f"{width}-{label}.png"
                    await page.screenshot(path=path, full_page=True)
                    size = page.viewport_size
                    assert size is not None
                    scroll = await page.evaluate("() => document.documentElement.scrollWidth")
                    if scroll > size["width"]:
                        problems.append(f"{path}: scrolls sideways ({scroll} > {size['width']})")
                    problems.extend(f"{path}: {p}" for p in await page.evaluate(CLIPPED))

                await page.goto(f"{oakley.api_url}/#/sign-in")
                await loaded(page, "Sign in")
                await check("sign-in")
                await page.goto(f"{oakley.api_url}/#/join/{await invitation(oakley)}")
                await loaded(page, "Join your neighborhood")
                await check("join")
                await sign_in(page, oakley, "ada")
                for hash_, heading in COORDINATOR_PAGES:
                    await visit(page, hash_, heading)
                    await open_forms(page, hash_)
                    await check(hash_.strip("#/").replace("/", "-"))
    print(f"screenshots in {shots}")
    assert problems == [], "\n".join(problems)
    assert unexpected(console) == []
