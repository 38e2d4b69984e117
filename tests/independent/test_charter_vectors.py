"""Check protocol/vectors/charters.json against the rule of PROTOCOL.md §16.1 written here
alone: canonical bytes (keys sorted by code point, no whitespace, only `"` and `\\` escaped),
`net` = SHA-256[0:16], the currency a charter means (absent: credits, CRD, 2), and which
currencies §16.1 refuses (its bounds, and the symbol and name rule by Unicode category);
`policies.hours_limit` (absent: 160 quarter hours; an integer 0-4,000,000)."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
VECTORS = json.loads(
    (HERE / ".." / ".." / "protocol" / "vectors" / "charters.json").read_text(encoding="utf-8")
)
VALID = [v for v in VECTORS if v["valid"]]
DEFAULT = {"code": "CRD", "name": "credits", "symbol": "", "minor_units": 2}  # §16.1
DEFAULT_HOURS_LIMIT = 160  # §16.1: quarter hours (40 hours)


def canonical(value: Any) -> str:
    """§16.1's canonical form, for the value domain of a valid charter."""
    if isinstance(value, dict):
        items = sorted(value.items())  # Python orders str by code point
        return "{" + ",".join(f"{canonical(k)}:{canonical(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if value is True or value is False:
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    assert isinstance(value, str)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def currency(value: dict[str, Any]) -> dict[str, Any]:
    """The currency a charter means: its own, optional fields defaulted, or the default."""
    if "currency" not in value:
        return DEFAULT
    return {"symbol": "", "minor_units": 2, **value["currency"]}


def test_there_are_charters_with_and_without_a_currency() -> None:
    assert any("currency" in json.loads(v["text"]) for v in VALID)
    assert any("currency" not in json.loads(v["text"]) for v in VALID)
    assert any(not v["valid"] for v in VECTORS)


@pytest.mark.parametrize("vector", VALID, ids=[v["name"] for v in VALID])
def test_valid_charter(vector: dict[str, Any]) -> None:
    value = json.loads(vector["text"])
    text = canonical(value)
    assert text == vector["canonical"]
    assert hashlib.sha256(text.encode()).digest()[:16].hex() == vector["net"]
    assert currency(value) == vector["currency"]
    limit = value.get("policies", {}).get("hours_limit", DEFAULT_HOURS_LIMIT)
    assert limit == vector["hours_limit"]


# §16.1, the currency's keys and bounds.
CURRENCY_KEYS = {"code", "name", "symbol", "minor_units"}
SYMBOL_NEVER = ".,-+\u2212"  # and no Nd digit, also after NFKC
SYMBOL_CATEGORIES = {"Nd", "Pd", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs"}
NAME_CATEGORIES = {"Zl", "Zp", "Cc", "Cf", "Cs"}


def symbol_ok(symbol: str) -> bool:
    """§16.1: 0-8 characters, none of SYMBOL_CATEGORIES, none whose NFKC form holds a
    character of SYMBOL_NEVER or an Nd digit."""
    for char in symbol:
        if unicodedata.category(char) in SYMBOL_CATEGORIES:
            return False
        for c in unicodedata.normalize("NFKC", char):
            if c in SYMBOL_NEVER or unicodedata.category(c) == "Nd":
                return False
    return len(symbol) <= 8


def name_ok(name: str) -> bool:
    """§16.1: 1-40 characters, none of NAME_CATEGORIES, at least one that is not Zs."""
    cats = [unicodedata.category(c) for c in name]
    return 1 <= len(name) <= 40 and not NAME_CATEGORIES & set(cats) and set(cats) != {"Zs"}


def currency_ok(value: dict[str, Any]) -> bool:
    """Whether a charter's `currency` (absent, or an object) is one §16.1 accepts."""
    if "currency" not in value:
        return True
    c = value["currency"]
    if not isinstance(c, dict) or not {"code", "name"} <= set(c) <= CURRENCY_KEYS:
        return False
    code, name, symbol = c["code"], c["name"], c.get("symbol", "")
    minor = c.get("minor_units", 2)
    if not (isinstance(code, str) and re.fullmatch(r"[A-Z]{3}", code)):
        return False
    if not (isinstance(minor, int) and not isinstance(minor, bool) and 0 <= minor <= 4):
        return False
    return isinstance(name, str) and name_ok(name) and isinstance(symbol, str) and symbol_ok(symbol)


def test_the_symbol_and_name_rule_has_cases_on_both_sides() -> None:
    names = {v["name"]: v["valid"] for v in VECTORS}
    assert names["currency_symbol_of_letters"] and names["currency_at_its_bounds"]
    assert not names["currency_symbol_a_digit"] and not names["currency_name_blank"]


def hours_limit_ok(value: dict[str, Any]) -> bool:
    """§16.1: `policies.hours_limit`, when present, is an integer from 0 to 4,000,000."""
    limit = value.get("policies", {}).get("hours_limit", DEFAULT_HOURS_LIMIT)
    return isinstance(limit, int) and not isinstance(limit, bool) and 0 <= limit <= 4_000_000


def _is_fraction(value: Any) -> bool:
    return isinstance(value, float) or (
        isinstance(value, dict) and any(_is_fraction(v) for v in value.values())
    )


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_which_currencies_are_refused(vector: dict[str, Any]) -> None:
    """Every charter vector differs from a valid charter in its currency or its hours limit
    alone, so it is valid exactly when §16.1's rules, written here, accept both."""
    value = json.loads(vector["text"])
    ok = currency_ok(value) and hours_limit_ok(value) and not _is_fraction(value)
    assert ok == vector["valid"], vector.get("why")
