"""A pooled purchase's lifecycle (protocol/pools.py `fold_pool`, PROTOCOL.md §19).

Written from §19, not read from the module's tables: the organizer's transitions (every
cell, each driven by events), the pool's states, the close and box-fill checks, receipts
before and after delivery, what settles and what is held, worked by hand, and that the
order statements arrive in never matters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coopnet.protocol.body import Body
from coopnet.protocol.ledger import Ledger
from coopnet.protocol.pools import (
    ORGANIZER_TABLE,
    PoolBoxFill,
    PoolCancelled,
    PoolClosed,
    PoolCommitted,
    PoolDelivered,
    PoolOpened,
    PoolReceived,
    PoolStatement,
    PoolView,
    fold_pool,
    pool_key,
)
from coopnet.protocol.trades import TradeReceived

ORG = "org"
PRICE = 150  # cents per unit
OPENED = PoolOpened(pool="p1", item="rye flour", unit="kilogram", case_size=10,
                    unit_price=PRICE, closes_at=1, supplier="mill")  # fmt: skip


def stmt(label: str, author: str, seq: int, body: Body) -> PoolStatement:
    """A statement whose id is derived from `label` (distinct labels, distinct ids)."""
    return PoolStatement(
        id=hashlib.sha256(label.encode()).digest(), author=author, seq=seq, at=1000 + seq,
        body=body,
    )  # fmt: skip


def commit(label: str, author: str, seq: int, quantity: int, tolerance: int = 0) -> PoolStatement:
    body = PoolCommitted(organizer=ORG, pool="p1", quantity=quantity, tolerance=tolerance)
    return stmt(label, author, seq, body)


def opened(seq: int = 1, body: PoolOpened = OPENED) -> PoolStatement:
    return stmt(f"opened-{seq}", ORG, seq, body)


def close(label: str, seq: int, *counted: PoolStatement | bytes) -> PoolStatement:
    ids = [c if isinstance(c, bytes) else c.id for c in counted]
    return stmt(label, ORG, seq, PoolClosed(pool="p1", counted=ids))


def box_fill(label: str, seq: int, *counted: PoolStatement) -> PoolStatement:
    return stmt(label, ORG, seq, PoolBoxFill(pool="p1", counted=[c.id for c in counted]))


def by_org(label: str, seq: int, body: Body) -> PoolStatement:
    return stmt(label, ORG, seq, body)


def received(label: str, author: str, seq: int) -> PoolStatement:
    return stmt(label, author, seq, PoolReceived(organizer=ORG, pool="p1"))


def fold(*statements: PoolStatement) -> PoolView:
    return fold_pool(ORG, "p1", statements)


# -- the organizer's table, from §19 ---------------------------------------------------------

ORGANIZER_KINDS = ("pool.opened", "pool.box_fill", "pool.closed", "pool.cancelled",
                   "pool.delivered")  # fmt: skip
# §19: none -opened-> open; open -box_fill-> box_fill; open|box_fill -closed-> closed;
# open|box_fill|closed -cancelled-> cancelled; closed -delivered-> delivered.
SPEC_TABLE = {
    "none": {"pool.opened": "open"},
    "open": {"pool.box_fill": "box_fill", "pool.closed": "closed",
             "pool.cancelled": "cancelled"},
    "box_fill": {"pool.closed": "closed", "pool.cancelled": "cancelled"},
    "closed": {"pool.cancelled": "cancelled", "pool.delivered": "delivered"},
    "cancelled": {},
    "delivered": {},
}  # fmt: skip

C_AA = commit("c-aa", "aa", 1, 10)  # one whole case: above the minimum of 1


def path_to(state: str) -> list[PoolStatement]:
    """The organizer's statements (seq 1...) that bring the pool to `state`, by hand."""
    return {
        "none": [],
        "open": [opened()],
        "box_fill": [opened(), box_fill("bf", 2, C_AA)],
        "closed": [opened(), close("cl", 2, C_AA)],
        "cancelled": [opened(), by_org("ca", 2, PoolCancelled(pool="p1"))],
        "delivered": [opened(), close("cl", 2, C_AA), by_org("de", 3, PoolDelivered(pool="p1"))],
    }[state]


def next_event(kind: str, seq: int) -> PoolStatement:
    make: dict[str, Callable[[], PoolStatement]] = {
        "pool.opened": lambda: opened(seq),
        "pool.box_fill": lambda: box_fill("next", seq, C_AA),
        "pool.closed": lambda: close("next", seq, C_AA),
        "pool.cancelled": lambda: by_org("next", seq, PoolCancelled(pool="p1", reason="late")),
        "pool.delivered": lambda: by_org("next", seq, PoolDelivered(pool="p1")),
    }
    return make[kind]()


def test_the_modules_table_is_the_specs() -> None:
    assert ORGANIZER_TABLE == SPEC_TABLE


@pytest.mark.parametrize("kind", ORGANIZER_KINDS)
@pytest.mark.parametrize("state", list(SPEC_TABLE))
def test_every_cell_of_the_organizer_table(state: str, kind: str) -> None:
    before = path_to(state)
    assert fold(C_AA, *before).organizer_state == state  # the path gets there
    event = next_event(kind, len(before) + 1)
    view = fold(C_AA, *before, event)
    expected = SPEC_TABLE[state].get(kind)
    if expected is None:
        assert (event.id, "not_authorized") in view.refused
        assert view.organizer_state == state
    else:
        assert all(r[0] != event.id for r in view.refused), view.refused
        assert view.organizer_state == expected


@pytest.mark.parametrize("kind", ORGANIZER_KINDS)
def test_only_the_organizer_signs_the_organizers_kinds(kind: str) -> None:
    theirs = next_event(kind, 1)
    theirs = PoolStatement(id=b"\x09" * 32, author="aa", seq=5, at=1, body=theirs.body)
    view = fold(opened(), C_AA, theirs)
    assert view.refused == [(theirs.id, "not_authorized")]
    assert view.organizer_state == "open"


def test_an_organizer_cannot_buy_from_itself() -> None:
    own = PoolOpened(pool="p1", item="rye", unit="kilogram", case_size=10, unit_price=1,
                     closes_at=1, supplier=ORG)  # fmt: skip
    first = opened(1, own)
    view = fold(first)
    assert view.refused == [(first.id, "not_authorized")]
    assert (view.organizer_state, view.state, view.opened) == ("none", "unknown", None)


def test_statements_before_the_opening_is_held_wait_for_it() -> None:
    """Participants' statements held before the organizer's opening: nothing refused."""
    view = fold(commit("c1", "aa", 1, 3, 2), received("r1", "bb", 1))
    assert (view.state, view.organizer_state, view.refused) == ("unknown", "none", [])
    assert view.latest == {"aa": (3, 2)}
    assert view.holds() == {} and view.settlements() == []


def test_the_organizers_own_statements_before_its_opening_are_refused() -> None:
    early = by_org("early", 1, PoolCancelled(pool="p1"))
    view = fold(early, opened(2))
    assert view.refused == [(early.id, "not_authorized")]
    assert view.state == "open"


def test_the_latest_commitment_of_each_participant_is_its_own_log_order() -> None:
    view = fold(opened(), commit("a2", "aa", 7, 5, 1), commit("a1", "aa", 3, 9, 9),
                commit("b1", "bb", 2, 0, 0))  # fmt: skip
    assert view.latest == {"aa": (5, 1), "bb": (0, 0)}
    assert view.state == "open" and view.refused == []


def test_pool_key_names_the_organizer_and_the_pool() -> None:
    assert pool_key(ORG, OPENED) == (ORG, "p1")
    assert pool_key(ORG, PoolDelivered(pool="p1")) == (ORG, "p1")
    assert pool_key("aa", C_AA.body) == (ORG, "p1")
    assert pool_key("aa", PoolReceived(organizer=ORG, pool="p1")) == (ORG, "p1")
    assert pool_key("aa", TradeReceived(buyer="aa", trade="t1")) is None


# -- the close check --------------------------------------------------------------------------


def test_a_close_counting_commitments_not_held_yet_is_closing_not_refused() -> None:
    later = commit("later", "bb", 1, 10)
    closed = close("cl", 2, C_AA, later)
    view = fold(opened(), C_AA, closed)
    assert (view.organizer_state, view.state, view.refused) == ("closed", "closing", [])
    assert view.shares == [] and view.cases == 0
    view = fold(opened(), C_AA, closed, later)
    assert view.state == "closed"
    assert view.cases == 2
    assert [(s.participant, s.share, s.commitment) for s in view.shares] == [
        ("aa", 10, C_AA.id), ("bb", 10, later.id),
    ]  # fmt: skip


def test_a_close_naming_an_event_that_is_not_a_commitment_is_refused() -> None:
    start = opened()
    closed = close("cl", 2, C_AA, start.id)  # the opening itself
    view = fold(start, C_AA, closed)
    assert view.refused == [(closed.id, "not_authorized")]
    assert view.organizer_state == "open"


def test_a_close_naming_two_commitments_of_one_author_is_refused() -> None:
    again = commit("again", "aa", 2, 4)
    closed = close("cl", 2, C_AA, again)
    view = fold(opened(), C_AA, again, closed)
    assert view.refused == [(closed.id, "not_authorized")]
    # ... once both are held: with one of them, the close is still pending.
    assert fold(opened(), C_AA, closed).state == "closing"


def test_a_close_naming_one_id_twice_is_refused() -> None:
    closed = close("cl", 2, C_AA, C_AA)
    assert fold(opened(), C_AA, closed).refused == [(closed.id, "not_authorized")]


def test_the_close_counts_the_commitment_it_names_not_the_latest() -> None:
    raised = commit("raised", "aa", 2, 20)
    view = fold(opened(), C_AA, raised, close("cl", 2, C_AA))
    assert view.latest == {"aa": (20, 0)}
    assert [(s.participant, s.quantity, s.share) for s in view.shares] == [("aa", 10, 10)]


def test_a_close_counting_nothing_is_below_the_minimum() -> None:
    view = fold(opened(), C_AA, close("cl", 2))
    assert (view.organizer_state, view.state, view.cases) == ("closed", "cancelled", 0)


# -- box fill -----------------------------------------------------------------------------------

A3 = commit("a3", "aa", 1, 3)
B4 = commit("b4", "bb", 1, 4)  # box fill of 3 + 4 = 7: the open case holds up to 10


@pytest.mark.parametrize(
    ("raises", "ok"),
    [
        ({"aa": 5}, True),  # 5 + 4 = 9 <= 10
        ({"aa": 6}, True),  # 6 + 4 = 10: fills the case
        ({"aa": 6, "bb": 5}, False),  # 11 > 10: a raise beyond the open case
        ({"aa": 2}, False),  # below its box-fill quantity
        ({"aa": 3}, True),  # unchanged
    ],
)
def test_after_a_box_fill_only_raises_that_fill_the_open_case(
    raises: dict[str, int], ok: bool
) -> None:
    counted = {"aa": A3, "bb": B4}
    for who, quantity in raises.items():
        counted[who] = commit(f"{who}-raise", who, 2, quantity)
    closed = close("cl", 3, *counted.values())
    view = fold(opened(), A3, B4, *counted.values(), box_fill("bf", 2, A3, B4), closed)
    if ok:
        assert view.refused == [] and view.organizer_state == "closed"
    else:
        assert view.refused == [(closed.id, "not_authorized")]
        assert view.organizer_state == "box_fill"


def test_after_a_box_fill_no_new_participant_is_counted() -> None:
    c3 = commit("c3", "cc", 1, 3)
    closed = close("cl", 3, A3, B4, c3)  # 3 + 4 + 3 = 10, but cc was not in the box fill
    view = fold(opened(), A3, B4, c3, box_fill("bf", 2, A3, B4), closed)
    assert view.refused == [(closed.id, "not_authorized")]


def test_a_box_fill_of_whole_cases_admits_no_raise() -> None:
    """Q0 = 10 fills its case: the bound is 10 × ceil(10 / 10) = 10."""
    a6 = commit("a6", "aa", 1, 6)
    a7 = commit("a7", "aa", 2, 7)
    closed = close("cl", 3, a7, B4)
    view = fold(opened(), a6, a7, B4, box_fill("bf", 2, a6, B4), closed)
    assert view.refused == [(closed.id, "not_authorized")]


def test_a_box_fill_not_held_whole_leaves_the_close_pending() -> None:
    late = commit("late", "bb", 1, 4)
    view = fold(opened(), A3, box_fill("bf", 2, A3, late), close("cl", 3, A3))
    assert (view.state, view.refused) == ("closing", [])
    view = fold(opened(), A3, late, box_fill("bf", 2, A3, late), close("cl", 3, A3))
    assert view.state == "cancelled"  # 3 units: no whole case, below the minimum of 1


def test_a_box_fill_naming_a_non_commitment_is_refused_and_binds_nothing() -> None:
    start = opened()
    bad = stmt("bf", ORG, 2, PoolBoxFill(pool="p1", counted=[start.id]))
    closed = close("cl", 3, C_AA)
    view = fold(start, C_AA, bad, closed)
    assert view.refused == [(bad.id, "not_authorized")]
    assert view.state == "closed"  # the close is judged as if there were no box fill


def test_a_second_box_fill_is_refused() -> None:
    second = box_fill("bf2", 3, A3)
    view = fold(opened(), A3, box_fill("bf", 2, A3), second)
    assert view.refused == [(second.id, "not_authorized")]


# -- receipts -------------------------------------------------------------------------------------


def test_a_receipt_before_delivery_is_held_then_counts() -> None:
    got = received("r", "aa", 2)
    view = fold(opened(), C_AA, close("cl", 2, C_AA), got)
    assert (view.state, view.received, view.refused) == ("closed", set(), [])
    view = fold(
        opened(), C_AA, close("cl", 2, C_AA), got, by_org("de", 3, PoolDelivered(pool="p1"))
    )
    assert (view.state, view.received, view.refused) == ("delivered", {"aa"}, [])


def test_a_receipt_while_the_allocation_is_pending_is_held() -> None:
    got = received("r", "aa", 2)
    view = fold(opened(), close("cl", 2, C_AA), got)
    assert (view.state, view.received, view.refused) == ("closing", set(), [])


def test_a_receipt_with_no_share_is_refused() -> None:
    got = received("r", "cc", 1)  # cc committed nothing counted
    view = fold(opened(), C_AA, close("cl", 2, C_AA), got)
    assert view.refused == [(got.id, "not_authorized")]


def test_a_receipt_of_a_zero_share_is_refused() -> None:
    zero = commit("zero", "bb", 1, 0)
    got = received("r", "bb", 2)
    view = fold(opened(), C_AA, zero, close("cl", 2, C_AA, zero), got)
    assert view.share_of("bb") == 0
    assert view.refused == [(got.id, "not_authorized")]


@pytest.mark.parametrize("how", ["cancelled", "below minimum"])
def test_a_receipt_of_a_cancelled_pool_is_refused(how: str) -> None:
    got = received("r", "aa", 2)
    if how == "cancelled":
        view = fold(
            opened(), C_AA, close("cl", 2, C_AA), by_org("ca", 3, PoolCancelled(pool="p1")), got
        )
    else:
        small = commit("small", "aa", 1, 4)
        view = fold(opened(), small, close("cl", 2, small), got)
    assert view.state == "cancelled"
    assert view.refused == [(got.id, "not_authorized")]


def test_a_second_receipt_is_refused() -> None:
    first, second = received("r1", "aa", 2), received("r2", "aa", 3)
    view = fold(opened(), C_AA, close("cl", 2, C_AA), by_org("de", 3, PoolDelivered(pool="p1")),
                second, first)  # fmt: skip
    assert view.received == {"aa"}
    assert view.refused == [(second.id, "not_authorized")]


def test_delivering_a_pool_closed_below_its_minimum_is_refused() -> None:
    small = commit("small", "aa", 1, 4)
    delivered = by_org("de", 3, PoolDelivered(pool="p1"))
    view = fold(opened(), small, close("cl", 2, small), delivered)
    assert view.refused == [(delivered.id, "not_authorized")]
    assert (view.organizer_state, view.state) == ("closed", "cancelled")


# -- settlement and holds, worked by hand --------------------------------------------------------
#
# Case 10 at 150 cents. aa commits 3 + 2, bb 4 + 1, the organizer itself 2 + 0: Q 9, T 3,
# one case, one unit of tolerance, to the first of aa and bb by the tie-break. The organizer
# pays the member supplier 1 × 10 × 150 = 1500 on delivery; aa and bb each pay their
# share × 150 when they confirm; the organizer pays itself nothing.

AA = commit("aa", "aa", 1, 3, 2)
BB = commit("bb", "bb", 1, 4, 1)
OO = commit("oo", ORG, 2, 2, 0)


def _first(*names: str) -> str:
    return min(names, key=lambda n: hashlib.sha256(f"{ORG}/p1/{n}".encode()).digest())


SHARES = {"aa": 4, "bb": 4, ORG: 2} if _first("aa", "bb") == "aa" else {"aa": 3, "bb": 5, ORG: 2}
CLOSED = close("cl", 3, AA, BB, OO)
DELIVERED = by_org("de", 4, PoolDelivered(pool="p1"))


def test_holds_while_open_are_quantity_plus_tolerance() -> None:
    view = fold(opened(), AA, BB, OO)
    assert view.holds() == {"aa": 5 * 150, "bb": 5 * 150}  # none for the organizer
    assert view.settlements() == []


def test_a_withdrawn_commitment_holds_nothing() -> None:
    view = fold(opened(), AA, commit("aa-out", "aa", 2, 0, 0))
    assert view.holds() == {}


def test_holds_once_closed_are_the_shares() -> None:
    view = fold(opened(), AA, BB, OO, CLOSED)
    assert {s.participant: s.share for s in view.shares} == SHARES
    assert view.holds() == {"aa": SHARES["aa"] * 150, "bb": SHARES["bb"] * 150}
    assert view.settlements() == []


def test_delivery_and_receipts_settle() -> None:
    view = fold(opened(), AA, BB, OO, CLOSED, DELIVERED)
    assert view.settlements() == [(ORG, "mill", 1500)]
    assert view.holds() == {"aa": SHARES["aa"] * 150, "bb": SHARES["bb"] * 150}
    got_a, got_o = received("ra", "aa", 2), received("ro", ORG, 5)
    view = fold(opened(), AA, BB, OO, CLOSED, DELIVERED, got_a, got_o)
    assert view.settlements() == [(ORG, "mill", 1500), ("aa", ORG, SHARES["aa"] * 150)]
    assert view.holds() == {"bb": SHARES["bb"] * 150}
    assert view.received == {"aa", ORG}


def test_the_ledger_with_a_pool_and_a_trade_sums_to_zero() -> None:
    got = [received("ra", "aa", 2), received("rb", "bb", 2)]
    view = fold(opened(), AA, BB, OO, CLOSED, DELIVERED, *got)
    trades = [("aa", "mill", 999), ("mill", ORG, 12)]  # (buyer, seller, cents)
    ledger = Ledger([*view.settlements(), *trades])
    assert ledger.total() == 0
    # The organizer received 8 units' worth and paid for 10: it paid for its own 2 units.
    assert ledger.balance_of(ORG) == 8 * 150 - 1500 + 12
    assert ledger.balance_of("mill") == 1500 + 999 - 12


def test_a_supplier_outside_the_federation_is_paid_by_no_entry() -> None:
    outside = PoolOpened(pool="p1", item="rye flour", unit="kilogram", case_size=10,
                         unit_price=PRICE, closes_at=1, supplier_name="Mill Lane Farm")  # fmt: skip
    view = fold(opened(1, outside), AA, BB, OO, CLOSED, DELIVERED, received("ra", "aa", 2))
    assert view.settlements() == [("aa", ORG, SHARES["aa"] * 150)]


def test_a_cancelled_pool_holds_and_settles_nothing() -> None:
    view = fold(opened(), AA, BB, OO, CLOSED, by_org("ca", 4, PoolCancelled(pool="p1")))
    assert view.state == "cancelled"
    assert view.holds() == {} and view.settlements() == []


def test_holds_never_exceed_what_the_pool_can_buy() -> None:
    """(quantity + tolerance) counts at most max_cases × case_size units."""
    capped = PoolOpened(pool="p1", item="rye", unit="kilogram", case_size=10, unit_price=PRICE,
                        max_cases=2, closes_at=1, supplier="mill")  # fmt: skip
    view = fold(opened(1, capped), commit("big", "aa", 1, 10**9, 10**9))
    assert view.holds() == {"aa": 20 * 150}


# -- the order statements arrive in does not matter ----------------------------------------------

LIFECYCLE = [
    opened(1), OO, box_fill("bf", 3, AA, BB, OO), close("cl-4", 4, AA, BB, OO),
    by_org("de-5", 5, PoolDelivered(pool="p1")), by_org("late-open", 6, OPENED),
    AA, commit("aa-2", "aa", 2, 6, 0), received("ra", "aa", 3), received("ra2", "aa", 4),
    BB, received("rb", "bb", 2), stmt("x", "bb", 3, PoolCancelled(pool="p1")),
    received("rc", "cc", 1),
]  # fmt: skip


@given(st.permutations(LIFECYCLE))
def test_every_arrival_order_gives_the_same_pool(order: list[PoolStatement]) -> None:
    assert fold(*order) == fold(*LIFECYCLE)


@given(st.permutations(LIFECYCLE), st.integers(0, len(LIFECYCLE)))
def test_every_arrival_order_of_a_part_gives_the_same_pool(
    order: list[PoolStatement], n: int
) -> None:
    """A node that holds some of the statements computes what any node holding the same
    ones computes, whatever their order."""
    held = order[:n]
    assert fold(*held) == fold(*sorted(held, key=lambda s: s.id))


def test_the_lifecycle_folds_as_worked_by_hand() -> None:
    view = fold(*LIFECYCLE)
    assert view.state == "delivered"
    assert view.received == {"aa", "bb"}
    refused = {i for i, _ in view.refused}
    assert refused == {LIFECYCLE[i].id for i in (5, 9, 12, 13)}
    assert view.settlements() == [
        (ORG, "mill", 1500), ("aa", ORG, SHARES["aa"] * 150), ("bb", ORG, SHARES["bb"] * 150),
    ]  # fmt: skip
