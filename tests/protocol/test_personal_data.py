"""The personal-data rule (PROTOCOL.md §13.1): a table of inputs and verdicts (the vectors)
and properties over generated texts: every ordinary way of writing a phone number or an
e-mail address is caught, whatever the script, digits, dashes, dots, spaces or invisible
characters; ordinary quantities, dates, times and prices are not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coopnet.protocol.aid import personal_data_in as from_aid
from coopnet.protocol.personal_data import EMAIL, PHONE, normalize, personal_data_in

VECTORS_PATH = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "personal_data.json"
VECTORS: list[dict[str, str | None]] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


@pytest.mark.parametrize("vector", VECTORS, ids=[ascii(v["text"])[:40] for v in VECTORS])
def test_every_vector_gets_its_verdict(vector: dict[str, str | None]) -> None:
    text = vector["text"]
    assert text is not None
    assert personal_data_in(text) == vector["found"]


def test_the_vectors_cover_both_verdicts_and_none() -> None:
    found = [v["found"] for v in VECTORS]
    assert found.count(EMAIL) >= 10 and found.count(PHONE) >= 10 and found.count(None) >= 10


def test_the_aid_rules_use_this_rule() -> None:
    assert from_aid is personal_data_in


def test_the_case_pii_filter_bypass() -> None:
    """What got through before: a non-ASCII local part, en dashes between digit groups."""
    assert personal_data_in("Groceries for Zoë, write to zoë@example.org") == EMAIL
    assert personal_data_in("Lift to the clinic, ring +44 7700–900–123") == PHONE


# -- generators -------------------------------------------------------------------------------

FORMAT_CHARS = st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\u202e",
                                "\u2066", "\u2069", "\ufeff", "\u200e"])  # fmt: skip
DASHES = ["-", "\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2015", "\u2212",
          "\ufe63", "\uff0d", "\u2e3a"]  # fmt: skip
DOTS = [".", "\u00b7", "\u2022", "\u2024", "\u2027", "\u2219", "\u22c5", "\u30fb", "\uff0e",
        "\u3002"]  # fmt: skip
SPACES = [" ", "\u00a0", "\u2009", "\u202f", "\u2002", "\u2003", "\u2007", "\u3000", "\t"]
SEPARATORS = st.sampled_from([*DASHES, *DOTS, *SPACES, "/", " - ", ") ("])
# Digit families: ASCII, fullwidth, Arabic-Indic, Devanagari, Bengali, mathematical bold.
DIGIT_BASES = [0x30, 0xFF10, 0x0660, 0x0966, 0x09E6, 0x1D7CE]
WORDS = st.sampled_from(["call", "ring", "please", "help", "with", "groceries", "Tuesday",
                         "the", "clinic", "for", "Zoë", "Ана", "谢谢", "kg", "people"])  # fmt: skip


def with_digits(digits: str, base: int) -> str:
    return "".join(chr(base + int(d)) for d in digits)


@st.composite
def phone_numbers(draw: st.DrawFn) -> str:
    """9 to 15 digits in 3 to 6 groups, one separator, in any digit family, maybe `+`."""
    groups = draw(st.lists(st.text("0123456789", min_size=2, max_size=4), min_size=3,
                           max_size=6).filter(lambda g: 9 <= sum(map(len, g)) <= 15))  # fmt: skip
    sep = draw(SEPARATORS)
    base = draw(st.sampled_from(DIGIT_BASES))
    number = sep.join(with_digits(g, base) for g in groups)
    return draw(st.sampled_from(["", "+", "+ ", "00"])) + number


@st.composite
def local_parts(draw: st.DrawFn) -> str:
    alphabet = st.sampled_from(list("abcxyzéëøßçñ") + list("анямир") + list("αβγ")
                               + list("用户名") + ["ज", "़", "न", "ि", "म"])  # fmt: skip
    part = draw(st.text(alphabet, min_size=1, max_size=10))
    extra = draw(st.sampled_from(["", ".", "_", "+", "-", "1"]))
    return part + (extra + draw(st.text(alphabet, min_size=1, max_size=4)) if extra else "")


LABELS = st.sampled_from(["example", "mail", "пример", "例子", "bücher", "co-op", "net7",
                          "उदाहरण", "παράδειγμα"])  # fmt: skip
TLDS = st.sampled_from(["org", "com", "uk", "рф", "中国", "भारत", "ελ", "COOP"])


@st.composite
def email_addresses(draw: st.DrawFn) -> str:
    labels = draw(st.lists(LABELS, min_size=1, max_size=3))
    at, dot = draw(st.sampled_from([("@", "."), ("＠", "．"), ("@", "。"), ("﹫", "."),
                                    (" [at] ", " [dot] "), (" (AT) ", " (Dot) "),
                                    (" at ", " dot "), (" @ ", ".")]))  # fmt: skip
    return draw(local_parts()) + at + dot.join([*labels, draw(TLDS)])


def sprinkled(text: str, marks: list[tuple[int, str]]) -> str:
    """`text` with format characters inserted at the given positions."""
    out = list(text)
    for pos, ch in sorted(marks, reverse=True):
        out.insert(pos % (len(out) + 1), ch)
    return "".join(out)


@settings(max_examples=300)
@given(phone_numbers(), WORDS, WORDS)
def test_every_generated_phone_number_is_caught(number: str, before: str, after: str) -> None:
    assert personal_data_in(f"{before} {number} {after}") == PHONE, ascii(number)


@settings(max_examples=300)
@given(email_addresses(), WORDS, WORDS)
def test_every_generated_email_address_is_caught(address: str, before: str, after: str) -> None:
    assert personal_data_in(f"{before} {address}, {after}") == EMAIL, ascii(address)


@settings(max_examples=300)
@given(st.one_of(phone_numbers(), email_addresses(), st.text(max_size=40)),
       st.lists(st.tuples(st.integers(0, 60), FORMAT_CHARS), max_size=5))  # fmt: skip
def test_format_characters_never_change_the_verdict(
    text: str, marks: list[tuple[int, str]]
) -> None:
    assert personal_data_in(sprinkled(text, marks)) == personal_data_in(text)


# Ordinary quantities, dates, times and prices (the rule's promise of no false positive).
quantities = st.integers(0, 999_999).map(str) | st.integers(1000, 999_999).map("{:,}".format)
dates = st.builds(
    lambda d, m, y, form: form.format(d=d, m=m, y=y),
    st.integers(1, 28), st.integers(1, 12), st.integers(1990, 2099),
    st.sampled_from(["{d}.{m}.{y}", "{d:02}.{m:02}.{y}", "{y}-{m:02}-{d:02}", "{d}/{m}/{y}",
                     "{d:02}-{m:02}-{y}", "{d} May {y}"]),
)  # fmt: skip
times = st.builds(
    lambda h, mi, form: form.format(h=h, mi=mi),
    st.integers(0, 23), st.integers(0, 59),
    st.sampled_from(["{h}.{mi:02}", "{h:02}:{mi:02}", "{h}h{mi:02}", "{h}.{mi:02}-{h}.{mi:02}",
                     "{h}pm"]),
)  # fmt: skip
prices = st.builds(
    lambda units, cents, form: form.format(u=units, c=cents),
    st.integers(0, 9999), st.integers(0, 99),
    st.sampled_from(["€{u}.{c:02}", "{u},{c:02} €", "£{u}", "${u}.{c:02}", "{u}.{c:02} credits"]),
)  # fmt: skip
years = st.builds(lambda y, n: f"{y}-{y + n}", st.integers(1900, 2090), st.integers(1, 9))
ORDINARY = st.one_of(quantities, dates, times, prices, years)
JOINS = st.sampled_from([" and ", ", ", " on ", " at ", " by ", " or ", "; ", " for "])


@settings(max_examples=400)
@given(st.lists(st.tuples(ORDINARY, JOINS), min_size=1, max_size=6), WORDS)
def test_ordinary_quantities_dates_times_and_prices_are_not_personal_data(
    parts: list[tuple[str, str]], word: str
) -> None:
    text = word + " " + "".join(value + join for value, join in parts) + word
    assert personal_data_in(text) is None, text


def test_normalization_maps_digits_dashes_dots_and_spaces() -> None:
    assert normalize("٠٦\u2013１２\u00a03\u30fb4\u200b5") == "06-12 3.45"
