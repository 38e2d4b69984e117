"""The signed envelope, protocol v1 (docs/PROTOCOL.md §2-4). Pure: bytes in, values out.

Wire bytes are a MessagePack array of exactly three binaries ``[header, signature, body]``.
The header is a MessagePack array of nine fields. The signature is Ed25519 over
``b"coopnet/v1\\x00" + header``; the event id is SHA-256 of the header bytes. Everything is
checked over the bytes received, never over a re-encoding; the re-encoding is only used to
refuse every byte string but the one canonical encoding of the values it carries.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgspec
import nacl.bindings
import nacl.exceptions
import nacl.signing

from coopnet.protocol import errors
from coopnet.protocol.body import Body, Opaque, encode_body, kind_of
from coopnet.protocol.kinds import KEY_LOG_KINDS, body_type
from coopnet.protocol.strict_msgpack import NotStrict, check_strict

VERSION = 1
SIGNING_CONTEXT = b"coopnet/v1\x00"
MAX_WIRE_BYTES = 64 * 1024
MAX_SEQ = 2**63 - 1
MAX_AT = 2**63 - 1
NET_BYTES = 16
KEY_BYTES = 32
ID_BYTES = 32
SIGNATURE_BYTES = 64
AUTHOR_RE = re.compile(r"[a-z][a-z0-9-]{1,31}")
KIND_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
MAX_KIND_CHARS = 64

# (v, net, author, key, seq, prev, at, kind, body_hash): the order is the protocol.
HeaderTuple = tuple[int, bytes, str, bytes, int, bytes | None, int, str, bytes]

_wire_decoder = msgspec.msgpack.Decoder(tuple[bytes, bytes, bytes])
_header_decoder = msgspec.msgpack.Decoder(HeaderTuple)
_loose_decoder = msgspec.msgpack.Decoder()
_encoder = msgspec.msgpack.Encoder()
# msgspec raises UnicodeDecodeError (a ValueError) for invalid UTF-8 in a str.
_DECODE_ERRORS = (msgspec.MsgspecError, ValueError)
# The lead bytes of a MessagePack map: fixmap, map 16, map 32.
_MAP_LEAD = frozenset((*range(0x80, 0x90), 0xDE, 0xDF))


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """A verified event: the nine header fields, its id, its signature and decoded body.

    `body` is the kind's Struct, or `Opaque`: for a kind this coopnet does not know
    (§8.1), or, with `refused` set, for a known kind whose body is a strict map that the
    kind's shape refuses (§4 step 13): stored, and refused by the domain with `bad_body`.
    """

    v: int
    net: bytes
    author: str
    key: bytes
    seq: int
    prev: bytes | None
    at: int
    kind: str
    body_hash: bytes
    signature: bytes
    id: bytes
    body: Body
    header: bytes
    wire: bytes


def event_id(header: bytes) -> bytes:
    """The id of an event: SHA-256 of its header bytes (docs/PROTOCOL.md §3)."""
    return hashlib.sha256(header).digest()


def key_digest(public_key: bytes) -> bytes:
    """The pre-rotation commitment to a public key: SHA-256 of its 32 bytes."""
    return hashlib.sha256(public_key).digest()


def encode_header(
    *,
    net: bytes,
    author: str,
    key: bytes,
    seq: int,
    prev: bytes | None,
    at: int,
    kind: str,
    body_hash: bytes,
) -> bytes:
    """The canonical bytes of a v1 header."""
    fields: HeaderTuple = (VERSION, net, author, key, seq, prev, at, kind, body_hash)
    return _encoder.encode(fields)


def encode_wire(header: bytes, signature: bytes, body: bytes) -> bytes:
    """Frame the three parts as the canonical wire array."""
    return _encoder.encode((header, signature, body))


def seal(
    *,
    signing_key: nacl.signing.SigningKey,
    net: bytes,
    author: str,
    seq: int,
    prev: bytes | None,
    at: int,
    body: Body,
) -> bytes:
    """Sign `body` as event `seq` of `author` and return the wire bytes.

    The result always passes `unseal` with its body read as `body`'s kind: every field is
    checked here with the same rules (raising `bad_body` for a body its kind refuses), so
    a node never publishes an event its peers would refuse, or refuse the meaning of, for
    its shape.
    """
    return seal_envelope(
        signing_key=signing_key, net=net, author=author, seq=seq, prev=prev, at=at, body=body
    ).wire


def seal_envelope(
    *,
    signing_key: nacl.signing.SigningKey,
    net: bytes,
    author: str,
    seq: int,
    prev: bytes | None,
    at: int,
    body: Body,
) -> Envelope:
    """`seal`, returning the event as `unseal` would give it back, without verifying the
    signature just made (the costly part of `unseal`, pointless on one's own event)."""
    if isinstance(body, Opaque):
        raise TypeError("an opaque body is stored, never sealed (docs/PROTOCOL.md §8.1)")
    body_bytes = encode_body(body)
    body_hash = hashlib.sha256(body_bytes).digest()
    key = bytes(signing_key.verify_key)
    kind = kind_of(body)
    header = encode_header(
        net=net, author=author, key=key, seq=seq, prev=prev, at=at, kind=kind,
        body_hash=body_hash,
    )  # fmt: skip
    fields = _header_decoder.decode(header)
    _check_header_fields(fields)
    signature = signing_key.sign(SIGNING_CONTEXT + header).signature
    wire = encode_wire(header, signature, body_bytes)
    if len(wire) > MAX_WIRE_BYTES:
        raise errors.TooLarge(f"sealed event is {len(wire)} bytes, the cap is {MAX_WIRE_BYTES}")
    return _assemble(fields, header, signature, _own_body(type(body), body_bytes), wire)


def unseal(wire: bytes, *, net: bytes) -> Envelope:
    """Verify `wire` as an event of federation `net` and decode it.

    The checks run in the order of docs/PROTOCOL.md §4; the first that fails raises its
    `InvalidEvent` subclass. Nothing else escapes: any input gives an Envelope or a code.
    Every body must be one strict MessagePack map (§4 steps 12-13, else `bad_body`). Then:

    - a kind this coopnet does not know: the body comes back `Opaque` (§8.1), to be
      stored like any other;
    - a known kind whose body its shape refuses (a unit this version does not know, a
      value out of bounds): for the kinds the key log reads (`KEY_LOG_KINDS`) `bad_body` is
      raised; for any other the event is valid and its body comes back
      `Opaque(raw, refused=<why>)` (§4 step 13, §7.1): stored, so its author's chain holds,
      and refused by the domain with `bad_body` (the store records it, folds nothing).
    """
    if len(wire) > MAX_WIRE_BYTES:
        raise errors.TooLarge(f"event is {len(wire)} bytes, the cap is {MAX_WIRE_BYTES}")
    try:
        header, signature, body_bytes = _wire_decoder.decode(wire)
    except _DECODE_ERRORS as exc:
        raise errors.Malformed(f"wire is not an array of three binaries: {exc}") from None
    if len(signature) != SIGNATURE_BYTES:
        raise errors.Malformed(f"signature is {len(signature)} bytes, expected 64")
    fields = _decode_header(header)
    if encode_wire(header, signature, body_bytes) != wire:
        raise errors.NonCanonical("wire array is not in its canonical encoding")
    _, header_net, _, key, _, _, _, kind, body_hash = fields
    _check_header_fields(fields)
    if header_net != net:
        raise errors.WrongNetwork(f"event is for network {header_net.hex()}, not {net.hex()}")
    try:
        nacl.bindings.crypto_sign_open(signature + SIGNING_CONTEXT + header, key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        raise errors.BadSignature(f"signature does not verify with key {key.hex()}") from None
    if hashlib.sha256(body_bytes).digest() != body_hash:
        raise errors.BodyHashMismatch("SHA-256 of the body differs from the header's body_hash")
    return _assemble(fields, header, signature, _read_body(kind, body_bytes), wire)


def unseal_stored(wire: bytes, *, net: bytes) -> Envelope:
    """`unseal` a wire this node holds in its log, which passed `unseal` when it was stored.

    `unseal` itself gives a known kind's body that its shape refuses back as `Opaque` with
    `refused` set (§4 step 13). One case is left (docs/PROTOCOL.md §8.1): an event stored
    opaque, of a kind the key log reads (`KEY_LOG_KINDS`) that this coopnet did not know
    then and knows now, whose body that kind refuses. It stays in the log (the author's
    chain holds on it), so it too comes back `Opaque` with `refused` set, instead of
    raising `bad_body`; the store records that refusal and folds nothing of it. Every other
    failure raises as `unseal` does.
    """
    try:
        return unseal(wire, net=net)
    except errors.BadBody as exc:
        header, signature, body_bytes = _wire_decoder.decode(wire)
        fields = _header_decoder.decode(header)
        if body_type(fields[7]) is None:  # not a known kind's body: never stored
            raise
        body = Opaque(raw=body_bytes, refused=exc.message)
        return _assemble(fields, header, signature, body, wire)


def decode_unsealed(wire: bytes) -> Envelope:
    """The Envelope of bytes `unseal` has already accepted (in another process, say),
    decoded without checking them again. Never call it on bytes `unseal` has not passed:
    it verifies nothing. The values are the ones `unseal` returned: same bytes, same
    decoders, the same `Opaque(refused=…)` for a body its known kind refuses."""
    header, signature, body_bytes = _wire_decoder.decode(wire)
    fields = _header_decoder.decode(header)
    kind = fields[7]
    body_cls = body_type(kind)
    body = (
        Opaque(raw=body_bytes)
        if body_cls is None
        else _typed_or_refused(body_cls, kind, body_bytes)
    )
    return _assemble(fields, header, signature, body, wire)


def _assemble(
    fields: HeaderTuple, header: bytes, signature: bytes, body: Body, wire: bytes
) -> Envelope:
    v, net, author, key, seq, prev, at, kind, body_hash = fields
    return Envelope(
        v=v, net=net, author=author, key=key, seq=seq, prev=prev, at=at, kind=kind,
        body_hash=body_hash, signature=signature, id=event_id(header), body=body,
        header=header, wire=wire,
    )  # fmt: skip


def _decode_header(header: bytes) -> HeaderTuple:
    try:
        fields: HeaderTuple = _header_decoder.decode(header)
    except _DECODE_ERRORS as exc:
        _raise_if_other_version(header)
        raise errors.Malformed(f"header: {exc}") from None
    if fields[0] != VERSION:
        raise errors.BadVersion(f"envelope version {fields[0]}, this node speaks {VERSION}")
    if _encoder.encode(fields) != header:
        raise errors.NonCanonical("header is not in its canonical (shortest) encoding")
    return fields


def _raise_if_other_version(header: bytes) -> None:
    """A header of another version may have another layout: report the version, not the shape."""
    try:
        check_strict(header)
        loose: Any = _loose_decoder.decode(header)
    except (NotStrict, *_DECODE_ERRORS):
        return
    if isinstance(loose, list) and loose and type(loose[0]) is int and loose[0] != VERSION:
        raise errors.BadVersion(f"envelope version {loose[0]}, this node speaks {VERSION}")


def _check_header_fields(fields: HeaderTuple) -> None:
    _, net, author, key, seq, prev, at, kind, body_hash = fields
    if len(net) != NET_BYTES:
        raise errors.Malformed(f"net is {len(net)} bytes, expected {NET_BYTES}")
    if not AUTHOR_RE.fullmatch(author):
        raise errors.Malformed(f"author {author!r} is not a slug ^[a-z][a-z0-9-]{{1,31}}$")
    if len(key) != KEY_BYTES:
        raise errors.Malformed(f"key is {len(key)} bytes, expected {KEY_BYTES}")
    if not 1 <= seq <= MAX_SEQ:
        raise errors.Malformed(f"seq {seq} is outside 1..2^63-1")
    if (prev is None) != (seq == 1):
        raise errors.Malformed("prev must be nil exactly when seq is 1")
    if prev is not None and len(prev) != ID_BYTES:
        raise errors.Malformed(f"prev is {len(prev)} bytes, expected {ID_BYTES}")
    if not 0 <= at <= MAX_AT:
        raise errors.Malformed(f"at {at} is outside 0..2^63-1")
    if len(kind) > MAX_KIND_CHARS or not KIND_RE.fullmatch(kind):
        raise errors.Malformed(f"kind {kind!r} is not a dotted lower-case name")
    if len(body_hash) != ID_BYTES:
        raise errors.Malformed(f"body_hash is {len(body_hash)} bytes, expected {ID_BYTES}")


_body_decoders: dict[type[Body], msgspec.msgpack.Decoder[Any]] = {}


def _decoder(body_cls: type[Body]) -> msgspec.msgpack.Decoder[Any]:
    decoder = _body_decoders.get(body_cls)
    if decoder is None:
        decoder = _body_decoders[body_cls] = msgspec.msgpack.Decoder(body_cls)
    return decoder


def _read_body(kind: str, body_bytes: bytes) -> Body:
    """§4 steps 12-13: one strict map (else `bad_body`), then the kind's shape, if known."""
    try:
        check_strict(body_bytes)
    except NotStrict as exc:
        raise errors.BadBody(f"{kind} body is not strict MessagePack: {exc}") from None
    if body_bytes[0] not in _MAP_LEAD:  # one complete value (strict): its lead byte says
        raise errors.BadBody(f"{kind} body is not a map")
    body_cls = body_type(kind)
    if body_cls is None:
        return Opaque(raw=body_bytes)
    body = _typed_or_refused(body_cls, kind, body_bytes)
    if isinstance(body, Opaque) and kind in KEY_LOG_KINDS:
        # The key log reads these bodies (§5): one it cannot read cannot enter the log.
        raise errors.BadBody(body.refused)
    return body


def _typed_or_refused(body_cls: type[Body], kind: str, body_bytes: bytes) -> Body:
    """A known kind's strict map as the kind's Struct, or `Opaque` saying why its shape
    refuses it (§4 step 13)."""
    try:
        body: Body = _decoder(body_cls).decode(body_bytes)
    except _DECODE_ERRORS as exc:
        return Opaque(raw=body_bytes, refused=f"{kind} body: {exc}")
    return body


def _own_body(body_cls: type[Body], body_bytes: bytes) -> Body:
    """A body about to be sealed, read back as a receiver reads it: `bad_body` if its kind
    refuses it (a node signs only bodies that fit their kind)."""
    kind = kind_of(body_cls)
    try:
        check_strict(body_bytes)
        body: Body = _decoder(body_cls).decode(body_bytes)
    except NotStrict as exc:
        raise errors.BadBody(f"{kind} body is not strict MessagePack: {exc}") from None
    except _DECODE_ERRORS as exc:
        raise errors.BadBody(f"{kind} body: {exc}") from None
    return body
