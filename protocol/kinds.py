"""Every event kind this node understands, registered in one place (docs/PROTOCOL.md §8).

A kind string and the shape of its body never change once released: new fields get
defaults, nothing is renamed or retyped. An event whose kind is not listed here (a newer
node's) is stored with an opaque body and folded once an upgrade lists it (§8.1); the store
keeps the kinds listed here in its meta to notice that upgrade (node/engine/store.py).
"""

from __future__ import annotations

from coopnet.protocol.aid import AID_KINDS
from coopnet.protocol.body import (
    AreaCode,
    Body,
    Digest,
    DisplayName,
    NoteText,
    PublicKey,
    Ticket,
)
from coopnet.protocol.hours import HOURS_KINDS
from coopnet.protocol.membership import MEMBERSHIP_KINDS, MembershipRetired
from coopnet.protocol.offers import (
    NeedPosted,
    NeedWithdrawn,
    OfferPosted,
    OfferRevised,
    OfferWithdrawn,
)
from coopnet.protocol.pools import POOL_KINDS
from coopnet.protocol.trades import TRADE_KINDS


class NodeFounded(Body, frozen=True, kw_only=True, omit_defaults=True):
    """Seq 1 of every author: who it is, the key it signs with, and the digest of its next key.

    `ticket`: the operator's admission ticket for (slug, key), 64 bytes (§16.6), required of
    a neighborhood that is not a founder in a federation whose charter names an admission
    key. Omitted when absent, so a founding without one encodes as it always did.
    """

    kind = "node.founded"
    display_name: DisplayName
    area: AreaCode
    key: PublicKey
    next_key_digest: Digest
    ticket: Ticket | None = None


class NodeKeyRotated(Body, frozen=True, kw_only=True):
    """Pre-rotation (KERI-style): reveals the committed key, is signed by it, commits the next."""

    kind = "node.key_rotated"
    key: PublicKey
    next_key_digest: Digest


class NotePosted(Body, frozen=True, kw_only=True):
    """A short public note from a neighborhood to the federation."""

    kind = "note.posted"
    text: NoteText


_REGISTERED: tuple[type[Body], ...] = (
    NodeFounded,
    NodeKeyRotated,
    NotePosted,
    OfferPosted,
    OfferRevised,
    OfferWithdrawn,
    NeedPosted,
    NeedWithdrawn,
    *TRADE_KINDS,
    *AID_KINDS,
    *MEMBERSHIP_KINDS,
    *POOL_KINDS,
    *HOURS_KINDS,
)
KINDS: dict[str, type[Body]] = {cls.kind: cls for cls in _REGISTERED}

# The kinds whose bodies the key log reads (§5: the founding key, a rotation, the end of a
# log). A body of one of them that its shape refuses is refused from the log (`bad_body`,
# §4 step 13); any other known kind's is stored and refused by the domain (§7.1).
KEY_LOG_KINDS: frozenset[str] = frozenset(
    {NodeFounded.kind, NodeKeyRotated.kind, MembershipRetired.kind}
)


def body_type(kind: str) -> type[Body] | None:
    """The body class registered for `kind`, or None."""
    return KINDS.get(kind)
