"""Check protocol/vectors/envelopes.json against a verifier written from PROTOCOL.md alone."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest

HERE = Path(__file__).resolve().parent
VECTORS_PATH = HERE / ".." / ".." / "protocol" / "vectors" / "envelopes.json"

Verify = Callable[[bytes, bytes], tuple[str, bytes | None]]
HeaderSummary = Callable[[bytes], dict[str, object]]


def _load_verifier() -> ModuleType:
    name = "coopnet_independent_verifier"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "verifier.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_verifier = _load_verifier()
verify = cast(Verify, _verifier.verify)
header_summary = cast(HeaderSummary, _verifier.header_summary)
is_opaque = cast(Callable[[bytes], bool], _verifier.is_opaque)
body_refused = cast(Callable[[bytes, bytes], str | None], _verifier.body_refused)
check_admission = cast(Callable[[bytes, bytes, bytes], str], _verifier.check_admission)


def _load_vectors() -> list[dict[str, Any]]:
    with VECTORS_PATH.open(encoding="utf-8") as fh:
        data = json.load(fh)
    assert isinstance(data, list)
    return cast(list[dict[str, Any]], data)


VECTORS = _load_vectors()
VALID = [v for v in VECTORS if v["valid"] is True]
INVALID = [v for v in VECTORS if v["valid"] is False]


def _names(vectors: list[dict[str, Any]]) -> list[str]:
    return [str(v["name"]) for v in vectors]


def test_vector_counts() -> None:
    assert len(VALID) >= 10
    assert len(INVALID) >= 15
    assert len(VALID) + len(INVALID) == len(VECTORS)
    assert len(set(_names(VECTORS))) == len(VECTORS)
    assert any(v["opaque"] for v in VALID)  # kinds a receiver does not know (§8.1)
    assert "unknown_kind" not in {v["error"] for v in INVALID}  # retired (§7)


@pytest.mark.parametrize("vector", VALID, ids=_names(VALID))
def test_valid_vector(vector: dict[str, Any]) -> None:
    wire = bytes.fromhex(vector["wire"])
    net = bytes.fromhex(vector["net"])
    verdict, event_id = verify(wire, net)
    assert verdict == "valid"
    assert event_id is not None
    assert event_id.hex() == vector["id"]
    summary = header_summary(wire)
    key = summary["key"]
    assert isinstance(key, bytes)
    assert key.hex() == vector["public_key"]
    assert summary["kind"] == vector["kind"]
    assert summary["author"] == vector["author"]
    assert summary["seq"] == vector["seq"]
    assert is_opaque(wire) == vector["opaque"]  # §8.1: valid, stored, read by no rule
    # §4 step 13: valid, stored, refused by the domain with bad_body, read by no rule.
    assert body_refused(wire, net) == vector.get("refused")


def test_some_valid_vectors_have_a_refused_body_and_some_were_invalid_before() -> None:
    refused = [v for v in VALID if v.get("refused") == "bad_body"]
    assert refused and any("was" in v for v in refused)


TICKETS = [v for v in VALID if "admission" in v]


def test_there_are_ticket_vectors() -> None:
    assert {v["admission"]["admitted"] for v in TICKETS} == {True, False}


@pytest.mark.parametrize("vector", TICKETS, ids=_names(TICKETS))
def test_ticket_vector(vector: dict[str, Any]) -> None:
    """§16.6: the charter's admission key admits the founding, or it is `wrong_key`."""
    wire, net = bytes.fromhex(vector["wire"]), bytes.fromhex(vector["net"])
    verdict = check_admission(wire, net, bytes.fromhex(vector["admission"]["key"]))
    assert verdict == ("admitted" if vector["admission"]["admitted"] else "wrong_key")


@pytest.mark.parametrize("vector", INVALID, ids=_names(INVALID))
def test_invalid_vector(vector: dict[str, Any]) -> None:
    wire = bytes.fromhex(vector["wire"])
    net = bytes.fromhex(vector["net"])
    verdict, event_id = verify(wire, net)
    assert verdict == vector["error"]
    assert event_id is None
