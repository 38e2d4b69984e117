"""What the offer and need rules say when they refuse (docs/PROTOCOL.md §10), and the offer
a posting makes, field by field. A coordinator reads these messages in the app and the CLI
when their node will not sign; each names the offer or need, its state and the numbers."""

from __future__ import annotations

import pytest

from coopnet.protocol import InvalidEvent
from coopnet.protocol.offers import (
    NeedWithdrawn,
    Offer,
    OfferPosted,
    OfferRevised,
    OfferWithdrawn,
    below_asking,
    need_step,
    offer_step,
    reserve,
)

T0 = 1_800_000_000_000
POSTED = OfferPosted(
    offer="loaves", item="sourdough loaves", category="bakery", quantity=40, unit="piece",
    unit_price=450, min_order=2, available_until=T0, delivery="delivery",
    terms="Tuesdays only", area="N1",
)  # fmt: skip


def _refusal(call: object, *args: object) -> InvalidEvent:
    assert callable(call)
    with pytest.raises(InvalidEvent) as caught:
        call(*args)
    assert caught.value.code == "not_authorized"
    return caught.value


def test_a_posting_makes_the_offer_it_describes_field_by_field() -> None:
    assert offer_step(None, "oakley", POSTED) == Offer(
        author="oakley", offer="loaves", item="sourdough loaves", category="bakery",
        quantity=40, unit="piece", unit_price=450, min_order=2, available_until=T0,
        delivery="delivery", terms="Tuesdays only", area="N1", state="open", reserved=0,
    )  # fmt: skip


def test_revising_an_offer_never_posted_says_there_is_none() -> None:
    refusal = _refusal(offer_step, None, "oakley", OfferRevised(offer="loaves", quantity=3))
    assert refusal.message == "offer.revised not allowed: no such offer"


def test_revising_a_withdrawn_offer_says_it_is_withdrawn() -> None:
    withdrawn = offer_step(
        offer_step(None, "oakley", POSTED), "oakley", OfferWithdrawn(offer="loaves")
    )
    refusal = _refusal(offer_step, withdrawn, "oakley", OfferRevised(offer="loaves", quantity=3))
    assert refusal.message == "offer.revised not allowed: offer is withdrawn"


def test_withdrawing_a_need_never_posted_says_there_is_none() -> None:
    refusal = _refusal(need_step, None, NeedWithdrawn(need="flour"))
    assert refusal.message == "need.withdrawn not allowed: no such need"


def test_withdrawing_a_need_twice_names_the_need_and_its_state() -> None:
    refusal = _refusal(need_step, "withdrawn", NeedWithdrawn(need="flour"))
    assert refusal.message == "need.withdrawn not allowed: need flour is withdrawn"


def test_a_body_that_names_no_need_is_named_by_a_question_mark() -> None:
    refusal = _refusal(need_step, "withdrawn", OfferWithdrawn(offer="loaves"))
    assert refusal.message == "offer.withdrawn not allowed: need ? is withdrawn"


def test_reserving_more_than_remains_names_both_quantities() -> None:
    offer = offer_step(None, "oakley", POSTED)
    refusal = _refusal(reserve, offer, 41, T0)
    assert refusal.message == "offer loaves: 41 asked, 40 remaining (no oversell)"


def test_reserving_below_the_minimum_names_the_minimum() -> None:
    offer = offer_step(None, "oakley", POSTED)
    refusal = _refusal(reserve, offer, 1, T0)
    assert refusal.message == "offer loaves: 1 asked, below its minimum order of 2"


def test_reserving_after_the_offer_ends_says_so() -> None:
    offer = offer_step(None, "oakley", POSTED)
    assert _refusal(reserve, offer, 2, T0 + 1).message == "offer loaves is no longer available"


def test_revising_below_what_was_accepted_says_to_cancel_first() -> None:
    held = reserve(offer_step(None, "oakley", POSTED), 30, T0)
    refusal = _refusal(offer_step, held, "oakley", OfferRevised(offer="loaves", quantity=29))
    assert refusal.message == (
        "offer loaves: a quantity of 29 is below the 30 already accepted; cancel those trades first"
    )


def test_a_price_below_asking_is_explained_not_refused() -> None:
    offer = offer_step(None, "oakley", POSTED)
    assert below_asking(offer, 449) == (
        "449 cents a piece is below the offer's 450; a resident may still accept it by hand"
    )
    assert below_asking(offer, 450) is None
