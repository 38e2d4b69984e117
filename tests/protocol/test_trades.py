"""Trade lifecycle tables (exhaustive) and the trade fold (order-independent), pure."""

from __future__ import annotations

import hashlib
import itertools
import random

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coopnet.protocol import InvalidEvent
from coopnet.protocol.body import Body
from coopnet.protocol.trades import (
    BUYER_TABLE,
    COMBINED,
    MAX_TOTAL_CENTS,
    NONE,
    OPEN_STATES,
    SELLER_STATES,
    SELLER_TABLE,
    STATES,
    TRADE_KINDS,
    Statement,
    TradeAccepted,
    TradeCancelled,
    TradeDeclined,
    TradeDisputed,
    TradeProposed,
    TradeReceived,
    TradeShipped,
    check_total,
    fold_trade,
    trade_key,
)
from tests.protocol.shared import path_to

T0 = 1_800_000_000_000
PROPOSAL = TradeProposed(
    trade="t1", seller="sel", offer="o1", quantity=5, unit_price=100, expires_at=T0 + 1000
)


def buyer_body(kind: str) -> Body:
    return {
        "trade.proposed": PROPOSAL,
        "trade.cancelled": TradeCancelled(buyer="buy", trade="t1"),
        "trade.received": TradeReceived(buyer="buy", trade="t1"),
        "trade.disputed": TradeDisputed(buyer="buy", trade="t1", reason="broken"),
        "trade.accepted": TradeAccepted(
            buyer="buy", trade="t1", offer="o1", quantity=5, unit_price=100
        ),
        "trade.declined": TradeDeclined(buyer="buy", trade="t1"),
        "trade.shipped": TradeShipped(buyer="buy", trade="t1"),
    }[kind]


KIND_NAMES = [cls.kind for cls in TRADE_KINDS]
_counter = itertools.count()


def stmt(author: str, seq: int, body: Body, at: int = T0) -> Statement:
    sid = hashlib.sha256(f"{author}/{seq}/{body.kind}/{next(_counter)}".encode()).digest()
    return Statement(id=sid, author=author, seq=seq, at=at, body=body)


def run(buyer_kinds: list[str], seller_kinds: list[str]) -> tuple[str, str, str, int]:
    statements = [stmt("buy", i + 1, buyer_body(k)) for i, k in enumerate(buyer_kinds)]
    statements += [stmt("sel", i + 1, buyer_body(k)) for i, k in enumerate(seller_kinds)]
    view = fold_trade("buy", "t1", statements)
    return view.buyer_state, view.seller_state, view.state, len(view.refused)


# -- the tables, typed from the spec (never read from protocol/trades.py) ---------------------

# PROTOCOL.md §11, "Buyer": the spec's table row by row. A state the table names only as a
# result (cancelled, received, disputed) has no row there: no statement is in the table for
# it, so every one is refused (§11: "a statement not in the table ... is refused").
SPEC_BUYER: dict[str, dict[str, str]] = {
    "none": {"trade.proposed": "proposed"},
    "proposed": {
        "trade.cancelled": "cancelled",
        "trade.received": "received",
        "trade.disputed": "disputed",
    },
    "cancelled": {},
    "received": {},
    "disputed": {},
}
# PROTOCOL.md §11, "Seller": the same, for the proposal's seller.
SPEC_SELLER: dict[str, dict[str, str]] = {
    "none": {"trade.accepted": "accepted", "trade.declined": "declined"},
    "accepted": {
        "trade.shipped": "shipped",
        "trade.cancelled": "cancelled",
        "trade.disputed": "disputed",
    },
    "shipped": {"trade.disputed": "disputed"},
    "declined": {},
    "cancelled": {},
    "disputed": {},
}
# PROTOCOL.md §11, the grid `COMBINED[buyer state][seller state]`, typed cell by cell.
SPEC_SELLER_COLUMNS = ("none", "accepted", "declined", "shipped", "cancelled", "disputed")
SPEC_COMBINED: dict[str, dict[str, str]] = {
    "proposed": {
        "none": "proposed",
        "accepted": "accepted",
        "declined": "declined",
        "shipped": "shipped",
        "cancelled": "cancel_requested",
        "disputed": "disputed",
    },
    "cancelled": {
        "none": "cancelled",
        "accepted": "cancelled",
        "declined": "declined",
        "shipped": "disputed",
        "cancelled": "cancelled",
        "disputed": "disputed",
    },
    "received": {
        "none": "proposed",
        "accepted": "accepted",
        "declined": "disputed",
        "shipped": "settled",
        "cancelled": "disputed",
        "disputed": "settled",
    },
    "disputed": {
        "none": "disputed",
        "accepted": "disputed",
        "declined": "disputed",
        "shipped": "disputed",
        "cancelled": "disputed",
        "disputed": "disputed",
    },
}
# PROTOCOL.md §11: every state the grid gives, and `expired` (shown, never signed).
SPEC_STATES = {
    "proposed", "accepted", "declined", "shipped", "cancel_requested", "cancelled",
    "disputed", "settled", "expired",
}  # fmt: skip
# PROTOCOL.md §12: "open commitments are the totals of its trades in `proposed` (not
# expired), `accepted`, `shipped` or `cancel_requested`".
SPEC_OPEN_STATES = {"proposed", "accepted", "shipped", "cancel_requested"}
ALL_KINDS = (
    "trade.proposed", "trade.accepted", "trade.declined", "trade.shipped", "trade.received",
    "trade.cancelled", "trade.disputed",
)  # fmt: skip


def test_the_trade_kinds_are_the_specs() -> None:
    """PROTOCOL.md §8: the seven trade kinds, no more, no fewer."""
    assert sorted(KIND_NAMES) == sorted(ALL_KINDS)


def test_the_buyer_table_is_the_specs_cell_by_cell() -> None:
    """PROTOCOL.md §11, "Buyer": no cell added, removed or changed."""
    assert BUYER_TABLE == SPEC_BUYER


def test_the_seller_table_is_the_specs_cell_by_cell() -> None:
    """PROTOCOL.md §11, "Seller": no cell added, removed or changed (`shipped → disputed`
    included)."""
    assert SELLER_TABLE == SPEC_SELLER


def test_the_combined_grid_is_the_specs_cell_by_cell() -> None:
    """PROTOCOL.md §11: the 24 cells of `COMBINED[buyer state][seller state]`."""
    assert SELLER_STATES == SPEC_SELLER_COLUMNS
    assert COMBINED == SPEC_COMBINED
    assert len([cell for row in COMBINED.values() for cell in row.values()]) == 24


def test_the_states_and_the_open_states_are_the_specs() -> None:
    """PROTOCOL.md §11-12: the trade states, and the four that still hold the buyer's credit
    and the seller's quantity (an open commitment)."""
    assert set(STATES) == SPEC_STATES
    assert len(STATES) == len(SPEC_STATES)
    assert set(OPEN_STATES) == SPEC_OPEN_STATES
    # Every state but `expired` is a cell of the grid: the spec names no other.
    cells = {cell for row in SPEC_COMBINED.values() for cell in row.values()}
    assert cells == SPEC_STATES - {"expired"}


@pytest.mark.parametrize("state", list(SPEC_BUYER))
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_the_buyer_fold_follows_every_cell_of_the_specs_table(state: str, kind: str) -> None:
    """PROTOCOL.md §11: the buyer's statements, in its log order, move it by its table; a
    statement not in the table for its state is refused (`not_authorized`) and changes
    nothing. Without a proposal, every buyer statement is refused."""
    path = path_to(SPEC_BUYER, state)
    before = run(path, [])
    assert before == (state, NONE, SPEC_COMBINED.get(state, {}).get(NONE, "unknown"), 0)
    after = run([*path, kind], [])
    expected = SPEC_BUYER[state].get(kind)
    if expected is None:
        assert after == (*before[:3], 1)  # refused: nothing changes
    else:
        assert after == (expected, NONE, SPEC_COMBINED[expected][NONE], 0)


@pytest.mark.parametrize("state", list(SPEC_SELLER))
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_the_seller_fold_follows_every_cell_of_the_specs_table(state: str, kind: str) -> None:
    """PROTOCOL.md §11: the seller's statements, in its log order, move it by its table; a
    statement not in the table for its state is refused (`not_authorized`)."""
    path = path_to(SPEC_SELLER, state)
    before = run(["trade.proposed"], path)
    assert before == ("proposed", state, SPEC_COMBINED["proposed"][state], 0)
    after = run(["trade.proposed"], [*path, kind])
    expected = SPEC_SELLER[state].get(kind)
    if expected is None:
        assert after == (*before[:3], 1)
    else:
        assert after == ("proposed", expected, SPEC_COMBINED["proposed"][expected], 0)


@pytest.mark.parametrize("buyer_state", list(SPEC_COMBINED))
@pytest.mark.parametrize("seller_state", SPEC_SELLER_COLUMNS)
def test_every_cell_of_the_combined_grid_gives_the_specs_state(
    buyer_state: str, seller_state: str
) -> None:
    """PROTOCOL.md §11: each party's statements (paths from the spec's tables) give the
    spec's cell, in either arrival order; `expired` replaces only `proposed`, once
    `expires_at` has passed."""
    buyer_path = path_to(SPEC_BUYER, buyer_state)
    seller_path = path_to(SPEC_SELLER, seller_state)
    statements = [stmt("buy", i + 1, buyer_body(k)) for i, k in enumerate(buyer_path)]
    statements += [stmt("sel", i + 1, buyer_body(k)) for i, k in enumerate(seller_path)]
    expected = SPEC_COMBINED[buyer_state][seller_state]
    for order in (statements, statements[::-1]):
        view = fold_trade("buy", "t1", order)
        assert (view.buyer_state, view.seller_state, view.refused) == (
            buyer_state,
            seller_state,
            [],
        )
        assert view.state == expected
        assert view.state_at(T0 + 1000) == expected  # at expires_at: not passed yet
        assert view.state_at(T0 + 1001) == ("expired" if expected == "proposed" else expected)
        assert view.settled is (expected == "settled")


def test_a_buyers_cancel_that_crossed_the_shipping_is_a_dispute() -> None:
    """PROTOCOL.md §11: cancelled × shipped is `disputed`, neither cancelled nor shipped."""
    assert run(["trade.proposed", "trade.cancelled"], ["trade.accepted", "trade.shipped"]) == (
        "cancelled",
        "shipped",
        "disputed",
        0,
    )


def test_the_seller_may_dispute_a_trade_it_shipped() -> None:
    """PROTOCOL.md §11, "Seller": `shipped → trade.disputed → disputed`; once the buyer's
    receipt is held the trade stays settled (received × disputed is `settled`)."""
    seller = ["trade.accepted", "trade.shipped", "trade.disputed"]
    assert run(["trade.proposed"], seller) == ("proposed", "disputed", "disputed", 0)
    assert run(["trade.proposed", "trade.received"], seller) == (
        "received",
        "disputed",
        "settled",
        0,
    )


def test_a_sellers_cancel_asks_the_buyers_consent() -> None:
    """PROTOCOL.md §11: the seller's cancel is `cancel_requested` until the buyer cancels
    too; the buyer alone cancels before shipping."""
    seller = ["trade.accepted", "trade.cancelled"]
    assert run(["trade.proposed"], seller)[2] == "cancel_requested"
    assert run(["trade.proposed", "trade.cancelled"], seller)[2] == "cancelled"
    assert run(["trade.proposed", "trade.cancelled"], ["trade.accepted"])[2] == "cancelled"


def test_the_happy_path_settles() -> None:
    assert run(["trade.proposed", "trade.received"], ["trade.accepted", "trade.shipped"])[2] == (
        "settled"
    )


# -- other rules ------------------------------------------------------------------------------


def test_only_the_named_seller_answers() -> None:
    statements = [
        stmt("buy", 1, PROPOSAL),
        stmt("intruder", 1, buyer_body("trade.accepted")),
    ]
    view = fold_trade("buy", "t1", statements)
    assert view.state == "proposed"
    assert view.refused == [(statements[1].id, "not_authorized")]


@pytest.mark.parametrize(
    ("offer", "quantity", "unit_price", "at", "counts"),
    [
        ("o1", 5, 100, T0 + 1000, True),  # the proposal's terms, at `expires_at`
        ("o2", 5, 100, T0, False),  # another offer
        ("o1", 6, 100, T0, False),  # another quantity
        ("o1", 4, 100, T0, False),
        ("o1", 5, 99, T0, False),  # another price
        ("o1", 5, 101, T0, False),
        ("o1", 5, 100, T0 + 1001, False),  # after `expires_at`
    ],
)
def test_an_acceptance_counts_only_on_the_proposals_terms_before_expiry(
    offer: str, quantity: int, unit_price: int, at: int, counts: bool
) -> None:
    """PROTOCOL.md §11: a `trade.accepted` must repeat the proposal's `offer`, `quantity`
    and `unit_price` and have `at ≤ expires_at`; otherwise `not_authorized`."""
    body = TradeAccepted(
        buyer="buy", trade="t1", offer=offer, quantity=quantity, unit_price=unit_price
    )
    accepted = stmt("sel", 1, body, at=at)
    view = fold_trade("buy", "t1", [stmt("buy", 1, PROPOSAL), accepted])
    if counts:
        assert (view.state, view.refused) == ("accepted", [])
    else:
        assert (view.seller_state, view.state) == (NONE, "proposed")
        assert view.refused == [(accepted.id, "not_authorized")]


def test_buyer_statements_before_its_proposal_are_refused() -> None:
    """PROTOCOL.md §11: buyer statements without a prior `trade.proposed` by the same buyer
    are refused; the proposal after them still stands, and so does a second one not."""
    early = stmt("buy", 1, buyer_body("trade.cancelled"))
    proposal = stmt("buy", 2, PROPOSAL)
    again = stmt("buy", 3, PROPOSAL)
    view = fold_trade("buy", "t1", [early, proposal, again])
    assert (view.buyer_state, view.state) == ("proposed", "proposed")
    assert view.refused == [(early.id, "not_authorized"), (again.id, "not_authorized")]


def test_an_acceptance_refused_by_the_offer_fold_does_not_count() -> None:
    accepted = stmt("sel", 1, buyer_body("trade.accepted"))
    view = fold_trade("buy", "t1", [stmt("buy", 1, PROPOSAL), accepted], frozenset({accepted.id}))
    assert view.state == "proposed"


def test_seller_statements_wait_for_the_proposal() -> None:
    accepted = stmt("sel", 1, buyer_body("trade.accepted"))
    view = fold_trade("buy", "t1", [accepted])
    assert (view.state, view.refused) == ("unknown", [])


def test_expiry_is_a_view() -> None:
    view = fold_trade("buy", "t1", [stmt("buy", 1, PROPOSAL)])
    assert view.state_at(T0 + 1000) == "proposed"
    assert view.state_at(T0 + 1001) == "expired"


def test_trade_key() -> None:
    assert trade_key("buy", PROPOSAL) == ("buy", "t1")
    assert trade_key("sel", buyer_body("trade.shipped")) == ("buy", "t1")
    assert trade_key("sel", buyer_body("trade.accepted")) == ("buy", "t1")


# -- order independence ------------------------------------------------------------------------

paths = st.sampled_from(
    [
        (["trade.proposed"], []),
        (["trade.proposed"], ["trade.accepted"]),
        (["trade.proposed", "trade.received"], ["trade.accepted", "trade.shipped"]),
        (["trade.proposed", "trade.cancelled"], ["trade.accepted", "trade.shipped"]),
        (["trade.proposed", "trade.cancelled"], ["trade.accepted", "trade.cancelled"]),
        (["trade.proposed", "trade.disputed"], ["trade.declined"]),
        (
            ["trade.proposed", "trade.received"],
            ["trade.accepted", "trade.shipped", "trade.disputed"],
        ),
        (["trade.proposed", "trade.cancelled", "trade.received"], ["trade.shipped"]),
    ]
)


@given(path=paths, seed=st.integers(0, 2**32 - 1))
@settings(max_examples=200)
def test_state_does_not_depend_on_arrival_order(
    path: tuple[list[str], list[str]], seed: int
) -> None:
    buyer_kinds, seller_kinds = path
    statements = [stmt("buy", i + 1, buyer_body(k)) for i, k in enumerate(buyer_kinds)]
    statements += [stmt("sel", i + 1, buyer_body(k)) for i, k in enumerate(seller_kinds)]
    first = fold_trade("buy", "t1", statements)
    shuffled = list(statements)
    random.Random(seed).shuffle(shuffled)
    again = fold_trade("buy", "t1", shuffled)
    assert (again.state, sorted(again.refused)) == (first.state, sorted(first.refused))


def test_a_trade_total_at_the_bound_stands_and_one_cent_more_is_refused() -> None:
    """PROTOCOL.md §11: quantity × unit_price ≤ MAX_TOTAL_CENTS (10^12), each field within
    its own bound; beyond it the proposal is refused `out_of_bounds` and no trade exists."""
    assert check_total(10**6, 10**6) == MAX_TOTAL_CENTS
    assert check_total(1, MAX_TOTAL_CENTS) == MAX_TOTAL_CENTS
    with pytest.raises(InvalidEvent) as caught:
        check_total(10**6 + 1, 10**6)
    assert caught.value.code == "out_of_bounds"
    assert "beyond the bound of 1000000000000 cents" in caught.value.message
    with pytest.raises(InvalidEvent):
        check_total(10**12, 10**12)  # each field at its bound: 10^24

    def fold(quantity: int, unit_price: int) -> tuple[str, list[str]]:
        big = msgspec.structs.replace(PROPOSAL, quantity=quantity, unit_price=unit_price)
        accept = TradeAccepted(
            buyer="buy", trade="t1", offer="o1", quantity=quantity, unit_price=unit_price
        )
        view = fold_trade(
            "buy",
            "t1",
            [
                stmt("buy", 1, big),
                stmt("sel", 1, accept),
                stmt("buy", 2, buyer_body("trade.received")),
            ],
        )
        return view.state, [code for _, code in view.refused]

    assert fold(10**6, 10**6) == ("accepted", [])
    state, codes = fold(10**12, 10**12)
    assert state == "unknown"
    # The proposal, the buyer's later statement and the seller's acceptance (§11 "Bounds").
    assert codes == ["out_of_bounds", "not_authorized", "not_authorized"]
