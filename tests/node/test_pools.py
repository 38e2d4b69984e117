"""Pooled purchases over a real nats-server and real SQLite (PROTOCOL.md §19): a pool from
its opening to its settlement on every node, box fill, the credit limit, a pool below its
minimum, refusals over the API, and the organizer closing its pools on time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from coopnet.node.engine.config import PoolsConfig, read_config, write_config
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.refusals import Refused
from coopnet.node.market import projection as market
from coopnet.node.membership.settlement import unsettled
from coopnet.node.pools import projection as pools
from coopnet.node.runtime import Node
from coopnet.protocol.offers import OfferPosted
from coopnet.protocol.pools import PoolReceived, allocate
from tests.accounts import session
from tests.conftest import converged, make_node, running, wait_until

pytestmark = pytest.mark.timeout(120)
FAR = 2**42  # a closes_at far ahead (ms): the organizer's activity leaves the pool alone


def configure(data: Path, **changes: object) -> None:
    write_config(data, msgspec.structs.replace(read_config(data), **changes))


async def pool_of(node: Node, organizer: str, pool: str) -> dict[str, Any] | None:
    return await pools.load_pool(node.store.db, organizer, pool)


async def pool_state(node: Node, organizer: str, pool: str) -> str | None:
    p = await pool_of(node, organizer, pool)
    return None if p is None else str(p["state"])


def everywhere(nodes: tuple[Node, ...], organizer: str, pool: str, state: str) -> Any:
    async def check() -> bool:
        return all([await pool_state(n, organizer, pool) == state for n in nodes])

    return check


def latest(
    nodes: tuple[Node, ...], organizer: str, pool: str, want: dict[str, tuple[int, int]]
) -> Any:
    async def check() -> bool:
        for n in nodes:
            p = await pool_of(n, organizer, pool)
            got = {} if p is None else {
                s["participant"]: (s["quantity"], s["tolerance"]) for s in p["shares"]
            }  # fmt: skip
            if got != want:
                return False
        return True

    return check


async def four(tmp_path: Path, url: str) -> tuple[Node, ...]:
    slugs = ("oakley", "elm", "ash", "birch")
    return tuple([Node(await make_node(tmp_path, s, url), serve_api=False) for s in slugs])


async def test_a_pool_from_opening_to_settlement_on_every_node(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    nodes = await four(tmp_path, nats_server.url)
    oakley, elm, ash, birch = nodes
    async with running(*nodes):
        # A member supplier is one this node holds the founding of (§16.4).
        await wait_until(lambda: converged(*nodes), what="the foundings spread")
        opened = await oakley.pooling.open(
            item="flour", unit="kilogram", case_size=10, unit_price=200, closes_at=FAR,
            supplier="birch", pool="flour-1",
        )  # fmt: skip
        assert opened.kind == "pool.opened"
        await wait_until(everywhere(nodes, "oakley", "flour-1", "open"), what="opened everywhere")
        # Commit, change, withdraw and commit again; the organizer commits to its own pool.
        await elm.pooling.commit("oakley", "flour-1", 5)
        await elm.pooling.commit("oakley", "flour-1", 3, 2)
        await ash.pooling.commit("oakley", "flour-1", 1)
        await ash.pooling.commit("oakley", "flour-1", 0, 0)
        await ash.pooling.commit("oakley", "flour-1", 4, 1)
        await oakley.pooling.commit("oakley", "flour-1", 2)
        want = {"elm": (3, 2), "ash": (4, 1), "oakley": (2, 0)}
        await wait_until(latest(nodes, "oakley", "flour-1", want), what="latest commitments")
        for n in nodes:  # open commitments hold (quantity + tolerance) × price
            held = await market.commitments(n.store.db, 0)
            assert held == {"elm": 1000, "ash": 1000}

        with pytest.raises(Refused) as refused:
            await elm.pooling.receive("oakley", "flour-1")
        assert refused.value.code == "wrong_state"
        await oakley.pooling.close("flour-1")
        await wait_until(everywhere(nodes, "oakley", "flour-1", "closed"), what="closed")
        rule = allocate(
            "oakley", "flour-1", 10, 0, [("elm", 3, 2), ("ash", 4, 1), ("oakley", 2, 0)]
        )
        assert rule.cases == 1 and sum(rule.shares.values()) == 10
        assert (
            rule.shares["oakley"] == 2
            and abs((rule.shares["elm"] - 3) - (rule.shares["ash"] - 4)) <= 1
        )
        for n in nodes:
            p = await pool_of(n, "oakley", "flour-1")
            assert p is not None and p["cases"] == 1
            assert {s["participant"]: s["share"] for s in p["shares"]} == rule.shares
            assert await market.balances(n.store.db) == {}
            assert await market.commitments(n.store.db, 0) == {
                "elm": rule.shares["elm"] * 200, "ash": rule.shares["ash"] * 200,
            }  # fmt: skip
        # Only a participant with a share, only once delivered, confirms receipt.
        with pytest.raises(Refused) as refused:
            await elm.pooling.receive("oakley", "flour-1")
        assert refused.value.code == "wrong_state"
        with pytest.raises(Refused) as refused:
            await birch.pooling.receive("oakley", "flour-1")
        assert refused.value.code == "not_authorized"

        await oakley.pooling.deliver("flour-1")
        await wait_until(everywhere(nodes, "oakley", "flour-1", "delivered"), what="delivered")
        for n in nodes:  # the organizer paid the member supplier for the case
            assert await market.balances(n.store.db) == {"oakley": -2000, "birch": 2000}
        await elm.pooling.receive("oakley", "flour-1")
        await ash.pooling.receive("oakley", "flour-1")
        e, a = rule.shares["elm"] * 200, rule.shares["ash"] * 200
        expected = {"birch": 2000, "oakley": -2000 + e + a, "elm": -e, "ash": -a}

        async def settled() -> bool:
            return all([await market.balances(n.store.db) == expected for n in nodes])

        await wait_until(settled, what="receipts settle everywhere")
        assert sum(expected.values()) == 0 and expected["oakley"] == -400
        for n in nodes:
            assert await market.commitments(n.store.db, 0) == {}
            balance, committed = await n.trading.standing("elm")
            assert (balance, committed) == (-e, 0)
            # What retiring checks (balance_not_settled) and the audit fold from the log.
            left = await unsettled(n.store.db, ["elm", "birch"], 0)
            assert (left["elm"].balance, left["birch"].balance) == (-e, 2000)
        with pytest.raises(Refused) as refused:
            await elm.pooling.receive("oakley", "flour-1")
        assert refused.value.code == "wrong_state"
        # Signed anyway (bypassing the checks), a second receipt is refused by every node
        # and kept in the log, and moves nothing.
        again = await elm.post(PoolReceived(organizer="oakley", pool="flour-1"))
        sql = "SELECT code FROM domain_rejections WHERE id = ?"

        async def refused_everywhere() -> bool:
            return all(
                [await n.store.all(sql, (again.id,)) == [("not_authorized",)] for n in nodes]
            )

        await wait_until(refused_everywhere, what="the second receipt refused everywhere")
        assert all([await market.balances(n.store.db) == expected for n in nodes])
        await wait_until(lambda: converged(*nodes), what="convergence")
        rows = [await n.store.projection_rows() for n in nodes]
        assert rows[0] == rows[1] == rows[2] == rows[3]


async def test_box_fill_takes_only_raises_that_fill_the_open_case(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    nodes = await four(tmp_path, nats_server.url)
    oakley, elm, ash, birch = nodes
    async with running(*nodes):
        await oakley.pooling.open(
            item="oats", unit="kilogram", case_size=10, unit_price=100, closes_at=FAR,
            supplier_name="Valley Mill", pool="oats",
        )  # fmt: skip
        await wait_until(everywhere(nodes, "oakley", "oats", "open"), what="opened")
        await elm.pooling.commit("oakley", "oats", 3)
        await ash.pooling.commit("oakley", "oats", 4)
        want = {"elm": (3, 0), "ash": (4, 0)}
        await wait_until(latest(nodes, "oakley", "oats", want), what="commitments held")
        await oakley.pooling.box_fill("oats")
        await wait_until(everywhere(nodes, "oakley", "oats", "box_fill"), what="box fill")
        await elm.pooling.commit("oakley", "oats", 5)  # 5 + 4 <= 10: fills the open case
        await wait_until(latest((ash,), "oakley", "oats", {"elm": (5, 0), "ash": (4, 0)}),
                         what="elm's raise reaches ash")  # fmt: skip
        for quantity, why in ((6, "passes the open case"), (3, "lowers")):
            with pytest.raises(Refused) as refused:
                await ash.pooling.commit("oakley", "oats", quantity)
            assert refused.value.code == "box_fill_rule", why
            if quantity == 6:  # the unit in the plural, as people say it
                assert refused.value.message.endswith("at most 5 kilograms"), refused.value
        with pytest.raises(Refused) as refused:  # not counted by the box fill
            await birch.pooling.commit("oakley", "oats", 1)
        assert refused.value.code == "box_fill_rule"
        await ash.pooling.commit("oakley", "oats", 5)
        want = {"elm": (5, 0), "ash": (5, 0)}
        await wait_until(latest((oakley,), "oakley", "oats", want), what="raises held")
        await oakley.pooling.close("oats")
        await wait_until(everywhere(nodes, "oakley", "oats", "closed"), what="closed")
        for n in nodes:
            p = await pool_of(n, "oakley", "oats")
            assert p is not None and p["cases"] == 1
            assert {s["participant"]: s["share"] for s in p["shares"]} == {"elm": 5, "ash": 5}
        # An external supplier is paid outside the federation: delivery moves no credit.
        await oakley.pooling.deliver("oats")
        await wait_until(everywhere(nodes, "oakley", "oats", "delivered"), what="delivered")
        await elm.pooling.receive("oakley", "oats")
        await ash.pooling.receive("oakley", "oats")
        expected = {"oakley": 1000, "elm": -500, "ash": -500}

        async def settled() -> bool:
            return all([await market.balances(n.store.db) == expected for n in nodes])

        await wait_until(settled, what="receipts settle everywhere")


async def test_a_commitment_beyond_the_credit_limit_is_refused_before_signing(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    oak_data = await make_node(tmp_path, "oakley", nats_server.url)
    elm_data = await make_node(tmp_path, "elm", nats_server.url)
    configure(elm_data, credit_limit=1_000)
    oakley, elm = nodes = (Node(oak_data, serve_api=False), Node(elm_data, serve_api=False))
    async with running(*nodes):
        await oakley.pooling.open(
            item="oil", unit="litre", case_size=6, unit_price=200, closes_at=FAR,
            supplier_name="Olive Farm", pool="oil",
        )  # fmt: skip
        await wait_until(everywhere(nodes, "oakley", "oil", "open"), what="opened")
        await elm.pooling.commit("oakley", "oil", 4)  # 800 held of 1 000
        head = (await elm.status()).authors["elm"]
        with pytest.raises(Refused) as refused:  # 6 × 200 = 1 200: over the limit
            await elm.pooling.commit("oakley", "oil", 5, 1)
        assert refused.value.code == "credit_limit_exceeded"
        assert "12.00 credits more would take elm to -12.00 credits" in refused.value.message
        assert refused.value.message.endswith("below its credit limit of -10.00 credits")
        assert (await elm.status()).authors["elm"] == head  # nothing signed
        # A change replaces the commitment's own hold: 5 × 200 = 1 000 fits.
        await elm.pooling.commit("oakley", "oil", 5)
        assert await market.commitments(elm.store.db, 0) == {"elm": 1000}


async def test_a_pool_below_its_minimum_is_cancelled_and_settles_nothing(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    datas = [await make_node(tmp_path, s, nats_server.url) for s in ("oakley", "elm", "ash")]
    nodes = tuple(Node(d, serve_api=False) for d in datas)
    oakley, elm, _ = nodes
    async with running(*nodes):
        await wait_until(lambda: converged(*nodes), what="the foundings spread")
        await oakley.pooling.open(
            item="rice", unit="kilogram", case_size=10, unit_price=150, min_cases=2,
            closes_at=FAR, supplier="ash", pool="rice",
        )  # fmt: skip
        await wait_until(everywhere(nodes, "oakley", "rice", "open"), what="opened")
        await elm.pooling.commit("oakley", "rice", 12)
        await wait_until(latest(nodes, "oakley", "rice", {"elm": (12, 0)}), what="committed")
        await oakley.pooling.close("rice")  # one case of the two it needs
        await wait_until(everywhere(nodes, "oakley", "rice", "cancelled"), what="cancelled")
        for n in nodes:
            assert await market.balances(n.store.db) == {}
            assert await market.commitments(n.store.db, 0) == {}
            p = await pool_of(n, "oakley", "rice")
            assert p is not None and p["cases"] == 0 and p["organizer_state"] == "closed"
        with pytest.raises(Refused) as refused:
            await oakley.pooling.deliver("rice")
        assert refused.value.code == "wrong_state"


async def test_refusals_over_the_api_carry_their_codes(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    oakley = Node(await make_node(tmp_path, "oakley", nats_server.url))
    elm = Node(await make_node(tmp_path, "elm", nats_server.url))
    async with running(oakley, elm), httpx.AsyncClient(base_url=oakley.api_url) as oak:
        await wait_until(lambda: converged(oakley, elm), what="the foundings spread")
        r = await oak.post("/pools", json={
            "item": "honey", "unit": "kilogram", "case_size": 12, "unit_price": 900,
            "closes_in_s": 3600, "supplier_name": "Bee Farm", "pool": "honey",
        })  # fmt: skip
        assert r.status_code == 201, r.text
        assert r.json()["kind"] == "pool.opened" and r.json()["author"] == "oakley"
        r = await oak.post("/pools", json={
            "item": "honey", "unit": "kilogram", "case_size": 12, "unit_price": 900,
            "closes_in_s": 3600, "supplier_name": "Bee Farm", "supplier": "elm",
        })  # fmt: skip
        assert (r.status_code, r.json()["code"]) == (400, "bad_body")
        r = await oak.post("/pools", json={
            "item": "honey", "unit": "kilogram", "case_size": 12, "unit_price": 900,
            "closes_in_s": 3600, "supplier": "oakley",
        })  # fmt: skip
        assert (r.status_code, r.json()["code"]) == (403, "not_authorized")
        r = await oak.post("/pools/oakley/honey/deliver")
        assert (r.status_code, r.json()["code"]) == (409, "wrong_state")
        # A member supplier's offer, when named, must be held; its price is the single
        # unit price unless one is given.
        wax = {"item": "wax", "unit": "kilogram", "case_size": 5, "unit_price": 700,
               "closes_in_s": 60, "supplier": "elm", "supplier_offer": "wax-1"}  # fmt: skip
        r = await oak.post("/pools", json={**wax, "pool": "wax"})
        assert (r.status_code, r.json()["code"]) == (404, "offer_unavailable")
        offer = OfferPosted(
            offer="wax-1", item="wax", category="household-goods", quantity=40, unit="kilogram",
            unit_price=950, available_until=FAR, area="T1",
        )  # fmt: skip
        await elm.post(offer)
        await wait_until(lambda: converged(oakley, elm), what="the offer spreads")
        r = await oak.post("/pools", json={**wax, "pool": "wax"})
        assert r.status_code == 201, r.text
        assert (await oak.get("/pools/oakley/wax")).json()["single_unit_price"] == 950
        await wait_until(everywhere((elm,), "oakley", "honey", "open"), what="elm holds it")
        async with httpx.AsyncClient(base_url=elm.api_url) as api:
            r = await api.post("/pools/oakley/honey/close")
            assert (r.status_code, r.json()["code"]) == (403, "not_authorized")
            r = await api.post("/pools/oakley/nothing/commit", json={"quantity": 1})
            assert (r.status_code, r.json()["code"]) == (404, "not_found")
            r = await api.post("/pools/oakley/honey/commit", json={"quantity": 3, "tolerance": 1})
            assert r.status_code == 201 or r.status_code == 200, r.text
            assert r.json()["kind"] == "pool.committed"
        async with session(oakley, "resident") as resident:
            r = await resident.post("/pools/oakley/honey/close")
            assert (r.status_code, r.json()["code"]) == (403, "role_required")
            await wait_until(
                latest((oakley,), "oakley", "honey", {"elm": (3, 1)}), what="commitment held"
            )
            listed = (await resident.get("/pools?state=open")).json()
            assert sorted((p["organizer"], p["pool"], p["committed"]) for p in listed) == [
                ("oakley", "honey", 3), ("oakley", "wax", 0),
            ]  # fmt: skip
            r = await resident.get("/pools?state=opened")
            assert (r.status_code, r.json()["code"]) == (400, "bad_request")
            shown = (await resident.get("/pools/oakley/honey")).json()
            assert shown["holds"] == {"elm": 4 * 900}
            assert shown["shares"][0]["participant"] == "elm"


async def test_the_organizer_closes_its_pools_on_time(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    datas = [await make_node(tmp_path, s, nats_server.url) for s in ("oakley", "elm", "ash")]
    configure(datas[0], pools=PoolsConfig(box_fill_s=4))
    nodes = tuple(Node(d, serve_api=False) for d in datas)
    oakley, elm, ash = nodes
    async with running(*nodes):
        # Time: a pool left with an open case turns to box fill at closes_at, and closes
        # box_fill_s later with what the raises filled.
        await oakley.pooling.open(
            item="beans", unit="kilogram", case_size=10, unit_price=80,
            closes_at=oakley.clock() + 6_000, supplier_name="Bean Co", pool="beans",
        )  # fmt: skip
        # Capacity: a pool of at most one case closes once one case is committed.
        await oakley.pooling.open(
            item="salt", unit="kilogram", case_size=10, unit_price=50, max_cases=1,
            closes_at=FAR, supplier_name="Salt Works", pool="salt",
        )  # fmt: skip
        await wait_until(everywhere(nodes, "oakley", "salt", "open"), what="opened")
        await elm.pooling.commit("oakley", "beans", 3)
        await ash.pooling.commit("oakley", "beans", 4)
        await elm.pooling.commit("oakley", "salt", 10)
        await wait_until(everywhere(nodes, "oakley", "salt", "closed"), what="closed at capacity")
        assert await pool_state(oakley, "oakley", "beans") == "open"
        await wait_until(everywhere((elm,), "oakley", "beans", "box_fill"), what="box fill")
        await elm.pooling.commit("oakley", "beans", 6)
        await wait_until(everywhere(nodes, "oakley", "beans", "closed"), what="closed on time")
        for n in nodes:
            p = await pool_of(n, "oakley", "beans")
            assert p is not None and p["cases"] == 1
            assert {s["participant"]: s["share"] for s in p["shares"]} == {"elm": 6, "ash": 4}


async def test_a_supplier_never_seen_founded_is_refused_without_a_charter(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """Without a charter (the README's tour), a member supplier must still be a neighborhood
    this node holds the founding of: no pool pays credit to a co-op that does not exist."""
    oakley, _ = nodes = (
        Node(await make_node(tmp_path, "oakley", nats_server.url), serve_api=False),
        Node(await make_node(tmp_path, "elm", nats_server.url), serve_api=False),
    )
    assert oakley.governance.charter is None
    async with running(*nodes):
        await wait_until(lambda: converged(*nodes), what="the foundings spread")
        head = (await oakley.status()).authors["oakley"]
        with pytest.raises(Refused) as refused:
            await oakley.pooling.open(
                item="oats", unit="kilogram", case_size=10, unit_price=120, closes_at=FAR,
                supplier="ghost", pool="ghostly",
            )  # fmt: skip
        assert refused.value.code == "not_a_member"
        assert "ghost is not a member of the federation (not known here)" in refused.value.message
        with pytest.raises(Refused) as refused:  # an offer needs the member selling it
            await oakley.pooling.open(
                item="oats", unit="kilogram", case_size=10, unit_price=120, closes_at=FAR,
                supplier_name="Valley Mill", supplier_offer="o-x", pool="mill",
            )  # fmt: skip
        assert refused.value.code == "bad_request"
        assert "name that co-op in supplier too" in refused.value.message
        assert (await oakley.status()).authors["oakley"] == head  # nothing signed
        await oakley.pooling.open(
            item="oats", unit="kilogram", case_size=10, unit_price=120, closes_at=FAR,
            supplier="elm", pool="real",
        )  # fmt: skip
        assert await pool_state(oakley, "oakley", "real") == "open"
