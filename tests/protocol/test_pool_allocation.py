"""The allocation rule of a pooled purchase (protocol/pools.py `allocate`, PROTOCOL.md §19).

Expected values are worked by hand from the rule of §19: cases
c = min(floor((Q + T) / s), ceil(Q / s)) (and the cap), N = c × s; if N >= Q the E = N - Q
extra units are water-filled over the tolerances, else N is water-filled over the
quantities; the units left after the level go one each in the order of
SHA-256("<organizer>/<pool>/<participant>"), lowest first. Then the properties, for any
commitments (hypothesis).
"""

from __future__ import annotations

import hashlib
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coopnet.protocol.body import Body
from coopnet.protocol.pools import (
    PoolClosed,
    PoolCommitted,
    PoolOpened,
    PoolStatement,
    allocate,
    fold_pool,
)


def key(organizer: str, pool: str, participant: str) -> bytes:
    """§19's tie-break key, written from the spec."""
    return hashlib.sha256(f"{organizer}/{pool}/{participant}".encode()).digest()


def first_of(organizer: str, pool: str, *participants: str) -> str:
    return min(participants, key=lambda p: key(organizer, pool, p))


def test_the_acceptance_example() -> None:
    """Case size 10; A 3 + 2, B 4 + 1, C 2 + 0: Q = 9, T = 3, so c = min(12 // 10, ceil(9 /
    10)) = 1 case, N = 10, E = 1. Tolerances 2, 1, 0: level L = 0 (sum min(t, 1) = 2 > 1),
    R = 1 unit left, to whichever of A and B comes first in the tie-break order."""
    out = allocate("oakley", "flour-1", 10, 0, [("aa", 3, 2), ("bb", 4, 1), ("cc", 2, 0)])
    assert out.cases == 1
    assert sum(out.shares.values()) == 10
    first = first_of("oakley", "flour-1", "aa", "bb")
    assert out.shares == ({"aa": 4, "bb": 4, "cc": 2} if first == "aa" else
                          {"aa": 3, "bb": 5, "cc": 2})  # fmt: skip
    for name, q, t in (("aa", 3, 2), ("bb", 4, 1), ("cc", 2, 0)):
        assert q <= out.shares[name] <= q + t
    extra_a, extra_b = out.shares["aa"] - 3, out.shares["bb"] - 4
    assert abs(extra_a - extra_b) <= 1


def test_the_acceptance_example_for_both_tie_break_outcomes() -> None:
    """The same commitments in pools whose tie-break favours A in one and B in the other."""
    pools = [f"p-{i}" for i in range(40)]
    favour_a = next(p for p in pools if first_of("oakley", p, "aa", "bb") == "aa")
    favour_b = next(p for p in pools if first_of("oakley", p, "aa", "bb") == "bb")
    rows = [("aa", 3, 2), ("bb", 4, 1), ("cc", 2, 0)]
    assert allocate("oakley", favour_a, 10, 0, rows).shares == {"aa": 4, "bb": 4, "cc": 2}
    assert allocate("oakley", favour_b, 10, 0, rows).shares == {"aa": 3, "bb": 5, "cc": 2}


@pytest.mark.parametrize(
    ("size", "cap", "rows", "cases", "shares"),
    [
        # Tolerance completes a case the quantities began: Q 9, T 2, c = min(1, 1) = 1.
        (10, 0, [("aa", 6, 2), ("bb", 3, 0)], 1, {"aa": 7, "bb": 3}),
        # ... and never buys a case alone: Q 1, T 20, c = min(2, 1) = 1, E 9 to aa.
        (10, 0, [("aa", 1, 20)], 1, {"aa": 10}),
        (10, 0, [("aa", 0, 20)], 0, {"aa": 0}),  # Q 0: ceil(0 / 10) = 0 cases
        # Not enough to fill a case: c = min(floor(9 / 10), 1) = 0, nobody gets anything.
        (10, 0, [("aa", 6, 0), ("bb", 3, 0)], 0, {"aa": 0, "bb": 0}),
        # Q 25, T 5: c = min(3, 3) = 3, N 30, all tolerance used.
        (10, 0, [("aa", 20, 3), ("bb", 5, 2)], 3, {"aa": 23, "bb": 7}),
        # Q 25, T 4: c = min(2, 3) = 2, N 20 < Q: 20 water-filled over 20 and 5: L 15.
        (10, 0, [("aa", 20, 3), ("bb", 5, 1)], 2, {"aa": 15, "bb": 5}),
        # The cap: Q 15, c = min(1, 2, 1) = 1, N 10 over 8 and 7: L 5, R 0.
        (10, 1, [("aa", 8, 0), ("bb", 7, 0)], 1, {"aa": 5, "bb": 5}),
        # N 10 over 8 and 3: L 7 (7 + 3 = 10), the small one whole.
        (10, 1, [("aa", 8, 0), ("bb", 3, 0)], 1, {"aa": 7, "bb": 3}),
        # No commitments: no case.
        (10, 0, [], 0, {}),
        # Exactly whole cases, no tolerance needed: E 0.
        (5, 0, [("aa", 5, 9), ("bb", 5, 9)], 2, {"aa": 5, "bb": 5}),
        # Water-filling the tolerances: E 8 over 1, 5, 5: L 3 (1 + 3 + 3 = 7), R 1.
        (10, 0, [("aa", 1, 1), ("bb", 1, 5), ("cc", 0, 5)], 1, None),
    ],
)
def test_worked_examples(
    size: int,
    cap: int,
    rows: list[tuple[str, int, int]],
    cases: int,
    shares: dict[str, int] | None,
) -> None:
    out = allocate("oakley", "p1", size, cap, rows)
    assert out.cases == cases
    if shares is None:  # the last one: the leftover unit follows the tie-break
        first = first_of("oakley", "p1", "bb", "cc")
        shares = {"aa": 2, "bb": 4, "cc": 3}
        shares[first] += 1
    assert out.shares == shares


def test_water_filling_the_quantities_gives_the_leftover_by_the_tie_break() -> None:
    """Cap 1, case 10, three quantities of 6: L 3 (9 <= 10 < 12), R 1, to the first key."""
    rows = [("aa", 6, 0), ("bb", 6, 0), ("cc", 6, 0)]
    out = allocate("oakley", "p1", 10, 1, rows)
    first = first_of("oakley", "p1", "aa", "bb", "cc")
    assert out.shares == {n: 4 if n == first else 3 for n in ("aa", "bb", "cc")}


def test_at_most_a_million_cases_even_without_a_cap() -> None:
    out = allocate("oakley", "p1", 1, 0, [("aa", 3_000_000, 0)])
    assert out.cases == 1_000_000
    assert out.shares == {"aa": 1_000_000}


def test_two_commitments_of_one_participant_are_refused() -> None:
    with pytest.raises(ValueError, match="one commitment per participant"):
        allocate("oakley", "p1", 10, 0, [("aa", 3, 0), ("aa", 4, 0)])


# -- the properties, for any commitments ----------------------------------------------------

names = st.sampled_from(["aa", "bb", "cc", "dd", "ee", "ff", "gg", "hh"])
commitments = st.lists(
    st.tuples(names, st.integers(0, 60), st.integers(0, 30)),
    max_size=8,
    unique_by=lambda c: c[0],
)
sizes = st.integers(1, 25)
caps = st.integers(0, 6)


def expected_cases(size: int, cap: int, rows: list[tuple[str, int, int]]) -> int:
    """The largest c with c × s <= Q + T (tolerance only completes), (c - 1) × s < Q (it
    never buys a case of its own) and c <= cap when set: found by counting up."""
    q = sum(r[1] for r in rows)
    t = sum(r[2] for r in rows)
    c = 0
    while (c + 1) * size <= q + t and c * size < q and (cap == 0 or c + 1 <= cap):
        c += 1
    return c


@given(sizes, caps, commitments)
def test_shares_sum_to_whole_cases(size: int, cap: int, rows: list[tuple[str, int, int]]) -> None:
    out = allocate("oakley", "p1", size, cap, rows)
    assert sum(out.shares.values()) == out.cases * size
    assert set(out.shares) == {r[0] for r in rows}


@given(sizes, caps, commitments)
def test_no_share_below_zero_nor_above_quantity_plus_tolerance(
    size: int, cap: int, rows: list[tuple[str, int, int]]
) -> None:
    out = allocate("oakley", "p1", size, cap, rows)
    for name, q, t in rows:
        assert 0 <= out.shares[name] <= q + t


@given(sizes, caps, commitments)
def test_the_number_of_cases_is_the_largest_the_rule_allows(
    size: int, cap: int, rows: list[tuple[str, int, int]]
) -> None:
    out = allocate("oakley", "p1", size, cap, rows)
    assert out.cases == expected_cases(size, cap, rows)
    q = sum(r[1] for r in rows)
    assert out.cases <= math.ceil(q / size)


@given(sizes, caps, commitments)
def test_tolerance_used_is_spread_evenly(
    size: int, cap: int, rows: list[tuple[str, int, int]]
) -> None:
    """When the cases hold every quantity, each gets its quantity and an extra: the extra
    of a participant not capped at its tolerance is at most one below anyone's, and the
    one above goes to the earlier tie-break key. Otherwise the quantities are cut the same
    way: a share below its quantity is at most one below any other share."""
    out = allocate("oakley", "p1", size, cap, rows)
    q_total = sum(r[1] for r in rows)
    if out.cases * size >= q_total:
        extra = {n: out.shares[n] - q for n, q, _ in rows}
        assert all(e >= 0 for e in extra.values())
        tol = {n: t for n, _, t in rows}
        for i in extra:
            if extra[i] < tol[i]:  # not capped: could have taken more
                for j in extra:
                    assert extra[j] <= extra[i] + 1
                    if extra[j] == extra[i] + 1:
                        assert key("oakley", "p1", j) < key("oakley", "p1", i)
    else:
        qty = {n: q for n, q, _ in rows}
        assert all(out.shares[n] <= qty[n] for n in qty)  # no tolerance used
        for i in qty:
            if out.shares[i] < qty[i]:
                for j in qty:
                    assert out.shares[j] <= out.shares[i] + 1
                    if out.shares[j] == out.shares[i] + 1:
                        assert key("oakley", "p1", j) < key("oakley", "p1", i)


@given(sizes, caps, commitments, st.randoms(use_true_random=False))
def test_every_order_of_the_commitments_gives_the_same_allocation(
    size: int, cap: int, rows: list[tuple[str, int, int]], rnd: random.Random
) -> None:
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    assert allocate("oakley", "p1", size, cap, rows) == allocate(
        "oakley", "p1", size, cap, shuffled
    )


# -- below the minimum, the pool is cancelled -----------------------------------------------


def _stmt(n: int, author: str, seq: int, body: Body) -> PoolStatement:
    return PoolStatement(id=bytes([n]) * 32, author=author, seq=seq, at=seq, body=body)


@given(sizes, st.integers(1, 4), commitments)
def test_a_close_below_the_minimum_cancels_and_shares_nothing(
    size: int, min_cases: int, rows: list[tuple[str, int, int]]
) -> None:
    opened = PoolOpened(pool="p1", item="rye", unit="kilogram", case_size=size, unit_price=7,
                        min_cases=min_cases, closes_at=1, supplier_name="Farm")  # fmt: skip
    stmts = [_stmt(1, "oakley", 1, opened)]
    for n, (name, q, t) in enumerate(rows, start=10):
        body = PoolCommitted(organizer="oakley", pool="p1", quantity=q, tolerance=t)
        stmts.append(_stmt(n, name, 1, body))
    stmts.append(_stmt(2, "oakley", 2, PoolClosed(pool="p1", counted=[s.id for s in stmts[1:]])))
    view = fold_pool("oakley", "p1", stmts)
    cases = expected_cases(size, 0, rows)
    if cases < min_cases:
        assert view.state == "cancelled"
        assert view.cases == 0 and view.shares == []
        assert view.settlements() == [] and view.holds() == {}
    else:
        assert view.state == "closed"
        assert view.cases == cases
        assert sum(s.share for s in view.shares) == cases * size
