"""The charter's byte rules (docs/PROTOCOL.md §16.1) and what it says when it refuses: the
file an operator hands over is read as the spec says, and a refusal names what is wrong."""

from __future__ import annotations

import json

import pytest

from coopnet.protocol.charter import (
    Charter,
    CharterError,
    Currency,
    Founder,
    canonical_bytes,
    dump_charter,
    parse_charter,
)

KEY_A = "a" * 64
KEY_B = "b" * 64


def _founder(slug: str, key: str) -> dict[str, str]:
    return {"slug": slug, "display_name": slug.title(), "area": "N1", "key": key}


def _refusal(data: bytes) -> str:
    with pytest.raises(CharterError) as caught:
        parse_charter(data)
    return str(caught.value)


def test_founders_with_the_same_slug_are_refused_and_told_why() -> None:
    data = json.dumps({"name": "R", "founders": [_founder("oak", KEY_A), _founder("oak", KEY_B)]})
    assert _refusal(data.encode()) == "founders must have distinct slugs and distinct keys"


def test_founders_with_the_same_key_are_refused_and_told_why() -> None:
    data = json.dumps({"name": "R", "founders": [_founder("oak", KEY_A), _founder("elm", KEY_A)]})
    assert _refusal(data.encode()) == "founders must have distinct slugs and distinct keys"


def test_a_control_character_in_a_key_is_refused_and_shown() -> None:
    with pytest.raises(CharterError) as caught:
        canonical_bytes({"na\x01me": "R"})
    assert str(caught.value) == "control characters are not allowed in a charter: 'na\\x01me'"


def test_a_control_character_inside_a_list_is_refused() -> None:
    with pytest.raises(CharterError) as caught:
        canonical_bytes({"founders": [{"area": "N\x7f"}]})
    assert str(caught.value) == "control characters are not allowed in a charter: 'N\\x7f'"


def test_a_fraction_is_refused_by_its_type() -> None:
    with pytest.raises(CharterError) as caught:
        canonical_bytes({"policies": {"quorum_percent": 50.5}})
    assert str(caught.value) == "a charter holds no float values"


def test_canonical_bytes_are_sorted_compact_utf8() -> None:
    value = {"name": "Rivière", "founders": [{"slug": "oak", "area": "N1"}], "version": 1}
    assert canonical_bytes(value) == (
        '{"founders":[{"area":"N1","slug":"oak"}],"name":"Rivière","version":1}'.encode()
    )


def test_the_file_written_for_people_is_indented_utf8_and_reads_back_the_same() -> None:
    charter = Charter(
        name="Rivière",
        founders=[Founder(slug="oak", display_name="Oak", area="N1", key=KEY_A)],
        created="2026-12-01",
    )
    written = dump_charter(charter)
    assert (
        written
        == (
            "{\n"
            '  "version": 1,\n'
            '  "name": "Rivière",\n'
            '  "founders": [\n'
            "    {\n"
            '      "slug": "oak",\n'
            '      "display_name": "Oak",\n'
            '      "area": "N1",\n'
            f'      "key": "{KEY_A}"\n'
            "    }\n"
            "  ],\n"
            '  "policies": {\n'
            '    "credit_limit": 50000,\n'
            '    "consent_window_s": 604800,\n'
            '    "quorum_percent": 50,\n'
            '    "escalate_critical_s": 900,\n'
            '    "escalate_high_s": 7200,\n'
            '    "escalate_normal_s": 86400\n'
            "  },\n"
            '  "created": "2026-12-01"\n'
            "}\n"
        ).encode()
    )
    assert parse_charter(written)[0] == charter


def test_a_currency_of_null_is_refused_and_told_what_it_should_be() -> None:
    data = json.dumps({"name": "R", "founders": [_founder("oak", KEY_A)], "currency": None})
    assert _refusal(data.encode()) == (
        "currency is an object {code, name, symbol, minor_units}, not null"
    )


def test_a_charter_built_in_code_with_a_control_character_is_not_written() -> None:
    charter = Charter(
        name="River\x1bside",
        founders=[Founder(slug="oak", display_name="Oak", area="N1", key=KEY_A)],
    )
    with pytest.raises(CharterError) as caught:
        dump_charter(charter)
    assert str(caught.value) == "control characters are not allowed in a charter: 'River\\x1bside'"


CURRENCY_REFUSALS = {
    "a digit in the symbol": (
        {"symbol": "1"},
        "currency symbol '1' holds U+0031 (DIGIT ONE): a symbol holds no digits, '.', ',', '+', "
        "dashes or minus signs, spaces, format or control characters (nor their compatibility "
        "forms, such as '．'), so an amount typed or shown with it reads as one number "
        "(PROTOCOL.md §16.1)",
    ),
    "a format character in the name": (
        {"name": "pou\u200bnds"},
        "currency name 'pou\\u200bnds' holds U+200B (ZERO WIDTH SPACE): a name holds no format, "
        "control or line-separator characters (PROTOCOL.md §16.1)",
    ),
    "a C1 control, which has no Unicode name, named by its category": (
        {"name": "a\x85b"},
        "currency name 'a\\x85b' holds U+0085 (Cc): a name holds no format, control or "
        "line-separator characters (PROTOCOL.md §16.1)",
    ),
    "a blank name": (
        {"name": "  "},
        "currency name '  ' is blank: name it with at least one letter, digit or sign people "
        "read (PROTOCOL.md §16.1)",
    ),
}


@pytest.mark.parametrize(
    ("fields", "message"), CURRENCY_REFUSALS.values(), ids=CURRENCY_REFUSALS.keys()
)
def test_a_currency_refusal_names_the_character_and_the_rule(
    fields: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        Currency(**{"code": "RVP", "name": "pounds", **fields})  # type: ignore[arg-type]
    assert str(caught.value) == message


def _currency_refusal(currency: dict[str, object]) -> str:
    data = json.dumps({"name": "R", "founders": [_founder("oak", KEY_A)], "currency": currency})
    return _refusal(data.encode())


@pytest.mark.parametrize(
    ("char", "named"),
    [
        ("\u2028", "U+2028 (LINE SEPARATOR)"),
        ("\u2029", "U+2029 (PARAGRAPH SEPARATOR)"),
        ("\ud800", "U+D800 (Cs)"),  # a lone surrogate, as a JSON escape can write one
        ("\u0663", "U+0663 (ARABIC-INDIC DIGIT THREE)"),
    ],
)
def test_a_symbol_holding_a_separator_a_surrogate_or_any_digit_is_refused(
    char: str, named: str
) -> None:
    message = _currency_refusal({"code": "RVP", "name": "pounds", "symbol": char})
    assert f"holds {named}: a symbol holds no digits" in message, message


@pytest.mark.parametrize(
    ("char", "named"),
    [("\u2029", "U+2029 (PARAGRAPH SEPARATOR)"), ("\udfff", "U+DFFF (Cs)")],
)
def test_a_name_holding_a_paragraph_separator_or_a_surrogate_is_refused(
    char: str, named: str
) -> None:
    message = _currency_refusal({"code": "RVP", "name": f"pou{char}nds"})
    assert f"holds {named}: a name holds no format" in message, message


def test_an_empty_currency_name_is_refused_by_its_length() -> None:
    # "" is refused by its bound (1-40 characters), before the rule on blank names.
    message = _currency_refusal({"code": "RVP", "name": ""})
    assert "Expected `str` of length >= 1" in message, message
