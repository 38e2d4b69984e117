"""Amounts as people read and write them, in the federation's currency.

Amounts are stored and sent as integers in the currency's minor units ("cents": 450 is
4.50 credits when the currency has two minor units). People type and read them in the
currency's units: `parse_amount("4.50", c) -> 450`, `format_amount(450, c) -> "4.50
credits"` (or `"£4.50"` for a currency with a symbol). No float ever holds an amount.

The currency is the federation charter's (`coopnet.protocol.charter.Currency`: `code`,
`name`, `symbol`, `minor_units`), as the node's config gives it (`NodeConfig.currency`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

MAX_MINOR_UNITS = 4  # 0-4 decimal places, as the charter allows (ISO 4217 uses 0-3)


class Currency(Protocol):
    """What formatting needs of a currency: the charter's `Currency` has these fields, and
    so has `PlainCurrency`."""

    @property
    def code(self) -> str: ...  # "CRD", "GBP"

    @property
    def name(self) -> str: ...  # what people call it, plural: "credits"

    @property
    def symbol(self) -> str: ...  # "" or "£": written before the amount

    @property
    def minor_units(self) -> int: ...  # decimal places: 2 means amounts are in cents


@dataclass(frozen=True)
class PlainCurrency:
    """A `Currency` built from parts (a `currency_json` dict, or a name-less one to show
    bare numbers: `PlainCurrency(name="")` formats 450 as "4.50")."""

    code: str = "CRD"
    name: str = "credits"
    symbol: str = ""
    minor_units: int = 2


class AmountError(ValueError):
    """Text that is not an amount in the currency; the message says why, for people."""


def currency_of(config: object) -> Currency:
    """The node's currency from its `NodeConfig` (`config.currency`: the charter's, else
    node.toml's `currency_code`/`currency_name` with 2 minor units)."""
    found = getattr(config, "currency", None)
    if found is not None and all(
        hasattr(found, f) for f in ("code", "name", "symbol", "minor_units")
    ):
        currency: Currency = found
        return currency
    return PlainCurrency(
        code=str(getattr(config, "currency_code", "CRD")),
        name=str(getattr(config, "currency_name", "credits")),
    )


def currency_json(currency: Currency) -> dict[str, object]:
    """The currency as JSON outputs name it (`code`, `name`, `symbol`, `minor_units`):
    amounts beside it are integers of its minor unit."""
    return {
        "code": currency.code,
        "name": currency.name,
        "symbol": currency.symbol,
        "minor_units": currency.minor_units,
    }


def _places(currency: Currency) -> int:
    places = currency.minor_units
    if not 0 <= places <= MAX_MINOR_UNITS:
        raise ValueError(f"minor_units must be 0-{MAX_MINOR_UNITS}, not {places}")
    return places


def format_amount(cents: int, currency: Currency) -> str:
    """`cents` (integer minor units, may be negative) in the currency's units for people:
    `format_amount(450, credits) == "4.50 credits"`, `format_amount(-450, pounds) ==
    "-£4.50"`, `format_amount(450, whole_hours) == "450 hours"` (0 minor units)."""
    places = _places(currency)
    sign = "-" if cents < 0 else ""
    whole, minor = divmod(abs(cents), 10**places)
    number = f"{whole}.{minor:0{places}d}" if places else str(whole)
    if currency.symbol:
        return f"{sign}{currency.symbol}{number}"
    return f"{sign}{number} {currency.name}".rstrip()


# What parse_amount (and the app's readMoney, node/engine/static/app/format.js) accept: at
# most MAX_WHOLE_DIGITS ASCII digits, then optionally '.' and ASCII digits; at least one
# digit. No sign, no exponent, no ',' (neither decimal comma nor grouping), no inner space.
_AMOUNT = re.compile(r"(?P<whole>[0-9]*)(?:\.(?P<minor>[0-9]*))?")
MAX_WHOLE_DIGITS = 10  # 9,999,999,999 units: exact in a JavaScript number with 4 decimals
# Stripped from both ends of a typed amount, and between the symbol and the number: ASCII
# whitespace and U+00A0 (no-break space), exactly the `SPACE` of format.js's readMoney.
_SPACE = " \t\n\r\x0b\x0c\xa0"
_MINUS = ("-", "\u2212")  # hyphen-minus, and the minus sign the app shows negatives with
_DIGITS_OR_POINT = frozenset("0123456789.")  # what may follow the symbol


def parse_amount(text: str, currency: Currency) -> int:
    """An amount typed in the currency's units, as integer minor units (cents):
    `"4.50"`, `"4.5"`, `"4"`, `".5"` and `"£4.50"` or `"£ 4.50"` (the currency's own symbol,
    then the number) are 450 (50 for ".5") with two minor units. Raises AmountError, one
    sentence for people, for a negative amount ('-' or '−' before or after the symbol), more
    decimals than the currency has, more than MAX_WHOLE_DIGITS digits before the point, or
    anything that is not a plain number: ',' (no decimal comma, no grouping), inner spaces,
    signs, exponents. The app's readMoney (format.js) accepts and refuses exactly the same
    texts with the same sentences (tests/node/test_app_currency_amounts.py: one table)."""
    places = _places(currency)
    raw = text.strip(_SPACE)
    negative = AmountError(f"{text!r} is negative: amounts are 0 or more")
    if raw.startswith(_MINUS):  # before the symbol: "-£4"
        raise negative
    if currency.symbol and raw.startswith(currency.symbol):
        rest = raw[len(currency.symbol) :].lstrip(_SPACE)
        if rest.startswith(_MINUS):  # after it: "£-4"
            raise negative
        # Only a number may follow the symbol: then it is the symbol, not part of the text.
        if rest[:1] in _DIGITS_OR_POINT:
            raw = rest
    found = _AMOUNT.fullmatch(raw)
    if found is None or not (found["whole"] or found["minor"]):
        example = _plain(450 * 10**places // 100, places)
        hint = " (digits and one '.', no ',')" if "," in raw else ""
        raise AmountError(
            f"{text!r} is not an amount in {currency.name}: write it like {example}{hint}"
        )
    whole, minor = found["whole"], found["minor"] or ""
    if len(whole) > MAX_WHOLE_DIGITS:
        raise AmountError(
            f"{text!r} is too large: at most {MAX_WHOLE_DIGITS} digits before the point"
        )
    if len(minor) > places:
        if places == 0:
            raise AmountError(f"{text!r}: {currency.name} have no fractions; write a whole number")
        raise AmountError(
            f"{text!r} has {len(minor)} decimal places; {currency.name} have {places}"
        )
    scale: int = 10**places
    return int(whole or 0) * scale + int(minor.ljust(places, "0") or 0)


def _plain(cents: int, places: int) -> str:
    whole, minor = divmod(cents, 10**places)
    return f"{whole}.{minor:0{places}d}" if places else str(whole)


__all__ = [
    "AmountError",
    "Currency",
    "PlainCurrency",
    "currency_json",
    "currency_of",
    "format_amount",
    "parse_amount",
]
