"""The test vectors: up to date with their generator, and each one gives its verdict."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from coopnet.protocol import KEY_LOG_KINDS, KINDS, InvalidEvent, Opaque, unseal
from coopnet.protocol.charter import CharterError, canonical_bytes, parse_charter
from coopnet.protocol.errors import UNSEAL_CODES

ROOT = Path(__file__).resolve().parents[2]
VECTORS_PATH = ROOT / "protocol" / "vectors" / "envelopes.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
CHARTERS_PATH = VECTORS_PATH.with_name("charters.json")
CHARTERS: list[dict[str, Any]] = json.loads(CHARTERS_PATH.read_text(encoding="utf-8"))


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "make_vectors", ROOT / "scripts" / "make_vectors.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_file_is_what_the_generator_writes() -> None:
    gen = _generator()
    assert VECTORS_PATH.read_text(encoding="utf-8") == gen.render()
    assert CHARTERS_PATH.read_text(encoding="utf-8") == gen.render_charters()


def test_generator_is_deterministic() -> None:
    gen = _generator()
    assert gen.render() == gen.render()
    assert gen.render_charters() == gen.render_charters()


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
    # §4 step 13: bodies of the wrong shape, stored and refused by the domain; some of them
    # were refused from the log before, and say so.
    refused = [v for v in valid if "refused" in v]
    assert {v["refused"] for v in refused} == {"bad_body"}
    assert not any(v["opaque"] or v["kind"] in KEY_LOG_KINDS for v in refused)
    assert any("was" in v for v in refused) and not all("was" in v for v in refused)
    assert all(v["was"] == {"valid": False, "error": "bad_body"} for v in valid if "was" in v)
    # The key log's kinds of the wrong shape stay refused from the log.
    key_log = {"body_missing_field", "key_rotated_key_of_31_bytes", "retired_reason_281_characters"}
    assert key_log <= {v["name"] for v in invalid if v["error"] == "bad_body"}


@pytest.mark.parametrize("vector", [v for v in VECTORS if v["valid"]], ids=lambda v: v["name"])
def test_valid_vector(vector: dict[str, Any]) -> None:
    env = unseal(bytes.fromhex(vector["wire"]), net=bytes.fromhex(vector["net"]))
    assert env.id.hex() == vector["id"]
    assert env.key.hex() == vector["public_key"]
    assert env.kind == vector["kind"]
    assert (env.author, env.seq) == (vector["author"], vector["seq"])
    assert isinstance(env.body, Opaque) == (vector["opaque"] or "refused" in vector)
    if "refused" in vector:  # stored, refused by the domain with bad_body (§4 step 13)
        assert isinstance(env.body, Opaque)
        assert env.body.refused.startswith(f"{vector['kind']} body: "), env.body.refused


@pytest.mark.parametrize("vector", [v for v in VECTORS if not v["valid"]], ids=lambda v: v["name"])
def test_invalid_vector(vector: dict[str, Any]) -> None:
    with pytest.raises(InvalidEvent) as caught:
        unseal(bytes.fromhex(vector["wire"]), net=bytes.fromhex(vector["net"]))
    assert caught.value.code == vector["error"], str(caught.value)


def test_the_charter_vectors_cover_the_currency_both_ways() -> None:
    names = {v["name"] for v in CHARTERS}
    assert {"without_currency", "with_currency"} <= names
    assert {v["valid"] for v in CHARTERS} == {True, False}


@pytest.mark.parametrize("vector", CHARTERS, ids=lambda v: v["name"])
def test_charter_vector(vector: dict[str, Any]) -> None:
    """§16.1: the same net from the same text; the same currency from it; or a refusal."""
    text = vector["text"].encode()
    if not vector["valid"]:
        with pytest.raises(CharterError):
            parse_charter(text)
        return
    charter, net = parse_charter(text)
    assert canonical_bytes(json.loads(text)).decode() == vector["canonical"]
    assert net.hex() == vector["net"]
    assert msgspec.to_builtins(charter.currency_or_default()) == vector["currency"]
    assert charter.policies.hours_limit == vector["hours_limit"]


def test_the_charter_vectors_cover_the_hours_limit_both_ways() -> None:
    """§16.1: absent means 160 quarter hours; set, it is read; out of bounds, refused."""
    by_name = {v["name"]: v for v in CHARTERS}
    assert by_name["without_currency"]["hours_limit"] == 160
    assert by_name["hours_limit_set"]["hours_limit"] == 400
    assert not by_name["hours_limit_negative"]["valid"]
    # Stating the default is another text, so another federation: `net` commits to the text.
    assert by_name["hours_limit_stating_the_default"]["net"] != by_name["without_currency"]["net"]
