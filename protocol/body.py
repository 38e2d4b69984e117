"""The base of every event body and the bounded field types they share (docs/PROTOCOL.md §3).

A body is a MessagePack *map* (a msgspec Struct, not array_like) so that later versions can
add fields with defaults: unknown fields are ignored, known ones are typed strictly. Every
string, binary and list is bounded, so a body can never be larger than the checks assume.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

PublicKey = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Digest = Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
Ticket = Annotated[bytes, msgspec.Meta(min_length=64, max_length=64)]  # §16.6
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
# Patterns match the whole string (PROTOCOL.md §8): msgspec searches with `re.search`, where
# `$` also matches before a final newline, so every pattern ends `(?!\n)$` ("elm\n" is not
# a slug). The lookahead is valid in the API's JSON Schema (ECMA-262) as well.
AreaCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}(?!\n)$")]
ShortText = Annotated[str, msgspec.Meta(max_length=280)]
NoteText = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class Body(msgspec.Struct, frozen=True, kw_only=True):
    """An event body. `kind` is the header's kind string; subclasses set it once, for ever."""

    kind: ClassVar[str] = ""


class Opaque(Body, frozen=True, kw_only=True):
    """The body of an event this node stores without reading it (docs/PROTOCOL.md §8.1).

    `unseal` gives it for a kind this coopnet does not know (a newer node's): the body was
    checked to be strict MessagePack and a map, and nothing more. `raw` is the body's bytes
    as received. The envelope's `kind` names the kind; no projection is handed an opaque
    body, and once an upgrade knows the kind, the store folds the event from its wire.

    `refused` is set for an event of a known kind whose body is one strict map that the
    kind's shape refuses (§4 step 13, §8.1): `unseal`, `unseal_stored` and `decode_unsealed`
    give it back opaque with the `bad_body` reason, and the store records it as a domain
    refusal (the event stays in the log, its author's chain whole).
    An opaque body is never sealed.
    """

    raw: bytes
    refused: str = ""


_encoder = msgspec.msgpack.Encoder()


def encode_body(body: Body) -> bytes:
    """MessagePack bytes of a body: a map of its fields in declaration order."""
    return _encoder.encode(body)


def kind_of(body: Body | type[Body]) -> str:
    """The kind string of a body instance or class."""
    return body.kind
