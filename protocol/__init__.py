"""coopnet.protocol: pure, sans-IO. The envelope, event kinds and the rules of a history.

Nothing here does I/O: no sockets, no files, no event loop (enforced by import-linter).
"""

from __future__ import annotations

from coopnet.protocol.body import Body, Opaque, encode_body, kind_of
from coopnet.protocol.charter import DEFAULT_CURRENCY, Charter, Currency
from coopnet.protocol.envelope import (
    MAX_WIRE_BYTES,
    SIGNING_CONTEXT,
    VERSION,
    Envelope,
    decode_unsealed,
    event_id,
    key_digest,
    seal,
    seal_envelope,
    unseal,
    unseal_stored,
)
from coopnet.protocol.errors import ALL_CODES, InvalidEvent
from coopnet.protocol.history import (
    Classification,
    Head,
    KeyState,
    Verdict,
    check_clock,
    check_key,
    classify,
    found_key_state,
)
from coopnet.protocol.identity import Identity
from coopnet.protocol.kinds import (
    KEY_LOG_KINDS,
    KINDS,
    NodeFounded,
    NodeKeyRotated,
    NotePosted,
)

__all__ = [
    "ALL_CODES",
    "DEFAULT_CURRENCY",
    "KEY_LOG_KINDS",
    "KINDS",
    "MAX_WIRE_BYTES",
    "SIGNING_CONTEXT",
    "VERSION",
    "Body",
    "Charter",
    "Classification",
    "Currency",
    "Envelope",
    "Head",
    "Identity",
    "InvalidEvent",
    "KeyState",
    "NodeFounded",
    "NodeKeyRotated",
    "NotePosted",
    "Opaque",
    "Verdict",
    "check_clock",
    "check_key",
    "classify",
    "decode_unsealed",
    "encode_body",
    "event_id",
    "found_key_state",
    "key_digest",
    "kind_of",
    "seal",
    "seal_envelope",
    "unseal",
    "unseal_stored",
]
