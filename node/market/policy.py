"""An optional per-node trading policy: answers trades automatically, within the rules.

With `auto_trade = true` in node.toml, the node accepts proposals its offers cover at the
offer's own price or more (and declines the rest, saying why), ships what it accepted,
confirms receipt of what was shipped to it, and consents to cancellations. Every step goes
through `Trading`, so the policy can do nothing a resident could not. An unattended node
and the demo trade this way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anyio

from coopnet.node.engine.context import NodeContext
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store import now_ms
from coopnet.node.engine.store_io import fetch_all
from coopnet.node.market import projection as market
from coopnet.node.market.trading import Trading
from coopnet.protocol import Envelope
from coopnet.protocol.offers import below_asking
from coopnet.protocol.trades import trade_key

log = logging.getLogger("coopnet.policy")
SWEEP_S = 5.0


class Policy:
    """The `auto_trade` policy of one node, taking each step through `trading`."""

    def __init__(self, node: NodeContext, trading: Trading) -> None:
        self.node = node
        self.trading = trading
        self.pending: set[tuple[str, str]] = set()
        self._wake = anyio.Event()

    def notice(self, events: Sequence[Envelope]) -> None:
        """Called after each commit: remember the trades that moved."""
        for env in events:
            key = trade_key(env.author, env.body)
            if key is not None:
                self.pending.add(key)
        if self.pending:
            self._wake.set()

    async def run(self) -> None:
        await self.node.ready.wait()
        await self._sweep()
        while True:
            with anyio.move_on_after(SWEEP_S):
                await self._wake.wait()
            self._wake = anyio.Event()
            if not self.pending:
                await self._sweep()
            keys, self.pending = sorted(self.pending), set()
            for buyer, trade in keys:
                await self.step(buyer, trade)

    async def _sweep(self) -> None:
        me = self.node.slug
        rows = await fetch_all(
            self.node.store.db,
            "SELECT buyer, trade FROM trades WHERE (buyer = ? OR seller = ?)"
            " AND state IN ('proposed', 'accepted', 'shipped', 'cancel_requested', 'cancelled')",
            (me, me),
        )
        for buyer, trade in rows:
            await self.step(str(buyer), str(trade))

    async def step(self, buyer: str, trade: str) -> None:
        """Take the next step on one trade, if this node's policy takes one."""
        t, offer = await market.trade_and_offer(self.node.store.reader, buyer, trade)
        if t is None:
            return
        me, tr = self.node.slug, self.trading
        try:
            if t["seller"] == me:
                if t["state"] == "proposed" and now_ms() <= t["expires_at"]:
                    # The policy accepts only the offer's own terms; a lower price is for a
                    # resident to accept by hand (PROTOCOL.md §11).
                    cheaper = below_asking(offer, t["unit_price"]) if offer else None
                    try:
                        if cheaper is not None:
                            raise Refused("below_asking", cheaper)
                        await tr.accept(buyer, trade)
                    except Refused as exc:
                        await tr.decline(buyer, trade, reason=exc.message[:280])
                elif t["state"] == "accepted":
                    await tr.ship(buyer, trade)
                elif t["buyer_state"] == "cancelled" and t["seller_state"] == "accepted":
                    await tr.cancel(buyer, trade, reason="buyer cancelled")
            elif t["buyer"] == me:
                if t["state"] == "shipped":
                    await tr.receive(buyer, trade)
                elif t["state"] == "cancel_requested":
                    await tr.cancel(buyer, trade, reason="seller asked to cancel")
        except Refused as exc:  # the trade moved on meanwhile; the next notice decides again
            log.debug("%s: policy step on %s/%s refused: %s", me, buyer, trade, exc.message)
