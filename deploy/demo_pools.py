"""The demo's co-ops pool their purchases (docs/PROTOCOL.md §19).

Now and then each co-op opens a pool: for another co-op's offer (a member supplier,
bought by the case below its unit price) or for a wholesaler outside the federation
(`WHOLESALE`). The others, and often the organizer itself, commit a quantity and a
tolerance within their trade budget (the market's `Economy`). The organizer's node closes
the pool at its closing time (`POOL_OPEN_S` in the demo), or as soon as it is full; a pool
that leaves a case open turns to box fill first (`BOX_FILL_S`), when the participants it
counted raise their quantities to fill that case. Then the organizer records delivery
(paying a member supplier) and each participant confirms its share (paying the
organizer), so credit moves and the ledger still sums to zero.

When the demo stops, no pool is opened or joined any more: each organizer closes its
pools still open, and delivers, and each participant confirms, so nothing is left in
flight when the demo reports. Amounts are credit cents, quantities the pool's units.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Any

import aiosqlite
import anyio

from coopnet.deploy.demo_market import Economy
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store import now_ms
from coopnet.node.engine.store_io import fetch_all
from coopnet.node.market import projection as market
from coopnet.node.market.api import all_offers
from coopnet.node.pools import projection as pools
from coopnet.node.runtime import Node
from coopnet.protocol import InvalidEvent
from coopnet.protocol.offers import Offer

log = logging.getLogger("coopnet.demo")

POOL_OPEN_S = 8.0  # a demo pool takes commitments this long (closes_at)
BOX_FILL_S = 3  # and a case left open is filled this long (node.toml [pools] box_fill_s)
PAUSE_S = (2.0, 6.0)  # an organizer waits this long before it opens its next pool
FINISH_S = 30.0  # at the end, how long co-ops take to finish the pools in flight
CASE_CENTS = 2_400  # a member supplier's case costs about this much
WHOLESALE_PERCENT = 85  # a member supplier sells by the case at this share of its price
# Goods a co-op pools from another co-op's offer (services are not bought by the case).
POOLED_CATEGORIES = ("produce", "bakery", "dairy-eggs", "prepared-food")
# (item, unit, case size, cents per unit in the pool, single-unit cents, wholesaler)
WHOLESALE: list[tuple[str, str, int, int, int, str]] = [
    ("rye flour", "kilogram", 25, 90, 140, "Valley Mill"),
    ("olive oil", "litre", 6, 600, 820, "Valle Olives"),
    ("oat milk", "litre", 12, 150, 220, "North Oats"),
    ("lentils", "kilogram", 20, 120, 190, "Pulse Farm"),
    ("canned tomatoes", "piece", 24, 80, 130, "Sud Conserve"),
    ("coffee beans", "kilogram", 4, 900, 1_300, "Roastery Kollektiv"),
]
IN_FLIGHT = ("open", "box_fill", "closing", "closed")  # an organizer still has a step to take


async def pooler(
    node: Node,
    rng: random.Random,
    rate_per_s: float,
    stop: anyio.Event,
    *,
    open_s: float = POOL_OPEN_S,
) -> dict[str, int]:
    """One co-op's pooled purchases until `stop`, then until its pools in flight are done
    (at most FINISH_S). About `rate_per_s` times a second it looks at the pools: delivers
    its own closed ones, confirms its shares of delivered ones, opens a pool (closing
    `open_s` seconds later) when it has none in flight and its pause is over, commits to
    others' open pools and raises to fill a case in box fill. Returns counts of what it
    signed: `opened`, `committed`, `raised`, `delivered`, `received`."""
    done = {"opened": 0, "committed": 0, "raised": 0, "delivered": 0, "received": 0}
    economy = Economy(node.credit_limit)
    looked: set[tuple[str, str]] = set()  # pools it has decided on (joined or passed)
    await node.ready.wait()
    next_open = now_ms() + round(rng.uniform(0.5, 2.0) * 1000)
    while not stop.is_set():
        with anyio.move_on_after(rng.expovariate(rate_per_s)):
            await stop.wait()
        if stop.is_set():
            break
        try:
            await _finish_steps(node, done)
            if now_ms() >= next_open and not await _organizing(node):
                await _open_pool(node, rng, await _organized(node), open_s)
                done["opened"] += 1
                pause = rng.uniform(*PAUSE_S) + open_s + BOX_FILL_S
                next_open = now_ms() + round(pause * 1000)
            await _join_pools(node, economy, rng, looked, done)
        except (Refused, InvalidEvent) as exc:  # the pool moved on meanwhile: look again
            log.debug("%s: pool step refused: %s", node.slug, exc)
    with anyio.move_on_after(FINISH_S):
        while await _in_flight(node):
            try:
                for p in await pools.all_pools(node.store.reader):
                    if p["organizer"] == node.slug and p["state"] in ("open", "box_fill"):
                        await node.pooling.close(p["pool"])  # the demo ends: close now
                await _finish_steps(node, done)
            except (Refused, InvalidEvent) as exc:
                log.debug("%s: pool step refused: %s", node.slug, exc)
            await anyio.sleep(0.2)  # the others' receipts and closes arrive over the bus
    return done


async def _organized(node: Node) -> int:
    """How many pools this co-op has opened (so far as its store holds, a demo run again
    in the same directory included)."""
    return sum(1 for p in await pools.all_pools(node.store.reader) if p["organizer"] == node.slug)


async def _organizing(node: Node) -> bool:
    """Whether this co-op has a pool of its own still taking a step."""
    return any(
        p["organizer"] == node.slug and p["state"] in IN_FLIGHT
        for p in await pools.all_pools(node.store.reader)
    )


async def _in_flight(node: Node) -> bool:
    """Whether this co-op may still have a step to take: a pool of its own not yet
    delivered (nor cancelled), a pool it committed to not yet delivered (its share may
    come), or a share of a delivered pool it has not confirmed."""
    if await _organizing(node) or await _to_receive(node):
        return True
    rows = await fetch_all(
        node.store.reader,
        "SELECT 1 FROM pools p JOIN pool_shares s"
        " ON s.organizer = p.organizer AND s.pool = p.pool"
        f" WHERE s.participant = ? AND s.quantity > 0 AND p.state IN {IN_FLIGHT} LIMIT 1",
        (node.slug,),
    )
    return bool(rows)


async def _to_receive(node: Node) -> list[tuple[str, str]]:
    """Delivered pools in which this co-op has a share it has not confirmed yet."""
    rows = await fetch_all(
        node.store.reader,
        "SELECT p.organizer, p.pool FROM pools p JOIN pool_shares s"
        " ON s.organizer = p.organizer AND s.pool = p.pool"
        " WHERE p.state = 'delivered' AND s.participant = ? AND s.share > 0"
        " AND s.received = 0 AND p.organizer != ?",
        (node.slug, node.slug),
    )
    return [(str(r[0]), str(r[1])) for r in rows]


async def _finish_steps(node: Node, done: dict[str, int]) -> None:
    """Deliver this co-op's closed pools (the cases came in) and confirm its shares of
    delivered ones."""
    for p in await pools.all_pools(node.store.reader, "closed"):
        if p["organizer"] == node.slug:
            await node.pooling.deliver(p["pool"])
            done["delivered"] += 1
    for organizer, pool in await _to_receive(node):
        await node.pooling.receive(organizer, pool)
        done["received"] += 1


async def _open_pool(node: Node, rng: random.Random, k: int, open_s: float) -> None:
    """Open this co-op's next pool, having opened `k` before: every other one from a member
    supplier's offer (when another co-op offers goods), the others from a wholesaler; the
    organizer often commits to its own pool at once."""
    pool = f"{node.slug}-p{k + 1}"
    closes_at = now_ms() + round(open_s * 1000)
    max_cases = rng.choice((0, 0, 2, 3))
    offers = [o for o in await all_offers(node, open_only=True) if _poolable(o, node.slug)]
    if k % 2 == 0 and offers:
        o = rng.choice(offers)
        unit_price = max(1, o.unit_price * WHOLESALE_PERCENT // 100)
        case_size = max(2, CASE_CENTS // unit_price)
        await node.pooling.open(
            pool=pool, item=o.item, unit=o.unit, case_size=case_size, unit_price=unit_price,
            closes_at=closes_at, max_cases=max_cases, supplier=o.author, supplier_offer=o.offer,
        )  # fmt: skip
    else:
        item, unit, case_size, unit_price, single, wholesaler = rng.choice(WHOLESALE)
        await node.pooling.open(
            pool=pool, item=item, unit=unit, case_size=case_size, unit_price=unit_price,
            closes_at=closes_at, max_cases=max_cases, supplier_name=wholesaler,
            single_unit_price=single,
        )  # fmt: skip
    if rng.random() < 0.7:
        opened = await pools.load_pool(node.store.reader, node.slug, pool)
        if opened is not None:
            q, t = _ask(opened["case_size"], rng)
            await node.pooling.commit(node.slug, pool, q, t)


def _poolable(o: Offer, me: str) -> bool:
    """Another co-op's goods offer whose price leaves room for a wholesale discount."""
    return o.author != me and o.category in POOLED_CATEGORIES and o.unit_price >= 20


def _ask(case_size: int, rng: random.Random) -> tuple[int, int]:
    """A quantity (a fifth to a half of a case) and a tolerance (up to a fifth of one)."""
    quantity = rng.randint(max(1, case_size // 5), max(1, case_size // 2))
    return quantity, rng.randint(0, case_size // 5)


async def _join_pools(
    node: Node,
    economy: Economy,
    rng: random.Random,
    looked: set[tuple[str, str]],
    done: dict[str, int],
) -> None:
    """Commit to other co-ops' open pools (about two in three, each looked at once), within
    the trade budget and the buyer's comfort; raise to fill the open case of a pool in box
    fill that counted this co-op."""
    now = now_ms()
    for p in await pools.all_pools(node.store.reader):
        key = (p["organizer"], p["pool"])
        if p["state"] == "box_fill" and key not in looked:
            continue  # it did not join while the pool was open
        if p["state"] == "box_fill" and await _fill_case(node, p, rng):
            done["raised"] += 1
        if p["state"] != "open" or key in looked or p["organizer"] == node.slug:
            continue
        looked.add(key)
        if rng.random() >= 2 / 3:
            continue
        quantity, tolerance = _ask(p["case_size"], rng)
        room = economy.budget() // max(1, p["unit_price"])  # units within one trade's budget
        quantity, tolerance = min(quantity, room), min(tolerance, max(0, room - quantity))
        total = (quantity + tolerance) * p["unit_price"]
        ledger = await market.balances(node.store.reader)
        committed = (await market.commitments(node.store.reader, now)).get(node.slug, 0)
        if quantity < 1 or not economy.may_spend(ledger.get(node.slug, 0), committed, total):
            continue
        await node.pooling.commit(p["organizer"], p["pool"], quantity, tolerance)
        done["committed"] += 1


async def _fill_case(node: Node, p: dict[str, Any], rng: random.Random) -> bool:
    """In box fill, raise this co-op's quantity by some of the units the open case lacks
    (if the box fill counted it, and the case is not full yet); True if it did."""
    db = node.store.reader
    _, named = await pools.box_fill(db, p["organizer"], p["pool"])
    held = await pools.commitments(db, p["organizer"], p["pool"])
    base = {c.participant: c for c in held if c.id in named}
    if node.slug not in base or rng.random() >= 0.5:
        return False
    latest = {c.participant: c for c in held if c.participant in base}  # by seq: the last
    case = p["case_size"]
    q0 = sum(c.quantity for c in base.values())
    room = case * -(-q0 // case) - sum(c.quantity for c in latest.values())
    if room <= 0:
        return False
    mine = latest[node.slug]
    await node.pooling.commit(
        p["organizer"], p["pool"], mine.quantity + rng.randint(1, room), mine.tolerance
    )
    return True


async def pool_summary(db: aiosqlite.Connection, slugs: Sequence[str]) -> dict[str, Any]:
    """Pools as one node holds them (every node holds the same once converged):

    - `pools_opened`, and by the pool's state: `pools_closed` (closed with cases bought,
      delivered or not), `pools_delivered`, `pools_cancelled` (by the organizer, or closed
      below their minimum); `pools_by_state`; `pool_cases` bought;
    - `pool_credit_moved`: credit cents the pool settlements moved; `pool_ledger_sum`: the
      sum over neighborhoods of what those settlements paid them less what they paid (0:
      the entries are part of the credit ledger, `ledger_sum`);
    - `pools_by_neighborhood`: per slug, pools it `organized` and `joined` (committed to
      someone else's), and what the settlements made it `paid`, `earned` and its
      `balance` from them (cents).
    """
    by_state: dict[str, int] = {}
    for state, count in await fetch_all(db, "SELECT state, COUNT(*) FROM pools GROUP BY state"):
        by_state[str(state)] = int(count)
    (cases,), *_ = await fetch_all(
        db, "SELECT COALESCE(SUM(cases), 0) FROM pools WHERE state IN ('closed', 'delivered')"
    )
    hoods = {slug: _empty() for slug in slugs}
    for organizer, count in await fetch_all(
        db, "SELECT organizer, COUNT(*) FROM pools GROUP BY organizer"
    ):
        hoods.setdefault(str(organizer), _empty())["organized"] = int(count)
    for participant, count in await fetch_all(
        db,
        "SELECT participant, COUNT(*) FROM pool_shares WHERE participant != organizer"
        " AND quantity > 0 GROUP BY participant",
    ):
        hoods.setdefault(str(participant), _empty())["joined"] = int(count)
    moved = 0
    for payer, payee, amount in await fetch_all(
        db, "SELECT payer, payee, amount FROM pool_settlements"
    ):
        moved += int(amount)
        hoods.setdefault(str(payer), _empty())["paid"] += int(amount)
        hoods.setdefault(str(payee), _empty())["earned"] += int(amount)
    for row in hoods.values():
        row["balance"] = row["earned"] - row["paid"]
    return {
        "pools_opened": sum(by_state.values()),
        "pools_closed": by_state.get("closed", 0) + by_state.get("delivered", 0),
        "pools_delivered": by_state.get("delivered", 0),
        "pools_cancelled": by_state.get("cancelled", 0),
        "pools_by_state": by_state,
        "pool_cases": int(cases),
        "pool_credit_moved": moved,
        "pool_ledger_sum": sum(row["balance"] for row in hoods.values()),
        "pools_by_neighborhood": hoods,
    }


def _empty() -> dict[str, int]:
    return {"organized": 0, "joined": 0, "paid": 0, "earned": 0, "balance": 0}


async def wait_pools_done(nodes: Sequence[Node], within: float = FINISH_S) -> None:
    """Until no node holds a pool in flight (open, box fill, closing, closed, or delivered
    with a share not confirmed), so nobody signs a pool step after the demo reports."""
    with anyio.move_on_after(within):
        while True:
            busy = [await _in_flight(n) for n in nodes]
            if not any(busy):
                return
            await anyio.sleep(0.1)
