"""Units as a co-op thinks of them (docs/PROTOCOL.md §8, §10): counts, dozens, kilograms,
litres and hours beside the first four; quantities stay whole numbers of the unit."""

from __future__ import annotations

import pytest

from coopnet.protocol import unseal
from coopnet.protocol.envelope import seal
from coopnet.protocol.offers import UNITS, NeedPosted, OfferPosted, match, offer_step
from tests.protocol.edges_support import NET, OAK, PREV

ADDED = ("dozen", "kilogram", "litre", "hour")


def test_the_units_are_the_first_four_and_the_four_added() -> None:
    assert ("gram", "millilitre", "piece", "minute", *ADDED) == UNITS


def offer(unit: str, quantity: int = 3) -> OfferPosted:
    return OfferPosted(offer=f"{unit}-1", item="eggs", category="dairy-eggs", quantity=quantity,
                       unit=unit, unit_price=450, available_until=10**13, area="N1")  # type: ignore[arg-type]  # fmt: skip


def need(unit: str) -> NeedPosted:
    return NeedPosted(need="n-1", item="eggs", category="dairy-eggs", quantity=2,
                      unit=unit, needed_by=10**13, area="N1")  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize("unit", UNITS)
def test_an_offer_and_a_need_in_each_unit_are_signed_and_read_back(unit: str) -> None:
    for body in (offer(unit), need(unit)):
        wire = seal(signing_key=OAK.signing_key, net=NET, author="oakley", seq=2, prev=PREV,
                    at=1, body=body)  # fmt: skip
        assert unseal(wire, net=NET).body == body


@pytest.mark.parametrize("unit", ADDED)
def test_an_offer_in_an_added_unit_is_an_offer_like_any_other(unit: str) -> None:
    held = offer_step(None, "oakley", offer(unit, quantity=5))
    assert (held.unit, held.quantity, held.remaining) == (unit, 5, 5)


def test_units_are_never_converted_when_needs_meet_offers() -> None:
    """§10: a need in gram is not met by an offer in kilogram, a need in piece not by one
    in dozen: each is another good to the rules."""
    offers = [offer_step(None, "oakley", offer(u)) for u in ("kilogram", "dozen", "hour")]
    assert [m.unit for m in match(need("kilogram"), offers)] == ["kilogram"]
    assert match(need("gram"), offers) == []
    assert match(need("piece"), offers) == []
    assert [m.unit for m in match(need("hour"), offers)] == ["hour"]
