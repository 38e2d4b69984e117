"""The edges of a pooled purchase (protocol/pools.py, PROTOCOL.md §19 and §8's bounds).

Written from the spec, not read from the module's tables: the opening's bounds (a supplier
slug of 2 to 32 characters or "", a supplier name of 0 to 80, a largest total of at most
10^12 cents), the pool's states, the view before the opening is held, holds while in box
fill and closing, settlements of 0 and 1 cent, a free pool (unit price 0), the tie-break's
dependence on the organizer and the pool, the cap on cases through the fold, a refused
statement followed by a good one, and the water fill's edges. These close gaps a mutation
run found (TESTING.md, mutation testing).
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import pytest

from coopnet.protocol.body import Body
from coopnet.protocol.pools import (
    STATES,
    PoolBoxFill,
    PoolCancelled,
    PoolClosed,
    PoolCommitted,
    PoolDelivered,
    PoolOpened,
    PoolReceived,
    PoolStatement,
    PoolView,
    _water_fill,
    allocate,
    fold_pool,
)

ORG = "org"
OPENING: dict[str, Any] = {"pool": "p1", "item": "rye flour", "unit": "kilogram",
                           "case_size": 10, "unit_price": 150, "closes_at": 1,
                           "supplier": "mill"}  # fmt: skip
OPENED = msgspec.convert(OPENING, PoolOpened)


def stmt(label: str, author: str, seq: int, body: Body) -> PoolStatement:
    """A statement whose id is derived from `label` (distinct labels, distinct ids)."""
    return PoolStatement(
        id=hashlib.sha256(label.encode()).digest(), author=author, seq=seq, at=1000 + seq,
        body=body,
    )  # fmt: skip


def commit(
    label: str, author: str, seq: int, quantity: int, tolerance: int = 0, *, org: str = ORG,
    pool: str = "p1",
) -> PoolStatement:  # fmt: skip
    body = PoolCommitted(organizer=org, pool=pool, quantity=quantity, tolerance=tolerance)
    return stmt(label, author, seq, body)


def opened(seq: int = 1, body: PoolOpened = OPENED, *, org: str = ORG) -> PoolStatement:
    return stmt(f"opened-{org}-{seq}", org, seq, body)


def close(label: str, seq: int, *counted: PoolStatement | bytes, org: str = ORG,
          pool: str = "p1") -> PoolStatement:  # fmt: skip
    ids = [c if isinstance(c, bytes) else c.id for c in counted]
    return stmt(label, org, seq, PoolClosed(pool=pool, counted=ids))


def by_org(label: str, seq: int, body: Body) -> PoolStatement:
    return stmt(label, ORG, seq, body)


def delivered(label: str, seq: int) -> PoolStatement:
    return by_org(label, seq, PoolDelivered(pool="p1"))


def cancelled(label: str, seq: int) -> PoolStatement:
    return by_org(label, seq, PoolCancelled(pool="p1"))


def received(label: str, author: str, seq: int) -> PoolStatement:
    return stmt(label, author, seq, PoolReceived(organizer=ORG, pool="p1"))


def fold(*statements: PoolStatement) -> PoolView:
    return fold_pool(ORG, "p1", statements)


def opening(**changes: Any) -> PoolOpened:
    """The opening's body decoded with `changes`, as a receiver checks its shape."""
    return msgspec.convert({**OPENING, **changes}, PoolOpened)


# -- the opening's bounds (§8: pool.opened) --------------------------------------------------


@pytest.mark.parametrize("slug", ["ab", "a-", "m0", "a" * 32, "mill-2"])
def test_a_supplier_slug_of_2_to_32_characters_is_accepted(slug: str) -> None:
    assert opening(supplier=slug).supplier == slug


@pytest.mark.parametrize("slug", ["a", "a" * 33, "Mill", "2mill", "-ab", "ab\n"])
def test_a_supplier_slug_outside_its_pattern_is_refused(slug: str) -> None:
    with pytest.raises(msgspec.ValidationError):
        opening(supplier=slug)


def test_no_supplier_slug_with_a_supplier_name_is_accepted() -> None:
    body = opening(supplier="", supplier_name="Mill Co.")
    assert (body.supplier, body.supplier_name) == ("", "Mill Co.")


def test_a_supplier_name_of_80_characters_is_accepted_81_refused() -> None:
    assert opening(supplier="", supplier_name="n" * 80).supplier_name == "n" * 80
    with pytest.raises(msgspec.ValidationError):
        opening(supplier="", supplier_name="n" * 81)


def test_a_pool_totalling_exactly_10_12_cents_is_accepted() -> None:
    # 1,000 cases × 1,000 units × 1,000,000 cents = 10^12.
    body = opening(max_cases=1000, case_size=1000, unit_price=10**6)
    assert body.max_cases * body.case_size * body.unit_price == 10**12


def test_a_pool_totalling_one_cent_over_10_12_is_refused() -> None:
    # 10^12 + 1 = 73 × 137 × 99,990,001: the largest total one cent beyond the bound.
    assert 73 * 137 * 99_990_001 == 10**12 + 1
    with pytest.raises(msgspec.ValidationError, match="beyond the bound"):
        opening(max_cases=73, case_size=137, unit_price=99_990_001)


def test_without_a_cap_the_bound_counts_a_million_cases() -> None:
    # (max_cases, or 1,000,000 when 0) × case_size × unit_price <= 10^12.
    assert opening(case_size=1000, unit_price=1000).max_cases == 0
    with pytest.raises(msgspec.ValidationError):
        opening(case_size=1000, unit_price=1001)


# -- the pool's states and the view before the opening (§19) ---------------------------------


def test_the_states_are_the_specs() -> None:
    # §19, the pool's state: unknown, open, box_fill, closing, closed, cancelled, delivered.
    assert STATES == ("unknown", "open", "box_fill", "closing", "closed", "cancelled",
                      "delivered")  # fmt: skip


def test_a_view_before_its_opening_is_unknown_opened_at_0() -> None:
    view = PoolView(organizer=ORG, pool="p1")
    assert (view.state, view.opened_at, view.opened, view.cases) == ("unknown", 0, None, 0)


def test_a_fold_without_the_opening_keeps_the_pool_name() -> None:
    view = fold(commit("c", "aa", 1, 10))
    assert (view.organizer, view.pool) == (ORG, "p1")
    assert (view.state, view.opened_at, view.opened) == ("unknown", 0, None)
    assert view.holds() == {} and view.settlements() == []


def test_the_opening_time_is_the_openings() -> None:
    assert fold(opened(seq=5)).opened_at == 1005


# -- holds and settlements (§19) -------------------------------------------------------------


def test_holds_while_in_box_fill() -> None:
    aa = commit("c-aa", "aa", 1, 6, 2)
    view = fold(opened(), aa, by_org("bf", 2, PoolBoxFill(pool="p1", counted=[aa.id])))
    assert view.state == "box_fill"
    assert view.holds() == {"aa": (6 + 2) * 150}


def test_holds_while_closing() -> None:
    aa = commit("c-aa", "aa", 1, 6, 2)
    view = fold(opened(), aa, close("cl", 2, aa, b"\x07" * 32))  # one commitment not held
    assert view.state == "closing"
    assert view.holds() == {"aa": (6 + 2) * 150}


def test_a_delivered_pool_whose_allocation_is_pending_is_closing() -> None:
    # §19: closing is organizer state closed *or delivered*, the allocation pending.
    aa = commit("c-aa", "aa", 1, 10)
    view = fold(opened(), aa, close("cl", 2, aa, b"\x07" * 32), delivered("de", 3))
    assert view.organizer_state == "delivered"
    assert view.state == "closing"
    assert view.settlements() == []


def test_a_free_pool_holds_and_settles_nothing() -> None:
    free = opened(body=opening(unit_price=0))
    aa = commit("c-aa", "aa", 1, 10, 3)
    assert fold(free, aa).holds() == {}
    closed = fold(free, aa, close("cl", 2, aa))
    assert (closed.state, closed.share_of("aa")) == ("closed", 10)
    assert closed.holds() == {}
    done = fold(free, aa, close("cl", 2, aa), delivered("de", 3), received("r", "aa", 2))
    assert done.state == "delivered"
    assert done.settlements() == []  # no entry of 0 cents for the supplier nor for aa


def test_a_one_cent_pool_settles_one_cent() -> None:
    cent = opened(body=opening(case_size=1, unit_price=1))
    aa = commit("c-aa", "aa", 1, 1)
    view = fold(cent, aa, close("cl", 2, aa), delivered("de", 3), received("r", "aa", 2))
    assert view.settlements() == [(ORG, "mill", 1), ("aa", ORG, 1)]


# -- the allocation through the fold (§19) ---------------------------------------------------


def key(organizer: str, pool: str, participant: str) -> bytes:
    """§19's tie-break key, written from the spec."""
    return hashlib.sha256(f"{organizer}/{pool}/{participant}".encode()).digest()


def tie_fold(org: str, pool: str) -> PoolView:
    """aa and bb commit 1 + 1 to cases of 3: one case, one extra unit, to the first of the
    two in the tie-break order of (org, pool)."""
    body = opening(pool=pool, case_size=3)
    aa = commit("t-aa", "aa", 1, 1, 1, org=org, pool=pool)
    bb = commit("t-bb", "bb", 1, 1, 1, org=org, pool=pool)
    return fold_pool(org, pool, [opened(body=body, org=org), aa, bb,
                                 close("t-cl", 2, aa, bb, org=org, pool=pool)])  # fmt: skip


def expected_shares(org: str, pool: str) -> dict[str, int]:
    first = min(("aa", "bb"), key=lambda p: key(org, pool, p))
    return {p: 2 if p == first else 1 for p in ("aa", "bb")}


def test_the_tie_break_depends_on_the_pool() -> None:
    # The two pools of one organizer order aa and bb differently.
    assert expected_shares(ORG, "p1") != expected_shares(ORG, "p5")
    for pool in ("p1", "p5"):
        view = tie_fold(ORG, pool)
        assert view.pool == pool
        assert {s.participant: s.share for s in view.shares} == expected_shares(ORG, pool)


def test_the_tie_break_depends_on_the_organizer() -> None:
    # The pools p1 of two organizers order aa and bb differently.
    assert expected_shares("org", "p1") != expected_shares("org4", "p1")
    for org in ("org", "org4"):
        view = tie_fold(org, "p1")
        assert {s.participant: s.share for s in view.shares} == expected_shares(org, "p1")


def test_the_fold_caps_the_cases_at_max_cases() -> None:
    capped = opened(body=opening(max_cases=1))
    aa, bb = commit("c-aa", "aa", 1, 10), commit("c-bb", "bb", 1, 10)
    view = fold(capped, aa, bb, close("cl", 2, aa, bb))
    # Q = 20: two cases, capped to one; N = 10 < Q is water-filled over the quantities.
    assert view.cases == 1
    assert [(s.participant, s.share) for s in view.shares] == [("aa", 5), ("bb", 5)]


def test_a_share_keeps_the_commitments_quantity_and_tolerance() -> None:
    aa = commit("c-aa", "aa", 1, 8, 2)
    view = fold(opened(), aa, close("cl", 2, aa))
    [share] = view.shares
    assert (share.quantity, share.tolerance, share.share, share.commitment) == (8, 2, 10, aa.id)


def test_a_pool_cancelled_after_its_close_shares_nothing() -> None:
    aa = commit("c-aa", "aa", 1, 10)
    view = fold(opened(), aa, close("cl", 2, aa), cancelled("ca", 3))
    assert view.state == "cancelled"
    assert (view.cases, view.shares, view.share_of("aa")) == (0, [], 0)
    assert view.holds() == {} and view.settlements() == []


def test_a_receipt_of_a_pool_cancelled_while_open_is_refused() -> None:
    got = received("r", "aa", 2)
    view = fold(opened(), commit("c-aa", "aa", 1, 10), cancelled("ca", 2), got)
    assert view.state == "cancelled"
    assert view.refused == [(got.id, "not_authorized")]


def test_a_close_after_a_box_fill_may_fill_up_to_the_cases_begun() -> None:
    # Box fill Q0 = 8 + 7 = 15: ceil(15 / 10) = 2 cases, so the close counts up to 20.
    aa, bb = commit("c-aa", "aa", 1, 8), commit("c-bb", "bb", 1, 7)
    raised = commit("c-aa2", "aa", 2, 13)
    fill = by_org("bf", 2, PoolBoxFill(pool="p1", counted=[aa.id, bb.id]))
    view = fold(opened(), aa, bb, fill, raised, close("cl", 3, raised, bb))
    assert view.refused == []
    assert view.state == "closed"
    assert (view.cases, view.share_of("aa"), view.share_of("bb")) == (2, 13, 7)
    over = commit("c-aa3", "aa", 2, 14)
    view = fold(opened(), aa, bb, fill, over, close("cl", 3, over, bb))
    assert view.state == "box_fill"  # 21 > 20: the close is refused


# -- a refused statement is skipped, the next judged (§19) -----------------------------------


def test_a_good_opening_after_a_refused_one_opens() -> None:
    itself = opened(seq=1, body=opening(supplier=ORG))
    view = fold(itself, opened(seq=2))
    assert view.refused == [(itself.id, "not_authorized")]
    assert (view.state, view.opened_at) == ("open", 1002)


def test_a_good_close_after_a_refused_one_closes() -> None:
    aa = commit("c-aa", "aa", 1, 10)
    first = opened()
    bad = close("cl-bad", 2, first.id)  # names the opening: not a commitment
    view = fold(first, aa, bad, close("cl", 3, aa))
    assert view.refused == [(bad.id, "not_authorized")]
    assert (view.state, view.cases, view.share_of("aa")) == ("closed", 1, 10)


def test_a_cancel_after_a_refused_delivery_cancels() -> None:
    small = commit("small", "aa", 1, 4)  # 4 < one case: below the minimum of 1
    refused = delivered("de", 3)
    view = fold(opened(), small, close("cl", 2, small), refused, cancelled("ca", 4))
    assert view.refused == [(refused.id, "not_authorized")]
    assert (view.organizer_state, view.state) == ("cancelled", "cancelled")


# -- allocate's refusals and the water fill's edges (§19) ------------------------------------


def test_allocate_refuses_a_case_size_below_1() -> None:
    with pytest.raises(ValueError, match=r"^case size 0 is below 1$"):
        allocate(ORG, "p1", 0, 0, [("aa", 1, 0)])


def test_allocate_refuses_two_commitments_of_one_participant() -> None:
    with pytest.raises(ValueError) as raised:
        allocate(ORG, "p1", 10, 0, [("aa", 1, 0), ("aa", 2, 0)])
    assert str(raised.value) == "at most one commitment per participant"


@pytest.mark.parametrize(("q", "t"), [(-1, 0), (0, -1), (-1, -1)])
def test_allocate_refuses_a_negative_quantity_or_tolerance(q: int, t: int) -> None:
    with pytest.raises(ValueError) as raised:
        allocate(ORG, "p1", 10, 0, [("bb", 5, 5), ("aa", q, t)])
    assert str(raised.value) == f"aa: quantity {q} and tolerance {t} must be >= 0"


@pytest.mark.parametrize(("amount", "caps"), [(-1, [3]), (4, [3]), (1, [0]), (1, [])])
def test_the_water_fill_refuses_what_does_not_fit(amount: int, caps: list[int]) -> None:
    with pytest.raises(ValueError) as raised:
        _water_fill(amount, caps, list(range(len(caps))))
    assert str(raised.value) == f"cannot spread {amount} units over capacities {caps}"


@pytest.mark.parametrize(
    ("amount", "caps", "order", "out"),
    [
        (0, [], [], []),
        (0, [0], [0], [0]),
        (0, [0, 4], [1, 0], [0, 0]),
        (3, [0, 4], [0, 1], [0, 3]),
        (6, [2, 2, 5], [2, 1, 0], [2, 2, 2]),  # exactly at level 2
        (3, [2, 2, 5], [2, 1, 0], [1, 1, 1]),  # exactly at level 1
        (4, [2, 2, 5], [2, 1, 0], [1, 1, 2]),  # level 1, one left: to the first in order
        (4, [2, 2, 5], [0, 1, 2], [2, 1, 1]),
        (9, [2, 2, 5], [0, 1, 2], [2, 2, 5]),  # all of it: the top level
        (7, [1, 6], [1, 0], [1, 6]),
    ],
)  # fmt: skip
def test_the_water_fill_at_its_edges(
    amount: int, caps: list[int], order: list[int], out: list[int]
) -> None:
    assert _water_fill(amount, caps, order) == out
