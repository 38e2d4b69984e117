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


# Domain rules (docs/PROTOCOL.md §7.1): raised by the pure rules, signer and receiver alike.
# A receiver still stores the event (its chain stays whole) and records the refusal.
class OutOfBounds(InvalidEvent):
    """A value computed from the event's fields (a trade's total, say) is beyond its bound."""

    code = "out_of_bounds"


class PersonalData(InvalidEvent):
    """A text of a call for help or a pledge holds an e-mail address or a phone number."""

    code = "personal_data"


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
        BadBody,
    )
)
# Codes no longer raised, kept so that no later code takes their name (docs/PROTOCOL.md §7):
# `unknown_kind` was step 12 of `unseal` until a kind this node does not know was stored
# opaque instead (§8.1); older nodes' counts and findings may still carry it.
RETIRED_CODES: tuple[str, ...] = ("unknown_kind",)
STATEFUL_CODES: tuple[str, ...] = tuple(
    cls.code for cls in (UnknownAuthor, WrongKey, Fork, FutureTimestamp, NotAuthorized)
)
DOMAIN_CODES: tuple[str, ...] = (OutOfBounds.code, PersonalData.code)
ALL_CODES: tuple[str, ...] = UNSEAL_CODES + STATEFUL_CODES
