"""What a neighborhood's node decides before it signs a market event.

The node is the authority for its own side: as a seller it accepts a proposal only while
its offer covers it, in its own log order (so it can never oversell); as a buyer it proposes
only within its credit limit (so it can never overspend). Both checks and the signature are
made under one lock, so two requests racing each other are decided one after the other.
Refusals here happen before anything is signed, and carry their own codes.
"""

from __future__ import annotations

import secrets
from typing import Any, Protocol

import anyio

from coopnet.node.engine.context import NodeContext
from coopnet.node.engine.money import currency_of, format_amount
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store import now_ms
from coopnet.node.engine.store_io import run_in_db
from coopnet.node.market import projection as market
from coopnet.protocol import Envelope
from coopnet.protocol.body import Body
from coopnet.protocol.errors import InvalidEvent
from coopnet.protocol.ledger import check_spend
from coopnet.protocol.offers import reserve
from coopnet.protocol.trades import (
    TradeAccepted,
    TradeCancelled,
    TradeDeclined,
    TradeDisputed,
    TradeProposed,
    TradeReceived,
    TradeShipped,
    check_total,
)

DEFAULT_EXPIRY_S = 3600


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


class Members(Protocol):
    """What the market needs of membership (the seam to node/membership/, whose
    `Governance` the runtime passes in): no trading with a neighborhood that is not a
    member now (PROTOCOL.md §16.4)."""

    async def require_members(self, *slugs: str) -> None:
        """Raise Refused (`not_a_member`) unless every slug is a member now."""


class Trading:
    """The node's side of every trade: checks, then signs (PROTOCOL.md §10-12).

    Every step raises Refused (with a stable code and an HTTP status) when this node will
    not sign it; amounts are credit cents.
    """

    def __init__(self, node: NodeContext, members: Members) -> None:
        self.node = node
        self.members = members
        self.lock = anyio.Lock()

    @property
    def me(self) -> str:
        return self.node.slug

    async def _sign(self, body: Body) -> Envelope:
        try:
            return await self.node.post(body)
        except InvalidEvent as exc:  # the projection's own rules, said before signing
            raise Refused(exc.code, exc.message) from None

    async def propose(
        self,
        seller: str,
        offer: str,
        quantity: int,
        *,
        unit_price: int | None = None,
        expires_in_s: int = DEFAULT_EXPIRY_S,
        trade: str | None = None,
    ) -> Envelope:
        async with self.lock:
            await self.members.require_members(self.me, seller)
            if trade is not None and await market.load_trade(
                self.node.store.reader, self.me, trade
            ):
                raise Refused("duplicate", f"trade {trade} exists: choose another id")
            now = now_ms()
            found, balance, committed = await market.proposal_facts(
                self.node.store.reader, self.me, seller, offer, now
            )
            if found is None or found.state != "open":
                raise Refused("offer_unavailable", f"{seller} has no open offer {offer}", 404)
            if seller == self.me:
                raise Refused("not_authorized", "a co-op does not trade with itself")
            if quantity < found.min_order:
                raise Refused("below_min_order", f"the minimum order is {found.min_order}")
            if quantity > found.remaining:
                raise Refused(
                    "offer_unavailable", f"{found.remaining} {found.unit} left of {offer}"
                )
            price = found.unit_price if unit_price is None else unit_price
            try:
                total = check_total(quantity, price)
            except InvalidEvent as exc:
                raise Refused(exc.code, exc.message, 400) from None
            self.check_credit(self.me, balance, committed, total)
            return await self._sign(
                TradeProposed(
                    trade=trade or new_id("t"),
                    seller=seller,
                    offer=offer,
                    quantity=quantity,
                    unit_price=price,
                    expires_at=now + expires_in_s * 1000,
                )
            )

    async def _trade(self, buyer: str, trade: str) -> dict[str, Any]:
        return _found(await market.load_trade(self.node.store.reader, buyer, trade), buyer, trade)

    async def accept(self, buyer: str, trade: str) -> Envelope:
        async with self.lock:
            row, offer = await market.trade_and_offer(self.node.store.reader, buyer, trade)
            t = _found(row, buyer, trade)
            self._require(t, seller=True, states=("proposed",))
            await self.members.require_members(self.me, buyer)
            if now_ms() > t["expires_at"]:
                raise Refused("expired", f"trade {buyer}/{trade} expired")
            if offer is None:
                raise Refused("offer_unavailable", f"no offer {t['offer']}")
            if t["quantity"] < offer.min_order:
                raise Refused(
                    "below_min_order",
                    f"{t['quantity']} proposed, below the offer's minimum order of"
                    f" {offer.min_order}",
                )
            try:
                reserve(offer, t["quantity"], now_ms())
            except InvalidEvent as exc:
                raise Refused("offer_unavailable", exc.message) from None
            return await self._sign(
                TradeAccepted(
                    buyer=buyer,
                    trade=trade,
                    offer=t["offer"],
                    quantity=t["quantity"],
                    unit_price=t["unit_price"],
                )
            )

    async def decline(self, buyer: str, trade: str, reason: str = "") -> Envelope:
        async with self.lock:
            self._require(await self._trade(buyer, trade), seller=True, states=("proposed",))
            return await self._sign(TradeDeclined(buyer=buyer, trade=trade, reason=reason))

    async def ship(self, buyer: str, trade: str) -> Envelope:
        async with self.lock:
            self._require(await self._trade(buyer, trade), seller=True, states=("accepted",))
            # A retired buyer's balance is frozen (PROTOCOL.md §16.5): no step toward
            # settling with it.
            await self.members.require_members(self.me, buyer)
            return await self._sign(TradeShipped(buyer=buyer, trade=trade))

    async def receive(self, buyer: str, trade: str) -> Envelope:
        async with self.lock:
            t = await self._trade(buyer, trade)
            self._require(t, seller=False, states=("shipped",))
            # Receipt settles: the credit would move into a retired seller's frozen balance.
            await self.members.require_members(self.me, t["seller"])
            return await self._sign(TradeReceived(buyer=buyer, trade=trade))

    async def cancel(self, buyer: str, trade: str, reason: str = "") -> Envelope:
        async with self.lock:
            t = await self._trade(buyer, trade)
            if self.me == buyer:
                self._require(t, seller=False, states=("proposed", "accepted", "cancel_requested"))
            else:
                self._require(t, seller=True, states=("accepted", "cancelled"))
                if t["seller_state"] != "accepted":
                    raise Refused("wrong_state", "the seller cancels only what it accepted")
            return await self._sign(TradeCancelled(buyer=buyer, trade=trade, reason=reason))

    async def dispute(self, buyer: str, trade: str, reason: str) -> Envelope:
        async with self.lock:
            t = await self._trade(buyer, trade)
            open_states = ("proposed", "accepted", "shipped", "cancel_requested")
            self._require(t, seller=self.me != buyer, states=open_states)
            return await self._sign(TradeDisputed(buyer=buyer, trade=trade, reason=reason))

    # -- what other domains ask of the market (the runtime passes `Trading` as their seam:
    # node/pools/pooling.py `Credit`) ---------------------------------------------------------

    async def standing(self, party: str) -> tuple[int, int]:
        """`party`'s balance and open commitments (credit cents), trades and pools counted
        (projection.standing_of): what a credit limit is checked against."""
        return await run_in_db(self.node.store.reader, market.standing_of, party, now_ms())

    def limit_of(self, party: str) -> int:
        """`party`'s credit limit in cents (the charter's, one for every member, §16.1)."""
        return self.node.credit_limit

    def check_credit(self, party: str, balance: int, committed: int, amount: int) -> None:
        """Refuse (`credit_limit_exceeded`) to sign `amount` more for `party` when its
        balance minus open commitments minus `amount` (credit cents) would fall below minus
        this node's credit limit (protocol.ledger.check_spend); the message says it in the
        federation's currency."""
        limit = self.node.credit_limit
        try:
            check_spend(party, balance, committed, amount, limit)
        except InvalidEvent:
            money = currency_of(self.node.config)
            after = balance - committed - amount
            raise Refused(
                "credit_limit_exceeded",
                f"{format_amount(amount, money)} more would take {party} to"
                f" {format_amount(after, money)} (balance {format_amount(balance, money)},"
                f" {format_amount(committed, money)} held by open trades and pools), below its"
                f" credit limit of {format_amount(-limit, money)}",
            ) from None

    async def offer_price(self, seller: str, offer: str) -> int | None:
        """The unit price (cents) of `seller`'s offer `offer`, or None if none is held."""
        found = await market.load_offer(self.node.store.reader, seller, offer)
        return None if found is None else found.unit_price

    def _require(self, t: dict[str, Any], *, seller: bool, states: tuple[str, ...]) -> None:
        party = t["seller"] if seller else t["buyer"]
        if party != self.me:
            role = "seller" if seller else "buyer"
            raise Refused("not_authorized", f"only the {role} ({party}) may do this", 403)
        if t["state"] not in states:
            raise Refused("wrong_state", f"trade is {t['state']}, needs {' or '.join(states)}")


def _found(row: dict[str, Any] | None, buyer: str, trade: str) -> dict[str, Any]:
    if row is None:
        raise Refused("not_found", f"no trade {buyer}/{trade} here", 404)
    return row
