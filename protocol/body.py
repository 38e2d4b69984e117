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
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
AreaCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")]
ShortText = Annotated[str, msgspec.Meta(max_length=280)]
NoteText = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class Body(msgspec.Struct, frozen=True, kw_only=True):
    """An event body. `kind` is the header's kind string; subclasses set it once, for ever."""

    kind: ClassVar[str] = ""


_encoder = msgspec.msgpack.Encoder()


def encode_body(body: Body) -> bytes:
    """MessagePack bytes of a body: a map of its fields in declaration order."""
    return _encoder.encode(body)


def kind_of(body: Body | type[Body]) -> str:
    """The kind string of a body instance or class."""
    return body.kind
