"""Typed errors with stable codes (docs/PROTOCOL.md §7).

Every way an event can be refused has exactly one code. The code is part of the protocol:
other implementations report the same code for the same input, and the test vectors pin it.
"""

from __future__ import annotations

from typing import ClassVar


class InvalidEvent(Exception):
    """Base of every refusal. `code` is stable; the message is for people."""

    code: ClassVar[str] = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


# Stateless checks, raised by `unseal` (docs/PROTOCOL.md §4), in the order they are made.
class TooLarge(InvalidEvent):
    code = "too_large"


class Malformed(InvalidEvent):
    code = "malformed"


class NonCanonical(InvalidEvent):
    code = "non_canonical"


class BadVersion(InvalidEvent):
    code = "bad_version"


class WrongNetwork(InvalidEvent):
    code = "wrong_network"


class BadSignature(InvalidEvent):
    code = "bad_signature"


class BodyHashMismatch(InvalidEvent):
    code = "body_hash_mismatch"


class UnknownKind(InvalidEvent):
    code = "unknown_kind"


class BadBody(InvalidEvent):
    code = "bad_body"


# Stateful checks, raised against what a node already holds (docs/PROTOCOL.md §5-6).
class UnknownAuthor(InvalidEvent):
    code = "unknown_author"


class WrongKey(InvalidEvent):
    code = "wrong_key"


class Fork(InvalidEvent):
    code = "fork"


class FutureTimestamp(InvalidEvent):
    code = "future_timestamp"


class NotAuthorized(InvalidEvent):
    code = "not_authorized"


UNSEAL_CODES: tuple[str, ...] = tuple(
    cls.code
    for cls in (
        TooLarge,
        Malformed,
        NonCanonical,
        BadVersion,
        WrongNetwork,
        BadSignature,
        BodyHashMismatch,
        UnknownKind,
        BadBody,
    )
)
STATEFUL_CODES: tuple[str, ...] = tuple(
    cls.code for cls in (UnknownAuthor, WrongKey, Fork, FutureTimestamp, NotAuthorized)
)
ALL_CODES: tuple[str, ...] = UNSEAL_CODES + STATEFUL_CODES
