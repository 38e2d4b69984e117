"""Every one of the 256 lead bytes of MessagePack, as docs/PROTOCOL.md §2.3 reads it.

The table below is the MessagePack specification's (github.com/msgpack/msgpack spec.md,
"Overview of formats"), typed here, not read from protocol/strict_msgpack.py: for each lead
byte, what follows it. Each family is driven through `check_strict` with a value that fills
it exactly, one byte short, and one byte over; and every refusal's message is pinned with
the byte position it names (an operator reads it in a `bad_body` refusal).
"""

from __future__ import annotations

import pytest

from coopnet.protocol.strict_msgpack import NotStrict, check_strict

# (first, last, family, bytes of length or payload after the lead byte)
SPEC: list[tuple[int, int, str, int]] = [
    (0x00, 0x7F, "positive fixint", 0),
    (0x80, 0x8F, "fixmap", 0),
    (0x90, 0x9F, "fixarray", 0),
    (0xA0, 0xBF, "fixstr", 0),
    (0xC0, 0xC0, "nil", 0),
    (0xC1, 0xC1, "never used", 0),
    (0xC2, 0xC3, "bool", 0),
    (0xC4, 0xC4, "bin 8", 1),
    (0xC5, 0xC5, "bin 16", 2),
    (0xC6, 0xC6, "bin 32", 4),
    (0xC7, 0xC9, "ext", 0),
    (0xCA, 0xCA, "float 32", 4),
    (0xCB, 0xCB, "float 64", 8),
    (0xCC, 0xCC, "uint 8", 1),
    (0xCD, 0xCD, "uint 16", 2),
    (0xCE, 0xCE, "uint 32", 4),
    (0xCF, 0xCF, "uint 64", 8),
    (0xD0, 0xD0, "int 8", 1),
    (0xD1, 0xD1, "int 16", 2),
    (0xD2, 0xD2, "int 32", 4),
    (0xD3, 0xD3, "int 64", 8),
    (0xD4, 0xD8, "fixext", 0),
    (0xD9, 0xD9, "str 8", 1),
    (0xDA, 0xDA, "str 16", 2),
    (0xDB, 0xDB, "str 32", 4),
    (0xDC, 0xDC, "array 16", 2),
    (0xDD, 0xDD, "array 32", 4),
    (0xDE, 0xDE, "map 16", 2),
    (0xDF, 0xDF, "map 32", 4),
    (0xE0, 0xFF, "negative fixint", 0),
]


def _family(lead: int) -> tuple[str, int]:
    for first, last, family, width in SPEC:
        if first <= lead <= last:
            return family, width
    raise AssertionError(f"0x{lead:02x} is in no family")


def test_the_table_covers_every_lead_byte_once() -> None:
    covered = [b for first, last, _, _ in SPEC for b in range(first, last + 1)]
    assert covered == list(range(256))


def _value(lead: int) -> bytes:
    """A complete, strict value whose lead byte is `lead`, that fills its family exactly."""
    family, width = _family(lead)
    if family in ("positive fixint", "negative fixint", "nil", "bool"):
        return bytes([lead])
    if family == "fixmap":  # n entries "a0".."a{n-1}" -> 1
        n = lead & 0x0F
        return bytes([lead]) + b"".join(
            bytes([0xA2]) + f"k{i:x}".encode() + b"\x01" for i in range(n)
        )
    if family == "fixarray":
        return bytes([lead]) + b"\x01" * (lead & 0x0F)
    if family == "fixstr":
        return bytes([lead]) + b"s" * (lead & 0x1F)
    if family.startswith(("bin", "str")):  # a length of 3 in `width` bytes, then 3 bytes
        return bytes([lead]) + (3).to_bytes(width, "big") + b"abc"
    if family.startswith(("float", "uint", "int")):
        return bytes([lead]) + b"\x00" * width
    if family.startswith("array"):  # 2 elements
        return bytes([lead]) + (2).to_bytes(width, "big") + b"\x01\x02"
    if family.startswith("map"):  # 2 entries
        return bytes([lead]) + (2).to_bytes(width, "big") + b"\xa1a\x01\xa1b\x02"
    raise AssertionError(family)


REFUSED_FAMILIES = ("never used", "ext", "fixext")
ACCEPTED = [b for b in range(256) if _family(b)[0] not in REFUSED_FAMILIES]


@pytest.mark.parametrize("lead", ACCEPTED, ids=lambda b: f"0x{b:02x}")
def test_a_value_that_fills_its_family_exactly_is_strict(lead: int) -> None:
    value = _value(lead)
    check_strict(value)
    with pytest.raises(NotStrict) as caught:
        check_strict(value + b"\xc0")
    assert str(caught.value) == "1 trailing bytes"


@pytest.mark.parametrize(
    "lead", [b for b in ACCEPTED if len(_value(b)) > 1], ids=lambda b: f"0x{b:02x}"
)
def test_a_value_one_byte_short_is_truncated(lead: int) -> None:
    with pytest.raises(NotStrict) as caught:
        check_strict(_value(lead)[:-1])
    assert str(caught.value).startswith("truncated"), caught.value


@pytest.mark.parametrize(
    "lead", [b for b in range(256) if _family(b)[0] in REFUSED_FAMILIES], ids=lambda b: f"0x{b:02x}"
)
def test_ext_and_the_unused_byte_are_refused_where_they_stand(lead: int) -> None:
    with pytest.raises(NotStrict) as caught:
        check_strict(b"\x92\x01" + bytes([lead]) + b"\x00" * 20)
    assert str(caught.value) == f"byte 2: 0x{lead:02x} is not allowed (ext types, 0xc1)"


@pytest.mark.parametrize("lead", [0xC4, 0xC5, 0xC6, 0xD9, 0xDA, 0xDB], ids=lambda b: f"0x{b:02x}")
def test_a_length_is_read_big_endian(lead: int) -> None:
    _, width = _family(lead)
    length = 0x0102 if width > 1 else 0x81  # more than one byte where the width allows
    value = bytes([lead]) + length.to_bytes(width, "big") + b"x" * length
    check_strict(value)


MESSAGES = {
    "nothing": (b"", "truncated at byte 0"),
    "array short of an element": (b"\x92\x01", "truncated at byte 2"),
    "a length cut": (b"\x91\xda\x00", "truncated length at byte 2"),
    "a str cut": (b"\x91\xd9\x05ab", "truncated str at byte 3"),
    "a uint cut": (b"\x91\xcd\x01", "truncated at byte 2"),
    "invalid UTF-8": (b"\x91\xa2\xff\xfe", "invalid UTF-8 in str at byte 2"),
    "a key twice": (b"\x82\xa1a\x01\xa1a\x02", "map key 'a' appears twice"),
    "a key that is an int": (b"\x82\xa1a\x01\x07\x02", "map key at byte 4 is not a str"),
    "a key that is a map": (b"\x81\x80\x01", "map key at byte 1 is not a str"),
    "two values": (b"\x01\x02\x03", "2 trailing bytes"),
}


@pytest.mark.parametrize(("data", "message"), MESSAGES.values(), ids=MESSAGES.keys())
def test_each_refusal_says_what_and_where(data: bytes, message: str) -> None:
    with pytest.raises(NotStrict) as caught:
        check_strict(data)
    assert str(caught.value) == message


def test_the_same_key_in_two_maps_is_not_a_duplicate() -> None:
    check_strict(b"\x92\x81\xa1a\x01\x81\xa1a\x02")


def test_a_str_value_equal_to_a_key_is_not_a_duplicate() -> None:
    check_strict(b"\x82\xa1a\xa1b\xa1b\xa1a")


def test_too_deep_names_the_limit() -> None:
    with pytest.raises(NotStrict) as caught:
        check_strict(b"\x91" * 3 + b"\x01", max_depth=2)
    assert str(caught.value) == "nested deeper than 2"
    check_strict(b"\x91" * 2 + b"\x01", max_depth=2)
