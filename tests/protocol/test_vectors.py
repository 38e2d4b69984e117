"""The test vectors: up to date with their generator, and each one gives its verdict."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from coopnet.protocol import KINDS, InvalidEvent, Opaque, unseal
from coopnet.protocol.errors import UNSEAL_CODES

ROOT = Path(__file__).resolve().parents[2]
VECTORS_PATH = ROOT / "protocol" / "vectors" / "envelopes.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "make_vectors", ROOT / "scripts" / "make_vectors.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_file_is_what_the_generator_writes() -> None:
    assert VECTORS_PATH.read_text(encoding="utf-8") == _generator().render()


def test_generator_is_deterministic() -> None:
    gen = _generator()
    assert gen.render() == gen.render()


def test_enough_vectors_and_every_unseal_code_covered() -> None:
    valid = [v for v in VECTORS if v["valid"]]
    invalid = [v for v in VECTORS if not v["valid"]]
    assert len(valid) >= 10
    assert len(invalid) >= 15
    assert {v["error"] for v in invalid} == set(UNSEAL_CODES)
    assert len({v["name"] for v in VECTORS}) == len(VECTORS)
    known = [v for v in valid if not v["opaque"]]
    assert {v["kind"] for v in known} == set(KINDS)  # every kind, at least once
    # Kinds no receiver knows (§8.1): the `x.` family is never registered, so they stay so.
    assert {v["kind"] for v in valid if v["opaque"]} >= {"x.barter.proposed", "x.note.pinned"}
    assert not any(kind.startswith("x.") for kind in KINDS)
    assert max(len(v["wire"]) // 2 for v in valid) == 64 * 1024


@pytest.mark.parametrize("vector", [v for v in VECTORS if v["valid"]], ids=lambda v: v["name"])
def test_valid_vector(vector: dict[str, Any]) -> None:
    env = unseal(bytes.fromhex(vector["wire"]), net=bytes.fromhex(vector["net"]))
    assert env.id.hex() == vector["id"]
    assert env.key.hex() == vector["public_key"]
    assert env.kind == vector["kind"]
    assert (env.author, env.seq) == (vector["author"], vector["seq"])
    assert isinstance(env.body, Opaque) == vector["opaque"]


@pytest.mark.parametrize("vector", [v for v in VECTORS if not v["valid"]], ids=lambda v: v["name"])
def test_invalid_vector(vector: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent) as caught:
        unseal(bytes.fromhex(vector["wire"]), net=bytes.fromhex(vector["net"]))
    assert caught.value.code == vector["error"], str(caught.value)
