"""Edges of the market rules on both sides (docs/PROTOCOL.md §10-12): what remains of an
offer, `available_until`, `min_order`, a trade's total bound and expiry, the credit limit
(and its default) and breaches. Expected values are the spec's, written here."""

from __future__ import annotations

import hashlib
import itertools

import pytest

from coopnet.protocol import InvalidEvent
from coopnet.protocol.body import Body
from coopnet.protocol.charter import Charter, Founder, Policies
from coopnet.protocol.ledger import Ledger, breaches, check_spend
from coopnet.protocol.offers import Offer, OfferPosted, OfferRevised, offer_step, reserve
from coopnet.protocol.trades import (
    OPEN_STATES,
    STATES,
    Statement,
    TradeAccepted,
    TradeProposed,
    TradeReceived,
    TradeShipped,
    check_total,
    fold_trade,
)

T0 = 1_800_000_000_000
MAX_TOTAL = 10**12  # §11: a trade's total is at most 10^12 credit cents
DEFAULT_LIMIT = 50_000  # §12: 50,000 cents until the charter sets it


def refusal(code: str) -> pytest.RaisesExc[InvalidEvent]:
    return pytest.raises(InvalidEvent, match=f"^{code}: ")


def offer(quantity: int = 100, min_order: int = 6, until: int = T0) -> Offer:
    return offer_step(None, "sel", OfferPosted(
        offer="o1", item="eggs", category="dairy-eggs", quantity=quantity, unit="piece",
        unit_price=35, min_order=min_order, available_until=until, area="N1",
    ))  # fmt: skip


# -- offers (§10) -----------------------------------------------------------------------------


def test_reserving_exactly_what_remains_is_allowed() -> None:
    first = reserve(offer(100), 40, T0)
    assert first.remaining == 60
    rest = reserve(first, 60, T0)
    assert (rest.reserved, rest.remaining) == (100, 0)


def test_reserving_one_more_than_remains_is_refused() -> None:
    first = reserve(offer(100), 40, T0)
    with refusal("not_authorized") as caught:
        reserve(first, 61, T0)
    assert "61 asked, 60 remaining" in caught.value.message


def test_the_whole_quantity_at_once_and_one_more() -> None:
    assert reserve(offer(100), 100, T0).remaining == 0
    with refusal("not_authorized") as caught:
        reserve(offer(100), 101, T0)
    assert "101 asked, 100 remaining" in caught.value.message


def test_nothing_more_once_all_is_reserved() -> None:
    full = reserve(offer(100, min_order=1), 100, T0)
    with refusal("not_authorized") as caught:
        reserve(full, 1, T0)
    assert "1 asked, 0 remaining" in caught.value.message


@pytest.mark.parametrize(("at", "ok"), [(T0 - 1, True), (T0, True), (T0 + 1, False)])
def test_accepting_at_available_until_and_one_ms_after(at: int, ok: bool) -> None:
    """§10: the acceptance's `at` is not after `available_until`."""
    if ok:
        assert reserve(offer(until=T0), 6, at).reserved == 6
    else:
        with refusal("not_authorized") as caught:
            reserve(offer(until=T0), 6, at)
        assert "o1" in caught.value.message and "no longer available" in caught.value.message


@pytest.mark.parametrize(("quantity", "ok"), [(5, False), (6, True), (7, True)])
def test_min_order_at_and_below(quantity: int, ok: bool) -> None:
    if ok:
        assert reserve(offer(min_order=6), quantity, T0).reserved == quantity
    else:
        with refusal("not_authorized") as caught:
            reserve(offer(min_order=6), quantity, T0)
        assert "5 asked" in caught.value.message and "minimum order of 6" in caught.value.message


def test_min_order_defaults_to_one() -> None:
    """§8: `min_order` = 1 when absent; a body's quantity is at least 1."""
    posted = OfferPosted(offer="o1", item="eggs", category="dairy-eggs", quantity=3,
                         unit="piece", unit_price=35, available_until=T0, area="N1")  # fmt: skip
    assert reserve(offer_step(None, "sel", posted), 1, T0).reserved == 1


def test_the_edges_follow_a_revision() -> None:
    """§10: quantity and min_order "as last revised"; so is `available_until`."""
    revised = offer_step(offer(100, min_order=6, until=T0), "sel", OfferRevised(
        offer="o1", quantity=50, min_order=10, available_until=T0 + 10))  # fmt: skip
    assert reserve(revised, 50, T0 + 10).remaining == 0
    assert reserve(revised, 10, T0 + 10).reserved == 10
    for quantity, at in ((51, T0), (9, T0), (10, T0 + 11)):
        with refusal("not_authorized"):
            reserve(revised, quantity, at)


def test_a_min_order_above_what_remains_sells_nothing() -> None:
    """Both rules at once: 5 remain, the minimum order is 6."""
    left = reserve(offer(100, min_order=6), 95, T0)
    for quantity in (5, 6):
        with refusal("not_authorized"):
            reserve(left, quantity, T0)


@pytest.mark.parametrize(("quantity", "ok"), [(39, False), (40, True), (41, True)])
def test_a_revision_down_to_what_is_reserved(quantity: int, ok: bool) -> None:
    held = reserve(offer(100), 40, T0)
    revision = OfferRevised(offer="o1", quantity=quantity)
    if ok:
        assert offer_step(held, "sel", revision).remaining == quantity - 40
    else:
        with refusal("not_authorized") as caught:
            offer_step(held, "sel", revision)
        assert "39" in caught.value.message and "40 already accepted" in caught.value.message


# -- a trade's total (§11) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "unit_price"), [(1, MAX_TOTAL), (MAX_TOTAL, 1), (10**6, 10**6), (3, 0), (1, 0)]
)
def test_a_total_up_to_the_bound_is_allowed(quantity: int, unit_price: int) -> None:
    assert check_total(quantity, unit_price) == quantity * unit_price


@pytest.mark.parametrize(
    ("quantity", "unit_price"),
    [(10_001, 99_990_001), (2, MAX_TOTAL // 2 + 1), (MAX_TOTAL, MAX_TOTAL), (MAX_TOTAL + 1, 1)],
)
def test_a_total_beyond_the_bound_is_out_of_bounds(quantity: int, unit_price: int) -> None:
    total = quantity * unit_price
    assert total > MAX_TOTAL
    with refusal("out_of_bounds") as caught:
        check_total(quantity, unit_price)
    assert f"{quantity} × {unit_price} = {total}" in caught.value.message
    assert str(MAX_TOTAL) in caught.value.message


def test_one_cent_beyond_the_bound() -> None:
    assert MAX_TOTAL + 1 == 10_001 * 99_990_001


_ids = itertools.count()


def stmt(author: str, seq: int, body: Body, at: int = T0) -> Statement:
    sid = hashlib.sha256(f"{author} {seq} {next(_ids)}".encode()).digest()
    return Statement(id=sid, author=author, seq=seq, at=at, body=body)


def proposal(quantity: int = 2, unit_price: int = 35, expires_at: int = T0 + 100) -> TradeProposed:
    return TradeProposed(trade="t1", seller="sel", offer="o1", quantity=quantity,
                         unit_price=unit_price, expires_at=expires_at)  # fmt: skip


def acceptance(quantity: int = 2, unit_price: int = 35) -> TradeAccepted:
    return TradeAccepted(buyer="buy", trade="t1", offer="o1", quantity=quantity,
                         unit_price=unit_price)  # fmt: skip


def test_a_proposal_at_the_bound_is_a_trade() -> None:
    p = stmt("buy", 1, proposal(10**6, 10**6))
    a = stmt("sel", 1, acceptance(10**6, 10**6))
    view = fold_trade("buy", "t1", [p, a])
    assert (view.state, view.refused, view.total) == ("accepted", [], MAX_TOTAL)


def test_a_proposal_one_cent_beyond_the_bound_makes_no_trade() -> None:
    """§11: refused with `out_of_bounds`, and with it every later statement of that trade."""
    p = stmt("buy", 1, proposal(10_001, 99_990_001))
    later = stmt("buy", 2, TradeReceived(buyer="buy", trade="t1"))
    view = fold_trade("buy", "t1", [p, later])
    assert view.refused == [(p.id, "out_of_bounds"), (later.id, "not_authorized")]
    assert view.state not in OPEN_STATES | {"settled"}


def test_the_sellers_statements_on_a_trade_beyond_the_bound_are_refused_too() -> None:
    """§11: "and with it every later statement of that trade (no trade exists)": the
    seller's acceptance of it is a statement of that trade."""
    p = stmt("buy", 1, proposal(10_001, 99_990_001))
    a = stmt("sel", 1, acceptance(10_001, 99_990_001))
    view = fold_trade("buy", "t1", [p, a])
    assert a.id in {sid for sid, _ in view.refused}


def test_a_trade_of_zero_settles_and_moves_nothing() -> None:
    statements = [
        stmt("buy", 1, proposal(unit_price=0)),
        stmt("sel", 1, acceptance(unit_price=0)),
        stmt("sel", 2, TradeShipped(buyer="buy", trade="t1")),
        stmt("buy", 2, TradeReceived(buyer="buy", trade="t1")),
    ]
    view = fold_trade("buy", "t1", statements)
    assert (view.state, view.total, view.refused) == ("settled", 0, [])
    ledger = Ledger([("buy", "sel", view.total)])
    assert (ledger.balance_of("buy"), ledger.balance_of("sel"), ledger.total()) == (0, 0, 0)


@pytest.mark.parametrize(("at", "ok"), [(T0 + 99, True), (T0 + 100, True), (T0 + 101, False)])
def test_an_acceptance_at_the_expiry_and_one_ms_after(at: int, ok: bool) -> None:
    """§11: a `trade.accepted` must have `at ≤ expires_at`."""
    p = stmt("buy", 1, proposal(expires_at=T0 + 100))
    a = stmt("sel", 1, acceptance(), at=at)
    view = fold_trade("buy", "t1", [p, a])
    if ok:
        assert (view.state, view.refused) == ("accepted", [])
    else:
        assert (view.state, view.refused) == ("proposed", [(a.id, "not_authorized")])


@pytest.mark.parametrize(("now", "shown"), [(T0 + 99, "proposed"), (T0 + 100, "proposed"),
                                            (T0 + 101, "expired")])  # fmt: skip
def test_a_proposal_is_shown_expired_once_its_expiry_has_passed(now: int, shown: str) -> None:
    view = fold_trade("buy", "t1", [stmt("buy", 1, proposal(expires_at=T0 + 100))])
    assert view.state_at(now) == shown


def test_an_accepted_trade_never_shows_as_expired() -> None:
    p, a = stmt("buy", 1, proposal(expires_at=T0 + 100)), stmt("sel", 1, acceptance())
    assert fold_trade("buy", "t1", [p, a]).state_at(T0 + 10**9) == "accepted"


@pytest.mark.parametrize(("quantity", "unit_price"), [(1, 35), (3, 35), (2, 34), (2, 36)])
def test_an_acceptance_one_off_the_proposed_terms_is_refused(
    quantity: int, unit_price: int
) -> None:
    p = stmt("buy", 1, proposal(2, 35))
    a = stmt("sel", 1, acceptance(quantity, unit_price))
    assert fold_trade("buy", "t1", [p, a]).refused == [(a.id, "not_authorized")]


def test_the_states_of_a_trade() -> None:
    """§11: the cells of COMBINED, and `expired` as shown (not signed)."""
    assert set(STATES) == {"proposed", "accepted", "declined", "shipped", "cancel_requested",
                           "cancelled", "disputed", "settled", "expired"}  # fmt: skip


def test_the_open_states_hold_credit_and_quantity() -> None:
    """§12: open commitments are trades in proposed, accepted, shipped or cancel_requested."""
    assert frozenset({"proposed", "accepted", "shipped", "cancel_requested"}) == OPEN_STATES


# -- the credit limit (§12) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("balance", "committed", "amount", "limit"),
    [(0, 0, 50_000, 50_000), (-400, 50, 50, 500), (100, 0, 100, 0), (0, 0, 0, 0),
     (-50_000, 0, 0, 50_000), (1_000, 51_000, 0, 50_000)],
)  # fmt: skip
def test_a_balance_of_exactly_minus_the_limit_is_allowed(
    balance: int, committed: int, amount: int, limit: int
) -> None:
    assert balance - committed - amount == -limit
    check_spend("buy", balance, committed, amount, limit)


@pytest.mark.parametrize(
    ("balance", "committed", "amount", "limit"),
    [(0, 0, 50_001, 50_000), (-400, 50, 51, 500), (100, 0, 101, 0), (0, 0, 1, 0),
     (-50_001, 0, 0, 50_000), (0, 50_001, 0, 50_000)],
)  # fmt: skip
def test_one_cent_below_minus_the_limit_is_refused(
    balance: int, committed: int, amount: int, limit: int
) -> None:
    after = balance - committed - amount
    assert after == -limit - 1
    with refusal("not_authorized") as caught:
        check_spend("buy", balance, committed, amount, limit)
    message = caught.value.message
    assert "buy" in message and f"= {after}" in message and f"-{limit}" in message


def _charter(**policies: int) -> Charter:
    founder = Founder(slug="oakley", display_name="Oakley", area="N1", key="11" * 32)
    return Charter(name="Riverside", founders=[founder], policies=Policies(**policies))


def test_the_default_credit_limit_is_50_000_cents() -> None:
    limit = _charter().policies.credit_limit
    assert limit == DEFAULT_LIMIT
    check_spend("buy", 0, 0, 50_000, limit)
    with refusal("not_authorized"):
        check_spend("buy", 0, 0, 50_001, limit)


def test_the_charters_credit_limit_replaces_the_default() -> None:
    limit = _charter(credit_limit=700).policies.credit_limit
    check_spend("buy", 0, 0, 700, limit)
    with refusal("not_authorized"):
        check_spend("buy", 0, 0, 701, limit)


@pytest.mark.parametrize(
    ("balances", "committed", "limit", "breached"),
    [
        ({"a": -500}, {}, 500, []),
        ({"a": -501}, {}, 500, ["a"]),
        ({}, {"a": 500}, 500, []),  # commitments but no balance
        ({}, {"a": 501}, 500, ["a"]),
        ({"a": -400}, {"a": 100}, 500, []),
        ({"a": -400}, {"a": 101}, 500, ["a"]),
        ({"a": 100}, {"a": 600}, 500, []),
        ({"a": 100}, {"a": 601}, 500, ["a"]),
        ({"a": 0}, {}, 0, []),
        ({"a": -1, "b": 1}, {}, 0, ["a"]),
        ({"b": -1}, {"a": 1}, 0, ["a", "b"]),
    ],
)
def test_breaches_at_the_edge(
    balances: dict[str, int], committed: dict[str, int], limit: int, breached: list[str]
) -> None:
    """§12: a breach is a balance minus open commitments below −limit (at it: none)."""
    assert breaches(balances, committed, limit) == breached


def test_a_settlement_of_zero_and_of_the_largest_total() -> None:
    ledger = Ledger([("a", "b", 0), ("a", "b", MAX_TOTAL)])
    assert ledger.balances == {"a": -MAX_TOTAL, "b": MAX_TOTAL}
    assert ledger.total() == 0
    with pytest.raises(ValueError):
        ledger.settle("a", "b", -1)
