"""Admission tickets (PROTOCOL.md §16.6): in a federation whose charter names an admission
key, a log that is not a founder's is founded only with the operator's ticket for exactly
that (net, slug, key); founders need none; a charter without the key asks for none."""

from __future__ import annotations

import json

import nacl.exceptions
import nacl.signing
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coopnet.protocol import Identity, encode_body, errors, seal, unseal
from coopnet.protocol.admission import TICKET_CONTEXT, issue_ticket, ticket_message
from coopnet.protocol.charter import (
    Charter,
    CharterError,
    Founder,
    dump_charter,
    parse_charter,
)
from coopnet.protocol.envelope import Envelope
from coopnet.protocol.history import found_key_state

NET = bytes(range(16))
OTHER_NET = bytes(range(1, 17))
ADMISSION = nacl.signing.SigningKey(b"\x07" * 32)
ADMISSION_PUB = bytes(ADMISSION.verify_key)
DEE = Identity.generate("dee")


def founded(ident: Identity, ticket: bytes | None, net: bytes = NET) -> Envelope:
    body = ident.founding_body("Dee", "N9", ticket)
    wire = seal(signing_key=ident.signing_key, net=net, author=ident.author, seq=1, prev=None,
                at=1_800_000_000_000, body=body)  # fmt: skip
    return unseal(wire, net=net)


def test_the_ticket_message_is_the_documented_bytes() -> None:
    key = bytes(range(32))
    assert ticket_message(NET, "dee", key) == b"coopnet/admission/v1\x00" + NET + key + b"dee"
    assert TICKET_CONTEXT == b"coopnet/admission/v1\x00"
    with pytest.raises(ValueError):
        ticket_message(NET[:15], "dee", key)


def test_a_ticketed_log_is_founded() -> None:
    ticket = issue_ticket(ADMISSION, NET, "dee", DEE.public_key)
    state = found_key_state(founded(DEE, ticket), None, ADMISSION_PUB)
    assert state.current_key == DEE.public_key


@pytest.mark.parametrize(
    "ticket, why",
    [
        (None, "carries no admission ticket"),
        (issue_ticket(ADMISSION, NET, "dea", DEE.public_key), "not the charter's admission key"),
        (issue_ticket(ADMISSION, OTHER_NET, "dee", DEE.public_key), "not the charter's"),
        (issue_ticket(ADMISSION, NET, "dee", bytes(32)), "not the charter's"),
        (issue_ticket(nacl.signing.SigningKey(b"\x08" * 32), NET, "dee", DEE.public_key), "not"),
        (b"\x00" * 64, "not the charter's admission key"),
    ],
    ids=["missing", "other-slug", "other-net", "other-key", "other-admission-key", "zeros"],
)
def test_a_log_without_the_right_ticket_is_refused_wrong_key(
    ticket: bytes | None, why: str
) -> None:
    with pytest.raises(errors.WrongKey, match=why):
        found_key_state(founded(DEE, ticket), None, ADMISSION_PUB)


def test_a_squatter_cannot_reuse_the_real_neighborhoods_ticket() -> None:
    """The ticket binds the key: the real dee's ticket on a squatter's key is refused."""
    real_ticket = issue_ticket(ADMISSION, NET, "dee", DEE.public_key)
    squatter = Identity.generate("dee")
    with pytest.raises(errors.WrongKey):
        found_key_state(founded(squatter, real_ticket), None, ADMISSION_PUB)


def test_founders_need_no_ticket_and_old_charters_ask_for_none() -> None:
    env = founded(DEE, None)
    assert found_key_state(env, DEE.public_key, ADMISSION_PUB).current_key == DEE.public_key
    assert found_key_state(env, None, None).current_key == DEE.public_key


def test_a_founding_without_ticket_encodes_as_before_tickets() -> None:
    """No `ticket` key at all (not nil): events signed before tickets keep their bytes."""
    assert b"ticket" not in encode_body(DEE.founding_body("Dee", "N9"))
    with_ticket = encode_body(DEE.founding_body("Dee", "N9", b"\x01" * 64))
    assert b"ticket" in with_ticket


def test_a_ticket_is_64_bytes() -> None:
    for size in (63, 65):
        with pytest.raises(errors.BadBody, match="ticket"):
            founded(DEE, b"\x01" * size)
    assert founded(DEE, b"\x01" * 64).body.ticket == b"\x01" * 64  # type: ignore[attr-defined]


@given(
    slug=st.from_regex(r"[a-z][a-z0-9-]{1,31}", fullmatch=True),
    other=st.from_regex(r"[a-z][a-z0-9-]{1,31}", fullmatch=True),
    key=st.binary(min_size=32, max_size=32),
    net=st.binary(min_size=16, max_size=16),
)
def test_a_ticket_admits_exactly_its_slug_key_and_net(
    slug: str, other: str, key: bytes, net: bytes
) -> None:
    ticket = issue_ticket(ADMISSION, net, slug, key)
    verify = ADMISSION.verify_key.verify
    verify(ticket_message(net, slug, key), ticket)
    if other != slug:
        with pytest.raises(nacl.exceptions.BadSignatureError):
            verify(ticket_message(net, other, key), ticket)
    flipped = bytes([key[0] ^ 1]) + key[1:]
    with pytest.raises(nacl.exceptions.BadSignatureError):
        verify(ticket_message(net, slug, flipped), ticket)


def _charter(admission_key: str = "") -> Charter:
    founder = Founder(slug="ana", display_name="Ana", area="N1", key="ab" * 32)
    return Charter(name="T", founders=[founder], admission_key=admission_key)


def test_the_charter_names_the_admission_key_or_says_nothing() -> None:
    with_key, net_with = parse_charter(dump_charter(_charter(ADMISSION_PUB.hex())))
    assert with_key.admission_public_key() == ADMISSION_PUB
    text = dump_charter(_charter())
    assert b"admission_key" not in text  # a charter made before tickets reads the same
    without, net_without = parse_charter(text)
    assert without.admission_public_key() is None and net_with != net_without


@pytest.mark.parametrize("bad", ["AB" * 32, "ab" * 31, "ab" * 33, "zz" * 32, "ab" * 32 + "\n"])
def test_a_charter_with_a_malformed_admission_key_is_refused(bad: str) -> None:
    value = json.loads(dump_charter(_charter()))
    value["admission_key"] = bad
    with pytest.raises(CharterError, match="admission_key"):
        parse_charter(json.dumps(value).encode())


@pytest.mark.parametrize("admission_key", [b"\x00" * 32, b"\xff" * 32], ids=["zeros", "ones"])
def test_an_admission_key_that_is_no_curve_point_refuses_not_crashes(admission_key: bytes) -> None:
    """A charter naming 64 hex digits that are no Ed25519 public key: every founding that
    needs a ticket is `wrong_key`; the receiver never fails with another exception."""
    ticket = issue_ticket(ADMISSION, NET, "dee", DEE.public_key)
    with pytest.raises(errors.WrongKey):
        found_key_state(founded(DEE, ticket), None, admission_key)
