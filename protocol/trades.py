"""Trades between co-ops, pure (docs/PROTOCOL.md §11).

A trade is named by `(buyer, trade)`. Its events come from two logs: the buyer's (it
proposes, cancels before shipping, confirms receipt, disputes) and the seller's (it
accepts or declines, ships, cancels, disputes). Each party's statements are judged in its
own log order against its own table, so no node ever has to guess how two logs interleave;
the trade's state is then one cell of the COMBINED table. The same set of events gives the
same state on every node, whatever order they arrived in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import msgspec

from coopnet.protocol import errors
from coopnet.protocol.body import Body, ShortText
from coopnet.protocol.offers import Cents, LocalId, Millis, Quantity

# The largest total a trade may carry, in credit cents (PROTOCOL.md §11): quantity and unit
# price are each at most 10^12, but their product must fit this too, so that every amount a
# node stores or adds up stays an exact 64-bit integer (a sum of 9 million such totals
# still does).
MAX_TOTAL_CENTS = 10**12

Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]{1,31}(?!\n)$")]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=280)]


class TradeProposed(Body, frozen=True, kw_only=True):
    """The buyer proposes to buy `quantity` of the seller's offer at `unit_price`."""

    kind = "trade.proposed"
    trade: LocalId
    seller: Slug
    offer: LocalId
    quantity: Quantity
    unit_price: Cents
    expires_at: Millis


class TradeAccepted(Body, frozen=True, kw_only=True):
    """The seller accepts; it repeats the terms so its own log alone shows what it sold."""

    kind = "trade.accepted"
    buyer: Slug
    trade: LocalId
    offer: LocalId
    quantity: Quantity
    unit_price: Cents


class TradeDeclined(Body, frozen=True, kw_only=True):
    kind = "trade.declined"
    buyer: Slug
    trade: LocalId
    reason: ShortText = ""


class TradeShipped(Body, frozen=True, kw_only=True):
    kind = "trade.shipped"
    buyer: Slug
    trade: LocalId


class TradeReceived(Body, frozen=True, kw_only=True):
    """The buyer confirms receipt: the trade settles and the credit moves."""

    kind = "trade.received"
    buyer: Slug
    trade: LocalId


class TradeCancelled(Body, frozen=True, kw_only=True):
    kind = "trade.cancelled"
    buyer: Slug
    trade: LocalId
    reason: ShortText = ""


class TradeDisputed(Body, frozen=True, kw_only=True):
    kind = "trade.disputed"
    buyer: Slug
    trade: LocalId
    reason: Reason


TRADE_KINDS: tuple[type[Body], ...] = (
    TradeProposed,
    TradeAccepted,
    TradeDeclined,
    TradeShipped,
    TradeReceived,
    TradeCancelled,
    TradeDisputed,
)

# -- the lifecycle: one table per party, one table to combine them ---------------------------

NONE = "none"
# What the buyer may sign, in its own log order: {buyer state: {event: next buyer state}}.
BUYER_TABLE: dict[str, dict[str, str]] = {
    NONE: {"trade.proposed": "proposed"},
    "proposed": {
        "trade.cancelled": "cancelled",  # before shipping (else COMBINED makes it a dispute)
        "trade.received": "received",
        "trade.disputed": "disputed",
    },
    "cancelled": {},
    "received": {},
    "disputed": {},
}
# What the seller may sign, in its own log order.
SELLER_TABLE: dict[str, dict[str, str]] = {
    NONE: {"trade.accepted": "accepted", "trade.declined": "declined"},
    "accepted": {
        "trade.shipped": "shipped",
        "trade.cancelled": "cancelled",  # asks the buyer's consent; releases the quantity
        "trade.disputed": "disputed",
    },
    "shipped": {"trade.disputed": "disputed"},
    "declined": {},
    "cancelled": {},
    "disputed": {},
}
# The trade's state from both parties' states: COMBINED[buyer][seller]. Read a row as "the
# buyer is here", a column as "the seller is there". Received with shipped settles (closed
# wins over a later dispute); a buyer's cancel that crossed the seller's shipping is a dispute.
SELLER_STATES = (NONE, "accepted", "declined", "shipped", "cancelled", "disputed")
_GRID = {
    #             none         accepted     declined    shipped     cancelled           disputed
    "proposed":  ("proposed",  "accepted",  "declined", "shipped",  "cancel_requested", "disputed"),
    "cancelled": ("cancelled", "cancelled", "declined", "disputed", "cancelled",        "disputed"),
    "received":  ("proposed",  "accepted",  "disputed", "settled",  "disputed",         "settled"),
    "disputed":  ("disputed",  "disputed",  "disputed", "disputed", "disputed",         "disputed"),
}  # fmt: skip
COMBINED: dict[str, dict[str, str]] = {
    buyer: dict(zip(SELLER_STATES, row, strict=True)) for buyer, row in _GRID.items()
}
STATES = ("proposed", "accepted", "declined", "shipped", "cancel_requested", "cancelled",
          "disputed", "settled", "expired")  # fmt: skip
# A trade in one of these still holds the buyer's credit and the seller's quantity.
OPEN_STATES = frozenset({"proposed", "accepted", "shipped", "cancel_requested"})


def check_total(quantity: int, unit_price: int) -> int:
    """A trade's total in credit cents, `quantity × unit_price`; raises OutOfBounds
    (`out_of_bounds`) beyond MAX_TOTAL_CENTS (PROTOCOL.md §11). Signer and receiver alike."""
    total = quantity * unit_price
    if total > MAX_TOTAL_CENTS:
        raise errors.OutOfBounds(
            f"a total of {quantity} × {unit_price} = {total} cents is beyond the bound of "
            f"{MAX_TOTAL_CENTS} cents a trade may carry"
        )
    return total


class Statement(msgspec.Struct, frozen=True, kw_only=True):
    """One trade event as the fold needs it."""

    id: bytes
    author: str
    seq: int
    at: int
    body: Body


class TradeView(msgspec.Struct, kw_only=True):
    buyer: str
    trade: str
    seller: str = ""
    offer: str = ""
    quantity: int = 0
    unit_price: int = 0
    expires_at: int = 0
    proposed_at: int = 0
    buyer_state: str = NONE
    seller_state: str = NONE
    state: str = "unknown"  # "unknown": statements seen, the proposal not yet
    refused: list[tuple[bytes, str]] = msgspec.field(default_factory=list)

    @property
    def total(self) -> int:
        return self.quantity * self.unit_price

    def state_at(self, now: int) -> str:
        """The state as residents see it: an unanswered proposal expires at its expiry."""
        if self.state == "proposed" and now > self.expires_at:
            return "expired"
        return self.state

    @property
    def settled(self) -> bool:
        return self.state == "settled"


def fold_trade(
    buyer: str, trade: str, statements: Iterable[Statement], refused: frozenset[bytes] = frozenset()
) -> TradeView:
    """The state of trade `(buyer, trade)` from every statement held about it.

    `refused` holds acceptances the seller's offer fold refused (they would oversell).
    Statements that break a rule are listed in `refused` of the result with their code.
    """
    view = TradeView(buyer=buyer, trade=trade)
    mine = sorted((s for s in statements if s.author == buyer), key=lambda s: s.seq)
    theirs = sorted((s for s in statements if s.author != buyer), key=lambda s: s.seq)
    proposal = next((s for s in mine if isinstance(s.body, TradeProposed)), None)
    if proposal is None:
        view.refused = [(s.id, "not_authorized") for s in mine]  # nothing before a proposal
        return view
    p = proposal.body
    assert isinstance(p, TradeProposed)
    try:
        check_total(p.quantity, p.unit_price)
    except errors.OutOfBounds as exc:
        # No trade exists: its proposal is refused and nothing else can follow it, the
        # buyer's statements or the seller's (PROTOCOL.md §11, "Bounds").
        view.refused = [(proposal.id, exc.code)]
        view.refused += [(s.id, "not_authorized") for s in mine if s is not proposal]
        view.refused += [(s.id, "not_authorized") for s in theirs]
        return view
    view.seller, view.offer, view.quantity = p.seller, p.offer, p.quantity
    view.unit_price, view.expires_at, view.proposed_at = p.unit_price, p.expires_at, proposal.at
    for s in mine:
        nxt = BUYER_TABLE[view.buyer_state].get(s.body.kind)
        if nxt is None or (s is not proposal and isinstance(s.body, TradeProposed)):
            view.refused.append((s.id, "not_authorized"))
            continue
        view.buyer_state = nxt
    for s in theirs:
        nxt = SELLER_TABLE[view.seller_state].get(s.body.kind)
        if s.author != p.seller or nxt is None or s.id in refused:
            view.refused.append((s.id, "not_authorized"))
            continue
        if isinstance(s.body, TradeAccepted) and (
            (s.body.offer, s.body.quantity, s.body.unit_price)
            != (p.offer, p.quantity, p.unit_price)
            or s.at > p.expires_at
        ):
            view.refused.append((s.id, "not_authorized"))  # other terms, or after expiry
            continue
        view.seller_state = nxt
    view.state = COMBINED[view.buyer_state][view.seller_state]
    return view


def trade_key(author: str, body: Body) -> tuple[str, str] | None:
    """`(buyer, trade)` of a trade event, or None for other kinds."""
    if isinstance(body, TradeProposed):
        return author, body.trade
    if isinstance(body, TRADE_KINDS):
        return body.buyer, body.trade  # type: ignore[attr-defined]
    return None
