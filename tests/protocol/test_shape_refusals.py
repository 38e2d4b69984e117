"""A known kind's body of the wrong shape never cuts a chain (docs/PROTOCOL.md §4 step 13,
§7.1): `unseal` gives it back with a refused body, to be stored and refused by the domain
with `bad_body`; only the key log's kinds, and bodies that are not one strict map, are
refused from the log. `unseal_stored` and `decode_unsealed` give back the same event."""

from __future__ import annotations

import msgspec
import pytest

from coopnet.protocol import (
    KEY_LOG_KINDS,
    KINDS,
    InvalidEvent,
    Opaque,
    decode_unsealed,
    seal,
    unseal,
    unseal_stored,
)
from coopnet.protocol.history import Head, Verdict, check_key, classify, found_key_state
from coopnet.protocol.kinds import NodeFounded, NodeKeyRotated
from coopnet.protocol.membership import MembershipRetired
from coopnet.protocol.offers import OfferPosted
from tests.protocol.edges_support import NET, OAK, PREV, body_of, refused, signed_wire

OFFER = {
    "offer": "eggs-1", "item": "eggs", "category": "dairy-eggs", "quantity": 12,
    "unit": "piece", "unit_price": 35, "available_until": 10**13, "area": "N1",
}  # fmt: skip
FURLONG_REASON = "offer.posted body: Invalid enum value 'furlong' - at `$.unit`"


def furlong_wire(seq: int = 2, prev: bytes | None = PREV) -> bytes:
    return signed_wire(body_of({**OFFER, "unit": "furlong"}), kind="offer.posted", seq=seq,
                       prev=prev)  # fmt: skip


def test_an_offer_in_a_unit_this_version_does_not_list_is_valid_with_a_refused_body() -> None:
    wire = furlong_wire()
    env = unseal(wire, net=NET)
    assert (env.kind, env.author, env.seq) == ("offer.posted", "oakley", 2)
    assert env.body == Opaque(raw=body_of({**OFFER, "unit": "furlong"}), refused=FURLONG_REASON)


def test_the_store_and_the_worker_processes_read_it_back_the_same() -> None:
    wire = furlong_wire()
    env = unseal(wire, net=NET)
    assert unseal_stored(wire, net=NET) == env
    assert decode_unsealed(wire) == env


SHAPES = {
    "a required field missing": ("note.posted", {}),
    "a field of the wrong type": ("note.posted", {"text": 7}),
    "a string beyond its bound": ("note.posted", {"text": "x" * 2001}),
    "a category not listed": ("offer.posted", {**OFFER, "category": "weapons"}),
    "a float for an integer": ("offer.posted", {**OFFER, "unit_price": 0.35}),
    "nil where nil is not allowed": ("offer.posted", {**OFFER, "min_order": None}),
    "an urgency not listed": (
        "aid.requested",
        {
            "request": "r",
            "category": "food",
            "urgency": "soon",
            "needed_by": 1,
            "quantity": 1,
            "area": "N1",
            "description": "Meals",
            "raised_at": 1,
        },
    ),
    "a consent without its application": ("membership.consented", {"applicant": "elm"}),
}


@pytest.mark.parametrize(("kind", "fields"), SHAPES.values(), ids=SHAPES.keys())
def test_every_other_known_kind_of_the_wrong_shape_is_stored_and_refused_by_the_domain(
    kind: str, fields: dict[str, object]
) -> None:
    assert kind not in KEY_LOG_KINDS
    wire = signed_wire(body_of(fields), kind=kind)
    env = unseal(wire, net=NET)
    assert isinstance(env.body, Opaque)
    assert env.body.refused.startswith(f"{kind} body: "), env.body.refused
    assert unseal_stored(wire, net=NET) == env == decode_unsealed(wire)


KEY_LOG_SHAPES = {
    "node.founded without its key": (
        "node.founded",
        {"display_name": "Oakley", "area": "N1", "next_key_digest": bytes(32)},
        1,
    ),
    "node.founded with a 63-byte ticket": (
        "node.founded",
        {
            "display_name": "Oakley",
            "area": "N1",
            "key": OAK.public_key,
            "next_key_digest": bytes(32),
            "ticket": bytes(63),
        },
        1,
    ),
    "node.key_rotated with a 31-byte key": (
        "node.key_rotated",
        {"key": OAK.public_key[:31], "next_key_digest": bytes(32)},
        2,
    ),
    "membership.retired with a reason of 281": ("membership.retired", {"reason": "x" * 281}, 2),
}


@pytest.mark.parametrize(("kind", "fields", "seq"), KEY_LOG_SHAPES.values(), ids=KEY_LOG_SHAPES)
def test_the_key_logs_kinds_of_the_wrong_shape_are_refused_from_the_log(
    kind: str, fields: dict[str, object], seq: int
) -> None:
    wire = signed_wire(body_of(fields), kind=kind, seq=seq, prev=None if seq == 1 else PREV)
    assert refused(wire, "bad_body").message.startswith(f"{kind} body: ")


def test_the_key_logs_kinds_are_the_three_the_key_log_reads() -> None:
    assert {KINDS[k] for k in KEY_LOG_KINDS} == {NodeFounded, NodeKeyRotated, MembershipRetired}


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"\x82\xa4unit\xa1x\xa4unit\xa1y", "offer.posted body is not strict MessagePack"),
        (msgspec.msgpack.encode([OFFER]), "offer.posted body is not a map"),
        (msgspec.msgpack.encode("eggs"), "offer.posted body is not a map"),
    ],
)
def test_a_known_body_that_is_not_one_strict_map_is_still_refused_from_the_log(
    body: bytes, why: str
) -> None:
    assert refused(signed_wire(body, kind="offer.posted"), "bad_body").message.startswith(why)


def nothing_held(seq: int) -> bytes | None:
    return None


def test_the_authors_next_event_chains_on_a_refused_body() -> None:
    """§5-6 judge it as any event: signed by the current key, it extends the chain, and
    the author's next event links to it."""
    founding = seal(signing_key=OAK.signing_key, net=NET, author="oakley", seq=1, prev=None,
                    at=1, body=OAK.founding_body("Oakley", "N1"))  # fmt: skip
    first = unseal(founding, net=NET)
    keys = found_key_state(first)
    offer = unseal(furlong_wire(seq=2, prev=first.id), net=NET)
    assert (
        classify(Head(1, first.id), 2, offer.id, offer.prev, nothing_held).verdict is Verdict.NEXT
    )
    keys = check_key(keys, offer)
    note = unseal(signed_wire(body_of({"text": "hi"}), seq=3, prev=offer.id), net=NET)
    assert classify(Head(2, offer.id), 3, note.id, note.prev, nothing_held).verdict is Verdict.NEXT
    assert check_key(keys, note) == keys


def test_seal_still_refuses_a_body_its_kind_refuses() -> None:
    body = OfferPosted(**{**OFFER, "unit": "furlong"})  # type: ignore[arg-type]
    with pytest.raises(InvalidEvent) as caught:
        seal(signing_key=OAK.signing_key, net=NET, author="oakley", seq=2, prev=PREV, at=1,
             body=body)  # fmt: skip
    assert caught.value.code == "bad_body"
    assert caught.value.message == FURLONG_REASON
