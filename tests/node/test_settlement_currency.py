"""What a neighborhood still owes, in the federation's currency (node/membership/settlement.py,
docs/PROTOCOL.md §16.5): the `balance_not_settled` message names the balance in the node's
currency units, whatever its `minor_units` (0: whole units; 4: four decimals)."""

from __future__ import annotations

import pytest

from coopnet.node.membership.settlement import OpenTrade, Unsettled
from coopnet.protocol.charter import DEFAULT_CURRENCY, Currency

HOURS = Currency(code="HRS", name="hours", symbol="", minor_units=0)
MILLS = Currency(code="MIL", name="mills", symbol="", minor_units=4)
POUNDS = Currency(code="GBP", name="pounds", symbol="£", minor_units=2)


@pytest.mark.parametrize(
    ("currency", "balance", "said"),
    [
        (HOURS, 450, "its balance is 450 hours (450 cents)"),
        (HOURS, -3, "its balance is -3 hours (-3 cents)"),
        (MILLS, 12345, "its balance is 1.2345 mills (12345 cents)"),
        (POUNDS, -140, "its balance is -£1.40 (-140 cents)"),
        (DEFAULT_CURRENCY, 140, "its balance is 1.40 credits (140 cents)"),
        (None, -140, "its balance is -1.40 (-140 cents)"),  # no currency named: bare, as before
    ],
)
def test_the_balance_is_told_in_the_currency_units(
    currency: Currency | None, balance: int, said: str
) -> None:
    assert Unsettled(slug="elm", balance=balance).describe(currency).startswith(said)


def test_whole_units_are_not_shown_as_hundredths_beside_open_trades() -> None:
    """With 0 minor units, 450 is 450 hours: not "4.50" as a fixed 2 decimals told it."""
    left = Unsettled(
        slug="elm",
        balance=450,
        open_trades=(OpenTrade(buyer="elm", trade="t-1", seller="oak", state="accepted",
                               total=30, proposal="00" * 32),),
    )  # fmt: skip
    told = left.describe(HOURS)
    assert "450 hours" in told and "4.50" not in told
    assert "1 trade(s) are open: elm/t-1 with oak (accepted, 30 cents)" in told
