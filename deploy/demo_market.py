"""The demo's co-ops at market: a small realistic catalogue, offers, needs and buyers.

Each neighborhood offers a few things it produces and needs a few it does not; its buyers
propose trades against other co-ops' open offers. Every node runs the automatic trading
policy, so proposals are answered, shipped, received and settled without anyone watching.
"""

from __future__ import annotations

import random
from typing import Any

import anyio

from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store import now_ms
from coopnet.node.engine.store_io import fetch_all, fetch_one
from coopnet.node.market import projection as market
from coopnet.node.market.api import all_offers
from coopnet.node.runtime import Node
from coopnet.protocol.ledger import breaches
from coopnet.protocol.offers import NeedPosted, OfferPosted

DAY_MS = 24 * 3600 * 1000
# (item, category, unit, quantity, credit cents per unit, minimum order)
CATALOGUE: list[tuple[str, str, str, int, int, int]] = [
    ("tomatoes", "produce", "gram", 40_000, 1, 500),
    ("kale", "produce", "gram", 15_000, 2, 250),
    ("potatoes", "produce", "gram", 80_000, 1, 1000),
    ("sourdough loaves", "bakery", "piece", 60, 450, 1),
    ("rye bread", "bakery", "piece", 40, 380, 1),
    ("eggs", "dairy-eggs", "piece", 240, 35, 6),
    ("goat cheese", "dairy-eggs", "gram", 5_000, 3, 200),
    ("plum jam", "prepared-food", "piece", 50, 550, 1),
    ("pickled beans", "prepared-food", "piece", 30, 600, 1),
    ("bicycle repair", "repair", "minute", 600, 40, 30),
    ("furniture repair", "repair", "minute", 480, 45, 60),
    ("cargo-bike transport", "transport", "minute", 900, 25, 30),
    ("van transport", "transport", "minute", 600, 50, 60),
    ("childcare hours", "care", "minute", 1_200, 30, 60),
    ("eldercare visits", "care", "minute", 900, 30, 60),
]


async def open_market(node: Node, rng: random.Random) -> int:
    """Post 3 offers of this co-op's own production and 2 needs; return offers posted."""
    await node.ready.wait()
    picks = rng.sample(CATALOGUE, 5)
    now = now_ms()
    for i, (item, category, unit, qty, price, min_order) in enumerate(picks[:3]):
        await node.post(
            OfferPosted(
                offer=f"{node.slug}-o{i + 1}",
                item=item,
                category=category,  # type: ignore[arg-type]
                quantity=qty,
                unit=unit,  # type: ignore[arg-type]
                unit_price=price,
                min_order=min_order,
                available_until=now + 7 * DAY_MS,
                delivery=rng.choice(("pickup", "delivery", "either")),
                area=node.config.area,
            )
        )
    for i, (item, category, unit, qty, price, _) in enumerate(picks[3:]):
        await node.post(
            NeedPosted(
                need=f"{node.slug}-n{i + 1}",
                item=item,
                category=category,  # type: ignore[arg-type]
                quantity=qty // 10,
                unit=unit,  # type: ignore[arg-type]
                max_unit_price=price * 2,
                needed_by=now + 3 * DAY_MS,
                area=node.config.area,
            )
        )
    return 3


async def buyer(node: Node, rng: random.Random, rate_per_s: float, stop: anyio.Event) -> int:
    """Propose trades against other co-ops' open offers until `stop`; return proposals."""
    proposals = 0
    await node.ready.wait()
    while not stop.is_set():
        with anyio.move_on_after(rng.expovariate(rate_per_s)):
            await stop.wait()
        if stop.is_set():
            break
        offers = [
            o
            for o in await all_offers(node, open_only=True)
            if o.author != node.slug and o.remaining >= o.min_order
        ]
        if not offers:
            continue
        o = rng.choice(offers)
        most = max(o.min_order, min(o.remaining, o.quantity // 8))
        quantity = rng.randint(o.min_order, most) if most > o.min_order else o.min_order
        try:
            await node.trading.propose(o.author, o.offer, quantity, expires_in_s=120)
            proposals += 1
        except Refused:
            pass  # sold out meanwhile, or over this co-op's credit: a resident would move on
    return proposals


async def market_summary(nodes: list[Node]) -> dict[str, Any]:
    """Market figures as the first node sees them (every node holds the same, once converged)."""
    db = nodes[0].store.db
    ledger = await market.balances(db)
    committed = await market.commitments(db, now_ms())
    limit = nodes[0].credit_limit

    async def one(sql: str) -> int:
        row = await fetch_one(db, sql)
        return int(row[0]) if row and row[0] is not None else 0

    oversold = await one(
        """SELECT COUNT(*) FROM offers o JOIN (
               SELECT seller, offer, SUM(quantity) AS q FROM reservations
               WHERE released = 0 GROUP BY seller, offer) r
           ON r.seller = o.author AND r.offer = o.offer WHERE r.q > o.quantity"""
    )
    by_state: dict[str, int] = {}
    for state, count in await fetch_all(db, "SELECT state, COUNT(*) FROM trades GROUP BY state"):
        by_state[str(state)] = int(count)
    return {
        "offers_posted": await one("SELECT COUNT(*) FROM offers"),
        "needs_posted": await one("SELECT COUNT(*) FROM needs"),
        "trades_proposed": sum(by_state.values()),
        "trades_settled": by_state.get("settled", 0),
        "trades_by_state": by_state,
        "credit_moved": await one("SELECT SUM(total) FROM trades WHERE state = 'settled'"),
        "ledger": ledger,
        "ledger_sum": sum(ledger.values()),
        "oversold_offers": oversold,
        "credit_limit_breaches": len(breaches(ledger, committed, limit)),
    }
