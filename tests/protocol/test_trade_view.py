"""What a node shows of a trade (protocol/trades.py `fold_trade`, PROTOCOL.md §11): every
field of the view before and after the proposal, the code of each refused statement, and a
refused statement that does not stop the statements after it from counting."""

from __future__ import annotations

from coopnet.protocol.trades import TradeAccepted, TradeView, fold_trade
from tests.protocol.test_trades import PROPOSAL, T0, buyer_body, stmt


def test_a_trade_nobody_proposed_is_all_defaults() -> None:
    assert fold_trade("buy", "t1", []) == TradeView(
        buyer="buy", trade="t1", seller="", offer="", quantity=0, unit_price=0, expires_at=0,
        proposed_at=0, buyer_state="none", seller_state="none", state="unknown", refused=[],
    )  # fmt: skip


def test_seller_statements_heard_first_leave_the_view_empty_and_unknown() -> None:
    view = fold_trade("buy", "t1", [stmt("sel", 1, buyer_body("trade.accepted"))])
    assert (view.buyer, view.trade, view.seller, view.offer) == ("buy", "t1", "", "")
    assert (view.quantity, view.unit_price, view.expires_at, view.proposed_at) == (0, 0, 0, 0)
    assert view.state == "unknown"


def test_every_buyer_statement_without_a_proposal_is_refused_as_not_authorized() -> None:
    cancel = stmt("buy", 1, buyer_body("trade.cancelled"))
    receive = stmt("buy", 2, buyer_body("trade.received"))
    view = fold_trade("buy", "t1", [cancel, receive])
    assert view.refused == [(cancel.id, "not_authorized"), (receive.id, "not_authorized")]
    assert (view.buyer, view.trade, view.state) == ("buy", "t1", "unknown")


def test_the_proposal_fills_the_view() -> None:
    view = fold_trade("buy", "t1", [stmt("buy", 1, PROPOSAL, at=T0 - 5)])
    assert (view.seller, view.offer, view.quantity, view.unit_price) == ("sel", "o1", 5, 100)
    assert (view.expires_at, view.proposed_at, view.total) == (T0 + 1000, T0 - 5, 500)


def test_a_refused_buyer_statement_does_not_stop_the_next_ones() -> None:
    early = stmt("buy", 1, buyer_body("trade.received"))  # before anything was shipped
    view = fold_trade("buy", "t1", [
        stmt("buy", 2, PROPOSAL), early, stmt("buy", 3, buyer_body("trade.cancelled")),
    ])  # fmt: skip
    # `early` has the lowest seq, so it is read first and refused; the rest still count.
    assert view.refused == [(early.id, "not_authorized")]
    assert view.state == "cancelled"


def test_a_refused_seller_statement_does_not_stop_the_next_ones() -> None:
    stranger = stmt("ash", 1, buyer_body("trade.accepted"))  # not the named seller
    accepted = stmt("sel", 2, buyer_body("trade.accepted"))
    view = fold_trade("buy", "t1", [stmt("buy", 1, PROPOSAL), stranger, accepted])
    assert view.refused == [(stranger.id, "not_authorized")]
    assert view.state == "accepted"


def test_an_acceptance_on_other_terms_does_not_stop_the_next_acceptance() -> None:
    other = stmt("sel", 1, TradeAccepted(buyer="buy", trade="t1", offer="o1", quantity=4,
                                         unit_price=100))  # fmt: skip
    accepted = stmt("sel", 2, buyer_body("trade.accepted"))
    view = fold_trade("buy", "t1", [stmt("buy", 1, PROPOSAL), other, accepted])
    assert view.refused == [(other.id, "not_authorized")]
    assert view.state == "accepted"
