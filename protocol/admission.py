"""Admission tickets: the operator's proof that a key may found a log under a slug
(docs/PROTOCOL.md §16.6).

Anyone on the bus can sign a `node.founded` under any slug nobody holds yet. In a federation
whose charter names an `admission_key`, the `node.founded` of a neighborhood that is not a
founder must carry a ticket: the Ed25519 signature, by that key, of

    b"coopnet/admission/v1\\x00" || net (16 bytes) || key (32 bytes) || slug (UTF-8)

where `key` is the public key the log is founded with. Every receiver checks it offline
against the charter; a log founded without a valid ticket is refused with `wrong_key`, like
a founder's log founded with another key than the charter's (§5.4). Founders need no
ticket: the charter names their keys. A charter without `admission_key` (federations made
before tickets) keeps the old rule: any slug nobody holds may be founded.

Pure: bytes in, bytes or an error out.
"""

from __future__ import annotations

import nacl.exceptions
import nacl.signing

from coopnet.protocol import errors

TICKET_CONTEXT = b"coopnet/admission/v1\x00"


def ticket_message(net: bytes, slug: str, key: bytes) -> bytes:
    """The bytes an admission ticket signs: context, `net` (16), `key` (32), slug (UTF-8).
    The slug comes last and the rest has fixed lengths, so no two inputs share bytes."""
    if len(net) != 16 or len(key) != 32:
        raise ValueError("net is 16 bytes and key 32 bytes")
    return TICKET_CONTEXT + net + key + slug.encode()


def issue_ticket(
    admission_key: nacl.signing.SigningKey, net: bytes, slug: str, key: bytes
) -> bytes:
    """The 64-byte ticket by which the operator's admission key lets `key` found `slug`'s
    log in the federation `net` (done by `coopnet neighborhood add`, never on the bus)."""
    return admission_key.sign(ticket_message(net, slug, key)).signature


def check_ticket(
    admission_key: bytes, *, net: bytes, slug: str, key: bytes, ticket: bytes | None
) -> None:
    """Raise `WrongKey` unless `ticket` is the admission key's signature for (net, slug,
    key) (§16.6). `admission_key` is the charter's 32-byte public key."""
    if ticket is None:
        raise errors.WrongKey(
            f"{slug}: node.founded carries no admission ticket, and only a key the "
            "federation's operator admitted may found a log that is not a founder's"
        )
    try:
        nacl.signing.VerifyKey(admission_key).verify(ticket_message(net, slug, key), ticket)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):  # not that signature
        raise errors.WrongKey(
            f"{slug}: the admission ticket in node.founded is not the charter's admission "
            "key's signature for this slug and key"
        ) from None
