"""Check protocol/vectors/charters.json against the rule of PROTOCOL.md §16.1 written here
alone: canonical bytes (keys sorted by code point, no whitespace, only `"` and `\\` escaped),
`net` = SHA-256[0:16], and the currency a charter means (absent: credits, CRD, 2)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
VECTORS = json.loads(
    (HERE / ".." / ".." / "protocol" / "vectors" / "charters.json").read_text(encoding="utf-8")
)
VALID = [v for v in VECTORS if v["valid"]]
DEFAULT = {"code": "CRD", "name": "credits", "symbol": "", "minor_units": 2}  # §16.1


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
