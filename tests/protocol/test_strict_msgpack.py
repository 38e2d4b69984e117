"""Strict MessagePack (docs/PROTOCOL.md §2.3): what msgspec alone would let through."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coopnet.protocol.strict_msgpack import MAX_DEPTH, NotStrict, check_strict
from tests.protocol.shared import msgpack_values

values = msgpack_values


@given(value=values)
@settings(max_examples=400)
def test_accepts_every_encoding_of_plain_values(value: object) -> None:
    check_strict(msgspec.msgpack.encode(value))


@given(value=values, cut=st.integers(min_value=1, max_value=64))
@settings(max_examples=300)
def test_truncation_is_refused(value: object, cut: int) -> None:
    data = msgspec.msgpack.encode(value)
    with pytest.raises(NotStrict):
        check_strict(data[: max(0, len(data) - cut)])


@given(data=st.binary(max_size=256))
@settings(max_examples=500)
def test_random_bytes_give_a_verdict_never_a_crash(data: bytes) -> None:
    try:
        check_strict(data)
    except NotStrict:
        return
    # What it accepts, msgspec can read.
    msgspec.msgpack.decode(data)


@pytest.mark.parametrize(
    "data",
    [
        b"\x82\xa1a\x01\xa1a\x02",  # a key twice
        b"\x81\x91\x81\xa1a\x01\xa1a\x02",  # a map whose key is an array
        b"\x81\xa1x\x82\xa1k\x01\xa1k\x02",  # nested map with a key twice
        b"\x81\x01\x02",  # int key
        b"\xa1\xff",  # invalid UTF-8
        b"\xa3\xed\xa0\x80",  # a UTF-16 surrogate encoded in UTF-8
        b"\xc0\xc0",  # trailing bytes
        b"\xd4\x01\x00",  # fixext 1
        b"\xc7\x01\x01\x00",  # ext 8
        b"\xc1",  # never used
        b"",  # nothing
        b"\x91" * (MAX_DEPTH + 1) + b"\xc0",  # too deep
    ],
)
def test_refuses(data: bytes) -> None:
    with pytest.raises(NotStrict):
        check_strict(data)


def test_depth_limit_is_exact() -> None:
    check_strict(b"\x91" * MAX_DEPTH + b"\xc0")
    with pytest.raises(NotStrict):
        check_strict(b"\x91" * (MAX_DEPTH + 1) + b"\xc0")


def test_deep_input_is_refused_without_recursion() -> None:
    with pytest.raises(NotStrict):
        check_strict(b"\x91" * 100_000 + b"\xc0")
