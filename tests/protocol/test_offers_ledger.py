"""Offers (table, reservations, matching) and the mutual-credit ledger, pure."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coopnet.protocol import InvalidEvent
from coopnet.protocol.body import Body
from coopnet.protocol.ledger import DEFAULT_CREDIT_LIMIT, Ledger, breaches, check_spend
from coopnet.protocol.offers import (
    NEED_TABLE,
    OFFER_TABLE,
    Category,
    NeedPosted,
    NeedWithdrawn,
    Offer,
    OfferPosted,
    OfferRevised,
    OfferWithdrawn,
    below_asking,
    match,
    need_step,
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


# PROTOCOL.md §10, "Lifecycle": none → `offer.posted` → open; open → `offer.revised` →
# open; open → `offer.withdrawn` → withdrawn; anything else `not_authorized`. Typed from the
# spec (its table in §10), never read from OFFER_TABLE.
SPEC_OFFER: dict[str | None, dict[str, str]] = {
    None: {"offer.posted": "open"},
    "open": {"offer.revised": "open", "offer.withdrawn": "withdrawn"},
    "withdrawn": {},
}
# PROTOCOL.md §10: "Needs work the same way (`need.posted`, `need.withdrawn`)".
SPEC_NEED: dict[str | None, dict[str, str]] = {
    None: {"need.posted": "open"},
    "open": {"need.withdrawn": "withdrawn"},
    "withdrawn": {},
}
NEED_POSTED = NeedPosted(
    need="n1", item="eggs", category="dairy-eggs", quantity=12, unit="piece", needed_by=T0,
    area="N1",
)  # fmt: skip
NEED_BODIES: dict[str, Body] = {
    "need.posted": NEED_POSTED,
    "need.withdrawn": NeedWithdrawn(need="n1"),
}


def _path(table: dict[str | None, dict[str, str]], target: str | None) -> list[str]:
    """The events that lead from none to `target` in a spec table (breadth first)."""
    frontier: list[tuple[str | None, list[str]]] = [(None, [])]
    while frontier:
        state, path = frontier.pop(0)
        if state == target:
            return path
        frontier += [(nxt, [*path, k]) for k, nxt in table[state].items() if nxt != state]
    raise AssertionError(f"{target} cannot be reached")


def test_the_offer_and_need_tables_are_the_specs_cell_by_cell() -> None:
    """PROTOCOL.md §10: no cell of either lifecycle added, removed or changed."""
    assert OFFER_TABLE == SPEC_OFFER
    assert NEED_TABLE == SPEC_NEED


@pytest.mark.parametrize("state", list(SPEC_OFFER))
@pytest.mark.parametrize("kind", sorted(BODIES))
def test_the_offer_fold_follows_every_cell_of_the_specs_table(state: str | None, kind: str) -> None:
    """PROTOCOL.md §10: an event not allowed in the offer's state is refused with
    `not_authorized`, and the refusal says which event and what the offer is."""
    current: Offer | None = None
    for k in _path(SPEC_OFFER, state):
        current = offer_step(current, "sel", BODIES[k])
    assert (current.state if current else None) == state
    expected = SPEC_OFFER[state].get(kind)
    if expected is None:
        with pytest.raises(InvalidEvent) as caught:
            offer_step(current, "sel", BODIES[kind])
        assert caught.value.code == "not_authorized"
        assert kind in caught.value.message
        what = "no such offer" if state is None else f"offer is {state}"
        assert what in caught.value.message
    else:
        assert offer_step(current, "sel", BODIES[kind]).state == expected


@pytest.mark.parametrize("state", list(SPEC_NEED))
@pytest.mark.parametrize("kind", sorted(NEED_BODIES))
def test_the_need_fold_follows_every_cell_of_the_specs_table(state: str | None, kind: str) -> None:
    """PROTOCOL.md §10: a need id is posted once and withdrawn once; the refusal names the
    event, the need and its state."""
    current: str | None = None
    for k in _path(SPEC_NEED, state):
        current = need_step(current, NEED_BODIES[k])
    assert current == state
    expected = SPEC_NEED[state].get(kind)
    if expected is None:
        with pytest.raises(InvalidEvent) as caught:
            need_step(current, NEED_BODIES[kind])
        assert caught.value.code == "not_authorized"
        assert kind in caught.value.message
        what = "no such need" if state is None else f"need n1 is {state}"
        assert what in caught.value.message
    else:
        assert need_step(current, NEED_BODIES[kind]) == expected


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


def _booked() -> Offer:
    """POSTED (100 pieces, minimum order 6, until T0 + 1000) with 60 accepted: 40 remain."""
    return reserve(offer_step(None, "sel", POSTED), 60, T0)


@pytest.mark.parametrize(
    ("withdrawn", "quantity", "at", "refusal"),
    [
        (False, 40, T0, None),  # exactly what remains
        (False, 41, T0, ("41 asked", "40 remaining")),
        (False, 6, T0, None),  # the minimum order
        (False, 5, T0, ("5 asked", "minimum order of 6")),
        (False, 6, T0 + 1000, None),  # at `available_until`
        (False, 6, T0 + 1001, ("offer o1", "no longer available")),
        (True, 6, T0, ("offer o1", "withdrawn")),
    ],
)
def test_an_acceptance_reserves_only_under_the_specs_four_conditions(
    withdrawn: bool, quantity: int, at: int, refusal: tuple[str, str] | None
) -> None:
    """PROTOCOL.md §10: `trade.accepted` of `q` reserves `q` iff the offer is open, its `at`
    is not after `available_until`, `q ≤ quantity − reserved` and `q ≥ min_order`;
    otherwise `not_authorized`, and the refusal says which condition failed."""
    offer = _booked()
    if withdrawn:
        offer = offer_step(offer, "sel", BODIES["offer.withdrawn"])
    if refusal is None:
        after = reserve(offer, quantity, at)
        assert (after.reserved, after.remaining) == (60 + quantity, 40 - quantity)
        return
    with pytest.raises(InvalidEvent) as caught:
        reserve(offer, quantity, at)
    assert caught.value.code == "not_authorized"
    for fact in refusal:
        assert fact in caught.value.message


def test_reservations_follow_the_offer_as_last_revised_and_a_release_frees_them() -> None:
    """PROTOCOL.md §10: quantity, `min_order` and `available_until` as last revised;
    remaining = quantity − reserved; the seller's own cancel releases what it reserved."""
    offer = _booked()
    assert offer.remaining == 100 - 60
    offer = offer_step(offer, "sel", OfferRevised(offer="o1", quantity=70, min_order=8))
    assert offer.remaining == 70 - 60
    with pytest.raises(InvalidEvent, match="11 asked, 10 remaining"):
        reserve(offer, 11, T0)
    with pytest.raises(InvalidEvent, match="minimum order of 8"):
        reserve(offer, 7, T0)
    offer = offer_step(offer, "sel", OfferRevised(offer="o1", available_until=T0 + 2000))
    assert reserve(offer, 10, T0 + 2000).remaining == 0
    offer = release(offer, 60)
    assert (offer.reserved, offer.remaining) == (0, 70)


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


def test_the_default_credit_limit_is_the_specs() -> None:
    """PROTOCOL.md §12: "50,000 cents until the charter sets it"."""
    assert DEFAULT_CREDIT_LIMIT == 50_000


def test_a_spend_beyond_the_limit_says_by_how_much() -> None:
    """PROTOCOL.md §12: signed only if balance − open commitments − total ≥ −limit; the
    refusal names each term and the limit, which is what a resident is shown."""
    check_spend("a", balance=0, committed=0, amount=DEFAULT_CREDIT_LIMIT, limit=50_000)
    with pytest.raises(InvalidEvent) as caught:
        check_spend("oakley", balance=-400, committed=50, amount=51, limit=500)
    assert caught.value.code == "not_authorized"
    assert caught.value.message == (
        "oakley: balance -400 - open 50 - 51 = -501, below the credit limit of -500"
    )


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
