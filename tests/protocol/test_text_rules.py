"""The rules of docs/PROTOCOL.md §18 one by one, each with the character that shows it:
which characters are hidden or replaced, how a hidden one is named, and each step of a
skeleton (marks dropped before the confusables map, letters and numbers kept)."""

from __future__ import annotations

from coopnet.protocol.text import hidden_characters, imitations, safe_text, skeleton


def test_line_and_paragraph_separators_become_spaces() -> None:
    assert safe_text("a\u2028b\u2029c") == "a b c"


def test_a_hidden_character_is_named_by_its_unicode_name() -> None:
    assert hidden_characters("a\u2029b\u202ec") == [
        "U+2029 PARAGRAPH SEPARATOR",
        "U+202E RIGHT-TO-LEFT OVERRIDE",
    ]


def test_a_control_character_without_a_name_is_called_control() -> None:
    # Cc characters have no Unicode name: the message says what they are.
    assert hidden_characters("bell\x07 and escape\x1b") == ["U+0007 control", "U+001B control"]


def test_each_hidden_character_is_named_once_in_order_of_first_appearance() -> None:
    assert hidden_characters("\x1b\u200b\x1b\u200b") == [
        "U+001B control",
        "U+200B ZERO WIDTH SPACE",
    ]


def test_a_mark_is_dropped_before_it_could_look_like_a_letter() -> None:
    # TELUGU SIGN ANUSVARA (U+0C02, a combining mark) is in the confusables data as a look-
    # alike of the digit zero; marks go first, so it adds nothing to a skeleton.
    assert skeleton("Oakley\u0c02") == skeleton("Oakley")
    assert skeleton("Oakley\u0c02") != skeleton("Oakley0")


def test_accents_are_no_disguise() -> None:
    assert skeleton("Café Élan") == skeleton("cafe elan")


def test_a_skeleton_keeps_one_character_per_letter_or_number() -> None:
    assert len(skeleton("Alpha 42")) == 7  # a, l, p, h, a, 4, 2: the space is dropped
    assert skeleton("a-b c") == skeleton("abc")


def test_a_name_that_looks_like_a_slug_given_first_imitates_it() -> None:
    assert imitations([("x", "OAKLEY")], ["oakley"]) == {"x": "oakley"}


def test_a_name_that_looks_like_an_earlier_neighborhoods_slug_imitates_it() -> None:
    # oakley's display name is something else: its slug still counts as a name it shows.
    names = [("oakley", "Riverside Bakery"), ("x", "Oakley")]
    assert imitations(names) == {"x": "oakley"}


def test_a_name_that_looks_like_an_earlier_display_name_imitates_it() -> None:
    # The earlier neighborhood's slug looks nothing like its name: the name alone is copied.
    names = [("rb", "Riverside Bakery"), ("x", "RIVERSIDE-BAKERY!")]
    assert imitations(names) == {"x": "rb"}
