"""What `unseal` and `seal` say when they refuse (docs/PROTOCOL.md §4, §7).

The code is the protocol; the message is what an operator reads in `coopnet node log`, the
refusal counters and the observer's audit. Each message here names the facts of the input
that was refused (sizes, the value found, the key, the network), written as the operator
should read it, so a message that loses a fact or says something else fails.
"""

from __future__ import annotations

import hashlib

import msgspec
import pytest

from coopnet.protocol import InvalidEvent, NotePosted, seal, unseal
from coopnet.protocol.body import Opaque
from coopnet.protocol.envelope import seal_envelope, unseal_stored
from tests.protocol.edges_support import (
    NET,
    OAK,
    PREV,
    body_of,
    header_bytes,
    refused,
    signed_wire,
    wire_of,
)

NOTE = body_of({"text": "hello"})
OTHER_NET = bytes(range(16))


def _message(wire: bytes, code: str) -> str:
    return refused(wire, code).message


# -- messages written out whole ----------------------------------------------------------------


def _too_large() -> bytes:
    return b"\x00" * 65_537


def _short_signature() -> bytes:
    return wire_of(header_bytes(NOTE), NOTE, b"\x00" * 63)


def _wire_not_canonical() -> bytes:
    # The same three binaries, the header framed as bin 16 where bin 8 is the shortest.
    header = header_bytes(NOTE)
    signature = OAK.signing_key.sign(b"coopnet/v1\x00" + header).signature
    return (
        b"\x93"
        + b"\xc5"
        + len(header).to_bytes(2, "big")
        + header
        + msgspec.msgpack.encode(signature)
        + msgspec.msgpack.encode(NOTE)
    )


def _header_not_canonical() -> bytes:
    header = header_bytes(NOTE, seq=2)
    # seq 2 as uint 8 (0xcc 0x02) instead of the positive fixint 0x02.
    spot = header.index(b"\x02" + msgspec.msgpack.encode(PREV))
    longer = header[:spot] + b"\xcc" + header[spot:]
    return wire_of(longer, NOTE)


def _bad_signature() -> bytes:
    return wire_of(header_bytes(NOTE), NOTE, b"\x07" * 64)


def _body_hash_mismatch() -> bytes:
    return signed_wire(NOTE, body_hash=b"\x00" * 32)


WHOLE = {
    "too large": (_too_large, "too_large", "event is 65537 bytes, the cap is 65536"),
    "short signature": (_short_signature, "malformed", "signature is 63 bytes, expected 64"),
    "wire not canonical": (
        _wire_not_canonical,
        "non_canonical",
        "wire array is not in its canonical encoding",
    ),
    "header not canonical": (
        _header_not_canonical,
        "non_canonical",
        "header is not in its canonical (shortest) encoding",
    ),
    "version 2": (
        lambda: signed_wire(NOTE, v=2),
        "bad_version",
        "envelope version 2, this node speaks 1",
    ),
    "version 2, another layout": (
        lambda: wire_of(msgspec.msgpack.encode([2, "a header of another shape"]), NOTE),
        "bad_version",
        "envelope version 2, this node speaks 1",
    ),
    "wrong network": (
        lambda: signed_wire(NOTE, net=OTHER_NET),
        "wrong_network",
        f"event is for network {OTHER_NET.hex()}, not {NET.hex()}",
    ),
    "bad signature": (
        _bad_signature,
        "bad_signature",
        f"signature does not verify with key {OAK.public_key.hex()}",
    ),
    "body hash": (
        _body_hash_mismatch,
        "body_hash_mismatch",
        "SHA-256 of the body differs from the header's body_hash",
    ),
    "net length": (
        lambda: signed_wire(NOTE, net=b"\x00" * 15),
        "malformed",
        "net is 15 bytes, expected 16",
    ),
    "author": (
        lambda: signed_wire(NOTE, author="Oakley"),
        "malformed",
        "author 'Oakley' is not a slug ^[a-z][a-z0-9-]{1,31}$",
    ),
    "key length": (
        lambda: signed_wire(NOTE, key=b"\x00" * 31),
        "malformed",
        "key is 31 bytes, expected 32",
    ),
    "seq 0": (lambda: signed_wire(NOTE, seq=0), "malformed", "seq 0 is outside 1..2^63-1"),
    "prev on seq 1": (
        lambda: signed_wire(NOTE, seq=1, prev=PREV),
        "malformed",
        "prev must be nil exactly when seq is 1",
    ),
    "no prev on seq 2": (
        lambda: signed_wire(NOTE, seq=2, prev=None),
        "malformed",
        "prev must be nil exactly when seq is 1",
    ),
    "prev length": (
        lambda: signed_wire(NOTE, prev=b"\x01" * 31),
        "malformed",
        "prev is 31 bytes, expected 32",
    ),
    "at": (
        lambda: signed_wire(NOTE, at=2**63),
        "malformed",
        "at 9223372036854775808 is outside 0..2^63-1",
    ),
    "kind": (
        lambda: signed_wire(NOTE, kind="Note.Posted"),
        "malformed",
        "kind 'Note.Posted' is not a dotted lower-case name",
    ),
    "body hash length": (
        lambda: signed_wire(NOTE, body_hash=b"\x00" * 31),
        "malformed",
        "body_hash is 31 bytes, expected 32",
    ),
    "opaque body not strict": (
        lambda: signed_wire(b"\x82\xa1a\x01\xa1a\x02", kind="future.thing"),
        "bad_body",
        "future.thing body is not strict MessagePack: map key 'a' appears twice",
    ),
    "known body not strict": (
        lambda: signed_wire(b"\x82\xa4text\xa1x\xa4text\xa1y"),
        "bad_body",
        "note.posted body is not strict MessagePack: map key 'text' appears twice",
    ),
    "opaque body not a map": (
        lambda: signed_wire(msgspec.msgpack.encode([1, 2]), kind="future.thing"),
        "bad_body",
        "future.thing body is not a map",
    ),
}


@pytest.mark.parametrize(("build", "code", "message"), WHOLE.values(), ids=WHOLE.keys())
def test_a_refusal_says_what_was_refused(build: object, code: str, message: str) -> None:
    assert callable(build)
    assert _message(build(), code) == message


def test_str_of_a_refusal_is_its_code_then_its_message() -> None:
    caught = refused(_short_signature(), "malformed")
    assert str(caught) == "malformed: signature is 63 bytes, expected 64"


# -- messages that end in the decoder's own words ----------------------------------------------
# The tail is msgspec's or the strict check's explanation; ours is the part before it.

PREFIXED = {
    "wire not an array": (
        lambda: msgspec.msgpack.encode({"a": 1}),
        "malformed",
        "wire is not an array of three binaries: ",
    ),
    "header not nine fields": (
        lambda: wire_of(msgspec.msgpack.encode([1, 2, 3]), NOTE),
        "malformed",
        "header: ",
    ),
    "known body not a map": (
        lambda: signed_wire(msgspec.msgpack.encode(["hello"])),
        "bad_body",
        "note.posted body is not a map",
    ),
    "key-log body of the wrong shape": (
        lambda: signed_wire(
            body_of({"key": b"\x01" * 31, "next_key_digest": b"\x02" * 32}), kind="node.key_rotated"
        ),
        "bad_body",
        "node.key_rotated body: ",
    ),
}


@pytest.mark.parametrize(("build", "code", "prefix"), PREFIXED.values(), ids=PREFIXED.keys())
def test_a_refusal_by_the_decoder_says_where_then_why(
    build: object, code: str, prefix: str
) -> None:
    assert callable(build)
    message = _message(build(), code)
    assert message.startswith(prefix), message
    if not prefix.endswith(": "):
        return  # the message is whole
    why = message.removeprefix(prefix)
    assert why and why != "None", message


def test_the_refusal_of_a_key_log_body_names_the_field() -> None:
    body = body_of({"key": b"\x01" * 31, "next_key_digest": b"\x02" * 32})
    message = _message(signed_wire(body, kind="node.key_rotated"), "bad_body")
    assert message == "node.key_rotated body: Expected `bytes` of length >= 32 - at `$.key`"


# -- a known body of the wrong shape: stored, its refusal said by the domain (§4 step 13) --------


def test_the_refused_body_of_another_known_kind_says_why_and_names_the_field() -> None:
    """Not a refusal from the log (§7.1): the event comes back whole, its body `Opaque` with
    the reason the store records as the domain refusal `bad_body`."""
    body = body_of({"text": 7})
    event = unseal(signed_wire(body), net=NET)
    assert event.body == Opaque(
        raw=body, refused="note.posted body: Expected `str`, got `int` - at `$.text`"
    )


# -- seal refuses what it would not be able to send ----------------------------------------------


def test_seal_refuses_an_opaque_body_and_says_so() -> None:
    with pytest.raises(TypeError) as caught:
        seal(signing_key=OAK.signing_key, net=NET, author="oakley", seq=1, prev=None, at=1,
             body=Opaque(raw=NOTE))  # fmt: skip
    assert str(caught.value) == "an opaque body is stored, never sealed (docs/PROTOCOL.md §8.1)"


def test_seal_refuses_a_wire_over_the_cap_and_names_its_size() -> None:
    with pytest.raises(InvalidEvent) as caught:
        seal(signing_key=OAK.signing_key, net=NET, author="oakley", seq=1, prev=None, at=1,
             body=NotePosted(text="x" * 65_500))  # fmt: skip
    assert caught.value.code == "too_large"
    size = int(caught.value.message.split()[3])
    assert size > 65_536
    assert caught.value.message == f"sealed event is {size} bytes, the cap is 65536"


# -- what an accepted event carries ----------------------------------------------------------------


def test_unseal_gives_back_every_header_field_and_the_signature() -> None:
    header = header_bytes(NOTE, seq=5, at=1234)
    signature = OAK.signing_key.sign(b"coopnet/v1\x00" + header).signature
    wire = wire_of(header, NOTE)
    event = unseal(wire, net=NET)
    assert (event.v, event.net, event.author, event.key) == (1, NET, "oakley", OAK.public_key)
    assert (event.seq, event.prev, event.at, event.kind) == (5, PREV, 1234, "note.posted")
    assert event.body_hash == hashlib.sha256(NOTE).digest()
    assert event.signature == signature
    assert event.id == hashlib.sha256(header).digest()
    assert (event.header, event.wire) == (header, wire)
    assert event.body == NotePosted(text="hello")


def test_seal_envelope_gives_what_unseal_gives() -> None:
    sealed = seal_envelope(signing_key=OAK.signing_key, net=NET, author="oakley", seq=1,
                           prev=None, at=9, body=NotePosted(text="hi"))  # fmt: skip
    assert sealed == unseal(sealed.wire, net=NET)
    assert (sealed.v, sealed.seq, sealed.prev, sealed.at) == (1, 1, None, 9)


def test_a_stored_event_whose_kind_refuses_its_body_comes_back_opaque_and_whole() -> None:
    # note.posted's text must be a str: a node that stored this (§4 step 13, or when the kind
    # was unknown to it, §8.1) keeps it (its author's chain holds on it), with the refusal
    # recorded; `unseal` gives the same.
    body = body_of({"text": 7})
    header = header_bytes(body, seq=3)
    signature = OAK.signing_key.sign(b"coopnet/v1\x00" + header).signature
    wire = wire_of(header, body)
    event = unseal_stored(wire, net=NET)
    assert event.body == Opaque(
        raw=body, refused="note.posted body: Expected `str`, got `int` - at `$.text`"
    )
    assert (event.wire, event.header, event.signature) == (wire, header, signature)
    assert (event.v, event.seq, event.kind) == (1, 3, "note.posted")
    assert event == unseal(wire, net=NET)


def test_a_stored_event_of_an_unknown_kind_whose_body_is_no_map_is_still_refused() -> None:
    wire = signed_wire(msgspec.msgpack.encode([1]), kind="future.thing")
    with pytest.raises(InvalidEvent) as caught:
        unseal_stored(wire, net=NET)
    assert caught.value.code == "bad_body"


def test_the_first_body_a_process_decodes_comes_back_typed() -> None:
    # The decoders of each kind are made on first use and kept: a cold cache must give the
    # same typed body as a warm one (a test process has usually warmed it long before).
    from coopnet.protocol import envelope

    envelope._body_decoders.clear()
    wire = signed_wire(NOTE)
    assert unseal(wire, net=NET).body == NotePosted(text="hello")
    assert unseal(wire, net=NET).body == NotePosted(text="hello")  # and from the cache
    assert set(envelope._body_decoders) == {NotePosted}


def test_a_stored_key_log_event_whose_body_its_kind_refuses_comes_back_opaque_and_whole() -> None:
    # A retirement stored opaque by a node that did not know the kind then (§8.1): `unseal`
    # refuses it (the key log reads it, §4 step 13), `unseal_stored` gives it back whole, its
    # body opaque with the reason, for the store to record.
    body = body_of({"reason": 7})
    header = header_bytes(body, kind="membership.retired", seq=4)
    signature = OAK.signing_key.sign(b"coopnet/v1\x00" + header).signature
    wire = wire_of(header, body)
    refused(wire, "bad_body")
    event = unseal_stored(wire, net=NET)
    assert event.body == Opaque(
        raw=body, refused="membership.retired body: Expected `str`, got `int` - at `$.reason`"
    )
    assert (event.wire, event.header, event.signature, event.id) == (
        wire, header, signature, hashlib.sha256(header).digest()
    )  # fmt: skip
    assert (event.v, event.net, event.author, event.key) == (1, NET, "oakley", OAK.public_key)
    assert (event.seq, event.prev, event.at, event.kind) == (4, PREV, 1, "membership.retired")
    assert event.body_hash == hashlib.sha256(body).digest()


def test_seal_refuses_a_body_its_kind_refuses_and_names_the_field() -> None:
    with pytest.raises(InvalidEvent) as caught:
        seal(signing_key=OAK.signing_key, net=NET, author="oakley", seq=1, prev=None, at=1,
             body=NotePosted(text=7))  # type: ignore[arg-type]  # fmt: skip
    assert caught.value.code == "bad_body"
    assert caught.value.message == "note.posted body: Expected `str`, got `int` - at `$.text`"


def test_seal_refuses_a_body_msgspec_would_encode_as_an_ext_type() -> None:
    # A datetime is encoded as MessagePack's timestamp ext type, which strict MessagePack
    # refuses (§2.3): the node never signs what its peers would refuse.
    import datetime

    stamp = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    with pytest.raises(InvalidEvent) as caught:
        seal(signing_key=OAK.signing_key, net=NET, author="oakley", seq=1, prev=None, at=1,
             body=NotePosted(text=stamp))  # type: ignore[arg-type]  # fmt: skip
    assert caught.value.code == "bad_body"
    assert caught.value.message == (
        "note.posted body is not strict MessagePack: byte 6: 0xd6 is not allowed (ext types, 0xc1)"
    )
