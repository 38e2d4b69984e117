"""The charter and `net` (docs/PROTOCOL.md §16.1): canonical bytes, what is refused."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coopnet.protocol.charter import (
    Charter,
    CharterError,
    Founder,
    Policies,
    canonical_bytes,
    charter_net,
    dump_charter,
    parse_charter,
)

KEY_A = "11" * 32
KEY_B = "22" * 32


def charter(**policies: int) -> Charter:
    return Charter(
        name="Riverside Federation",
        founders=[
            Founder(slug="oakley", display_name="Oakley", area="N1", key=KEY_A),
            Founder(slug="elmwood", display_name="Elmwood Bäckerei", area="N2", key=KEY_B),
        ],
        policies=Policies(**policies),
        created="2026-11-26T12:00:00Z",
    )


def test_net_is_sha256_of_the_sorted_compact_json() -> None:
    data = dump_charter(charter())
    parsed, net = parse_charter(data)
    expected = json.dumps(
        json.loads(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert net == hashlib.sha256(expected).digest()[:16]
    assert parsed == charter()


def test_canonical_bytes_match_jcs_by_hand() -> None:
    value = {"b": [1, True, None], "a": 'Bäckerei "x"', "c": {"z": 0, "y": -1}}
    assert canonical_bytes(value) == (
        '{"a":"Bäckerei \\"x\\"","b":[1,true,null],"c":{"y":-1,"z":0}}'.encode()
    )


def test_layout_does_not_change_net_but_a_policy_does() -> None:
    _, net = parse_charter(dump_charter(charter()))
    squeezed = json.dumps(json.loads(dump_charter(charter())), separators=(",", ":")).encode()
    assert parse_charter(squeezed)[1] == net
    assert parse_charter(dump_charter(charter(credit_limit=1)))[1] != net


@given(st.permutations(["version", "name", "founders", "policies", "created"]))
def test_key_order_in_the_file_does_not_matter(order: list[str]) -> None:
    value = json.loads(dump_charter(charter()))
    shuffled = json.dumps({k: value[k] for k in order}).encode()
    assert parse_charter(shuffled)[1] == charter_net(value)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"name": "x", "name": "y"}', "duplicate key"),
        ('{"version": 1.0}', "not an integer"),
        ('{"version": NaN}', "not an integer"),
        ("[1, 2", "not JSON"),
    ],
)
def test_ambiguous_or_broken_json_is_refused(text: str, why: str) -> None:
    with pytest.raises(CharterError, match=why):
        parse_charter(text.encode())


def test_unknown_fields_bad_keys_and_repeated_founders_are_refused() -> None:
    value = json.loads(dump_charter(charter()))
    mutations: list[Callable[[Any], None]] = [
        lambda v: v.update(extra=1),
        lambda v: v["founders"][0].update(key="AB" * 32),
        lambda v: v["founders"][1].update(slug="oakley"),
        lambda v: v["founders"][1].update(key=KEY_A),
        lambda v: v["policies"].update(quorum_percent=101),
        lambda v: v.update(founders=[]),
        lambda v: v.update(name="tab\there"),
    ]
    for mutate in mutations:
        bad = json.loads(json.dumps(value))
        mutate(bad)
        with pytest.raises(CharterError):
            parse_charter(json.dumps(bad).encode())


def test_founder_keys() -> None:
    assert charter().founder_keys() == {
        "oakley": bytes.fromhex(KEY_A),
        "elmwood": bytes(32 * [0x22]),
    }
