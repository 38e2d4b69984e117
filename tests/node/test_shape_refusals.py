"""A known kind's body of the wrong shape never cuts a chain (docs/PROTOCOL.md §4 step 13,
§7.1): an `offer.posted` in a unit the receiver does not list is stored, its author's next
event is accepted (no gap), the domain refuses it with `bad_body` and the status counts it;
once the receiver is upgraded to list the unit, it applies the offer. Real SQLite stores,
a real nats-server, the older node a separate process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Literal

import anyio
import httpx
import pytest

from coopnet.node.engine.chains import Chains
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.status import all_rejections
from coopnet.node.runtime import Node
from coopnet.protocol import Identity, NotePosted, seal, unseal
from coopnet.protocol.kinds import KINDS
from coopnet.protocol.offers import OfferPosted
from tests.conftest import NET, make_node, running, wait_until
from tests.processes import free_port, stop_node, wait_ready
from tests.stores import open_node_store

pytestmark = pytest.mark.timeout(120)
NOW = 1_800_000_000_000


class OfferPostedBeforeDozens(OfferPosted, frozen=True, kw_only=True):
    """`offer.posted` as a coopnet that listed only the first four units reads it."""

    unit: Literal["gram", "millilitre", "piece", "minute"]


# `coopnet node run` as that older coopnet: the kind's shape replaced in the registry (the
# one table unseal consults) before anything runs. Everything else is today's code.
PREVIOUS_VERSION = f"""
import sys
from typing import Literal
from coopnet.protocol.kinds import KINDS
from coopnet.protocol.offers import OfferPosted

class OfferPostedBeforeDozens(OfferPosted, frozen=True, kw_only=True):
    unit: Literal[{", ".join(repr(u) for u in ("gram", "millilitre", "piece", "minute"))}]

KINDS["offer.posted"] = OfferPostedBeforeDozens
from coopnet.deploy.cli import main
sys.exit(main(sys.argv[1:]))
"""


def eggs_by_the_dozen() -> OfferPosted:
    return OfferPosted(offer="eggs-1", item="eggs", category="dairy-eggs", quantity=4,
                       unit="dozen", unit_price=450, available_until=NOW + 86_400_000,
                       area="T1")  # fmt: skip


def history() -> list[bytes]:
    """Oakley's log: founded, an offer of eggs by the dozen, a note after it."""
    ident = Identity.from_passphrase("oakley", "shapes")
    bodies = [ident.founding_body("Oakley", "T1"), eggs_by_the_dozen(), NotePosted(text="Hi")]
    wires: list[bytes] = []
    prev = None
    for seq, body in enumerate(bodies, start=1):
        wires.append(seal(signing_key=ident.signing_key, net=NET, author="oakley", seq=seq,
                          prev=prev, at=NOW, body=body))  # fmt: skip
        prev = unseal(wires[-1], net=NET).id
    return wires


async def test_a_store_keeps_an_offer_it_cannot_read_and_applies_it_once_upgraded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "node.db"
    wires = history()
    monkeypatch.setitem(KINDS, "offer.posted", OfferPostedBeforeDozens)
    store = await open_node_store(path, NET)
    try:
        chains = Chains(store, NET, clock=lambda: NOW)
        await chains.load()
        report = await chains.receive(wires, source="test")
        assert report.accepted == 3  # the offer and the note after it: no gap
        assert await store.counts_by_author() == {"oakley": 3}
        assert chains.missing() == []
        refused = await store.all("SELECT seq, kind, code, reason FROM domain_rejections")
        assert [tuple(r) for r in refused] == [
            (2, "offer.posted", "bad_body",
             "offer.posted body: Invalid enum value 'dozen' - at `$.unit`"),
        ]  # fmt: skip
        assert await all_rejections(store) == {"bad_body": 1}  # counted as a domain refusal
        assert await store.all("SELECT * FROM offers") == []  # it means nothing here
        assert [tuple(r) for r in await store.all("SELECT seq, text FROM notes")] == [(3, "Hi")]
        await store.rebuild_projections()  # a rebuild from the log says the same
        assert await all_rejections(store) == {"bad_body": 1}
    finally:
        await store.close()

    monkeypatch.undo()  # the upgrade: this coopnet lists dozens
    store = await open_node_store(path, NET)
    try:
        offers = await store.all("SELECT author, offer, unit, quantity FROM offers")
        assert [tuple(r) for r in offers] == [("oakley", "eggs-1", "dozen", 4)]
        assert await all_rejections(store) == {}
    finally:
        await store.close()


def start_previous_version(data: Path, url: str, port: int, log: Path) -> subprocess.Popen[str]:
    args = ["node", "run", "--data", str(data), "--nats", url, "--api-port", str(port)]
    with log.open("a") as err:
        return subprocess.Popen(
            [sys.executable, "-c", PREVIOUS_VERSION, *args],
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            start_new_session=True,
        )


async def status_of(port: int) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        response = await client.get("/status")
    response.raise_for_status()
    status = response.json()
    assert isinstance(status, dict)
    return status


async def test_an_older_node_on_the_bus_keeps_a_newer_nodes_chain_whole(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """Oakley runs this version and sells eggs by the dozen; elm runs as a version that
    lists only the first four units. Elm stores oakley's offer and the note after it (no
    gap), refuses the offer with `bad_body` and counts it. Restarted as this version on the
    same store, elm applies the offer: its market equals oakley's."""
    oak_data = await make_node(tmp_path, "oakley", nats_server.url)
    elm_data = await make_node(tmp_path, "elm", nats_server.url)
    log, port = tmp_path / "elm.log", free_port()
    oak = Node(oak_data, serve_api=False)
    async with running(oak):
        elm_proc = start_previous_version(elm_data, nats_server.url, port, log)
        try:
            await anyio.to_thread.run_sync(wait_ready, port, elm_proc)
            await oak.post(eggs_by_the_dozen())
            await oak.post(NotePosted(text="Eggs by the dozen at the depot."))

            async def elm_holds_all_of_oakley() -> bool:
                authors = (await status_of(port))["authors"]
                return isinstance(authors, dict) and authors.get("oakley") == 3

            await wait_until(elm_holds_all_of_oakley, what="elm holds oakley's whole chain")
            status = await status_of(port)
            assert status["rejected"] == {"bad_body": 1}
        finally:
            stop_node(elm_proc, log)

        elm = Node(elm_data, serve_api=False)  # the upgrade: the same store, this version
        async with running(elm):
            offers = await elm.store.all("SELECT author, offer, unit FROM offers")
            assert [tuple(r) for r in offers] == [("oakley", "eggs-1", "dozen")]
            assert (await elm.status()).rejected == {}
            oak_offers = await oak.store.all("SELECT author, offer, unit FROM offers")
            assert [tuple(r) for r in oak_offers] == [tuple(r) for r in offers]
