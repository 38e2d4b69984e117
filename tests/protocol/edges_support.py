"""Helpers for the edge tests (tests/protocol/test_edges_*.py): wires built by hand.

A wire here is put together from its parts (MessagePack by msgspec, Ed25519 by PyNaCl) as
docs/PROTOCOL.md §2-3 describes it, not by `seal`, so that a header or a body `seal` would
refuse can still be signed and handed to `unseal`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
import pytest

from coopnet.protocol import Envelope, Identity, InvalidEvent, unseal

NET = hashlib.sha256(b"coopnet edge tests").digest()[:16]
OAK = Identity.from_passphrase("oakley", "edges")
PREV = b"\x01" * 32
CONTEXT = b"coopnet/v1\x00"  # PROTOCOL.md §3: "coopnet/v1" and one zero byte


def header_bytes(
    body: bytes,
    *,
    kind: str = "note.posted",
    v: int = 1,
    net: bytes = NET,
    author: str = "oakley",
    key: bytes | None = None,
    seq: int = 2,
    prev: bytes | None = PREV,
    at: int = 1,
    body_hash: bytes | None = None,
) -> bytes:
    """The nine header fields of PROTOCOL.md §2.1 in their canonical encoding."""
    fields: list[Any] = [
        v,
        net,
        author,
        OAK.public_key if key is None else key,
        seq,
        prev,
        at,
        kind,
        hashlib.sha256(body).digest() if body_hash is None else body_hash,
    ]
    return msgspec.msgpack.encode(fields)


def wire_of(header: bytes, body: bytes, signature: bytes | None = None) -> bytes:
    """`[header, signature, body]`, the signature by OAK over the signing input (§3)."""
    sig = OAK.signing_key.sign(CONTEXT + header).signature if signature is None else signature
    return msgspec.msgpack.encode([header, sig, body])


def signed_wire(body: bytes, **header: Any) -> bytes:
    """A wire of `body` under a header of the given fields, signed by OAK."""
    return wire_of(header_bytes(body, **header), body)


def body_of(fields: dict[str, Any]) -> bytes:
    """A body: the MessagePack map of `fields`."""
    return msgspec.msgpack.encode(fields)


def refused(wire: bytes, code: str) -> InvalidEvent:
    """`unseal` refuses `wire` with `code`; the refusal, for its message."""
    with pytest.raises(InvalidEvent) as caught:
        unseal(wire, net=NET)
    assert caught.value.code == code, caught.value
    return caught.value


def accepted(wire: bytes) -> Envelope:
    return unseal(wire, net=NET)
