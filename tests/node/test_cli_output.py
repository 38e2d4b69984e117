"""What the commands print, without a node: amounts in the co-op's currency, units and
durations as people say them, tables that never cut an id, help on every argument."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator

import pytest
from rich.console import Console
from rich.table import Table

from coopnet.deploy.cli import build_parser
from coopnet.node.aid.cli import requests_table
from coopnet.node.engine.money import (
    AmountError,
    PlainCurrency,
    currency_json,
    currency_of,
    format_amount,
    parse_amount,
)
from coopnet.node.engine.terminal import goods_text, quantity_text, relative_time, span_text, table
from coopnet.node.membership.cli import consents_text, membership_table
from coopnet.protocol.charter import DEFAULT_CURRENCY, Currency

CREDITS = DEFAULT_CURRENCY
POUNDS = Currency(code="GBP", name="pounds", symbol="£", minor_units=2)
HOURS = Currency(code="HRS", name="hours", symbol="", minor_units=0)
MILLS = Currency(code="MIL", name="mills", symbol="", minor_units=4)
MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000


def _positionals(
    parser: argparse.ArgumentParser, path: str
) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _positionals(sub, f"{path} {name}")
        elif not action.option_strings:
            yield path, action


def test_every_positional_argument_of_every_command_has_help() -> None:
    found = list(_positionals(build_parser(), "coopnet"))
    assert len(found) > 20  # the walk reaches the node, market, aid and operator commands
    assert {"coopnet trade accept", "coopnet aid pledge", "coopnet membership consent"} <= {
        path for path, _ in found
    }
    missing = [f"{path} {a.dest}" for path, a in found if not a.help or a.help == argparse.SUPPRESS]
    assert missing == []


@pytest.mark.parametrize(
    ("cents", "currency", "shown"),
    [
        (450, CREDITS, "4.50 credits"),
        (-450, CREDITS, "-4.50 credits"),
        (5, CREDITS, "0.05 credits"),
        (0, CREDITS, "0.00 credits"),
        (450, POUNDS, "£4.50"),
        (-1, POUNDS, "-£0.01"),
        (12, HOURS, "12 hours"),
        (12345, MILLS, "1.2345 mills"),
    ],
)
def test_format_amount_in_the_currency_units(cents: int, currency: Currency, shown: str) -> None:
    assert format_amount(cents, currency) == shown


@pytest.mark.parametrize(
    ("text", "currency", "cents"),
    [
        ("4.50", CREDITS, 450),
        ("4.5", CREDITS, 450),
        ("4", CREDITS, 400),
        (" 0.05 ", CREDITS, 5),
        (".5", CREDITS, 50),
        ("£4.50", POUNDS, 450),
        ("12", HOURS, 12),
        ("1.2345", MILLS, 12345),
    ],
)
def test_parse_amount_gives_cents(text: str, currency: Currency, cents: int) -> None:
    assert parse_amount(text, currency) == cents
    assert parse_amount(format_amount(cents, currency).split()[0], currency) == cents


@pytest.mark.parametrize(
    ("text", "currency", "says"),
    [
        ("4.505", CREDITS, "3 decimal places; credits have 2"),
        ("1.5", HOURS, "no fractions"),
        ("-4", CREDITS, "negative"),
        ("4,50", CREDITS, "not an amount in credits: write it like 4.50"),
        ("", CREDITS, "not an amount"),
        (".", CREDITS, "not an amount"),
        ("1e3", CREDITS, "not an amount"),
        ("$4", POUNDS, "not an amount in pounds"),
    ],
)
def test_parse_amount_refuses_what_is_not_an_amount(
    text: str, currency: Currency, says: str
) -> None:
    with pytest.raises(AmountError, match=says):
        parse_amount(text, currency)


def test_a_nodes_currency_is_its_configs() -> None:
    class Old:  # a config from before charters named a currency
        currency_name = "acorns"
        currency_code = "ACN"

    found = currency_of(Old())
    assert (found.code, found.name, found.symbol, found.minor_units) == ("ACN", "acorns", "", 2)

    class Chartered:
        currency = POUNDS

    assert currency_of(Chartered()) is POUNDS
    assert currency_json(POUNDS) == {"code": "GBP", "name": "pounds", "symbol": "£",
                                     "minor_units": 2}  # fmt: skip
    assert format_amount(450, PlainCurrency(name="")) == "4.50"


def test_units_and_durations_as_people_say_them() -> None:
    assert quantity_text(40, "piece") == "40 pieces"
    assert quantity_text(1, "piece") == "1 piece"
    assert quantity_text(3, "dozen") == "3 dozen"
    assert quantity_text(2, "hour") == "2 hours"
    assert goods_text(3, "dozen", "eggs") == "3 dozen eggs"
    assert goods_text(40, "piece", "sourdough loaves") == "40 pieces of sourdough loaves"
    assert span_text(DAY - 5_000) == "1 d"  # what "needed in 1440 min" was
    assert span_text(2 * HOUR + 5 * MINUTE) == "2 h 5 min"
    assert span_text(DAY + 2 * HOUR + 7 * MINUTE) == "1 d 2 h"
    assert span_text(20_000) == "<1 min"
    assert relative_time(DAY, 0) == "in 1 d"
    assert relative_time(0, 15 * MINUTE) == "15 min ago"
    assert relative_time(10_000, 0) == "now"


def _render(t: Table, width: int = 80) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(t)
    return out.getvalue()


def test_id_columns_are_never_cut_at_80_columns() -> None:
    t = table("Offers", "offer", "seller", "item", "terms", whole=("offer", "seller"))
    long = "a description long enough to need several lines in a narrow terminal " * 3
    t.add_row("o-7f3a2c1d", "millbrook-east", long, long)
    shown = _render(t, 60)
    assert "o-7f3a2c1d" in shown and "millbrook-east" in shown
    assert "…" not in shown


def test_aid_list_shows_the_description_wrapped_and_times_as_durations() -> None:
    description = "Beds for a family for two nights, near the school, with step-free access"
    row = {
        "request": "r-7e43cd91", "requester": "oakley", "urgency": "critical",
        "category": "shelter", "description": description, "pledged": 1, "quantity": 2,
        "needed_by": DAY, "state": "partly_pledged", "escalated": True,
    }  # fmt: skip
    shown = _render(requests_table([row], now_ms=0))
    assert max(len(line) for line in shown.splitlines()) <= 80
    assert "r-7e43cd91" in shown and "from oakley" in shown
    words = " ".join(
        part.strip() for line in shown.splitlines() for part in line.split("│")[3:4]
    ).split()
    assert " ".join(words) == description  # every word, wrapped, none cut
    assert "in 1 d" in shown and "1440" not in shown
    state = " ".join(
        part.strip() for line in shown.splitlines() for part in line.split("│")[5:6]
    ).split()
    assert "1 of 2" in shown and state == ["partly", "pledged,", "federation"]


def test_membership_shows_who_consented_of_how_many_needed() -> None:
    admitted = {
        "slug": "ashgrove", "status": "admitted", "consents": ["millbrook", "oakley"],
        "needed": 2, "objections": [], "application": {"about": "", "reason": "bread"},
    }  # fmt: skip
    applying = {**admitted, "slug": "dee", "status": "applicant", "consents": [], "needed": 3}
    founder = {"slug": "oakley", "status": "founder", "consents": [], "needed": 1,
               "objections": [], "application": None}  # fmt: skip
    assert consents_text(admitted) == "2 of 2 needed: millbrook, oakley"
    assert consents_text(applying) == "0 of 3 needed"
    assert consents_text(founder) == ""
    view = {"federation": "Riverside", "charter": True, "quorum_percent": 50, "me": "oakley",
            "members": [founder, admitted, applying]}  # fmt: skip
    shown = _render(membership_table(view), 120)
    assert "2 of 2 needed: millbrook, oakley" in shown
    assert " (millbrook, oakley)" not in shown
