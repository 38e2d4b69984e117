"""Offers and needs (ValueFlows intents), pure (docs/PROTOCOL.md §10).

An offer is its author's: only the author revises or withdraws it (an offer is named by
`(author, offer)`, so no one else can even name a change to it). The seller is the
authority on how much of it is left: acceptances and releases in the seller's own log order
decide, so the remaining quantity is a fold over one log and every node computes the same.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from coopnet.protocol import errors
from coopnet.protocol.body import AreaCode, Body

LocalId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}(?!\n)$")]
ItemName = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
Terms = Annotated[str, msgspec.Meta(max_length=280)]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=10**12)]
Cents = Annotated[int, msgspec.Meta(ge=0, le=10**12)]
Millis = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]

Category = Literal[
    "produce",
    "bakery",
    "dairy-eggs",
    "prepared-food",
    "household-goods",
    "repair",
    "transport",
    "care",
    "skills",
    "other",
]
CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]
# Quantities are integers of the unit: never fractions, never floats. `piece` is the unit
# of counts. Units were added after the first four (docs/PROTOCOL.md §10): a receiver that
# does not know one stores the offer and refuses its meaning with `bad_body` (§7.1).
Unit = Literal["gram", "millilitre", "piece", "minute", "dozen", "kilogram", "litre", "hour"]
UNITS: tuple[str, ...] = Unit.__args__  # type: ignore[attr-defined]
Delivery = Literal["pickup", "delivery", "either"]


class OfferPosted(Body, frozen=True, kw_only=True):
    kind = "offer.posted"
    offer: LocalId
    item: ItemName
    category: Category
    quantity: Quantity
    unit: Unit
    unit_price: Cents  # credit cents per unit
    min_order: Quantity = 1
    available_until: Millis
    delivery: Delivery = "pickup"
    terms: Terms = ""
    area: AreaCode


class OfferRevised(Body, frozen=True, kw_only=True):
    """Changes what is given; a field left out keeps its value."""

    kind = "offer.revised"
    offer: LocalId
    quantity: Quantity | None = None
    unit_price: Cents | None = None
    min_order: Quantity | None = None
    available_until: Millis | None = None


class OfferWithdrawn(Body, frozen=True, kw_only=True):
    kind = "offer.withdrawn"
    offer: LocalId


class NeedPosted(Body, frozen=True, kw_only=True):
    """What a co-op wants to source inside the federation instead of importing."""

    kind = "need.posted"
    need: LocalId
    item: ItemName
    category: Category
    quantity: Quantity
    unit: Unit
    max_unit_price: Cents | None = None
    needed_by: Millis
    area: AreaCode


class NeedWithdrawn(Body, frozen=True, kw_only=True):
    kind = "need.withdrawn"
    need: LocalId


# -- the offer lifecycle (one table) ---------------------------------------------------------

OPEN, WITHDRAWN = "open", "withdrawn"
OFFER_TABLE: dict[str | None, dict[str, str]] = {
    None: {"offer.posted": OPEN},
    OPEN: {"offer.revised": OPEN, "offer.withdrawn": WITHDRAWN},
    WITHDRAWN: {},
}


# What a need's author may sign, by the need's state (PROTOCOL.md §10: as offers).
NEED_TABLE: dict[str | None, dict[str, str]] = {
    None: {"need.posted": OPEN},
    OPEN: {"need.withdrawn": WITHDRAWN},
    WITHDRAWN: {},
}


def need_step(state: str | None, body: Body) -> str:
    """The need's state after one of its author's need events (raises not_authorized: a
    need id is posted once, and withdrawn once, by the same rule on every node)."""
    nxt = NEED_TABLE[state].get(body.kind)
    if nxt is None:
        name = getattr(body, "need", "?")
        what = "no such need" if state is None else f"need {name} is {state}"
        raise errors.NotAuthorized(f"{body.kind} not allowed: {what}")
    return nxt


class Offer(msgspec.Struct, kw_only=True):
    """An offer as its seller's log has made it."""

    author: str
    offer: str
    item: str
    category: str
    quantity: int
    unit: str
    unit_price: int
    min_order: int
    available_until: int
    delivery: str
    terms: str
    area: str
    state: str = OPEN
    reserved: int = 0  # accepted by the seller and not released

    @property
    def remaining(self) -> int:
        return max(0, self.quantity - self.reserved) if self.state == OPEN else 0


def offer_step(current: Offer | None, author: str, body: Body) -> Offer:
    """The offer after one of its author's offer events (raises not_authorized)."""
    state = current.state if current is not None else None
    kind = body.kind
    if kind not in OFFER_TABLE[state]:
        what = "no such offer" if current is None else f"offer is {state}"
        raise errors.NotAuthorized(f"{kind} not allowed: {what}")
    if isinstance(body, OfferPosted):
        return Offer(
            author=author,
            offer=body.offer,
            item=body.item,
            category=body.category,
            quantity=body.quantity,
            unit=body.unit,
            unit_price=body.unit_price,
            min_order=body.min_order,
            available_until=body.available_until,
            delivery=body.delivery,
            terms=body.terms,
            area=body.area,
        )
    assert current is not None
    if isinstance(body, OfferWithdrawn):
        return msgspec.structs.replace(current, state=WITHDRAWN)
    assert isinstance(body, OfferRevised)
    changes = {
        f: getattr(body, f)
        for f in ("quantity", "unit_price", "min_order", "available_until")
        if getattr(body, f) is not None
    }
    if body.quantity is not None and body.quantity < current.reserved:
        # What the seller already accepted stays promised: it cancels those trades first
        # (PROTOCOL.md §10), so a revision can never turn a kept promise into an oversell.
        raise errors.NotAuthorized(
            f"offer {current.offer}: a quantity of {body.quantity} is below the "
            f"{current.reserved} already accepted; cancel those trades first"
        )
    return msgspec.structs.replace(current, **changes)


def reserve(offer: Offer, quantity: int, at: int) -> Offer:
    """The seller accepts `quantity` at time `at`: only while the offer covers it."""
    if offer.state != OPEN:
        raise errors.NotAuthorized(f"offer {offer.offer} is {offer.state}")
    if at > offer.available_until:
        raise errors.NotAuthorized(f"offer {offer.offer} is no longer available")
    if quantity > offer.remaining:
        raise errors.NotAuthorized(
            f"offer {offer.offer}: {quantity} asked, {offer.remaining} remaining (no oversell)"
        )
    if quantity < offer.min_order:
        raise errors.NotAuthorized(
            f"offer {offer.offer}: {quantity} asked, below its minimum order of {offer.min_order}"
        )
    return msgspec.structs.replace(offer, reserved=offer.reserved + quantity)


def below_asking(offer: Offer, unit_price: int) -> str | None:
    """Why a proposal's unit price is below what the offer asks, or None when it is not.

    Not a refusal: a seller may accept a lower price by hand (PROTOCOL.md §11). A node's
    automatic policy declines such a proposal with this reason."""
    if unit_price < offer.unit_price:
        return (
            f"{unit_price} cents a {offer.unit} is below the offer's {offer.unit_price}; "
            "a resident may still accept it by hand"
        )
    return None


def release(offer: Offer, quantity: int) -> Offer:
    """A reservation ends without delivery (the seller cancelled or consented to cancel)."""
    return msgspec.structs.replace(offer, reserved=max(0, offer.reserved - quantity))


# -- matching needs to offers ----------------------------------------------------------------


class Match(msgspec.Struct, kw_only=True):
    author: str
    offer: str
    item: str
    remaining: int
    unit: str
    unit_price: int
    area: str
    score: float


def match(
    need: NeedPosted, offers: list[Offer], *, near: frozenset[str] = frozenset(), now: int = 0
) -> list[Match]:
    """Rank the open offers that fit a need: same item (or category), unit, price, area.

    The score is for ordering only (never stored or signed): an item match beats a category
    match, covering the whole quantity beats covering part, a cheaper price and the same or
    a neighboring area come first.
    """
    out: list[Match] = []
    wanted = need.item.casefold()
    for o in offers:
        if o.state != OPEN or o.remaining <= 0 or o.unit != need.unit:
            continue
        if now and o.available_until < now:
            continue
        if need.max_unit_price is not None and o.unit_price > need.max_unit_price:
            continue
        same_item = wanted in o.item.casefold() or o.item.casefold() in wanted
        if not same_item and o.category != need.category:
            continue
        score = 0.0
        score += 4.0 if same_item else 1.0
        score += 2.0 if o.remaining >= need.quantity else o.remaining / need.quantity
        score += 1.0 if o.area == need.area else 0.5 if o.area in near else 0.0
        score += 1.0 / (1.0 + o.unit_price / 100.0)
        out.append(
            Match(
                author=o.author,
                offer=o.offer,
                item=o.item,
                remaining=o.remaining,
                unit=o.unit,
                unit_price=o.unit_price,
                area=o.area,
                score=round(score, 4),
            )
        )
    out.sort(key=lambda m: (-m.score, m.unit_price, m.author, m.offer))
    return out
