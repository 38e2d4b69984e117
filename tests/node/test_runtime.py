"""The runtime assembles the engine and the domains: a domain left out of a node's list
costs that node its tables, routes and activities, never the events (DESIGN.md "The log
invariant")."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.store_io import fetch_all
from coopnet.node.runtime import DOMAINS, Node
from coopnet.protocol import NotePosted
from coopnet.protocol.offers import OfferPosted
from tests.conftest import converged, make_node, running, wait_until
from tests.processes import delete_from_stream, stream_seqs

pytestmark = pytest.mark.timeout(90)

WITHOUT_MARKET = tuple(d for d in DOMAINS if d != "market")


def eggs() -> OfferPosted:
    return OfferPosted(
        offer="o-eggs", item="eggs", category="dairy-eggs", quantity=12, unit="piece",
        unit_price=35, available_until=4_000_000_000_000, area="T1",
    )  # fmt: skip


async def tables_of(node: Node) -> set[str]:
    rows = await fetch_all(node.store.db, "SELECT name FROM sqlite_master WHERE type='table'")
    return {str(r[0]) for r in rows}


async def test_a_node_without_a_domain_stores_and_relays_its_events(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    oakley = Node(await make_node(tmp_path, "oakley", nats_server.url))
    elm_data = await make_node(tmp_path, "elm", nats_server.url)
    elm = Node(elm_data, domains=WITHOUT_MARKET)
    async with running(elm):
        async with running(oakley):
            offer = await oakley.post(eggs())
            await oakley.post(NotePosted(text="eggs at the market"))
            await wait_until(lambda: converged(oakley, elm), what="elm holds oakley's events")
        # elm stored the offer without folding it (`node init` made the market's tables,
        # which stay empty), nothing refused, and no market routes; its domains still work.
        assert await elm.store.has_id(offer.id)
        assert "offers" in await tables_of(elm)
        assert await fetch_all(elm.store.db, "SELECT * FROM offers") == []
        status = await elm.status()
        assert status.rejected == {} and status.authors["oakley"] == 3
        async with httpx.AsyncClient(base_url=elm.api_url) as api:
            assert (await api.get("/offers")).status_code == 404
            notes = (await api.get("/notes")).json()
            assert [n["text"] for n in notes] == ["eggs at the market"]

        # oakley is gone and the stream lost its events: only elm can relay them.
        await delete_from_stream(nats_server.url, await stream_seqs(nats_server.url))
        cedar = Node(await make_node(tmp_path, "cedar", nats_server.url), serve_api=False)
        async with running(cedar):

            async def relayed() -> bool:
                return (await cedar.status()).authors.get("oakley") == 3

            await wait_until(relayed, what="cedar holds oakley's events relayed by elm")
            rows = await fetch_all(cedar.store.db, "SELECT offer, quantity FROM offers")
            assert rows == [("o-eggs", 12)]

    # Run again with the market, elm folds what its log already held.
    elm = Node(elm_data, serve_api=False)
    async with running(elm):
        rows = await fetch_all(elm.store.db, "SELECT author, offer FROM offers")
        assert rows == [("oakley", "o-eggs")]


async def test_the_runtime_refuses_a_domain_it_does_not_know(tmp_path: Path) -> None:
    data = await make_node(tmp_path, "oakley", "nats://127.0.0.1:1")
    with pytest.raises(ValueError, match="no such domain: weather"):
        Node(data, domains=(*DOMAINS, "weather"))
