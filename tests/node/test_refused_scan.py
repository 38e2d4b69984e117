"""Refused bodies stay cheap (docs/PROTOCOL.md §7.1): the events a store refused `bad_body`
are decoded again only at an open that finds other body shapes than the last open's (an
upgrade), a page at a time, and a flood of them is not a flood of log lines, at receive or
at a rebuild. Real SQLite stores; the shapes of an older coopnet as in
tests/node/test_shape_refusals.py."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import pytest

from coopnet.node.engine import store as store_module
from coopnet.node.engine.chains import Chains
from coopnet.node.engine.status import all_rejections
from coopnet.node.engine.store import BODY_SHAPES_META, Store, body_shapes
from coopnet.node.engine.store_io import fetch_all
from coopnet.protocol import Identity, NotePosted, seal, unseal
from coopnet.protocol.body import Body
from coopnet.protocol.kinds import KINDS
from coopnet.protocol.offers import OfferPosted
from tests.conftest import NET
from tests.node.test_shape_refusals import OfferPostedBeforeDozens
from tests.stores import open_node_store

pytestmark = pytest.mark.timeout(120)
NOW = 1_800_000_000_000
REFUSED = 12  # offers by the dozen, refused bad_body by the older shape


class OfferPostedBeforeLitres(OfferPosted, frozen=True, kw_only=True):
    """`offer.posted` as a coopnet that listed five units, still not dozens: other shapes
    than `OfferPostedBeforeDozens`, which read none of the refused offers either."""

    unit: Literal["gram", "millilitre", "piece", "minute", "kilogram"]


def dozens(count: int) -> list[bytes]:
    """Oakley's log: founded, `count` offers of eggs by the dozen, a note."""
    ident = Identity.from_passphrase("oakley", "scan")
    bodies: list[Body] = [ident.founding_body("Oakley", "T1")]
    bodies += [
        OfferPosted(offer=f"eggs-{i}", item="eggs", category="dairy-eggs", quantity=4,
                    unit="dozen", unit_price=450, available_until=NOW + 86_400_000, area="T1")
        for i in range(count)
    ]  # fmt: skip
    bodies.append(NotePosted(text="Eggs by the dozen at the depot."))
    wires: list[bytes] = []
    prev = None
    for seq, body in enumerate(bodies, start=1):
        wires.append(seal(signing_key=ident.signing_key, net=NET, author="oakley", seq=seq,
                          prev=prev, at=NOW, body=body))  # fmt: skip
        prev = unseal(wires[-1], net=NET).id
    return wires


async def stored_refused(path: Path, count: int) -> None:
    """A store, opened as the older coopnet, that received and refused `count` offers."""
    store = await open_node_store(path, NET)
    try:
        chains = Chains(store, NET, clock=lambda: NOW)
        await chains.load()
        report = await chains.receive(dozens(count), source="test")
        assert report.accepted == count + 2  # stored, the chain whole
        assert await all_rejections(store) == {"bad_body": count}
    finally:
        await store.close()


class ScanPages:
    """Records the rows of every page the refused-body scan reads (`fetch_all` wrapped)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pages: list[int] = []

        async def recording(db: Any, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
            rows = await fetch_all(db, sql, params)
            if "r.code = 'bad_body'" in sql:
                self.pages.append(len(rows))
            return rows

        monkeypatch.setattr(store_module, "fetch_all", recording)


async def reopened(path: Path) -> Store:
    return await open_node_store(path, NET)


async def test_an_open_decodes_refused_bodies_again_only_when_the_shapes_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "node.db"
    monkeypatch.setitem(KINDS, "offer.posted", OfferPostedBeforeDozens)  # the older coopnet
    await stored_refused(path, REFUSED)
    monkeypatch.setattr(store_module, "REFUSED_SCAN_ROWS", 5)
    scans = ScanPages(monkeypatch)

    store = await reopened(path)  # the same shapes: nothing to decode again
    try:
        assert (store.refused_scan_pages, scans.pages) == (0, [])
        assert await store.meta(BODY_SHAPES_META) == body_shapes()
        assert await all_rejections(store) == {"bad_body": REFUSED}
    finally:
        await store.close()

    monkeypatch.setitem(KINDS, "offer.posted", OfferPostedBeforeLitres)  # other shapes
    shapes = body_shapes()
    store = await reopened(path)
    try:  # decoded again a page of 5 at a time; none reads: nothing rebuilt
        assert (store.refused_scan_pages, scans.pages) == (3, [5, 5, 2])
        assert await store.meta(BODY_SHAPES_META) == shapes
        assert await all_rejections(store) == {"bad_body": REFUSED}
        assert await store.all("SELECT * FROM offers") == []
    finally:
        await store.close()

    scans.pages.clear()
    monkeypatch.setitem(KINDS, "offer.posted", OfferPosted)  # the upgrade: dozens read
    store = await reopened(path)
    try:  # one scan, and the rebuild that applies every offer
        assert (store.refused_scan_pages, scans.pages) == (3, [5, 5, 2])
        assert await store.meta(BODY_SHAPES_META) == body_shapes() != shapes
        assert await all_rejections(store) == {}
        assert len(await store.all("SELECT * FROM offers WHERE unit = 'dozen'")) == REFUSED
    finally:
        await store.close()

    scans.pages.clear()
    store = await reopened(path)  # and never again while the shapes stay
    try:
        assert (store.refused_scan_pages, scans.pages) == (0, [])
        assert len(await store.all("SELECT * FROM offers")) == REFUSED
    finally:
        await store.close()


async def test_a_store_from_before_the_record_decodes_them_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store whose meta has no body shapes (written before they were recorded) may hold
    refusals that an earlier coopnet made: the first open decodes them, and records."""
    path = tmp_path / "node.db"
    monkeypatch.setitem(KINDS, "offer.posted", OfferPostedBeforeDozens)
    await stored_refused(path, REFUSED)
    store = await reopened(path)
    try:
        async with store.transaction() as db:
            await db.execute("DELETE FROM meta WHERE key = ?", (BODY_SHAPES_META,))
    finally:
        await store.close()
    for pages in (1, 0):  # REFUSED_SCAN_ROWS (100) holds them all in one page
        store = await reopened(path)
        try:
            assert store.refused_scan_pages == pages
            assert await store.meta(BODY_SHAPES_META) == body_shapes()
        finally:
            await store.close()


async def test_a_flood_of_refused_bodies_is_not_a_flood_of_log_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Each refused body is counted (status, domain_rejections), but the log keeps 20
    lines a minute per code when they are received, and a rebuild logs one line for all."""
    caplog.set_level(logging.INFO, logger="coopnet.store")
    path = tmp_path / "node.db"
    monkeypatch.setitem(KINDS, "offer.posted", OfferPostedBeforeDozens)
    flood = 60
    await stored_refused(path, flood)

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "coopnet.store"]

    assert len([m for m in lines() if "refused by bad_body" in m]) == 20
    caplog.clear()
    store = await reopened(path)
    try:
        await store.rebuild_projections()
        assert await all_rejections(store) == {"bad_body": flood}
    finally:
        await store.close()
    assert [m for m in lines() if "refused" in m] == [
        "projections folded from the log; events refused again: bad_body 60"
    ]
