"""Event text made safe to show, and look-alike names (PROTOCOL.md §18), pure."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coopnet.protocol.text import hidden_characters, imitations, safe_text, skeleton

TRICKS = ["\u202e", "\u202d", "\u2066", "\u2067", "\u2069", "\u200b", "\u200d", "\u200e",
          "\u00ad", "\ufeff", "\x1b", "\n", "\x07", "\u2028"]  # fmt: skip


@given(st.lists(st.one_of(st.text(max_size=10), st.sampled_from(TRICKS)), max_size=8).map("".join))
def test_safe_text_leaves_no_format_or_control_character_and_is_idempotent(text: str) -> None:
    safe = safe_text(text)
    assert not [c for c in safe if unicodedata.category(c) in ("Cf", "Cc", "Zl", "Zp")]
    assert safe_text(safe) == safe
    assert hidden_characters(safe) == []
    assert (safe == text) == (hidden_characters(text) == [])


@given(st.text(st.characters(blacklist_categories=("Cf", "Cc", "Zl", "Zp", "Cs"))))
def test_safe_text_keeps_ordinary_text_as_it_is(text: str) -> None:
    assert safe_text(text) == text


def test_the_case_display_name_spoofing() -> None:
    assert safe_text("Trusted\u202e\u200b") == "Trusted"
    assert hidden_characters("Trusted\u202e\u200b") == [
        "U+202E RIGHT-TO-LEFT OVERRIDE",
        "U+200B ZERO WIDTH SPACE",
    ]
    assert safe_text("ok\x1b[31m red\nline") == "ok [31m red line"


@pytest.mark.parametrize(
    "name",
    ["Alpha", "ALPHA", "alpha", "AIpha", "A1pha", "\u0410lpha", "\u0391LPHA", "Ａｌｐｈａ",
     "Al\u200bpha", "Älpha", "Al pha", "Al-pha", "𝐀𝐥𝐩𝐡𝐚", "alpha\u202e"],
)  # fmt: skip
def test_look_alikes_of_a_name_share_its_skeleton(name: str) -> None:
    assert skeleton(name) == skeleton("Alpha")


@pytest.mark.parametrize("name", ["Alps", "Beta", "Alphabet", "Aleph", "Ælpha", "Альфа"])
def test_other_names_do_not(name: str) -> None:
    assert skeleton(name) != skeleton("Alpha")


def test_imitations_name_the_later_look_alike_and_respect_precedence() -> None:
    names = [("alpha", "Alpha"), ("beta", "Beta"), ("alpha-coop", "Alpha"),
             ("gamma", "ΑLPHA"), ("delta", "Delta"), ("mallory", "beta"), ("quiet", ""),
             ("quiet2", "\u200b")]  # fmt: skip
    assert imitations(names) == {"alpha-coop": "alpha", "gamma": "alpha", "mallory": "beta"}
    # A name may look like an earlier slug too, and the founders' slugs come first of all.
    assert imitations([("x", "Oakley"), ("oakley", "Oak Tree")], ["oakley"]) == {"x": "oakley"}
    # A neighborhood does not imitate itself.
    assert imitations([("alpha", "Alpha"), ("alpha", "ALPHA")]) == {}
