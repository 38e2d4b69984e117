"""The time bank in hours (protocol/hours.py, PROTOCOL.md §20) and the charter's hours limit
(protocol/charter.py `policies.hours_limit`, §16.1).

Expected values come from §20: quarter hours on the wire (an hour is 4); a transfer moves
the signer's hours to `to`; a transfer to oneself, or one repeating an earlier transfer id
of its author, is refused `not_authorized`; the signer keeps its balance at or above minus
the limit; the ledger always sums to zero.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coopnet.protocol import errors
from coopnet.protocol.charter import (
    Charter,
    CharterError,
    Founder,
    Policies,
    dump_charter,
    parse_charter,
)
from coopnet.protocol.hours import (
    DEFAULT_HOURS_LIMIT,
    QUARTERS_PER_HOUR,
    HourLedger,
    HoursStatement,
    HoursTransferred,
    check_hours_spend,
    fold_hours,
    hours_breaches,
    hours_refusal,
    hours_text,
    parse_hours,
)


def transfer(
    label: str, author: str, seq: int, to: str, quarters: int, tid: str = ""
) -> HoursStatement:
    body = HoursTransferred(transfer=tid or label, to=to, quarters=quarters)
    return HoursStatement(
        id=hashlib.sha256(label.encode()).digest(), author=author, seq=seq, body=body
    )


# -- the ledger ------------------------------------------------------------------------------


def test_an_hour_is_four_quarters_and_the_default_limit_is_forty_hours() -> None:
    assert QUARTERS_PER_HOUR == 4
    assert DEFAULT_HOURS_LIMIT == 160


def test_a_transfer_moves_the_signers_hours_to_the_receiver() -> None:
    ledger = HourLedger([("elm", "oak", 6), ("oak", "ash", 1)])
    assert (ledger.balance_of("elm"), ledger.balance_of("oak"), ledger.balance_of("ash")) == (
        -6, 5, 1,
    )  # fmt: skip
    assert ledger.balance_of("nobody") == 0
    assert ledger.total() == 0


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_the_ledger_moves_only_non_negative_integers(bad: object) -> None:
    with pytest.raises(ValueError, match="non-negative integer"):
        HourLedger().transfer("a", "b", bad)  # type: ignore[arg-type]


@given(st.lists(st.tuples(st.sampled_from("abcd"), st.sampled_from("abcd"), st.integers(0, 10**6))))
def test_the_hour_ledger_always_sums_to_zero(moves: list[tuple[str, str, int]]) -> None:
    assert HourLedger(moves).total() == 0


# -- refusals (receivers, §20) --------------------------------------------------------------------


def test_a_transfer_to_oneself_is_refused() -> None:
    body = HoursTransferred(transfer="h1", to="oak", quarters=4)
    assert hours_refusal("oak", body, set()) == "not_authorized"
    assert hours_refusal("elm", body, set()) is None


def test_a_repeated_transfer_id_is_refused_the_later_one_in_the_log() -> None:
    first = transfer("first", "elm", 2, "oak", 4, tid="h1")
    again = transfer("again", "elm", 5, "ash", 8, tid="h1")
    other = transfer("other", "oak", 1, "elm", 3, tid="h1")  # another author may use "h1"
    for order in ([first, again, other], [again, other, first], [other, again, first]):
        ledger, refused = fold_hours(order)
        assert refused == [(again.id, "not_authorized")]
        assert ledger.balances == {"elm": -4 + 3, "oak": 4 - 3}
        assert ledger.total() == 0


def test_a_refused_transfer_moves_nothing() -> None:
    self_paid = transfer("self", "oak", 1, "oak", 4)
    ledger, refused = fold_hours([self_paid])
    assert refused == [(self_paid.id, "not_authorized")]
    assert ledger.balances == {}


# -- the limit (the signer's rule, §20) ----------------------------------------------------------


def test_a_transfer_down_to_minus_the_limit_is_signed() -> None:
    check_hours_spend("oak", balance=-100, quarters=60, limit=160)  # -160: at the limit
    check_hours_spend("oak", balance=0, quarters=0, limit=0)


def test_a_transfer_beyond_the_limit_is_refused_and_says_so_in_hours() -> None:
    with pytest.raises(errors.NotAuthorized) as caught:
        check_hours_spend("oak", balance=-100, quarters=61, limit=160)
    assert caught.value.code == "not_authorized"
    assert caught.value.message == (
        "oak: hour balance -25 h - 15.25 h = -40.25 h, below the hours limit of -40 h"
    )


def test_the_audit_lists_the_neighborhoods_beyond_the_limit() -> None:
    assert hours_breaches({"oak": -161, "elm": -160, "ash": 400}, 160) == ["oak"]


# -- quarter hours for people ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quarters", "text"),
    [(0, "0 h"), (1, "0.25 h"), (2, "0.5 h"), (3, "0.75 h"), (4, "1 h"), (6, "1.5 h"),
     (9, "2.25 h"), (160, "40 h"), (-1, "-0.25 h"), (-7, "-1.75 h")],
)  # fmt: skip
def test_hours_text(quarters: int, text: str) -> None:
    assert hours_text(quarters) == text


@pytest.mark.parametrize(
    ("text", "quarters"),
    [("1", 4), ("1.5", 6), ("2.25", 9), ("0.75", 3), ("2.50", 10), ("3.0", 12), ("1.5 h", 6),
     (" 2 ", 8), ("0", 0), (".5", 2), (".25", 1), (".75", 3), (".5 h", 2)],
)  # fmt: skip
def test_parse_hours(text: str, quarters: int) -> None:
    assert parse_hours(text) == quarters


@pytest.mark.parametrize("text", ["1.3", "0.1", "1.125", "-1", "", "h", ".", ".h", "-.5",
                                  ".3", "1.", "abc", "１", "1,5", "1e2"])  # fmt: skip
def test_parse_hours_refuses_what_is_not_whole_quarter_hours(text: str) -> None:
    with pytest.raises(ValueError):
        parse_hours(text)


@given(st.integers(0, 10**6))
def test_parse_hours_reads_what_hours_text_writes(quarters: int) -> None:
    assert parse_hours(hours_text(quarters)) == quarters


# -- the charter's hours limit (§16.1) ------------------------------------------------------------

FOUNDERS = [Founder(slug="oak", display_name="Oak", area="N1", key="a" * 64)]


def _charter(**policies: int) -> Charter:
    return Charter(name="R", founders=FOUNDERS, created="2026", policies=Policies(**policies))


def test_a_charter_without_an_hours_limit_means_160_quarters() -> None:
    text = json.dumps({"name": "R", "founders": [{"slug": "oak", "display_name": "Oak",
                                                  "area": "N1", "key": "a" * 64}]})  # fmt: skip
    charter, _ = parse_charter(text.encode())
    assert charter.policies.hours_limit == 160


def test_the_default_hours_limit_is_left_out_of_the_file_so_net_is_unchanged() -> None:
    """A charter written before hours_limit existed held these policies: the same file, so
    the same `net`, and an older node (which refuses unknown fields) still reads it."""
    written = json.loads(dump_charter(_charter()))
    assert set(written["policies"]) == {
        "credit_limit", "consent_window_s", "quorum_percent", "escalate_critical_s",
        "escalate_high_s", "escalate_normal_s",
    }  # fmt: skip
    assert parse_charter(dump_charter(_charter()))[0] == _charter()
    stated = {**written, "policies": {**written["policies"], "hours_limit": 160}}
    charter, net = parse_charter(json.dumps(stated).encode())
    assert charter == _charter()  # the same policy, but another text: another federation
    assert net != parse_charter(json.dumps(written).encode())[1]


def test_a_set_hours_limit_is_written_read_and_makes_another_federation() -> None:
    written = dump_charter(_charter(hours_limit=400))
    assert json.loads(written)["policies"]["hours_limit"] == 400
    charter, net = parse_charter(written)
    assert charter.policies.hours_limit == 400
    assert net != parse_charter(dump_charter(_charter()))[1]


@pytest.mark.parametrize("limit", [0, 4_000_000])
def test_the_hours_limit_at_its_bounds_is_read(limit: int) -> None:
    assert parse_charter(dump_charter(_charter(hours_limit=limit)))[0].policies.hours_limit == limit


@pytest.mark.parametrize("limit", [-1, 4_000_001, "40"])
def test_an_hours_limit_out_of_bounds_is_refused(limit: object) -> None:
    value = json.loads(dump_charter(_charter()))
    value["policies"]["hours_limit"] = limit
    with pytest.raises(CharterError, match="hours_limit"):
        parse_charter(json.dumps(value).encode())


@pytest.mark.parametrize(
    ("text", "quarters"),
    [("1.50", 6), ("1.500", 6), ("0.250", 1), ("2.750", 11), ("1.00", 4), ("0.0", 0),
     (".50", 2), ("3.000 h", 12)],
)  # fmt: skip
def test_parse_hours_reads_trailing_zeros_of_the_fraction(text: str, quarters: int) -> None:
    assert parse_hours(text) == quarters


@pytest.mark.parametrize("text", ["abc", "-1", "", "1.x", "１"])
def test_parse_hours_says_what_is_not_a_number(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_hours(text)
    assert str(raised.value) == f"{text!r} is not a number of hours in quarter steps"


@pytest.mark.parametrize("text", ["1.3", "0.1", "1.125", "2.05", "1.2500001"])
def test_parse_hours_says_what_is_not_a_quarter(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_hours(text)
    expected = f"{text!r} is not a whole number of quarter hours (.25, .5, .75)"
    assert str(raised.value) == expected
