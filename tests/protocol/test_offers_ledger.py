"""Offers (table, reservations, matching) and the mutual-credit ledger, pure."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coopnet.protocol import InvalidEvent
from coopnet.protocol.body import Body
from coopnet.protocol.ledger import Ledger, breaches, check_spend
from coopnet.protocol.offers import (
    OFFER_TABLE,
    Category,
    NeedPosted,
    Offer,
    OfferPosted,
    OfferRevised,
    OfferWithdrawn,
    below_asking,
    match,
    offer_step,
    release,
    reserve,
)

T0 = 1_800_000_000_000
POSTED = OfferPosted(
    offer="o1", item="eggs", category="dairy-eggs", quantity=100, unit="piece",
    unit_price=35, min_order=6, available_until=T0 + 1000, area="N1",
)  # fmt: skip
BODIES: dict[str, Body] = {
    "offer.posted": POSTED,
    "offer.revised": OfferRevised(offer="o1", quantity=80, unit_price=30),
    "offer.withdrawn": OfferWithdrawn(offer="o1"),
}


def _reach(state: str | None) -> Offer | None:
    if state is None:
        return None
    offer = offer_step(None, "sel", POSTED)
    return offer_step(offer, "sel", BODIES["offer.withdrawn"]) if state == "withdrawn" else offer


@pytest.mark.parametrize("state", [None, "open", "withdrawn"])
@pytest.mark.parametrize("kind", sorted(BODIES))
def test_offer_table_every_state_and_event(state: str | None, kind: str) -> None:
    current = _reach(state)
    expected = OFFER_TABLE[state].get(kind)
    if expected is None:
        with pytest.raises(InvalidEvent) as caught:
            offer_step(current, "sel", BODIES[kind])
        assert caught.value.code == "not_authorized"
    else:
        assert offer_step(current, "sel", BODIES[kind]).state == expected


def test_revision_changes_only_what_it_names() -> None:
    offer = offer_step(offer_step(None, "sel", POSTED), "sel", BODIES["offer.revised"])
    assert (offer.quantity, offer.unit_price, offer.min_order) == (80, 30, 6)


def test_reserve_never_oversells() -> None:
    offer = offer_step(None, "sel", POSTED)
    offer = reserve(offer, 60, T0)
    assert offer.remaining == 40
    with pytest.raises(InvalidEvent) as caught:
        reserve(offer, 41, T0)
    assert caught.value.code == "not_authorized"
    offer = release(offer, 60)
    assert offer.remaining == 100
    with pytest.raises(InvalidEvent, match="no longer available"):
        reserve(offer, 6, T0 + 1001)
    with pytest.raises(InvalidEvent, match="withdrawn"):
        reserve(offer_step(offer, "sel", BODIES["offer.withdrawn"]), 6, T0)


def test_reserve_holds_to_the_minimum_order_on_both_sides_of_it() -> None:
    """PROTOCOL.md §10: an acceptance below the offer's `min_order` reserves nothing."""
    offer = offer_step(None, "sel", POSTED)  # min_order 6
    assert reserve(offer, 6, T0).reserved == 6
    assert reserve(offer, 7, T0).reserved == 7
    with pytest.raises(InvalidEvent, match="below its minimum order of 6") as caught:
        reserve(offer, 5, T0)
    assert caught.value.code == "not_authorized"


def test_a_revision_may_not_go_below_what_is_already_accepted() -> None:
    """PROTOCOL.md §10: 8 of 10 accepted, the quantity may go down to 8, not to 7."""
    offer = reserve(offer_step(None, "sel", POSTED), 80, T0)
    assert offer_step(offer, "sel", OfferRevised(offer="o1", quantity=80)).remaining == 0
    assert offer_step(offer, "sel", OfferRevised(offer="o1", quantity=81)).remaining == 1
    with pytest.raises(InvalidEvent, match="below the 80 already accepted") as caught:
        offer_step(offer, "sel", OfferRevised(offer="o1", quantity=79))
    assert caught.value.code == "not_authorized"
    # A revision that does not name the quantity is not held to it.
    assert offer_step(offer, "sel", OfferRevised(offer="o1", unit_price=1)).unit_price == 1


def test_below_asking_names_a_price_under_the_offers_own() -> None:
    offer = offer_step(None, "sel", POSTED)  # 35 a piece
    assert below_asking(offer, 35) is None
    assert below_asking(offer, 36) is None
    reason = below_asking(offer, 34)
    assert reason is not None and "34 cents a piece is below the offer's 35" in reason


@given(
    asks=st.lists(
        st.tuples(st.integers(0, 9), st.integers(1, 40), st.booleans(), st.booleans()),
        max_size=60,
    ),
    quantity=st.integers(1, 200),
)
@settings(max_examples=300)
def test_any_interleaving_of_buyers_never_oversells_and_the_ledger_sums_to_zero(
    asks: list[tuple[int, int, bool, bool]], quantity: int
) -> None:
    """Buyers 0..9 ask in any order; the seller accepts in its own order while the offer
    covers the ask; some trades are cancelled (released), the rest settle."""
    offer = offer_step(None, "sel", OfferPosted(
        offer="o1", item="kale", category="produce", quantity=quantity, unit="gram",
        unit_price=3, available_until=T0 + 10, area="N1",
    ))  # fmt: skip
    ledger = Ledger()
    accepted = 0
    for buyer, ask, cancel, settle in asks:
        try:
            offer = reserve(offer, ask, T0)
        except InvalidEvent:
            continue  # declined: it would oversell
        accepted += ask
        assert offer.reserved <= offer.quantity
        if cancel:
            offer = release(offer, ask)
            accepted -= ask
        elif settle:
            ledger.settle(f"buyer-{buyer}", "sel", ask * offer.unit_price)
        assert ledger.total() == 0
    assert accepted <= quantity
    assert offer.remaining == quantity - offer.reserved >= 0


def test_ledger_is_integers_only() -> None:
    ledger = Ledger([("a", "b", 150), ("b", "c", 50)])
    assert ledger.balances == {"a": -150, "b": 100, "c": 50}
    assert ledger.total() == 0
    with pytest.raises(ValueError):
        ledger.settle("a", "b", 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ledger.settle("a", "b", -1)


def test_check_spend_and_breaches() -> None:
    check_spend("a", balance=-400, committed=50, amount=50, limit=500)
    with pytest.raises(InvalidEvent) as caught:
        check_spend("a", balance=-400, committed=50, amount=51, limit=500)
    assert caught.value.code == "not_authorized"
    assert breaches({"a": -400, "b": 400}, {"a": 101}, 500) == ["a"]
    assert breaches({"a": -400, "b": 400}, {"a": 100}, 500) == []


def test_match_ranks_item_then_price_and_area() -> None:
    def offer(
        author: str, item: str, price: int, area: str, category: Category = "produce"
    ) -> Offer:
        return offer_step(None, author, OfferPosted(
            offer="o", item=item, category=category, quantity=1000, unit="gram",
            unit_price=price, available_until=T0 + 10, area=area,
        ))  # fmt: skip

    need = NeedPosted(
        need="n", item="tomatoes", category="produce", quantity=500, unit="gram",
        max_unit_price=5, needed_by=T0, area="N1",
    )  # fmt: skip
    offers = [
        offer("far", "tomatoes", 2, "N9"),
        offer("near", "tomatoes", 2, "N1"),
        offer("cheap-kale", "kale", 1, "N1"),
        offer("dear", "tomatoes", 9, "N1"),  # over the max price
        offer("bread", "tomatoes bread", 1, "N1", category="bakery"),
    ]
    ranked = [m.author for m in match(need, offers, now=T0)]
    # Same item first (cheaper, then nearer), a category match last; over the price: out.
    assert ranked == ["bread", "near", "far", "cheap-kale"]
