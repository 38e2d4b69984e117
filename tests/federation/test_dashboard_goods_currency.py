"""The currency a federation's charter names (PROTOCOL.md §16, issue 17) reaches the
observer: `/api/summary` names it once, amounts in the API stay integer cents, and the
dashboard, in a real browser, writes every amount in it ("£2.80", "−£2.80"). Two founders
under a real charter trade on a real nats-server."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import httpx
import pytest

from coopnet.federation import measures
from coopnet.federation.dashboard import serve_dashboard
from coopnet.federation.observer import Observer
from coopnet.node.cli import init_node
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from coopnet.protocol import Identity
from coopnet.protocol.charter import Charter, parse_charter
from tests.conftest import converged, running, wait_until
from tests.federation.test_dashboard_browser import WAIT_MS, browser_page, require_chromium
from tests.federation.test_observer import offer, settle, trade_state

pytestmark = pytest.mark.timeout(120)

POUNDS = {"code": "GBP", "name": "pounds", "symbol": "£", "minor_units": 2}


async def founders_under(
    root: Path, url: str, currency: dict[str, object]
) -> tuple[Charter, bytes]:
    """A charter naming `currency` for two founders, oakley and elm, each with its node."""
    idents = {s: Identity.generate(s) for s in ("oakley", "elm")}
    value = {
        "name": "Pound Federation",
        "founders": [
            {"slug": s, "display_name": s.title(), "area": "T1", "key": i.public_key.hex()}
            for s, i in idents.items()
        ],
        "currency": currency,
    }
    text = json.dumps(value).encode()
    charter, net = parse_charter(text)
    for slug, ident in idents.items():
        data = root / slug
        data.mkdir(parents=True)
        (data / "charter.json").write_bytes(text)
        await init_node(
            data, slug=slug, display_name=slug.title(), area="T1", net=net, nats_url=url,
            identity=ident, settings={"charter": "charter.json"},
        )  # fmt: skip
    return charter, net


def test_the_currency_comes_from_the_charter_or_is_credits(tmp_path: Path) -> None:
    hours = {"code": "HRS", "name": "hours", "symbol": "", "minor_units": 0}
    text = json.dumps(
        {
            "name": "Hours",
            "founders": [{"slug": "oak", "display_name": "Oak", "area": "T1", "key": "a" * 64}],
            "currency": hours,
        }
    )
    charter, _ = parse_charter(text.encode())
    assert measures.currency(charter) == hours
    assert measures.currency(None)["code"] == "CRD"


async def test_the_charters_currency_in_the_api_and_on_the_page(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    require_chromium()
    charter, net = await founders_under(tmp_path, nats_server.url, POUNDS)
    oakley, elm = nodes = [Node(tmp_path / s, serve_api=False) for s in ("oakley", "elm")]
    observer = Observer(tmp_path / "observer", net=net, nats_url=nats_server.url, charter=charter)
    console: list[str] = []
    async with running(*nodes), anyio.create_task_group() as tg:
        await tg.start(observer.run)
        url = await tg.start(serve_dashboard, observer, "127.0.0.1", 0)
        await oakley.post(offer("eggs-1", "eggs", 100, 35))
        await wait_until(lambda: converged(*nodes), what="the offer everywhere")
        await settle(oakley, elm, "eggs-1", 8, "t-1")

        async def settled() -> bool:
            return await trade_state(observer, "elm", "t-1") == "settled"

        await wait_until(settled, what="the observer to see the trade settled")
        async with httpx.AsyncClient() as http:
            summary = (await http.get(f"{url}/api/summary")).json()
        assert summary["currency"] == POUNDS
        assert summary["trades"]["volume"] == 280  # still integer pence

        async with browser_page(console) as page:
            await page.goto(url)
            await page.wait_for_function(
                "() => document.getElementById('volume').textContent === '£2.80'",
                timeout=WAIT_MS,
            )
            # The balances come with the neighborhoods, drawn after the summary's figures.
            await page.wait_for_function(
                "() => document.querySelectorAll('#balances .amount').length === 2",
                timeout=WAIT_MS,
            )
            balances = await page.locator("#balances .amount").all_inner_texts()
            assert sorted(balances) == ["£2.80", "−£2.80"]
            offers = await page.locator("#offers-table").inner_text()
            assert "£0.35 a piece" in offers
        tg.cancel_scope.cancel()
    assert console == []
