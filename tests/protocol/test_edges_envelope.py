"""The envelope's bounds on both sides (docs/PROTOCOL.md §2-4, §6.3): the 64 KiB wire, every
header field's length and range, the signature's length, the version, the nesting depth of
a body and the clock's 5 minutes. Expected values are the spec's, written here."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from coopnet.protocol import InvalidEvent, NotePosted, check_clock, seal, unseal
from coopnet.protocol.body import Opaque
from tests.protocol.edges_support import (
    NET,
    OAK,
    PREV,
    accepted,
    body_of,
    header_bytes,
    refused,
    signed_wire,
    wire_of,
)

CAP = 65_536  # §2: the whole wire is at most 65,536 bytes
NOTE = body_of({"text": "hello"})


# -- the size of the wire (§2, §4 step 1) -----------------------------------------------------


def _padded_note(size: int) -> bytes:
    """A correctly signed note whose wire is exactly `size` bytes (an unknown field pads it)."""
    for pad in range(size - 300, size):
        body = body_of({"text": "x", "pad": b"\x00" * pad})
        header = header_bytes(body)
        if len(wire_of(header, body, b"\x00" * 64)) == size:
            return wire_of(header, body)
    raise AssertionError(f"no padding gives {size} bytes")


def test_a_wire_of_exactly_64_kib_is_accepted() -> None:
    wire = _padded_note(CAP)
    assert len(wire) == CAP
    assert accepted(wire).body == NotePosted(text="x")


def test_a_wire_of_64_kib_and_one_byte_is_too_large() -> None:
    wire = _padded_note(CAP + 1)
    assert len(wire) == CAP + 1
    message = refused(wire, "too_large").message
    assert "65537" in message and "65536" in message


def test_too_large_is_decided_before_anything_is_read() -> None:
    """§2: a wire of 65,537 bytes is refused with `too_large` before anything else is read;
    65,536 bytes of the same garbage get to the next check."""
    refused(b"\xc1" * (CAP + 1), "too_large")
    refused(b"\xc1" * CAP, "malformed")


class _Padded(NotePosted, frozen=True, kw_only=True):
    kind = "note.posted"
    pad: bytes


def test_seal_signs_exactly_64_kib_and_refuses_one_byte_more() -> None:
    sizes: list[int] = []
    for pad in range(CAP - 300, CAP):
        try:
            wire = seal(signing_key=OAK.signing_key, net=NET, author="oakley", seq=2, prev=PREV,
                        at=1, body=_Padded(text="x", pad=b"\x00" * pad))  # fmt: skip
        except InvalidEvent as exc:
            assert exc.code == "too_large"
            assert "65537" in exc.message and "65536" in exc.message
            break
        sizes.append(len(wire))
    assert sizes[-1] == CAP


# -- header fields (§2.1, §4 step 8) ----------------------------------------------------------

HEADER_CASES: list[tuple[str, dict[str, Any], str | None]] = [
    ("author of 2 characters", {"author": "ab"}, None),
    ("author of 32 characters", {"author": "a" + "0-" * 15 + "z"}, None),
    ("author of 1 character", {"author": "a"}, "malformed"),
    ("author of 33 characters", {"author": "a" * 33}, "malformed"),
    ("author starting with a digit", {"author": "1ab"}, "malformed"),
    ("author with a capital", {"author": "Oakley"}, "malformed"),
    ("author with an underscore", {"author": "oak_ley"}, "malformed"),
    ("author with a final newline", {"author": "oakley\n"}, "malformed"),
    ("kind of 64 characters", {"kind": "x." + "a" * 62}, None),
    ("kind of 65 characters", {"kind": "x." + "a" * 63}, "malformed"),
    ("kind of 64 characters in three parts", {"kind": "x.a_1." + "b" * 58}, None),
    ("kind without a dot", {"kind": "note"}, "malformed"),
    ("kind ending with a dot", {"kind": "note."}, "malformed"),
    ("kind with a capital", {"kind": "Note.posted"}, "malformed"),
    ("kind part starting with a digit", {"kind": "note.1posted"}, "malformed"),
    ("kind part starting with _", {"kind": "note._posted"}, "malformed"),
    ("kind with a dash", {"kind": "note.post-ed"}, "malformed"),
    ("kind with a dash first", {"kind": "no-te.posted"}, "malformed"),
    ("kind of digits and _", {"kind": "x9_.a_9"}, None),
    ("kind with a final newline", {"kind": "note.posted\n"}, "malformed"),
    ("seq 1 with prev nil", {"seq": 1, "prev": None}, None),
    ("seq 0", {"seq": 0, "prev": None}, "malformed"),
    ("seq 0 with a prev", {"seq": 0}, "malformed"),
    ("seq 2^63-1", {"seq": 2**63 - 1}, None),
    ("seq 2^63", {"seq": 2**63}, "malformed"),
    ("seq -1", {"seq": -1}, "malformed"),
    ("seq 2 with prev nil", {"seq": 2, "prev": None}, "malformed"),
    ("seq 1 with a prev", {"seq": 1, "prev": PREV}, "malformed"),
    ("prev of 31 bytes", {"prev": b"\x01" * 31}, "malformed"),
    ("prev of 33 bytes", {"prev": b"\x01" * 33}, "malformed"),
    ("at 0", {"at": 0}, None),
    ("at 2^63-1", {"at": 2**63 - 1}, None),
    ("at -1", {"at": -1}, "malformed"),
    ("at 2^63", {"at": 2**63}, "malformed"),
    ("net of 15 bytes", {"net": NET[:15]}, "malformed"),
    ("net of 17 bytes", {"net": NET + b"\x00"}, "malformed"),
    ("another net of 16 bytes", {"net": bytes(16)}, "wrong_network"),
    ("key of 31 bytes", {"key": OAK.public_key[:31]}, "malformed"),
    ("key of 33 bytes", {"key": OAK.public_key + b"\x00"}, "malformed"),
    ("body_hash of 31 bytes", {"body_hash": bytes(31)}, "malformed"),
    ("body_hash of 33 bytes", {"body_hash": bytes(33)}, "malformed"),
    ("body_hash of 32 other bytes", {"body_hash": bytes(32)}, "body_hash_mismatch"),
    ("version 0", {"v": 0}, "bad_version"),
    ("version 2", {"v": 2}, "bad_version"),
]


@pytest.mark.parametrize(("fields", "code"), [pytest.param(f, c, id=n) for n, f, c in HEADER_CASES])
def test_header_fields_at_and_beyond_their_bounds(fields: dict[str, Any], code: str | None) -> None:
    body = body_of({}) if fields.get("kind", "").startswith("x.") else NOTE
    wire = signed_wire(body, **fields)
    if code is None:
        env = accepted(wire)
        for name, value in fields.items():
            assert getattr(env, name) == value
        if env.kind.startswith("x."):  # §8.1: stored opaque, and not refused
            assert isinstance(env.body, Opaque)
            assert (env.body.raw, env.body.refused) == (body, "")
    else:
        refused(wire, code)


def test_a_header_str_that_is_not_utf8_is_malformed() -> None:
    """§4 step 4: a `str` whose bytes are not valid UTF-8 counts as not decoding."""
    header = header_bytes(NOTE, author="oakzey").replace(b"oakzey", b"oak\xffey")
    refused(wire_of(header, NOTE), "malformed")


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (b"", "malformed"),
        (b"\x80", "malformed"),  # a map
        (b"\x81\xa1v\x01", "malformed"),
        (b"\x98\x01" + b"\x00" * 7, "malformed"),  # eight fields, version 1
        (b"\x9a\x01" + b"\x00" * 9, "malformed"),  # ten fields, version 1
        (b"\x98\x02" + b"\x00" * 7, "bad_version"),  # another version: its layout may differ
        (b"\x91\x00", "bad_version"),
    ],
)
def test_a_header_that_is_not_an_array_of_nine(header: bytes, code: str) -> None:
    """§4 step 4: not nine fields of the right types → `malformed`, unless it is a strict
    array whose first element is an int other than 1 → `bad_version`."""
    refused(wire_of(header, NOTE), code)


@pytest.mark.parametrize(("name", "value"), [("seq", 2**63), ("at", 2**63)])
def test_a_range_refusal_names_the_value(name: str, value: int) -> None:
    fields: dict[str, Any] = {name: value}
    assert str(value) in refused(signed_wire(NOTE, **fields), "malformed").message


@pytest.mark.parametrize(("length", "code"), [(63, "malformed"), (65, "malformed")])
def test_a_signature_must_be_exactly_64_bytes(length: int, code: str) -> None:
    """§4 step 3. A real signature with a byte more or less."""
    header = header_bytes(NOTE)
    sig = OAK.signing_key.sign(b"coopnet/v1\x00" + header).signature
    wrong = sig[:length] if length < 64 else sig + b"\x00"
    assert str(length) in refused(wire_of(header, NOTE, wrong), code).message
    accepted(wire_of(header, NOTE, sig))


# -- nesting depth (§2.3): at most 32 arrays and maps, the body's own map counts as one ------


def _nested(depth: int, container: str) -> bytes:
    """A value of `depth` nested containers (arrays, or maps of one key), innermost nil."""
    lead = b"\x91" if container == "array" else b"\x81\xa1k"
    return lead * depth + b"\xc0"


@pytest.mark.parametrize("container", ["array", "map"])
@pytest.mark.parametrize("kind", ["note.posted", "x.widget.made"])
def test_nesting_of_32_is_strict_and_33_is_a_bad_body(container: str, kind: str) -> None:
    head = b"\x82" + msgspec.msgpack.encode("text") + msgspec.msgpack.encode("x")
    head += msgspec.msgpack.encode("pad")
    at_limit = head + _nested(31, container)  # 1 (the body) + 31 = 32
    beyond = head + _nested(32, container)  # 33
    assert accepted(signed_wire(at_limit, kind=kind)).kind == kind
    refused(signed_wire(beyond, kind=kind), "bad_body")


# -- an opaque body must be a map (§4 step 12), of any width (§2.3) ---------------------------

EMPTY_MAPS = {
    "fixmap 0": b"\x80",
    "map 16": b"\xde\x00\x00",
    "map 32": b"\xdf\x00\x00\x00\x00",
}
FIFTEEN = b"\x8f" + b"".join(msgspec.msgpack.encode(f"k{i:02d}") + b"\xc0" for i in range(15))
NOT_MAPS = {
    "positive fixint 0x7f": b"\x7f",
    "fixarray 0": b"\x90",
    "fixstr 0": b"\xa0",
    "array 16": b"\xdc\x00\x00",
    "array 32": b"\xdd\x00\x00\x00\x00",
    "negative fixint -32": b"\xe0",
    "nil": b"\xc0",
    "bin 8": b"\xc4\x00",
}


@pytest.mark.parametrize(
    "body", [pytest.param(b, id=n) for n, b in {**EMPTY_MAPS, "fixmap 15": FIFTEEN}.items()]
)
def test_an_opaque_body_may_be_a_map_of_any_width(body: bytes) -> None:
    env = accepted(signed_wire(body, kind="x.widget.made"))
    assert isinstance(env.body, Opaque) and env.body.raw == body


@pytest.mark.parametrize("body", [pytest.param(b, id=n) for n, b in NOT_MAPS.items()])
def test_an_opaque_body_that_is_not_a_map_is_a_bad_body(body: bytes) -> None:
    assert "not a map" in refused(signed_wire(body, kind="x.widget.made"), "bad_body").message


# -- the clock (§6.3): more than 300,000 ms ahead is refused ----------------------------------

NOW = 1_800_000_000_000


@pytest.mark.parametrize(
    ("ahead", "ok"), [(-1, True), (0, True), (299_999, True), (300_000, True), (300_001, False)]
)
def test_the_clock_allows_exactly_five_minutes_ahead(ahead: int, ok: bool) -> None:
    if ok:
        check_clock(NOW + ahead, NOW)
    else:
        with pytest.raises(InvalidEvent) as caught:
            check_clock(NOW + ahead, NOW)
        assert caught.value.code == "future_timestamp"
        assert "300001 ms ahead" in str(caught.value)


def test_the_clock_is_not_a_check_of_unseal() -> None:
    """§6.3 stands after §4: an event from far in the future is sealed correctly."""
    wire = signed_wire(NOTE, at=2**63 - 1)
    assert unseal(wire, net=NET).at == 2**63 - 1
