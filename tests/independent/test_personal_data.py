"""Check protocol/vectors/personal_data.json against the rule written from PROTOCOL.md §13.1
alone (tests/independent/personal_data.py), and that it agrees with coopnet's own rule on
generated texts: an outside implementer following the document reaches the same verdicts."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coopnet.protocol.personal_data import personal_data_in

HERE = Path(__file__).resolve().parent
VECTORS = json.loads((HERE / ".." / ".." / "protocol" / "vectors" / "personal_data.json")
                     .read_text(encoding="utf-8"))  # fmt: skip


def _load() -> Callable[[str], str | None]:
    name = "coopnet_independent_personal_data"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "personal_data.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return cast(Callable[[str], str | None], sys.modules[name].verdict)


verdict = _load()


@pytest.mark.parametrize("vector", VECTORS, ids=[ascii(v["text"])[:40] for v in VECTORS])
def test_the_independent_rule_gives_every_vector_its_verdict(vector: dict[str, str]) -> None:
    assert verdict(vector["text"]) == vector["found"]


# Texts made of the characters the rule cares about, and some it does not.
PIECES = st.sampled_from([
    *"0123456789+-./() @[]<>{}abcdoteëя用", " at ", " dot ", "[at]", "(dot)", "\u2013",
    "\u00a0", "\u2009", "\u200b", "\u00b7",
    "\u3002", "\uff10", "\u0663", "\uff20", "2026-05-12", "12.05.2026", "18.30", "2025-2026",
    "12.50", ".org", "@example", "\u202e", "\u0301", "\uff0e",
])  # fmt: skip


@settings(max_examples=1500)
@given(st.lists(PIECES, max_size=25).map("".join))
def test_the_independent_rule_agrees_on_generated_texts(text: str) -> None:
    assert verdict(text) == personal_data_in(text), ascii(text)


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_the_independent_rule_agrees_on_any_text(text: str) -> None:
    assert verdict(text) == personal_data_in(text), ascii(text)
