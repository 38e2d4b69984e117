"""One table of typed amounts, read alike by the CLI and the app: node/engine/money.py
`parse_amount` and node/engine/static/app/format.js `readMoney` (the real module, run in
Debian's chromium through Playwright) accept the same texts as the same integer cents, and
refuse the same texts with the same sentence. Neither reads ',' (no decimal comma, no
grouping: with 3 minor units "1,000" is neither 1.000 nor 1000), inner spaces ("4 50"),
signs or a minus before or after the symbol. And the app shows amounts with '.' as the
decimal point in every language (`amount`), the point both read."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import pytest
from playwright.async_api import Page, Route

from coopnet.node.engine.money import AmountError, PlainCurrency, parse_amount
from tests.node.test_app_journeys import chromium

pytestmark = pytest.mark.timeout(120)

APP = Path(__file__).resolve().parents[2] / "node" / "engine" / "static" / "app"
ORIGIN = "http://coopnet.test"  # served by page.route below: no server, the file on disk

CREDITS = PlainCurrency(code="CRD", name="credits", symbol="", minor_units=2)
POUNDS = PlainCurrency(code="GBP", name="pounds", symbol="£", minor_units=2)
HOURS = PlainCurrency(code="HRS", name="hours", symbol="", minor_units=0)
DINARS = PlainCurrency(code="KWD", name="dinars", symbol="KD", minor_units=3)
MILLS = PlainCurrency(code="MIL", name="mills", symbol="", minor_units=4)
# Currencies the charter refuses since §16.1's symbol rule; the parser alone still must not
# be led by them to read a negative amount as a positive one.
MINUS_SIGN = PlainCurrency(code="NEG", name="negs", symbol="-", minor_units=2)


class Row(NamedTuple):
    text: str
    currency: PlainCurrency
    cents: int | None  # what it reads as; None: refused
    says: str = ""  # the refusal, after the quoted text


NOT_CREDITS = "is not an amount in credits: write it like 4.50"
NO_COMMA = " (digits and one '.', no ',')"
NEGATIVE = "is negative: amounts are 0 or more"
TABLE = [
    Row("4.50", CREDITS, 450),
    Row("4.5", CREDITS, 450),
    Row("4", CREDITS, 400),
    Row(".5", CREDITS, 50),
    Row("5.", CREDITS, 500),
    Row("0", CREDITS, 0),
    Row(" 0.05 ", CREDITS, 5),
    Row("\u00a04.50\t\n", CREDITS, 450),  # no-break space and ASCII whitespace at the ends
    Row("9999999999.99", CREDITS, 999_999_999_999),
    Row("£4.50", POUNDS, 450),
    Row("£ 4.50", POUNDS, 450),
    Row(" £.5 ", POUNDS, 50),
    Row("4.50", POUNDS, 450),
    Row("12", HOURS, 12),
    Row("1.2345", MILLS, 12345),
    Row("1.000", DINARS, 1000),
    Row("KD1", DINARS, 1000),
    Row("1,000", DINARS, None, "is not an amount in dinars: write it like 4.500" + NO_COMMA),
    Row("4,50", CREDITS, None, NOT_CREDITS + NO_COMMA),
    Row("4,5", CREDITS, None, NOT_CREDITS + NO_COMMA),
    Row("1,234.50", CREDITS, None, NOT_CREDITS + NO_COMMA),
    Row("4 50", CREDITS, None, NOT_CREDITS),
    Row("4\u00a050", CREDITS, None, NOT_CREDITS),
    Row("\u20034.50", CREDITS, None, NOT_CREDITS),  # an em space is not stripped
    Row("\ufeff4.50", CREDITS, None, NOT_CREDITS),  # nor a byte order mark
    Row("+4", CREDITS, None, NOT_CREDITS),
    Row("1e3", CREDITS, None, NOT_CREDITS),
    Row("0x10", CREDITS, None, NOT_CREDITS),
    Row("Infinity", CREDITS, None, NOT_CREDITS),
    Row("\u0664", CREDITS, None, NOT_CREDITS),  # ٤: digits are ASCII digits
    Row("\uff14", CREDITS, None, NOT_CREDITS),  # ４
    Row("", CREDITS, None, NOT_CREDITS),
    Row(".", CREDITS, None, NOT_CREDITS),
    Row("£", POUNDS, None, "is not an amount in pounds: write it like 4.50"),
    Row("££4", POUNDS, None, "is not an amount in pounds: write it like 4.50"),
    Row("$4", POUNDS, None, "is not an amount in pounds: write it like 4.50"),
    Row("4£", POUNDS, None, "is not an amount in pounds: write it like 4.50"),
    Row("KD", DINARS, None, "is not an amount in dinars: write it like 4.500"),
    Row("-4", CREDITS, None, NEGATIVE),
    Row("\u22124.50", CREDITS, None, NEGATIVE),  # the minus sign the app shows
    Row("-£4", POUNDS, None, NEGATIVE),
    Row("£-4", POUNDS, None, NEGATIVE),
    Row("£ \u22124", POUNDS, None, NEGATIVE),
    Row("-4", MINUS_SIGN, None, NEGATIVE),
    Row("--4", MINUS_SIGN, None, NEGATIVE),
    Row("4.505", CREDITS, None, "has 3 decimal places; credits have 2"),
    Row("1.5", HOURS, None, ": hours have no fractions; write a whole number"),
    Row("1.00001", MILLS, None, "has 5 decimal places; mills have 4"),
    Row("12345678901", CREDITS, None, "is too large: at most 10 digits before the point"),
]
IDS = [f"{r.currency.code}:{r.text!r}" for r in TABLE]


def python_reads(row: Row) -> tuple[int | None, str]:
    """(cents, "") or (None, the refusal after the quoted text), by parse_amount."""
    try:
        return parse_amount(row.text, row.currency), ""
    except AmountError as exc:
        said = str(exc)
        assert said.startswith(repr(row.text)), said
        return None, said[len(repr(row.text)) :].lstrip(" ")


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_the_cli_reads_the_table(row: Row) -> None:
    assert python_reads(row) == (row.cents, row.says)


# Each row in the app: set the currency, read the text, give back (cents, the refusal after
# the quoted text “…”).
READ_ALL = """async (rows) => {
  const f = await import("/app/format.js");
  return rows.map(([text, currency]) => {
    f.setCurrency(currency);
    const { cents, error } = f.readMoney(text);
    const quoted = `“${text}”`;
    if (error === null) return [cents, ""];
    if (!error.startsWith(quoted)) return [cents, `unquoted: ${error}`];
    return [cents, error.slice(quoted.length).trimStart()];
  });
}"""


async def app_page(page: Page) -> None:
    """`page` at ORIGIN, where /app/<file> is node/engine/static/app/<file> from disk."""

    async def serve(route: Route) -> None:
        path = route.request.url.removeprefix(ORIGIN)
        if path == "/":
            await route.fulfill(body="<!doctype html><title>amounts</title>",
                                content_type="text/html")  # fmt: skip
        elif path.startswith("/app/") and path.endswith(".js"):
            await route.fulfill(
                body=(APP / path.removeprefix("/app/")).read_text(encoding="utf-8"),
                content_type="text/javascript",
            )
        else:
            await route.fulfill(status=404)

    await page.route(f"{ORIGIN}/**", serve)
    await page.goto(f"{ORIGIN}/")


def currency_js(c: PlainCurrency) -> dict[str, Any]:
    return {"code": c.code, "name": c.name, "symbol": c.symbol, "minor_units": c.minor_units}


async def test_the_app_reads_the_table_as_the_cli_does() -> None:
    async with chromium() as browser:
        page = await browser.new_page(locale="en-US")
        await app_page(page)
        found = await page.evaluate(READ_ALL, [[r.text, currency_js(r.currency)] for r in TABLE])
    app = {i: (cents, says) for i, (cents, says) in zip(IDS, found, strict=True)}
    cli = {i: python_reads(r) for i, r in zip(IDS, TABLE, strict=True)}
    expected = {i: (r.cents, r.says) for i, r in zip(IDS, TABLE, strict=True)}
    assert app == expected
    assert cli == expected


@pytest.mark.parametrize("locale", ["en-US", "de-DE", "fr-CH"])
async def test_the_app_shows_amounts_with_the_point_it_reads_in_every_language(
    locale: str,
) -> None:
    """`amount` groups with ',' and marks decimals with '.', in a language that groups with
    '.' too (de-DE would show 1234.50 as "1.234.50"); what it shows below 1,000 units reads
    back as the same cents."""
    async with chromium() as browser:
        page = await browser.new_page(locale=locale)
        await app_page(page)
        shown = await page.evaluate(
            """async () => {
              const f = await import("/app/format.js");
              f.setCurrency({ code: "KWD", name: "dinars", symbol: "", minor_units: 3 });
              return [f.amount(1234500), f.amount(-1000), f.amount(999999),
                      f.readMoney(f.amount(999999)).cents];
            }"""
        )
    assert shown == ["1,234.500", "−1.000", "999.999", 999999]
