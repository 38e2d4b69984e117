"""The demo's co-ops at market: a small realistic catalogue, offers, needs and traders.

Each neighborhood offers a few things it produces and needs a few it does not; its traders
propose trades against other co-ops' open offers, restock what sold and, when in debt, offer
what others need. Every node runs the automatic trading policy, so proposals are answered,
shipped, received and settled without anyone watching. `Economy` steers every balance back
toward zero, so trading never stalls at a credit limit.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import aiosqlite
import anyio

from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store import now_ms
from coopnet.node.engine.store_io import fetch_all, fetch_one
from coopnet.node.market import projection as market
from coopnet.node.market.api import all_offers
from coopnet.node.runtime import Node
from coopnet.protocol import InvalidEvent
from coopnet.protocol.ledger import breaches
from coopnet.protocol.offers import NeedPosted, Offer, OfferPosted, OfferRevised, offer_step

log = logging.getLogger("coopnet.demo")
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
STOCK = {item: quantity for item, _, _, quantity, _, _ in CATALOGUE}
TRADE_SHARE_PERCENT = 6  # one trade's total is at most 6 % of the credit limit
COMFORT_PERCENT = 60  # a buyer keeps balance minus open trades above -60 % of the limit
DEBT_PERCENT = 20  # below -20 % of the limit a co-op offers more of what others need
DEBT_LEAN = 0.3  # leaning this far into debt, a co-op restocks twice as much
MAX_OFFERS = 6  # open offers a co-op keeps at most


async def open_market(node: Node, rng: random.Random) -> int:
    """Post 3 offers of this co-op's own production and 2 needs; return offers posted."""
    await node.ready.wait()
    picks = rng.sample(CATALOGUE, 5)
    now = now_ms()
    for i, pick in enumerate(picks[:3]):
        await _post_offer(node, f"{node.slug}-o{i + 1}", pick, rng)
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


async def _post_offer(
    node: Node, offer: str, pick: tuple[str, str, str, int, int, int], rng: random.Random
) -> None:
    item, category, unit, qty, price, min_order = pick
    await node.post(
        OfferPosted(
            offer=offer,
            item=item,
            category=category,  # type: ignore[arg-type]
            quantity=qty,
            unit=unit,  # type: ignore[arg-type]
            unit_price=price,
            min_order=min_order,
            available_until=now_ms() + 7 * DAY_MS,
            delivery=rng.choice(("pickup", "delivery", "either")),
            area=node.config.area,
        )
    )


class Economy:
    """How one co-op leans toward a zero balance, from the federation's ledger (pure).

    A mutual-credit network is steered this way: a co-op in debt (negative balance) buys
    less, stocks more and is preferred by buyers; one in surplus buys more. So every
    balance reverts toward zero, every co-op keeps buying and selling, and none comes near
    its credit limit. Amounts are credit cents; `limit` is the federation's credit limit.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.scale = max(1, limit // 4)  # the balance (cents) at which a co-op leans hard

    def lean(self, balance: int) -> float:
        """-1 (deep in debt) … 0 (balanced) … +1 (in surplus), from a balance in cents."""
        return math.tanh(balance / self.scale)

    def buy_chance(self, balance: int) -> float:
        """The chance a co-op buys when its buyers look at the market: 0.1 … 0.9."""
        return 0.5 + 0.4 * self.lean(balance)

    def seller_weight(self, balance: int) -> float:
        """How much buyers prefer this seller: about 7 times deep in debt, 1/7 in surplus."""
        return math.exp(-2.0 * self.lean(balance))

    def budget(self) -> int:
        """The most a buyer spends on one trade (cents): a small share of the limit."""
        return self.limit * TRADE_SHARE_PERCENT // 100

    def may_spend(self, balance: int, committed: int, total: int) -> bool:
        """Whether a buyer spends `total` (cents), keeping its balance minus its open
        commitments above its comfort floor, well inside the credit limit."""
        return balance - committed - total >= -self.limit * COMFORT_PERCENT // 100

    def stock(self, item: str, balance: int) -> int:
        """How much of a catalogue `item` a co-op restocks: twice as much when in debt."""
        base = STOCK.get(item, 1)
        return base * 2 if self.lean(balance) < -DEBT_LEAN else base

    def choose(
        self,
        offers: Sequence[Offer],
        ledger: Mapping[str, int],
        wanted: set[str],
        rng: random.Random,
    ) -> Offer | None:
        """An offer to buy from: a seller weighted by its debt, then one of its offers,
        three times likelier if its item is among what the buyer needs (`wanted`)."""
        sellers = sorted({o.author for o in offers})
        if not sellers:
            return None
        weights = [self.seller_weight(ledger.get(s, 0)) for s in sellers]
        seller = rng.choices(sellers, weights)[0]
        theirs = [o for o in offers if o.author == seller]
        return rng.choices(theirs, [3.0 if o.item in wanted else 1.0 for o in theirs])[0]

    def order(self, offer: Offer, rng: random.Random) -> int | None:
        """A quantity to propose, its total within `budget()`; None if the offer cannot
        cover a minimum order within it."""
        room = min(offer.remaining, self.budget() // max(1, offer.unit_price))
        if room < offer.min_order:
            return None
        return rng.randint(offer.min_order, room)


async def trader(
    node: Node, rng: random.Random, rate_per_s: float, stop: anyio.Event
) -> dict[str, int]:
    """The co-op at market until `stop`: about `rate_per_s` times a second it restocks what
    sold, and maybe buys from another co-op (see `Economy`). Returns counts of what it did:
    `proposals`, `restocks` and `offers` (new offers posted while in debt)."""
    done = {"proposals": 0, "restocks": 0, "offers": 0}
    economy = Economy(node.credit_limit)
    await node.ready.wait()
    while not stop.is_set():
        with anyio.move_on_after(rng.expovariate(rate_per_s)):
            await stop.wait()
        if stop.is_set():
            break
        ledger = await market.balances(node.store.db)
        balance = ledger.get(node.slug, 0)
        offers = await all_offers(node, open_only=False)
        try:
            done["restocks"] += await restock(node, economy, offers, balance)
            if balance < -economy.limit * DEBT_PERCENT // 100:
                done["offers"] += await offer_what_others_need(node, offers, rng)
        except (Refused, InvalidEvent) as exc:
            log.debug("%s: restocking refused: %s", node.slug, exc)
        if rng.random() >= economy.buy_chance(balance):
            continue
        if await buy_once(node, economy, ledger, rng):
            done["proposals"] += 1
    return done


async def buy_once(
    node: Node, economy: Economy, ledger: Mapping[str, int], rng: random.Random
) -> bool:
    """Propose one trade against another co-op's open offer; True if one was signed."""
    now = now_ms()
    offers = [
        o
        for o in await all_offers(node, open_only=True)
        if o.author != node.slug and o.remaining >= o.min_order
    ]
    wanted = {
        str(r[0])
        for r in await fetch_all(
            node.store.db,
            "SELECT item FROM needs WHERE author = ? AND state = 'open'",
            (node.slug,),
        )
    }
    o = economy.choose(offers, ledger, wanted, rng)
    quantity = economy.order(o, rng) if o is not None else None
    if o is None or quantity is None:
        return False
    committed = (await market.commitments(node.store.db, now)).get(node.slug, 0)
    if not economy.may_spend(ledger.get(node.slug, 0), committed, quantity * o.unit_price):
        return False
    try:
        await node.trading.propose(o.author, o.offer, quantity, expires_in_s=120)
    except Refused:
        return False  # sold out meanwhile: a resident would move on
    return True


async def restock(node: Node, economy: Economy, offers: Sequence[Offer], balance: int) -> int:
    """Restock this co-op's open offers that are running out (below a quarter of their
    stock) and extend those about to expire; return how many it revised."""
    revised = 0
    for o in offers:
        if o.author != node.slug or o.state != "open":
            continue
        stock = economy.stock(o.item, balance)
        low = o.remaining < max(o.min_order, stock // 4)
        ending = o.available_until < now_ms() + DAY_MS
        if not (low or ending):
            continue
        async with node.trading.lock:  # decided in the seller's log order, as acceptances
            current = await market.load_offer(node.store.db, node.slug, o.offer)
            if current is None or current.state != "open":
                continue
            body = OfferRevised(
                offer=o.offer,
                quantity=current.reserved + stock if low else None,
                available_until=now_ms() + 7 * DAY_MS if ending else None,
            )
            offer_step(current, node.slug, body)  # the receivers' rule, before signing
            await node.post(body)
        revised += 1
    return revised


async def offer_what_others_need(node: Node, offers: Sequence[Offer], rng: random.Random) -> int:
    """A co-op in debt posts an offer for an item another co-op needs (or, failing that,
    any catalogue item) that it does not offer yet, up to MAX_OFFERS; returns 1 if it did."""
    mine = [o for o in offers if o.author == node.slug]
    if sum(1 for o in mine if o.state == "open") >= MAX_OFFERS:
        return 0
    offered = {o.item for o in mine}
    needed = {
        str(r[0])
        for r in await fetch_all(
            node.store.db,
            "SELECT item FROM needs WHERE author != ? AND state = 'open'",
            (node.slug,),
        )
    }
    fresh = [c for c in CATALOGUE if c[0] not in offered]
    if not fresh:
        return 0
    wanted = [c for c in fresh if c[0] in needed]
    await _post_offer(node, f"{node.slug}-o{len(mine) + 1}", rng.choice(wanted or fresh), rng)
    return 1


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
        "trades_by_neighborhood": await trades_by_neighborhood(db, [n.slug for n in nodes]),
    }


async def trades_by_neighborhood(
    db: aiosqlite.Connection, slugs: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Per neighborhood, its settled trades as buyer (`bought`) and seller (`sold`), what it
    paid and was paid for them (`paid`, `earned`, cents) and its `balance` (cents)."""
    out = {s: {"bought": 0, "sold": 0, "paid": 0, "earned": 0, "balance": 0} for s in slugs}
    sql = """SELECT party, role, COUNT(*), SUM(total) FROM (
                 SELECT buyer AS party, 'bought' AS role, total FROM trades
                 WHERE state = 'settled'
                 UNION ALL
                 SELECT seller, 'sold', total FROM trades WHERE state = 'settled')
             GROUP BY party, role"""
    for party, role, count, total in await fetch_all(db, sql):
        row = out.setdefault(
            str(party), {"bought": 0, "sold": 0, "paid": 0, "earned": 0, "balance": 0}
        )
        row[str(role)] = int(count)
        row["paid" if role == "bought" else "earned"] = int(total)
    for row in out.values():
        row["balance"] = row["earned"] - row["paid"]
    return out


async def trades_by_window(
    db: aiosqlite.Connection,
    slugs: Sequence[str],
    start_ms: int,
    stop_ms: int,
    window_ms: int,
    windows: int = 4,
) -> tuple[list[int], dict[str, dict[str, list[int]]]]:
    """Trades settled in each of the last `windows` whole windows of trading (see
    `settled_by_window`), in all, and per neighborhood as buyer (`bought_by_window`) and as
    seller (`sold_by_window`). A trade settles when its buyer signs `trade.received`, at
    that event's time (milliseconds since the Unix epoch, by the buyer's clock)."""
    sql = """SELECT e.at, t.buyer, t.seller FROM trade_events e JOIN trades t
               ON t.buyer = e.buyer AND t.trade = e.trade
             WHERE t.state = 'settled' AND e.kind = 'trade.received'"""
    done = [(int(at), str(b), str(s)) for at, b, s in await fetch_all(db, sql)]

    def count(times: list[int]) -> list[int]:
        return settled_by_window(times, start_ms, stop_ms, window_ms, windows)

    per = {
        slug: {
            "bought_by_window": count([at for at, b, _ in done if b == slug]),
            "sold_by_window": count([at for at, _, s in done if s == slug]),
        }
        for slug in slugs
    }
    return count([at for at, _, _ in done]), per


def settled_by_window(
    times_ms: Sequence[int], start_ms: int, stop_ms: int, window_ms: int, windows: int = 4
) -> list[int]:
    """Trades settled in each of the last `windows` whole windows of `window_ms` between
    `start_ms` and `stop_ms` (windows counted from `start_ms`), oldest first; fewer entries
    when the run held fewer whole windows."""
    whole = max(0, (stop_ms - start_ms) // window_ms)
    first = max(0, whole - windows)
    counts = [0] * (whole - first)
    for at in times_ms:
        k = (at - start_ms) // window_ms
        if first <= k < whole:
            counts[k - first] += 1
    return counts
