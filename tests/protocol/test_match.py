"""Matching a need to offers (protocol/offers.py `match`): which offers fit, and in what order.

The ranking is advisory (a node shows it; nothing signed depends on it), but it is what a
co-op sees first when it looks for a supplier, so it is pinned here from its documented rule,
with the expected scores worked out by hand:

    score = (4 if the item names contain one another, case-folded, else 1: same category)
          + (2 if the offer covers the whole quantity, else remaining / quantity)
          + (1 if the same area, 0.5 if a neighboring area, else 0)
          + 1 / (1 + unit_price / 100)
    rounded to 4 decimal places; best first, then cheaper, then author, then offer id.

An offer fits only when it is open, has something left, is in the need's unit, is still
available at `now` (when given), and is at or under the need's maximum unit price.
"""

from __future__ import annotations

from typing import Any

import pytest

from coopnet.protocol.offers import Match, NeedPosted, Offer, match

NOW = 1_800_000_000_000
NEED = NeedPosted(
    need="n1", item="Tomatoes", category="produce", quantity=500, unit="gram",
    max_unit_price=300, needed_by=NOW, area="N1",
)  # fmt: skip


def _offer(author: str, **fields: Any) -> Offer:
    values: dict[str, Any] = {
        "offer": "o1", "item": "tomatoes", "category": "produce", "quantity": 1000,
        "unit": "gram", "unit_price": 100, "min_order": 1, "available_until": NOW + 1,
        "delivery": "pickup", "terms": "", "area": "N1",
    }  # fmt: skip
    values.update(fields)
    return Offer(author=author, **values)


def test_each_term_of_the_score_as_documented() -> None:
    offers = [
        # 4 (item) + 2 (covers 500) + 1 (same area) + 1/(1+1) = 7.5
        _offer("whole", unit_price=100),
        # 4 (item: "tomatoes" is in "cherry tomatoes") + 250/500 + 0.5 (near) + 1/(1+3) = 5.25
        _offer("cherry", item="Cherry tomatoes", quantity=250, unit_price=300, area="N2"),
        # 1 (category only) + 2 (exactly the quantity) + 0 (far) + 1/(1+0) = 4.0
        _offer("kale", item="kale", quantity=500, unit_price=0, area="N9"),
        # 4 (item: "tomato" is in "tomatoes") + 499/500 + 1 + 1/(1+0.5) = 6.66466… → 6.6647
        _offer("short", item="tomato", quantity=499, unit_price=50),
        # 4 + 2 + 0 (not near) + 1/(1+2) = 6.33333… → 6.3333
        _offer("far", unit_price=200, area="N3"),
    ]
    got = match(NEED, offers, near=frozenset({"N2"}), now=NOW)
    assert got == [
        Match(author="whole", offer="o1", item="tomatoes", remaining=1000, unit="gram",
              unit_price=100, area="N1", score=7.5),
        Match(author="short", offer="o1", item="tomato", remaining=499, unit="gram",
              unit_price=50, area="N1", score=6.6647),
        Match(author="far", offer="o1", item="tomatoes", remaining=1000, unit="gram",
              unit_price=200, area="N3", score=6.3333),
        Match(author="cherry", offer="o1", item="Cherry tomatoes", remaining=250, unit="gram",
              unit_price=300, area="N2", score=5.25),
        Match(author="kale", offer="o1", item="kale", remaining=500, unit="gram",
              unit_price=0, area="N9", score=4.0),
    ]  # fmt: skip


def test_remaining_counts_what_is_not_reserved() -> None:
    # 1000 offered, 600 reserved: 400 of the 500 wanted: 4 + 0.8 + 1 + 0.5 = 6.3
    (got,) = match(NEED, [_offer("part", reserved=600)], now=NOW)
    assert (got.remaining, got.score) == (400, 6.3)


def test_a_neighboring_area_is_only_one_that_was_named() -> None:
    (got,) = match(NEED, [_offer("x", area="N2")], now=NOW)
    assert got.score == 6.5  # 4 + 2 + 0 (N2 was not named near) + 0.5


def test_equal_scores_go_cheaper_then_by_author_then_by_offer() -> None:
    # Same score from different parts: 4 + 2 + 0.5 (near) + 1/(1+1) = 7.0 and
    # 4 + 2 + 0 (far) + 1/(1+0) = 7.0: the cheaper comes first.
    near_dear = _offer("a", unit_price=100, area="N2")
    far_free = _offer("z", unit_price=0, area="N9")
    twin_b = _offer("m", offer="o2", unit_price=0, area="N9")
    twin_a = _offer("m", offer="o1", unit_price=0, area="N9")
    got = match(NEED, [near_dear, twin_b, far_free, twin_a], near=frozenset({"N2"}), now=NOW)
    assert [(m.author, m.offer, m.score) for m in got] == [
        ("m", "o1", 7.0),
        ("m", "o2", 7.0),
        ("z", "o1", 7.0),
        ("a", "o1", 7.0),
    ]


LEFT_OUT = {
    "withdrawn": {"state": "withdrawn"},
    "nothing left": {"quantity": 5, "reserved": 5},
    "another unit": {"unit": "piece"},
    "expired a millisecond ago": {"available_until": NOW - 1},
    "a cent over the maximum": {"unit_price": 301},
    "another item and category": {"item": "bread", "category": "bakery"},
}


@pytest.mark.parametrize("fields", LEFT_OUT.values(), ids=LEFT_OUT.keys())
def test_an_offer_that_does_not_fit_is_left_out_and_the_next_is_still_read(
    fields: dict[str, Any],
) -> None:
    got = match(NEED, [_offer("misfit", **fields), _offer("fits")], now=NOW)
    assert [m.author for m in got] == ["fits"]


KEPT = {
    "one left": {"quantity": 5, "reserved": 4},
    "available until exactly now": {"available_until": NOW},
    "exactly the maximum price": {"unit_price": 300},
    "the same category, another item": {"item": "kale"},
    "the item, another category": {"item": "tomatoes", "category": "other"},
}


@pytest.mark.parametrize("fields", KEPT.values(), ids=KEPT.keys())
def test_an_offer_at_each_limit_still_fits(fields: dict[str, Any]) -> None:
    assert [m.author for m in match(NEED, [_offer("edge", **fields)], now=NOW)] == ["edge"]


def test_a_withdrawn_offer_is_left_out_whatever_it_has_left() -> None:
    assert match(NEED, [_offer("w", state="withdrawn", quantity=10**6)], now=NOW) == []


def test_an_open_offer_with_nothing_left_is_left_out_even_in_the_unit() -> None:
    assert match(NEED, [_offer("empty", quantity=3, reserved=3)], now=NOW) == []


def test_without_now_no_offer_has_expired() -> None:
    # `now` 0 (the default) means "do not judge expiry": an offer available until 0 fits.
    assert [m.author for m in match(NEED, [_offer("old", available_until=0)])] == ["old"]


def test_a_need_without_a_maximum_takes_any_price() -> None:
    need = NeedPosted(
        need="n2", item="tomatoes", category="produce", quantity=1, unit="gram",
        needed_by=NOW, area="N1",
    )  # fmt: skip
    assert [m.unit_price for m in match(need, [_offer("dear", unit_price=10**12)])] == [10**12]
