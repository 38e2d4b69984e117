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
    SELLER_STATES,
    SELLER_TABLE,
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


# -- the tables, every state × every event -----------------------------------------------------


@pytest.mark.parametrize("state", sorted(BUYER_TABLE))
@pytest.mark.parametrize("kind", KIND_NAMES)
def test_buyer_table_every_state_and_event(state: str, kind: str) -> None:
    if state == NONE:
        path: list[str] = []
    else:
        path = path_to(BUYER_TABLE, state)
    if not path and kind != "trade.proposed":
        # Without a proposal, a buyer statement is refused outright.
        assert run([kind], [])[3] == 1
        return
    before = run(path, [])
    after = run([*path, kind], [])
    expected = BUYER_TABLE[state].get(kind)
    if expected is None or (kind == "trade.proposed" and state != NONE):
        assert after[0] == before[0]  # refused: nothing changes
        assert after[3] == before[3] + 1
    else:
        assert after[0] == expected
        assert after[3] == before[3]


@pytest.mark.parametrize("state", sorted(SELLER_TABLE))
@pytest.mark.parametrize("kind", KIND_NAMES)
def test_seller_table_every_state_and_event(state: str, kind: str) -> None:
    path = [] if state == NONE else path_to(SELLER_TABLE, state)
    before = run(["trade.proposed"], path)
    after = run(["trade.proposed"], [*path, kind])
    expected = SELLER_TABLE[state].get(kind)
    if expected is None:
        assert after[1] == before[1]
        assert after[3] == before[3] + 1
    else:
        assert after[1] == expected
        assert after[3] == before[3]


def test_combined_grid_is_complete() -> None:
    assert set(COMBINED) == {s for s in BUYER_TABLE if s != NONE}
    for row in COMBINED.values():
        assert tuple(row) == SELLER_STATES


@pytest.mark.parametrize("buyer_state", sorted(COMBINED))
@pytest.mark.parametrize("seller_state", SELLER_STATES)
def test_every_cell_is_reached_by_its_parties(buyer_state: str, seller_state: str) -> None:
    buyer_path = path_to(BUYER_TABLE, buyer_state)
    seller_path = [] if seller_state == NONE else path_to(SELLER_TABLE, seller_state)
    b, s, state, refused = run(buyer_path, seller_path)
    assert (b, s, refused) == (buyer_state, seller_state, 0)
    assert state == COMBINED[buyer_state][seller_state]


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


def test_acceptance_must_repeat_the_terms_and_come_before_expiry() -> None:
    wrong_terms = TradeAccepted(buyer="buy", trade="t1", offer="o1", quantity=6, unit_price=100)
    late = stmt("sel", 1, buyer_body("trade.accepted"), at=T0 + 1001)
    for accepted in (stmt("sel", 1, wrong_terms), late):
        view = fold_trade("buy", "t1", [stmt("buy", 1, PROPOSAL), accepted])
        assert view.state == "proposed"
        assert view.refused == [(accepted.id, "not_authorized")]


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
    assert codes == ["out_of_bounds", "not_authorized"]
