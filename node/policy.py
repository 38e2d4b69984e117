"""An optional per-node trading policy: answers trades automatically, within the rules.

With `auto_trade = true` in node.toml, the node accepts proposals its offers cover (and
declines the rest), ships what it accepted, confirms receipt of what was shipped to it, and
consents to cancellations. Every step goes through `Trading`, so the policy can do nothing a
resident could not. An unattended node and the demo trade this way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio

from coopnet.node import market
from coopnet.node.aid import load_request
from coopnet.node.refusals import Refused
from coopnet.node.store import now_ms
from coopnet.node.store_io import fetch_all
from coopnet.protocol import Envelope
from coopnet.protocol.aid import aid_key
from coopnet.protocol.trades import trade_key

if TYPE_CHECKING:
    from coopnet.node.runtime import Node

log = logging.getLogger("coopnet.policy")
SWEEP_S = 5.0


class Policy:
    def __init__(self, node: Node) -> None:
        self.node = node
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
        t = await market.load_trade(self.node.store.reader, buyer, trade)
        if t is None:
            return
        me, tr = self.node.slug, self.node.trading
        try:
            if t["seller"] == me:
                if t["state"] == "proposed" and now_ms() <= t["expires_at"]:
                    try:
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


class AidPolicy:
    """With `auto_aid = true`: pledge what an escalated request of another neighborhood still
    needs; for this node's own escalated requests, accept pledges up to the need and confirm
    fulfilment once it is covered. Every step goes through `Aid`, within the rules."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._wake = anyio.Event()

    def notice(self, events: Sequence[Envelope]) -> None:
        if any(aid_key(e.author, e.body) is not None for e in events):
            self._wake.set()

    async def run(self) -> None:
        await self.node.ready.wait()
        while True:
            with anyio.move_on_after(SWEEP_S):
                await self._wake.wait()
            self._wake = anyio.Event()
            await self.sweep()

    async def sweep(self) -> None:
        aid, me, now = self.node.aid, self.node.slug, self.node.clock()
        rows = await fetch_all(self.node.store.db, "SELECT requester, request FROM aid_requests")
        for requester, request in rows:
            view = await load_request(self.node.store.db, str(requester), str(request))
            state = view.state_at(now)
            try:
                if view.requester != me:
                    if state in ("open", "partly_pledged") and not any(
                        p.pledger == me and p.state == "pledged" for p in view.pledges
                    ):
                        await aid.pledge(
                            view.requester, view.request, f"help from {me}",
                            max(1, view.quantity - view.pledged),
                        )  # fmt: skip
                    continue
                for p in view.pledges:
                    fits = view.accepted + p.quantity <= view.quantity
                    if p.state == "pledged" and not p.accepted and fits:
                        await aid.accept(view.request, p.pledger, p.pledge)
                        view.accepted += p.quantity
                if view.requester_state == "open" and view.accepted >= view.quantity:
                    await aid.fulfil(view.request)
            except Refused as exc:
                log.debug("%s: aid step on %s/%s refused: %s", me, requester, request, exc.message)
