"""What the observer measures of pooled purchases (PROTOCOL.md §19) and hours between
neighborhoods (§20), over a real nats-server with real nodes: the pools in each state, the
cases bought, what pooling saved against the supplier's single-unit price, the settlements
on the credit ledger (which still sums to zero), the hours each neighborhood gave and
received; and the CSV exports `pools.csv` and `hours.csv`, read back with Python's csv and
datetime parsers (ISO 8601 UTC times, as every other export)."""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from coopnet.federation import measures
from coopnet.federation.audit import audit, ledger_sums
from coopnet.federation.dashboard import serve_dashboard, summary
from coopnet.federation.exports import EXPORT_TABLES, metrics_text
from coopnet.federation.observer import Observer
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.store import now_ms
from coopnet.node.market import projection as market
from coopnet.node.pools import projection as pools
from coopnet.node.runtime import Node
from coopnet.node.timebank.bank import TimeBank
from coopnet.protocol.pools import allocate
from tests.conftest import converged, running, wait_until
from tests.federation.test_exports_iso import ISO, ms_of
from tests.federation.test_observer import DAY_MS, holds_all, honest, observing, offer

pytestmark = pytest.mark.timeout(120)

SLUGS = ("oakley", "elm", "ash", "birch")
# The acceptance example (§19): case size 10; elm 3 + 2, ash 4 + 1, birch 2 + 0: one case.
COMMITMENTS = {"elm": (3, 2), "ash": (4, 1), "birch": (2, 0)}
UNIT_PRICE = 25  # cents a piece in the pool; oakley sells one egg alone for 35
SINGLE_PRICE = 35
# Hours signed over (quarter hours): (signer, to, quarters). The signer received the help.
TRANSFERS = (("ash", "elm", 6), ("birch", "elm", 9), ("elm", "ash", 4))


@dataclass
class PoolDay:
    nodes: dict[str, Node]
    obs: Observer
    url: str  # the dashboard's
    shares: dict[str, int]  # the eggs pool's allocation, units by participant


def time_bank(node: Node) -> TimeBank:
    """The node's time bank, as its domain builds it (node/runtime.py)."""
    return TimeBank(node, node.governance, node.governance.charter)


async def pool_state(node: Node | Observer, organizer: str, pool: str) -> str | None:
    p = await pools.load_pool(node.store.db, organizer, pool)
    return None if p is None else str(p["state"])


async def pool_everywhere(
    nodes: list[Node | Observer], organizer: str, pool: str, state: str
) -> None:
    async def there() -> bool:
        return all([await pool_state(n, organizer, pool) == state for n in nodes])

    await wait_until(there, what=f"pool {organizer}/{pool} {state} everywhere")


async def commitments_held(node: Node, organizer: str, pool: str, count: int) -> None:
    async def held() -> bool:
        return len(await pools.commitments(node.store.db, organizer, pool)) == count

    await wait_until(held, what=f"{count} commitment(s) to {organizer}/{pool} at {node.slug}")


@contextlib.asynccontextmanager
async def pool_day(root: Path, url: str) -> AsyncIterator[PoolDay]:
    """elm pools eggs from oakley's offer (one case of 10 at 25 cents, 35 alone) with ash
    and birch: closed, delivered, received by both. elm's kale pool from a farm outside is
    cancelled; ash's oil pool stays open with birch's commitment. Hours: ash and birch sign
    1.5 h and 2.25 h over to elm, elm 1 h to ash. An observer and its dashboard watch."""
    nodes = dict(zip(SLUGS, await honest(root, url, *SLUGS), strict=True))
    oakley, elm, ash, birch = nodes.values()
    async with running(*nodes.values()), observing(root / "observer", url) as (obs, tg):
        dashboard = await tg.start(serve_dashboard, obs, "127.0.0.1", 0)
        await oakley.post(offer("eggs-1", "eggs", 100, SINGLE_PRICE))
        await wait_until(lambda: converged(*nodes.values()), what="oakley's offer everywhere")
        later = now_ms() + DAY_MS
        await elm.pooling.open(
            pool="p-eggs", item="eggs", unit="piece", case_size=10, unit_price=UNIT_PRICE,
            closes_at=later, supplier="oakley", supplier_offer="eggs-1",
        )  # fmt: skip
        await elm.pooling.open(
            pool="p-kale", item="kale", unit="piece", case_size=6, unit_price=80,
            closes_at=later, min_cases=2, supplier_name="Valley Farm",
        )  # fmt: skip
        await ash.pooling.open(
            pool="p-oil", item="olive oil", unit="litre", case_size=12, unit_price=900,
            closes_at=later, supplier_name="Olive Co", single_unit_price=1100,
        )  # fmt: skip
        await pool_everywhere(list(nodes.values()), "elm", "p-kale", "open")
        await pool_everywhere(list(nodes.values()), "ash", "p-oil", "open")
        for slug, (quantity, tolerance) in COMMITMENTS.items():
            await nodes[slug].pooling.commit("elm", "p-eggs", quantity, tolerance)
        await ash.pooling.commit("elm", "p-kale", 3)
        await birch.pooling.commit("ash", "p-oil", 5)
        await commitments_held(elm, "elm", "p-eggs", 3)
        await commitments_held(elm, "elm", "p-kale", 1)
        await elm.pooling.close("p-eggs")
        await elm.pooling.cancel("p-kale", "too few for two cases")
        await pool_everywhere([*nodes.values(), obs], "elm", "p-eggs", "closed")
        await elm.pooling.deliver("p-eggs")
        await pool_everywhere([ash, birch], "elm", "p-eggs", "delivered")
        await ash.pooling.receive("elm", "p-eggs")
        await birch.pooling.receive("elm", "p-eggs")
        for signer, to, quarters in TRANSFERS:
            await time_bank(nodes[signer]).transfer(to, quarters, transfer=f"h-{signer}")

        async def observed() -> bool:
            received = await obs.store.all(
                "SELECT COUNT(*) FROM pool_shares WHERE organizer = 'elm' AND received = 1"
            )
            moved = await obs.store.all("SELECT COUNT(*) FROM hour_transfers")
            return (
                received == [(2,)] and moved == [(3,)] and await holds_all(obs, [*nodes.values()])
            )

        await wait_until(observed, what="the observer holding the whole day")
        rows = [(p, q, t) for p, (q, t) in COMMITMENTS.items()]
        shares = allocate("elm", "p-eggs", 10, 0, rows).shares
        yield PoolDay(nodes=nodes, obs=obs, url=dashboard, shares=shares)


async def test_measures_of_pools_and_hours(tmp_path: Path, nats_server: NatsServer) -> None:
    async with pool_day(tmp_path, nats_server.url) as day:
        db, obs = day.obs.store.db, day.obs
        assert sum(day.shares.values()) == 10
        assert await measures.pool_totals(db) == {
            "count": 3, "by_state": {"delivered": 1, "cancelled": 1, "open": 1},
            "open": 1, "closed": 0, "delivered": 1, "cancelled": 1,
            "cases_bought": 1, "units_bought": 10,
            # elm paid oakley 250; ash and birch paid elm their shares.
            "volume": 250 + (day.shares["ash"] + day.shares["birch"]) * UNIT_PRICE,
            "saved": (SINGLE_PRICE - UNIT_PRICE) * 10,
        }  # fmt: skip
        listed = {p["pool"]: p for p in (await measures.pools_list(db))["pools"]}
        eggs = listed["p-eggs"]
        assert (eggs["state"], eggs["cases"], eggs["supplier"]) == ("delivered", 1, "oakley")
        assert (eggs["single_unit_price"], eggs["saved"]) == (SINGLE_PRICE, 100)
        assert (eggs["participants"], eggs["committed"], eggs["allocated"]) == (3, 9, 10)
        assert eggs["received"] == 2
        assert (listed["p-kale"]["state"], listed["p-kale"]["saved"]) == ("cancelled", 0)
        oil = listed["p-oil"]
        assert (oil["state"], oil["supplier_name"], oil["committed"]) == ("open", "Olive Co", 5)
        assert oil["saved"] == 0  # not delivered: nothing saved yet

        # Hours given (signed over to it) and received (it signed over), quarter hours.
        assert await measures.hours_by_neighborhood(db) == [
            {"slug": "ash", "given": 4, "received": 6, "balance": -2,
             "transfers_given": 1, "transfers_received": 1},
            {"slug": "birch", "given": 0, "received": 9, "balance": -9,
             "transfers_given": 0, "transfers_received": 1},
            {"slug": "elm", "given": 15, "received": 4, "balance": 11,
             "transfers_given": 2, "transfers_received": 1},
        ]  # fmt: skip
        assert await measures.hour_totals(db) == {"transfers": 3, "quarters": 19}
        # Each transfer counts once per column: either column sums to the transfers.
        by_hood = await measures.hours_by_neighborhood(db)
        assert sum(r["transfers_given"] for r in by_hood) == 3
        assert sum(r["transfers_received"] for r in by_hood) == 3

        # The pools settle on the credit ledger, which still sums to zero.
        hoods = {h["slug"]: h for h in await measures.neighborhoods(db, None, obs.clock())}
        paid = {s: day.shares[s] * UNIT_PRICE for s in ("ash", "birch")}
        balances = {s: h["balance"] for s, h in hoods.items()}
        assert balances == {
            "oakley": 250, "elm": paid["ash"] + paid["birch"] - 250,
            "ash": -paid["ash"], "birch": -paid["birch"],
        }  # fmt: skip
        assert balances == await market.balances(db)  # as every node computes it
        assert (hoods["elm"]["pool_paid"], hoods["elm"]["pool_earned"]) == (
            250, paid["ash"] + paid["birch"])  # fmt: skip
        assert (hoods["elm"]["hours_given"], hoods["elm"]["hours_received"]) == (15, 4)
        assert hoods["oakley"]["hours_balance"] == 0

        sums = await ledger_sums(db)
        assert sums == {"pool_ledger_sum": 0, "hours_ledger_sum": 0}
        overview = await summary(obs)
        assert (overview["ledger_sum"], overview["pool_ledger_sum"]) == (0, 0)
        assert overview["hours_ledger_sum"] == 0
        assert overview["pools"]["delivered"] == 1 and overview["hours"]["quarters"] == 19
        assert await audit(db, None, now_ms=obs.clock()) == []

        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(await metrics_text(db, summary=overview))
            for s in family.samples
        }
        assert samples[("coopnet_pools", (("state", "delivered"),))] == 1
        assert samples[("coopnet_pool_saved_cents_total", ())] == 100
        assert samples[("coopnet_hours_moved_quarters_total", ())] == 19
        assert samples[("coopnet_hours_ledger_sum", ())] == 0

        async with httpx.AsyncClient() as http:
            api = (await http.get(f"{day.url}/api/pools")).json()
            assert api["total"] == 3 and api["totals"]["saved"] == 100
            hours = (await http.get(f"{day.url}/api/hours")).json()
            assert hours["quarters"] == 19
            assert [r["slug"] for r in hours["neighborhoods"]] == ["ash", "birch", "elm"]


async def csv_rows(http: httpx.AsyncClient, url: str, name: str) -> list[dict[str, str]]:
    r = await http.get(f"{url}/export/{name}.csv")
    assert r.status_code == 200, name
    assert r.headers["content-disposition"] == f'attachment; filename="{name}.csv"'
    return list(csv.DictReader(io.StringIO(r.text)))


async def test_pools_and_hours_exports(tmp_path: Path, nats_server: NatsServer) -> None:
    assert {"pools", "hour_transfers"} <= set(EXPORT_TABLES)
    async with pool_day(tmp_path, nats_server.url) as day, httpx.AsyncClient() as http:
        rows = {p["pool"]: p for p in await csv_rows(http, day.url, "pools")}
        assert set(rows) == {"p-eggs", "p-kale", "p-oil"}
        stored = await day.obs.store.all("SELECT pool, opened_at, closes_at FROM pools")
        for pool, opened_at, closes_at in stored:
            assert ISO.match(rows[pool]["opened_at"]) and ISO.match(rows[pool]["closes_at"])
            assert ms_of(rows[pool]["opened_at"]) == opened_at
            assert ms_of(rows[pool]["closes_at"]) == closes_at
        eggs = rows["p-eggs"]
        assert (eggs["state"], eggs["cases"], eggs["unit_price"]) == ("delivered", "1", "25")
        assert (eggs["supplier"], eggs["single_unit_price"]) == ("oakley", "35")
        assert rows["p-oil"]["supplier_name"] == "Olive Co"

        hours = await csv_rows(http, day.url, "hours")
        assert await csv_rows(http, day.url, "hour_transfers") == hours  # the same table
        assert sorted((h["author"], h["to_slug"], int(h["quarters"])) for h in hours) == sorted(
            TRANSFERS
        )
        at = dict(await day.obs.store.all("SELECT author, at FROM hour_transfers"))
        assert all(ISO.match(h["at"]) and ms_of(h["at"]) == at[h["author"]] for h in hours)

        settled = await csv_rows(http, day.url, "pool_settlements")
        assert ("elm", "oakley", "250") in {(s["payer"], s["payee"], s["amount"]) for s in settled}
        assert (await http.get(f"{day.url}/export/time_entries.csv")).status_code == 404
