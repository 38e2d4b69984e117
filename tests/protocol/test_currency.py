"""The currency a charter names (docs/PROTOCOL.md §16.1): its bounds on both sides, what an
absent key means, and that a charter written before the key keeps its `net`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coopnet.protocol import DEFAULT_CURRENCY, Currency
from coopnet.protocol.charter import Charter, CharterError, Founder, dump_charter, parse_charter

KEY = "11" * 32
POUNDS = {"code": "GBP", "name": "Riverside pounds", "symbol": "£", "minor_units": 2}
# A charter as written before charters could name a currency, and the `net` it hashed to
# then (computed by the coopnet of that time): the new key must not move it.
OLD_CHARTER = (
    '{"name": "Riverside Federation", "founders": [{"slug": "oakley", "display_name": '
    f'"Oakley", "area": "N1", "key": "{KEY}"}}], "policies": {{"credit_limit": 20000}}, '
    '"created": "2026-01-01T00:00:00Z"}'
)
OLD_NET = "b66e42984edc9625de16cf06df2bb21d"


def charter_text(currency: object = None, **changes: object) -> bytes:
    value: dict[str, Any] = json.loads(OLD_CHARTER)
    if currency is not None:
        value["currency"] = currency
    value.update(changes)
    return json.dumps(value, ensure_ascii=False).encode()


def currency_of(**changes: object) -> Currency:
    charter, _ = parse_charter(charter_text({**POUNDS, **changes}))
    assert charter.currency is not None
    return charter.currency


def refusal(**changes: object) -> str:
    with pytest.raises(CharterError) as caught:
        parse_charter(charter_text({**POUNDS, **changes}))
    return str(caught.value)


def test_an_old_charter_keeps_its_net_and_counts_in_credits() -> None:
    charter, net = parse_charter(OLD_CHARTER.encode())
    assert net.hex() == OLD_NET
    assert charter.currency is None
    assert charter.currency_or_default() == DEFAULT_CURRENCY
    assert Currency(code="CRD", name="credits", symbol="", minor_units=2) == DEFAULT_CURRENCY


def test_a_charter_names_its_currency_and_that_makes_another_federation() -> None:
    charter, net = parse_charter(charter_text(POUNDS))
    assert charter.currency_or_default() == Currency(
        code="GBP", name="Riverside pounds", symbol="£", minor_units=2
    )
    assert net.hex() != OLD_NET


def test_stating_the_default_currency_means_the_same_but_is_another_net() -> None:
    """§16.1: a default applies to the meaning only; the bytes are the charter as written."""
    stated = {"code": "CRD", "name": "credits", "symbol": "", "minor_units": 2}
    charter, net = parse_charter(charter_text(stated))
    assert charter.currency_or_default() == DEFAULT_CURRENCY
    assert net.hex() != OLD_NET


@pytest.mark.parametrize(("absent", "default"), [("symbol", ""), ("minor_units", 2)])
def test_an_absent_symbol_or_minor_units_takes_its_default(absent: str, default: object) -> None:
    value = {k: v for k, v in POUNDS.items() if k != absent}
    charter, _ = parse_charter(charter_text(value))
    assert getattr(charter.currency_or_default(), absent) == default


@pytest.mark.parametrize("required", ["code", "name"])
def test_a_currency_without_code_or_name_is_refused(required: str) -> None:
    value = {k: v for k, v in POUNDS.items() if k != required}
    with pytest.raises(CharterError, match=required):
        parse_charter(charter_text(value))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("code", "AAA"),
        ("code", "CRD"),
        ("code", "ZZZ"),
        ("name", "x"),
        ("name", "é" * 40),
        ("symbol", ""),
        ("symbol", "€" * 8),
        ("minor_units", 0),
        ("minor_units", 4),
    ],
)
def test_each_currency_field_at_its_bound_is_accepted(field: str, value: object) -> None:
    assert getattr(currency_of(**{field: value}), field) == value


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("code", "gbp", "code"),
        ("code", "GB", "code"),
        ("code", "GBPX", "code"),
        ("code", "GBP\n", "code"),  # patterns match the whole string (§2.3)
        ("code", "G1P", "code"),
        ("name", "", "name"),
        ("name", "é" * 41, "name"),
        ("symbol", "€" * 9, "symbol"),
        ("minor_units", -1, "minor_units"),
        ("minor_units", 5, "minor_units"),
        ("minor_units", True, "minor_units"),
        ("minor_units", "2", "minor_units"),
    ],
)
def test_each_currency_field_beyond_its_bound_is_refused_by_name(
    field: str, value: object, said: str
) -> None:
    assert said in refusal(**{field: value})


@pytest.mark.parametrize(
    ("currency", "said"),
    [
        ({**POUNDS, "rate": 1}, "rate"),
        ("GBP", "currency"),
        ([POUNDS], "currency"),
        ({**POUNDS, "symbol": "\x07"}, "control characters"),
    ],
)
def test_an_unknown_key_another_type_or_a_control_character_is_refused(
    currency: object, said: str
) -> None:
    with pytest.raises(CharterError) as caught:
        parse_charter(charter_text(currency))
    assert said in str(caught.value)


def test_a_null_currency_is_refused_not_read_as_absent() -> None:
    text = OLD_CHARTER[:-1] + ', "currency": null}'
    with pytest.raises(CharterError, match="currency is an object"):
        parse_charter(text.encode())


def test_a_fractional_minor_units_is_refused() -> None:
    with pytest.raises(CharterError, match="fractions"):
        parse_charter(charter_text({**POUNDS, "minor_units": 2.0}))


def test_dump_writes_a_currency_only_when_the_charter_names_one() -> None:
    founders = [Founder(slug="oakley", display_name="Oakley", area="N1", key=KEY)]
    plain = Charter(name="R", founders=founders)
    assert "currency" not in json.loads(dump_charter(plain))
    currency = Currency(code="GBP", name="Riverside pounds", symbol="£", minor_units=2)
    pounds = Charter(name="R", founders=founders, currency=currency)
    written = json.loads(dump_charter(pounds))
    assert written["currency"] == POUNDS
    assert parse_charter(dump_charter(pounds))[0] == pounds


def test_the_example_of_protocol_md_is_the_vectors_charter() -> None:
    """§16.1's example shows the canonical bytes and `net` of the `with_currency` vector
    (and the `net` of the same charter without a currency): the doc cannot drift."""
    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
    vectors = json.loads((root / "protocol" / "vectors" / "charters.json").read_text("utf-8"))
    by_name = {v["name"]: v for v in vectors}
    pounds, plain = by_name["with_currency"], by_name["without_currency"]
    assert pounds["canonical"] in doc and pounds["net"] in doc and plain["net"] in doc
    assert parse_charter(pounds["text"].encode())[1].hex() == pounds["net"]


@pytest.mark.parametrize(
    ("symbol", "char"),
    [
        ("1", "U+0031"),  # "15" would read as 5 with it
        ("£\u0664", "U+0664"),  # an Arabic-Indic digit: any script's digit (Nd)
        ("\u00b2", "U+00B2"),  # ² is 2 once normalized (NFKC)
        ("-", "U+002D"),  # "-4" would read as 4
        ("\u2212", "U+2212"),  # the minus sign the app shows negatives with
        ("\u2013", "U+2013"),  # a dash (Pd)
        ("+", "U+002B"),
        ("£.", "U+002E"),
        ("\uff0e", "U+FF0E"),  # ． is . once normalized
        (",", "U+002C"),
        ("£ ", "U+0020"),
        ("\u00a0", "U+00A0"),
        ("\u200b", "U+200B"),  # zero-width: an invisible symbol
        ("\u202e£", "U+202E"),  # right-to-left override: reorders the amount shown after it
        ("\u0085", "U+0085"),  # a C1 control
    ],
)
def test_a_symbol_that_would_make_an_amount_read_as_another_is_refused(
    symbol: str, char: str
) -> None:
    """§16.1: written before the number, a symbol holds nothing a number is made of, no
    space and nothing invisible; the refusal is one line naming the character."""
    said = refusal(symbol=symbol)
    assert f"currency symbol {symbol!r} holds {char}" in said and "§16.1" in said
    assert "\n" not in said


@pytest.mark.parametrize(
    ("name", "said"),
    [
        (" ", "is blank"),
        ("\u3000\u3000", "is blank"),
        ("credits\u009b", "holds U+009B"),  # C1: a terminal's control sequence introducer
        ("credits\u202e", "holds U+202E"),
        ("credits\u200b", "holds U+200B"),
        ("credits\u2028", "holds U+2028"),
    ],
)
def test_a_blank_name_or_one_with_invisible_characters_is_refused(name: str, said: str) -> None:
    assert said in refusal(name=name)


@pytest.mark.parametrize(
    ("field", "value"),
    [("symbol", "KD"), ("symbol", "CHF"), ("symbol", "₿"), ("symbol", "$"),
     ("name", "credits [2026]/"), ("name", "Riverside pounds"), ("name", "2nd-hand hours")],
)  # fmt: skip
def test_letters_signs_and_a_named_name_with_digits_are_accepted(field: str, value: str) -> None:
    assert getattr(currency_of(**{field: value}), field) == value


def test_a_currency_made_in_code_keeps_the_rule_too() -> None:
    """A node's config builds its Currency directly: the rule holds there as well."""
    with pytest.raises(ValueError, match="HYPHEN-MINUS"):
        Currency(code="NEG", name="negs", symbol="-")
    with pytest.raises(ValueError, match="blank"):
        Currency(code="SPC", name=" ")
