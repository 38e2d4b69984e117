"""What a neighborhood still owes or is owed before it retires (docs/PROTOCOL.md §16.5).

A neighborhood settles its balance to zero, and closes its open trades, before it retires:
its own node refuses to sign `membership.retired` otherwise (`balance_not_settled`), and an
observer's audit flags a retired member that did not (`retired_unsettled`, §17).

Both compute it the same way, from the log alone: every trade statement held (the engine's
`events` table) folded with the protocol's own rule (`protocol.trades.fold_trade`, §11),
every pool's with `protocol.pools.fold_pool` (§19: delivered pools' settlements),
and the acceptances the seller's offer fold refused (`domain_rejections`), exactly as the
market projection and the audit fold them. Membership reads no table of the market's, so
the two domains stay independent (docs/ARCHITECTURE.md). Amounts are credit cents.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Collection

import aiosqlite
import msgspec

from coopnet.node.engine.money import Currency, PlainCurrency, format_amount
from coopnet.node.engine.store_io import run_in_db, select_all
from coopnet.protocol import decode_unsealed
from coopnet.protocol.pools import PoolStatement, PoolView, fold_pool, pool_key
from coopnet.protocol.trades import OPEN_STATES, Statement, TradeView, fold_trade, trade_key


class OpenTrade(msgspec.Struct, frozen=True, kw_only=True):
    """A trade of the neighborhood's that is not closed yet (§11)."""

    buyer: str
    trade: str
    seller: str
    state: str  # one of protocol.trades.OPEN_STATES
    total: int  # credit cents
    proposal: str  # the id of its `trade.proposed`, hex


class Unsettled(msgspec.Struct, frozen=True, kw_only=True):
    """A neighborhood's balance (credit cents, settled trades, §12) and its open trades."""

    slug: str
    balance: int = 0
    open_trades: tuple[OpenTrade, ...] = ()
    # Pools it takes part in that are not over (§19): "organizer/pool", sorted. It organizes
    # one that is neither delivered nor cancelled, or delivered with a participant's receipt
    # still pending; or its commitment still holds credit.
    open_pools: tuple[str, ...] = ()

    @property
    def settled(self) -> bool:
        """Whether it may retire: balance zero, no open trade and no open pool."""
        return self.balance == 0 and not self.open_trades and not self.open_pools

    def describe(self, currency: Currency | None = None) -> str:
        """The balance and the open trades, in words; the balance in `currency`'s units (the
        node's: `currency_of(config)`), as "4.50 credits (450 cents)", "450 hours (450
        cents)" with 0 minor units; with no currency given, a bare 2-decimal "4.50"."""
        parts = [f"its balance is {_units(self.balance, currency)} ({self.balance} cents)"]
        if self.open_trades:
            shown = ", ".join(
                f"{t.buyer}/{t.trade} with {t.seller if t.buyer == self.slug else t.buyer}"
                f" ({t.state}, {t.total} cents)"
                for t in self.open_trades[:5]
            )
            more = f" and {len(self.open_trades) - 5} more" if len(self.open_trades) > 5 else ""
            parts.append(f"{len(self.open_trades)} trade(s) are open: {shown}{more}")
        if self.open_pools:
            more = f" and {len(self.open_pools) - 5} more" if len(self.open_pools) > 5 else ""
            shown = ", ".join(self.open_pools[:5])
            parts.append(f"{len(self.open_pools)} pool(s) are open: {shown}{more}")
        return "; ".join(parts)

    def how_to_settle(self) -> str:
        """What the neighborhood does to reach a zero balance and no open trade."""
        how = []
        if self.balance < 0:
            how.append("sell to members until the balance is 0 (it is in debt)")
        elif self.balance > 0:
            how.append("buy from members until the balance is 0 (it is in credit)")
        if self.open_trades:
            how.append("finish, decline or cancel the open trades")
        if self.open_pools:
            how.append(
                "withdraw from or receive the open pools, or (as organizer) deliver or cancel"
                " them and wait for every participant's receipt"
            )
        return ", and ".join(how) or "nothing"


def _units(cents: int, currency: Currency | None) -> str:
    """`cents` (integer minor units) in `currency`'s units for people: with `minor_units` 0,
    450 is "450 hours", with 2 "4.50 credits" or "£4.50" (node/engine/money.py); with None,
    a bare 2-decimal "4.50" (what describe() said before it took the node's currency)."""
    return format_amount(cents, currency if currency is not None else PlainCurrency(name=""))


def unsettled_in(
    conn: sqlite3.Connection, slugs: Collection[str], now_ms: int
) -> dict[str, Unsettled]:
    """For each of `slugs`: its balance and open trades, folded from the log held in `conn`
    (a node's or an observer's store). A proposal past its `expires_at` is not open (§11).
    Reads every trade statement of the log once; call it where that is rare (retiring,
    and an audit that holds retirements)."""
    wanted = set(slugs)
    if not wanted:
        return {}
    rows = select_all(conn, "SELECT wire FROM events WHERE kind LIKE 'trade.%' ORDER BY pos")
    grouped: dict[tuple[str, str], list[Statement]] = defaultdict(list)
    for (wire,) in rows:
        env = decode_unsealed(bytes(wire))  # stored: it passed `unseal` when it came in
        key = trade_key(env.author, env.body)
        if key is not None:
            grouped[key].append(
                Statement(id=env.id, author=env.author, seq=env.seq, at=env.at, body=env.body)
            )
    refused = frozenset(
        bytes(r[0])
        for r in select_all(conn, "SELECT id FROM domain_rejections WHERE kind = 'trade.accepted'")
    )
    balance: dict[str, int] = defaultdict(int)
    open_trades: dict[str, list[OpenTrade]] = defaultdict(list)
    for (buyer, trade), statements in sorted(grouped.items()):
        view = fold_trade(buyer, trade, statements, refused)
        parties = {view.buyer, view.seller} & wanted
        if not parties or not view.seller:
            continue
        if view.state == "settled":
            balance[view.seller] += view.total
            balance[view.buyer] -= view.total
        elif view.state_at(now_ms) in OPEN_STATES:
            for party in parties:
                open_trades[party].append(_open(view, statements))
    open_pools: dict[str, list[str]] = defaultdict(list)
    for pool_view in _pools(conn):
        for payer, payee, cents in pool_view.settlements():
            balance[payer] -= cents
            balance[payee] += cents
        name = f"{pool_view.organizer}/{pool_view.pool}"
        running = pool_view.opened is not None and (
            pool_view.state not in ("delivered", "cancelled") or _receipts_pending(pool_view)
        )
        for party in ({pool_view.organizer} if running else set()) | set(pool_view.holds()):
            open_pools[party].append(name)
    return {
        s: Unsettled(
            slug=s,
            balance=balance[s],
            open_trades=tuple(open_trades[s]),
            open_pools=tuple(sorted(open_pools[s])),
        )
        for s in sorted(wanted)
    }


def _receipts_pending(view: PoolView) -> bool:
    """Whether a delivered pool still waits for a participant's receipt (§19): a share
    above 0, not the organizer's own, whose `pool.received` has not counted. Its organizer
    is to be paid it, so the pool stays open for the organizer until then."""
    return view.state == "delivered" and any(
        s.share > 0 and s.participant != view.organizer and s.participant not in view.received
        for s in view.shares
    )


def _pools(conn: sqlite3.Connection) -> list[PoolView]:
    """Every pool (§19) folded from the log with the protocol's rule
    (`protocol.pools.fold_pool`): its settlements are part of the same credit ledger, and
    its holds are commitments still open."""
    rows = select_all(conn, "SELECT wire FROM events WHERE kind LIKE 'pool.%' ORDER BY pos")
    grouped: dict[tuple[str, str], list[PoolStatement]] = defaultdict(list)
    for (wire,) in rows:
        env = decode_unsealed(bytes(wire))
        key = pool_key(env.author, env.body)
        if key is not None:
            grouped[key].append(
                PoolStatement(id=env.id, author=env.author, seq=env.seq, at=env.at, body=env.body)
            )
    return [
        fold_pool(organizer, pool, statements)
        for (organizer, pool), statements in sorted(grouped.items())
    ]


def _open(view: TradeView, statements: list[Statement]) -> OpenTrade:
    proposal = next(
        s for s in statements if s.author == view.buyer and s.body.kind == "trade.proposed"
    )
    return OpenTrade(
        buyer=view.buyer, trade=view.trade, seller=view.seller, state=view.state,
        total=view.total, proposal=proposal.id.hex(),
    )  # fmt: skip


async def unsettled(
    db: aiosqlite.Connection, slugs: Collection[str], now_ms: int
) -> dict[str, Unsettled]:
    """`unsettled_in` on an open store (one round trip on its connection's thread)."""
    return await run_in_db(db, unsettled_in, slugs, now_ms)
