#!/usr/bin/env python3
"""Write protocol/vectors/envelopes.json and charters.json: the protocol v1 test vectors
(docs/PROTOCOL.md §15).

Deterministic: every key comes from a fixed seed, every clock from a fixed number, and
Ed25519 signatures are deterministic, so running this twice writes the same bytes. The
tests regenerate the list and compare it with the file.

Each invalid vector has exactly one fault: where a fault sits in the header, the header is
re-signed with the right key, so a verifier that skipped the check in question would accept
the event.

    python scripts/make_vectors.py            # rewrite the files
    python scripts/make_vectors.py --check    # exit 1 if a file is out of date
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import nacl.signing

from coopnet.protocol import (
    KINDS,
    MAX_WIRE_BYTES,
    SIGNING_CONTEXT,
    Identity,
    NotePosted,
    encode_body,
    event_id,
    seal,
)
from coopnet.protocol.admission import issue_ticket
from coopnet.protocol.aid import (
    AidFulfilled,
    AidPledgeAccepted,
    AidPledged,
    AidPledgeWithdrawn,
    AidRequested,
    AidWithdrawn,
    AlertRaised,
    AlertResolved,
)
from coopnet.protocol.charter import CharterError, canonical_bytes, parse_charter
from coopnet.protocol.envelope import encode_wire
from coopnet.protocol.hours import HoursTransferred
from coopnet.protocol.membership import (
    MembershipApplied,
    MembershipConsented,
    MembershipObjected,
    MembershipObjectionWithdrawn,
    MembershipRetired,
)
from coopnet.protocol.offers import (
    Category,
    NeedPosted,
    NeedWithdrawn,
    OfferPosted,
    OfferRevised,
    OfferWithdrawn,
    Unit,
)
from coopnet.protocol.pools import (
    PoolBoxFill,
    PoolCancelled,
    PoolClosed,
    PoolCommitted,
    PoolDelivered,
    PoolOpened,
    PoolReceived,
)
from coopnet.protocol.trades import (
    TradeAccepted,
    TradeCancelled,
    TradeDeclined,
    TradeDisputed,
    TradeProposed,
    TradeReceived,
    TradeShipped,
)

OUT = Path(__file__).resolve().parent.parent / "protocol" / "vectors" / "envelopes.json"
CHARTERS_OUT = OUT.with_name("charters.json")
NET = hashlib.sha256(b"coopnet test vectors: net").digest()[:16]
OTHER_NET = hashlib.sha256(b"coopnet test vectors: another net").digest()[:16]
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms

enc = msgspec.msgpack.Encoder()


def _ident(author: str) -> Identity:
    return Identity.from_passphrase(author, "vectors")


def _sign(seed: bytes, header: bytes) -> bytes:
    return nacl.signing.SigningKey(seed).sign(SIGNING_CONTEXT + header).signature


def _raw(seed: bytes, header_fields: list[Any], body: bytes) -> bytes:
    """Wire bytes from raw header fields (any shape), signed over the encoded header."""
    header = enc.encode(header_fields)
    return encode_wire(header, _sign(seed, header), body)


def _fields(
    ident: Identity, seq: int, prev: bytes | None, kind: str, body: bytes, net: bytes = NET
) -> list[Any]:
    return [
        1,
        net,
        ident.author,
        ident.public_key,
        seq,
        prev,
        T0 + seq,
        kind,
        hashlib.sha256(body).digest(),
    ]


def _split(wire: bytes) -> tuple[bytes, bytes, bytes]:
    header, sig, body = msgspec.msgpack.decode(wire, type=tuple[bytes, bytes, bytes])
    return header, sig, body


def valid_vectors() -> list[tuple[str, bytes, Identity | bytes]]:
    out: list[tuple[str, bytes, Identity | bytes]] = []
    oak = _ident("oakley")

    def add(name: str, wire: bytes, signer: Identity) -> bytes:
        out.append((name, wire, signer))
        return event_id(_split(wire)[0])

    def s(ident: Identity, seq: int, prev: bytes | None, body: Any, at: int | None = None) -> bytes:
        return seal(
            signing_key=ident.signing_key,
            net=NET,
            author=ident.author,
            seq=seq,
            prev=prev,
            at=T0 + seq if at is None else at,
            body=body,
        )

    h1 = add("node_founded_seq_1", s(oak, 1, None, oak.founding_body("Oakley", "N1")), oak)
    h2 = add("note_seq_2", s(oak, 2, h1, NotePosted(text="Tomatoes are in.")), oak)
    h3 = add(
        "note_seq_3_non_ascii",
        s(oak, 3, h2, NotePosted(text="Brot für alle — 面包 🍞, ¡gracias!")),
        oak,
    )
    rotated, rotation = oak.rotated(following_seed=hashlib.sha256(b"oakley-third").digest())
    h4 = add("key_rotated_seq_4_signed_by_new_key", s(rotated, 4, h3, rotation), rotated)
    add("note_seq_5_after_rotation", s(rotated, 5, h4, NotePosted(text="New key.")), rotated)

    long_slug = "a" + "b-" * 15 + "c"  # 32 characters, the longest author slug
    lng = _ident(long_slug)
    add("founded_longest_author_slug", s(lng, 1, None, lng.founding_body("Long", "Z9")), lng)
    uni = _ident("riverside")
    add(
        "founded_non_ascii_display_name",
        s(uni, 1, None, uni.founding_body("Rivière-Süd 河畔", "RS-2")),
        uni,
    )
    add("note_longest_text", s(oak, 2, h1, NotePosted(text="é" * 2000)), oak)
    add("seq_max_and_at_zero", s(oak, 2**63 - 1, h1, NotePosted(text="far"), at=0), oak)

    # Forward compatibility: a body with a field this version does not know is valid, the
    # field is ignored (§4 step 13). The padding field makes the wire exactly the 64 KiB cap.
    def padded(pad: int) -> bytes:
        body = enc.encode({"text": "padded", "future_field": "x" * pad})
        return _raw(oak.seed, _fields(oak, 2, h1, "note.posted", body), body)

    add("unknown_body_field_ignored", padded(10), oak)
    # 32 nested arrays (the top-level map is the first container): the deepest allowed.
    deep = (
        b"\x82" + enc.encode("text") + enc.encode("deep") + enc.encode("x") + b"\x91" * 31 + b"\xc0"
    )
    add("body_nested_32_deep", _raw(oak.seed, _fields(oak, 2, h1, "note.posted", deep), deep), oak)
    pad = 10
    while len(padded(pad)) != MAX_WIRE_BYTES:
        pad += MAX_WIRE_BYTES - len(padded(pad))
    assert len(padded(pad)) == MAX_WIRE_BYTES
    add("largest_allowed_size_65536_bytes", padded(pad), oak)

    # Kinds this version does not know (a newer node's): valid, the body opaque (§8.1).
    # `x.` kinds are never registered (§8.1), so these stay unknown to every receiver.
    def future(ident: Identity, seq: int, prev: bytes, kind: str, body: bytes) -> bytes:
        return _raw(ident.seed, _fields(ident, seq, prev, kind, body), body)

    barter = enc.encode({"terms": "swap", "items": [["jam", 2]], "ref": b"\x01\x02"})
    add("unknown_kind_stored_opaque", future(oak, 2, h1, "x.barter.proposed", barter), oak)
    add("unknown_kind_empty_map", future(oak, 2, h1, "x.note.pinned", b"\x80"), oak)
    longest = "x." + "k" * 62  # 64 characters, the longest kind
    add("unknown_kind_64_characters", future(oak, 2, h1, longest, enc.encode({"x": 1})), oak)

    # The units added after the first four (§10), read like the others.
    added: list[tuple[Unit, str, Category, int]] = [
        ("dozen", "eggs", "dairy-eggs", 4),
        ("kilogram", "potatoes", "produce", 25),
        ("litre", "milk", "dairy-eggs", 10),
        ("hour", "childminding", "care", 3),
    ]
    for unit, item, category, quantity in added:
        offer = OfferPosted(
            offer=f"{unit}-1", item=item, category=category, quantity=quantity, unit=unit,
            unit_price=250, available_until=T0 + 86_400_000, area="N1",
        )  # fmt: skip
        add(f"offer_posted_unit_{unit}", s(oak, 2, h1, offer), oak)

    # One event of every market kind (docs/PROTOCOL.md §8, §10-12), in one author's log.
    mill = _ident("millbrook")
    prev = add("millbrook_founded", s(mill, 1, None, mill.founding_body("Millbrook", "N6")), mill)
    for seq, body in enumerate(market_bodies(), start=2):
        prev = add(f"{body.kind.replace('.', '_')}_seq_{seq}", s(mill, seq, prev, body), mill)
    # Optional fields really absent from the map (coopnet itself always writes them all).
    sparse = enc.encode(
        {"offer": "o-9", "item": "eggs", "category": "dairy-eggs", "quantity": 12,
         "unit": "piece", "unit_price": 35, "available_until": T0, "area": "N6"}
    )  # fmt: skip
    fields = _fields(mill, 24, prev, "offer.posted", sparse)
    prev = add("offer_posted_optional_fields_absent", _raw(mill.seed, fields, sparse), mill)
    # One event of every membership kind (§16), the retirement last: it ends the log (§5.3).
    for seq, body in enumerate(membership_bodies(), start=25):
        prev = add(f"{body.kind.replace('.', '_')}_seq_{seq}", s(mill, seq, prev, body), mill)
    # One event of every pool and hours kind (§19-20), in another author's log: millbrook's
    # ended with its retirement. The commitments name events of that log by id.
    ash = _ident("ashford")
    prev = add("ashford_founded", s(ash, 1, None, ash.founding_body("Ashford", "N7")), ash)
    commitments: list[bytes] = []
    for seq, body in enumerate(pool_and_hours_bodies(commitments), start=2):
        prev = add(f"{body.kind.replace('.', '_')}_seq_{seq}", s(ash, seq, prev, body), ash)
        if isinstance(body, PoolCommitted) and body.organizer == "ashford":
            commitments.append(prev)
    return out


def pool_and_hours_bodies(commitments: list[bytes]) -> Iterator[Any]:
    """The pool and hours kinds' bodies (§19-20), one at a time: a box fill and a close
    name the ids of the commitments before them (`commitments`, filled by the caller)."""
    day = 86_400_000
    yield PoolOpened(
        pool="flour-1", item="rye flour", unit="kilogram", case_size=25, unit_price=180,
        min_cases=2, max_cases=8, closes_at=T0 + 7 * day, supplier="millbrook",
        supplier_offer="rye-25", single_unit_price=240,
    )  # fmt: skip
    yield PoolOpened(
        pool="oil-1",
        item="olive oil",
        unit="litre",
        case_size=6,
        unit_price=900,
        closes_at=T0 + 3 * day,
        supplier_name="Cooperativa Olearia",
    )  # optional fields absent: min_cases 1, max_cases 0, supplier "", single_unit_price 0
    yield PoolCommitted(organizer="ashford", pool="flour-1", quantity=30, tolerance=10)
    yield PoolCommitted(organizer="riverside", pool="beans-3", quantity=4)  # tolerance 0
    yield PoolBoxFill(pool="flour-1", counted=list(commitments))
    yield PoolCommitted(organizer="ashford", pool="flour-1", quantity=50, tolerance=0)
    yield PoolClosed(pool="flour-1", counted=commitments[-1:])
    yield PoolCancelled(pool="oil-1")  # reason "" written out
    yield PoolCancelled(pool="oil-2", reason="the press broke down")
    yield PoolDelivered(pool="flour-1")
    yield PoolReceived(organizer="riverside", pool="beans-3")
    yield HoursTransferred(transfer="h-1", to="oakley", quarters=10, request="r-1")
    yield HoursTransferred(transfer="h-2", to="riverside", quarters=40_000)  # request ""


def membership_bodies() -> list[Any]:
    application = hashlib.sha256(b"vectors: riverside's application").digest()
    return [
        MembershipApplied(display_name="Millbrook", area="N6", about="",
                          reason="Our bakery needs rye flour from the federation"),
        MembershipConsented(applicant="riverside", application=application),
        MembershipObjected(applicant="riverside", application=application,
                           reason="Ask them first about the unpaid delivery"),
        MembershipObjectionWithdrawn(applicant="riverside", application=application),
        MembershipRetired(),  # the default reason "" is written out
    ]  # fmt: skip


def market_bodies() -> list[Any]:
    day = 86_400_000
    return [
        OfferPosted(
            offer="jam-1", item="plum jam", category="prepared-food", quantity=50,
            unit="piece", unit_price=550, min_order=2, available_until=T0 + 14 * day,
            delivery="either", terms="jars back please", area="N6",
        ),
        OfferPosted(
            offer="bike-1", item="bicycle repair", category="repair", quantity=600,
            unit="minute", unit_price=40, available_until=T0 + 30 * day, area="N6",
        ),  # optional fields absent: min_order 1, delivery pickup, terms ""
        OfferRevised(offer="jam-1", quantity=45, unit_price=None, available_until=T0 + 9 * day),
        OfferWithdrawn(offer="bike-1"),
        NeedPosted(
            need="flour-1", item="rye flour", category="bakery", quantity=25_000, unit="gram",
            max_unit_price=1, needed_by=T0 + 5 * day, area="N6",
        ),
        NeedPosted(
            need="van-1", item="van transport", category="transport", quantity=90,
            unit="minute", needed_by=T0 + 2 * day, area="N6",
        ),  # max_unit_price absent (nil)
        NeedWithdrawn(need="van-1"),
        TradeProposed(
            trade="t-1", seller="oakley", offer="tom-1", quantity=2_000, unit_price=1,
            expires_at=T0 + 3_600_000,
        ),
        TradeAccepted(buyer="riverside", trade="t-7", offer="jam-1", quantity=4, unit_price=550),
        TradeDeclined(buyer="elmwood", trade="t-2"),
        TradeShipped(buyer="riverside", trade="t-7"),
        TradeReceived(buyer="millbrook", trade="t-1"),
        TradeCancelled(buyer="millbrook", trade="t-3", reason="not needed any more"),
        TradeDisputed(buyer="riverside", trade="t-7", reason="three jars arrived broken"),
        AidRequested(
            request="r-1", category="shelter", urgency="critical", needed_by=T0 + 7_200_000,
            quantity=4, area="N6", description="Beds for a family of four tonight — fire",
            raised_at=T0 - 900_000, pledged_locally=1, reason="not fully pledged within 900s",
        ),
        AidPledged(requester="oakley", request="r-9", pledge="p-1", what="2 camp beds", quantity=2),
        AidPledgeAccepted(request="r-1", pledger="riverside", pledge="p-4", quantity=3),
        AidFulfilled(request="r-1", pledges=[("riverside", "p-4")]),
        AidWithdrawn(request="r-2"),
        AidPledgeWithdrawn(requester="oakley", request="r-9", pledge="p-1"),
        AlertRaised(alert="a-1", alert_kind="storm", severity="danger", area="N6",
                    advice="Stay inside; the community hall is open all night."),
        AlertResolved(alert="a-1"),
    ]  # fmt: skip


def invalid_vectors() -> list[tuple[str, bytes, str]]:
    oak = _ident("oakley")
    other = _ident("elmwood")
    note = encode_body(NotePosted(text="hello"))
    h1 = event_id(
        enc.encode(
            _fields(oak, 1, None, "node.founded", encode_body(oak.founding_body("Oakley", "N1")))
        )
    )
    good = _fields(oak, 2, h1, "note.posted", note)

    def with_field(i: int, value: Any) -> bytes:
        fields = list(good)
        fields[i] = value
        return _raw(oak.seed, fields, note)

    out: list[tuple[str, bytes, str]] = []
    wire = _raw(oak.seed, good, note)
    header, sig, body = _split(wire)

    flipped = bytearray(sig)
    flipped[10] ^= 0x01
    out.append(
        ("signature_bit_flipped", encode_wire(header, bytes(flipped), body), "bad_signature")
    )
    out.append(
        (
            "other_network",
            _raw(oak.seed, _fields(oak, 2, h1, "note.posted", note, OTHER_NET), note),
            "wrong_network",
        )
    )
    out.append(
        (
            "signed_by_another_key",
            encode_wire(header, _sign(other.seed, header), body),
            "bad_signature",
        )
    )
    tampered = enc.encode({"text": "hellO"})
    out.append(("body_tampered", encode_wire(header, sig, tampered), "body_hash_mismatch"))
    out.append(("header_extra_field", _raw(oak.seed, [*good, 0], note), "malformed"))
    out.append(("header_missing_field", _raw(oak.seed, good[:8], note), "malformed"))
    out.append(("header_seq_wrong_type", with_field(4, "2"), "malformed"))
    out.append(("header_key_is_str", with_field(3, "k" * 32), "malformed"))
    out.append(("header_key_31_bytes", with_field(3, oak.public_key[:31]), "malformed"))
    # seq 2 as uint16 (cd 00 02) instead of the positive fixint 02.
    canonical_header = enc.encode(good)
    seq_at = canonical_header.index(b"\x02\xc4\x20")
    non_minimal = canonical_header[:seq_at] + b"\xcd\x00\x02" + canonical_header[seq_at + 1 :]
    out.append(
        (
            "header_non_minimal_integer",
            encode_wire(non_minimal, _sign(oak.seed, non_minimal), note),
            "non_canonical",
        )
    )
    # The signature framed as bin16 (c5 00 40) instead of bin8 (c4 40).
    wire_nc = b"\x93" + enc.encode(header) + b"\xc5\x00\x40" + sig + enc.encode(body)
    out.append(("wire_non_minimal_bin_length", wire_nc, "non_canonical"))
    out.append(("trailing_bytes", wire + b"\x00", "malformed"))
    out.append(("truncated", wire[:-1], "malformed"))
    out.append(("empty", b"", "malformed"))
    out.append(
        (
            "wire_is_a_map",
            enc.encode({"header": header, "signature": sig, "body": body}),
            "malformed",
        )
    )
    out.append(("wire_four_parts", enc.encode([header, sig, body, b""]), "malformed"))
    out.append(("signature_63_bytes", encode_wire(header, sig[:63], body), "malformed"))
    out.append(("oversize_65537_bytes", _oversize(oak, h1), "too_large"))
    out.append(("seq_zero", with_field(4, 0), "malformed"))
    out.append(("prev_nil_with_seq_2", with_field(5, None), "malformed"))
    founded = encode_body(oak.founding_body("Oakley", "N1"))
    out.append(
        (
            "prev_set_with_seq_1",
            _raw(oak.seed, _fields(oak, 1, h1, "node.founded", founded), founded),
            "malformed",
        )
    )
    out.append(("seq_2_pow_63", with_field(4, 2**63), "malformed"))
    out.append(("author_uppercase", with_field(2, "Oakley"), "malformed"))
    bad_utf8 = canonical_header.replace(b"\xa6oakley", b"\xa6oak\xffey")
    out.append(
        ("author_invalid_utf8", encode_wire(bad_utf8, _sign(oak.seed, bad_utf8), note), "malformed")
    )
    out.append(("version_2", with_field(0, 2), "bad_version"))
    out.append(
        ("version_2_with_ten_fields", _raw(oak.seed, [2, *good[1:], b"new"], note), "bad_version")
    )

    # A kind the receiver does not know is checked as a kind with no fields (§4 step 12,
    # §8.1): its body must still be one strict MessagePack map.
    def unknown_kind_case(name: str, body: bytes) -> None:
        fields = _fields(oak, 2, h1, "x.barter.proposed", body)
        out.append((name, _raw(oak.seed, fields, body), "bad_body"))

    unknown_kind_case("unknown_kind_body_is_an_array", enc.encode(["swap"]))
    unknown_kind_case("unknown_kind_body_is_a_str", enc.encode("swap"))
    unknown_kind_case("unknown_kind_body_empty", b"")
    terms = enc.encode("terms") + enc.encode("swap")
    unknown_kind_case("unknown_kind_body_duplicate_key", b"\x82" + terms + terms)
    ext = b"\xd4\x01\x00"  # fixext 1: never strict
    unknown_kind_case("unknown_kind_body_ext_value", b"\x81" + enc.encode("terms") + ext)
    unknown_kind_case("unknown_kind_body_trailing_bytes", enc.encode({"terms": "swap"}) + b"\xc0")
    unknown_kind_case(
        "unknown_kind_body_nested_33_deep", b"\x81" + enc.encode("x") + b"\x91" * 32 + b"\xc0"
    )
    # The kind string itself is a header field (§2.1): a malformed one is never opaque.
    for name, kind in (
        ("kind_without_a_dot", "barter"),
        ("kind_uppercase", "Barter.proposed"),
        ("kind_65_characters", "x." + "k" * 63),
        ("kind_trailing_dot", "barter."),
    ):
        body = enc.encode({"terms": "swap"})
        out.append((name, _raw(oak.seed, _fields(oak, 2, h1, kind, body), body), "malformed"))
    as_array = enc.encode(["hello"])
    out.append(
        (
            "body_is_an_array",
            _raw(oak.seed, _fields(oak, 2, h1, "note.posted", as_array), as_array),
            "bad_body",
        )
    )
    missing = enc.encode({"display_name": "Oakley", "area": "N1", "key": oak.public_key})
    out.append(
        (
            "body_missing_field",
            _raw(oak.seed, _fields(oak, 1, None, "node.founded", missing), missing),
            "bad_body",
        )
    )
    short_ticket = enc.encode(
        {**msgspec.msgpack.decode(encode_body(oak.founding_body("Oakley", "N1"))),
         "ticket": b"\x01" * 63}
    )  # fmt: skip
    out.append(
        (
            "ticket_of_63_bytes",
            _raw(oak.seed, _fields(oak, 1, None, "node.founded", short_ticket), short_ticket),
            "bad_body",
        )
    )
    # The key log's kinds (§5) are the ones whose body of the wrong shape is refused from
    # the log (§4 step 13); any other kind's is stored (`shape_vectors`).
    rotation = enc.encode({"key": oak.public_key[:31], "next_key_digest": bytes(32)})
    out.append(
        (
            "key_rotated_key_of_31_bytes",
            _raw(oak.seed, _fields(oak, 2, h1, "node.key_rotated", rotation), rotation),
            "bad_body",
        )
    )
    retired = enc.encode({"reason": "x" * 281})
    out.append(
        (
            "retired_reason_281_characters",
            _raw(oak.seed, _fields(oak, 2, h1, "membership.retired", retired), retired),
            "bad_body",
        )
    )

    def body_case(name: str, body: bytes) -> None:
        out.append(
            (name, _raw(oak.seed, _fields(oak, 2, h1, "note.posted", body), body), "bad_body")
        )

    text_a = enc.encode("text") + enc.encode("a")
    body_case("body_duplicate_key", b"\x82" + text_a + enc.encode("text") + enc.encode("b"))
    body_case("body_non_str_key", b"\x82" + text_a + b"\x01\x02")
    body_case("body_invalid_utf8_in_unknown_field", b"\x82" + text_a + b"\xa1x\xa1\xff")
    body_case("body_ext_in_unknown_field", b"\x82" + text_a + b"\xa1x\xd4\x01\x00")
    body_case("body_nested_33_deep", b"\x82" + text_a + b"\xa1x" + b"\x91" * 32 + b"\xc0")
    body_case("body_trailing_bytes", enc.encode({"text": "a"}) + b"\xc0")
    out.append(("author_trailing_newline", with_field(2, "oakley\n"), "malformed"))
    out.append(("seq_negative", with_field(4, -1), "malformed"))
    negative = enc.encode([*good[:4], -1, *good[5:]])
    at_neg = negative.index(b"\xff\xc4\x20")
    neg_long = negative[:at_neg] + b"\xd0\xff" + negative[at_neg + 1 :]
    out.append(
        (
            "seq_negative_non_minimal",
            encode_wire(neg_long, _sign(oak.seed, neg_long), note),
            "non_canonical",
        )
    )
    v2_bad_utf8 = enc.encode([2, *good[1:]]).replace(b"\xa6oakley", b"\xa6oak\xffey")
    out.append(
        (
            "version_2_with_invalid_utf8",
            encode_wire(v2_bad_utf8, _sign(oak.seed, v2_bad_utf8), note),
            "malformed",
        )
    )

    v_true = enc.encode([True, *good[1:]])
    out.append(
        ("version_is_a_bool", encode_wire(v_true, _sign(oak.seed, v_true), note), "malformed")
    )
    return out


def shape_vectors() -> list[tuple[str, bytes, bool]]:
    """Events of a known kind (not one of the key log's) whose body is one strict map that
    does not fit the kind: valid, stored, and refused by the domain with `bad_body` (§4
    step 13, §7.1). (name, wire, was): `was` is True for the vectors that were invalid
    (`bad_body`) before that rule, whose verdict changed."""
    oak = _ident("oakley")
    h1 = event_id(
        enc.encode(
            _fields(oak, 1, None, "node.founded", encode_body(oak.founding_body("Oakley", "N1")))
        )
    )
    out: list[tuple[str, bytes, bool]] = []

    def kind_case(name: str, kind: str, body: dict[str, Any], was: bool = True) -> None:
        raw = enc.encode(body)
        out.append((name, _raw(oak.seed, _fields(oak, 2, h1, kind, raw), raw), was))

    kind_case("body_field_wrong_type", "note.posted", {"text": 42})
    kind_case("body_text_over_bound", "note.posted", {"text": "x" * 2001})
    offer = {
        "offer": "o-1", "item": "eggs", "category": "dairy-eggs", "quantity": 12,
        "unit": "piece", "unit_price": 35, "available_until": T0, "area": "N1",
    }  # fmt: skip
    kind_case("offer_unknown_category", "offer.posted", {**offer, "category": "weapons"})
    kind_case("offer_quantity_zero", "offer.posted", {**offer, "quantity": 0})
    kind_case("offer_price_is_a_float", "offer.posted", {**offer, "unit_price": 0.35})
    kind_case("offer_id_with_a_space", "offer.posted", {**offer, "offer": "my offer"})
    kind_case(
        "trade_seller_not_a_slug",
        "trade.proposed",
        {"trade": "t", "seller": "Oak", "offer": "o", "quantity": 1, "unit_price": 1,
         "expires_at": T0},
    )  # fmt: skip
    kind_case("dispute_without_reason", "trade.disputed", {"buyer": "oakley", "trade": "t"})
    kind_case("offer_min_order_nil", "offer.posted", {**offer, "min_order": None})
    aid = {
        "request": "r-1", "category": "food", "urgency": "high", "needed_by": T0,
        "quantity": 1, "area": "N1", "description": "Meals", "raised_at": T0,
    }  # fmt: skip
    kind_case("aid_unknown_urgency", "aid.requested", {**aid, "urgency": "whenever"})
    kind_case("aid_description_281_characters", "aid.requested", {**aid, "description": "x" * 281})
    kind_case("aid_quantity_zero", "aid.requested", {**aid, "quantity": 0})
    kind_case(
        "aid_fulfilled_pledge_pair_of_three",
        "aid.fulfilled",
        {"request": "r-1", "pledges": [["elm", "p-1", "extra"]]},
    )
    kind_case("offer_id_41_characters", "offer.posted", {**offer, "offer": "o" * 41})
    kind_case("offer_item_81_characters", "offer.posted", {**offer, "item": "é" * 81})
    # A unit a newer node lists and this version does not (§10): the offer is stored.
    kind_case("offer_unit_not_listed", "offer.posted", {**offer, "unit": "furlong"}, was=False)
    need = {"need": "n-1", "item": "oats", "category": "produce", "quantity": 3,
            "unit": "bushel", "needed_by": T0, "area": "N1"}  # fmt: skip
    kind_case("need_unit_not_listed", "need.posted", need, was=False)
    # The pool and hours kinds (§19-20): added after the rule, so none was invalid before
    # (an older node stores them opaque, §8.1). pool.opened's shape also compares its
    # fields (§8): one supplier, max_cases not below min_cases, its largest total bounded.
    pool = {
        "pool": "flour-1", "item": "rye flour", "unit": "kilogram", "case_size": 25,
        "unit_price": 180, "closes_at": T0, "supplier": "millbrook",
    }  # fmt: skip
    kind_case("pool_case_size_zero", "pool.opened", {**pool, "case_size": 0}, was=False)
    kind_case("pool_two_suppliers", "pool.opened", {**pool, "supplier_name": "A mill"}, was=False)
    kind_case("pool_no_supplier", "pool.opened", {**pool, "supplier": ""}, was=False)
    kind_case(
        "pool_max_cases_below_min_cases",
        "pool.opened",
        {**pool, "min_cases": 3, "max_cases": 2},
        was=False,
    )
    kind_case(
        "pool_total_over_bound",
        "pool.opened",
        {**pool, "case_size": 1000, "unit_price": 10**6, "max_cases": 1001},
        was=False,
    )
    commit = {"organizer": "ashford", "pool": "flour-1", "quantity": 3}
    kind_case("pool_quantity_negative", "pool.committed", {**commit, "quantity": -1}, was=False)
    kind_case(
        "pool_tolerance_over_bound", "pool.committed", {**commit, "tolerance": 10**9 + 1},
        was=False,
    )  # fmt: skip
    kind_case(
        "pool_counted_id_of_31_bytes",
        "pool.closed",
        {"pool": "flour-1", "counted": [b"\x01" * 31]},
        was=False,
    )
    kind_case(
        "pool_counted_257_ids",
        "pool.box_fill",
        {"pool": "flour-1", "counted": [bytes([i % 256]) * 32 for i in range(257)]},
        was=False,
    )
    hours = {"transfer": "h-1", "to": "riverside", "quarters": 4}  # one fault each, not to-self
    kind_case("hours_zero_quarters", "hours.transferred", {**hours, "quarters": 0}, was=False)
    kind_case("hours_40001_quarters", "hours.transferred", {**hours, "quarters": 40_001}, was=False)
    return out


def _oversize(oak: Identity, h1: bytes) -> bytes:
    pad = MAX_WIRE_BYTES
    while True:
        body = enc.encode({"text": "x", "pad": "y" * pad})
        wire = _raw(oak.seed, _fields(oak, 2, h1, "note.posted", body), body)
        if len(wire) == MAX_WIRE_BYTES + 1:
            return wire
        pad -= len(wire) - (MAX_WIRE_BYTES + 1)


# The admission key of the ticket vectors (PROTOCOL.md §16.6): a fixed seed.
ADMISSION = nacl.signing.SigningKey(hashlib.sha256(b"coopnet test vectors: admission").digest())


def admission_vectors() -> list[tuple[str, bytes, Identity, bool]]:
    """`node.founded` of a neighborhood that is not a founder, each valid under §4, with
    whether the charter's admission key (ADMISSION) admits it (§16.6): (name, wire,
    signer, admitted). A verifier that checks tickets answers `wrong_key` for the others."""
    dee, eve = _ident("dee"), _ident("eve")

    def founded(ident: Identity, ticket: bytes | None) -> bytes:
        body = ident.founding_body("Dee", "N9", ticket)
        return seal(
            signing_key=ident.signing_key, net=NET, author=ident.author, seq=1, prev=None,
            at=T0 + 1, body=body,
        )  # fmt: skip

    def ticket(by: nacl.signing.SigningKey, net: bytes, slug: str, ident: Identity) -> bytes:
        return issue_ticket(by, net, slug, ident.public_key)

    other = nacl.signing.SigningKey(hashlib.sha256(b"coopnet test vectors: other").digest())
    return [
        ("ticket_admits", founded(dee, ticket(ADMISSION, NET, "dee", dee)), dee, True),
        ("ticket_missing", founded(dee, None), dee, False),
        ("ticket_for_another_slug", founded(eve, ticket(ADMISSION, NET, "dee", eve)), eve, False),
        ("ticket_for_another_key", founded(eve, ticket(ADMISSION, NET, "eve", dee)), eve, False),
        ("ticket_other_net", founded(dee, ticket(ADMISSION, OTHER_NET, "dee", dee)), dee, False),
        ("ticket_by_another_key", founded(dee, ticket(other, NET, "dee", dee)), dee, False),
    ]  # fmt: skip


def _valid_entry(name: str, wire: bytes, signer: Identity) -> dict[str, Any]:
    header, _, _ = _split(wire)
    fields = msgspec.msgpack.decode(header)
    return {
        "name": name,
        "valid": True,
        "net": NET.hex(),
        "wire": wire.hex(),
        "public_key": signer.public_key.hex(),
        "id": event_id(header).hex(),
        "kind": fields[7],
        "opaque": fields[7] not in KINDS,
        "author": fields[2],
        "seq": fields[4],
    }


def build_vectors() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = []
    for name, wire, signer in valid_vectors():
        assert isinstance(signer, Identity)
        vectors.append(_valid_entry(name, wire, signer))
    admission_key = bytes(ADMISSION.verify_key).hex()
    for name, wire, signer, admitted in admission_vectors():
        entry = _valid_entry(name, wire, signer)
        entry["admission"] = {"key": admission_key, "admitted": admitted}
        vectors.append(entry)
    oak = _ident("oakley")
    for name, wire, was in shape_vectors():
        entry = _valid_entry(name, wire, oak)
        entry["refused"] = "bad_body"
        if was:
            entry["was"] = {"valid": False, "error": "bad_body"}
        vectors.append(entry)
    for name, wire, code in invalid_vectors():
        vectors.append(
            {"name": name, "valid": False, "net": NET.hex(), "wire": wire.hex(), "error": code}
        )
    return vectors


def render() -> str:
    return json.dumps(build_vectors(), indent=1, ensure_ascii=False) + "\n"


def _example_charter(**changes: Any) -> dict[str, Any]:
    """The charter of the vectors: two founders with the vectors' keys, no admission key."""
    value: dict[str, Any] = {
        "name": "Riverside Federation",
        "founders": [
            {"slug": "oakley", "display_name": "Oakley", "area": "N1",
             "key": _ident("oakley").public_key.hex()},
            {"slug": "elmwood", "display_name": "Elmwood", "area": "N2",
             "key": _ident("elmwood").public_key.hex()},
        ],
        "created": "2026-12-01T00:00:00Z",
    }  # fmt: skip
    value.update(changes)
    return value


POUNDS = {"code": "GBP", "name": "Riverside pounds", "symbol": "£", "minor_units": 2}


def charter_cases() -> list[tuple[str, dict[str, Any], str]]:
    """(name, charter value, why it is refused or "" when valid), about `currency` and
    `policies.hours_limit` (§16.1)."""

    def cur(**changes: Any) -> dict[str, Any]:
        return _example_charter(currency={**POUNDS, **changes})

    def without(key: str) -> dict[str, Any]:
        return _example_charter(currency={k: v for k, v in POUNDS.items() if k != key})

    default = {"code": "CRD", "name": "credits", "symbol": "", "minor_units": 2}
    return [
        ("without_currency", _example_charter(), ""),
        ("with_currency", cur(), ""),
        ("currency_stating_the_default", _example_charter(currency=default), ""),
        ("currency_symbol_absent", without("symbol"), ""),
        ("currency_minor_units_absent", without("minor_units"), ""),
        ("currency_whole_units", cur(code="HRS", name="hours", symbol="", minor_units=0), ""),
        ("currency_at_its_bounds", cur(name="é" * 40, symbol="€" * 8, minor_units=4), ""),
        ("currency_code_absent", without("code"), "code is required"),
        ("currency_name_absent", without("name"), "name is required"),
        ("currency_code_lower_case", cur(code="gbp"), "code is three capital letters"),
        ("currency_code_of_2_letters", cur(code="GB"), "code is three capital letters"),
        ("currency_code_of_4_letters", cur(code="GBPX"), "code is three capital letters"),
        ("currency_code_with_a_newline", cur(code="GBP\n"), "code is three capital letters"),
        ("currency_name_empty", cur(name=""), "name is 1-40 characters"),
        ("currency_name_of_41_characters", cur(name="é" * 41), "name is 1-40 characters"),
        ("currency_symbol_of_9_characters", cur(symbol="€" * 9), "symbol is 0-8 characters"),
        ("currency_minor_units_5", cur(minor_units=5), "minor_units is 0-4"),
        ("currency_minor_units_negative", cur(minor_units=-1), "minor_units is 0-4"),
        ("currency_minor_units_a_fraction", cur(minor_units=2.0), "a charter holds no fractions"),
        ("currency_unknown_key", cur(rate=1), "unknown keys are refused"),
        ("currency_null", _example_charter(currency=None), "currency is an object"),
        ("currency_a_string", _example_charter(currency="GBP"), "currency is an object"),
        ("currency_control_character", cur(symbol="\x07"), "no control characters"),
        # The symbol and name rule (§16.1): an amount typed or shown with the symbol reads
        # as one number, and the name is not blank nor holds invisible characters.
        (
            "currency_symbol_of_letters",
            cur(code="KWD", name="dinars", symbol="KD", minor_units=3),
            "",
        ),
        ("currency_name_with_digits_and_brackets", cur(name="credits [2026]/"), ""),
        ("currency_symbol_a_digit", cur(symbol="1"), "a symbol holds no digit"),
        (
            "currency_symbol_an_arabic_indic_digit",
            cur(symbol="£\u0664"),
            "a symbol holds no digit of any script (Nd)",
        ),
        (
            "currency_symbol_a_superscript_digit",
            cur(symbol="\u00b2"),
            "a symbol holds no digit, also by NFKC",
        ),
        ("currency_symbol_a_hyphen_minus", cur(symbol="-"), "a symbol holds no '-'"),
        ("currency_symbol_a_minus_sign", cur(symbol="\u2212"), "a symbol holds no '\u2212'"),
        ("currency_symbol_an_en_dash", cur(symbol="\u2013"), "a symbol holds no dash (Pd)"),
        ("currency_symbol_a_plus", cur(symbol="+"), "a symbol holds no '+'"),
        ("currency_symbol_a_point", cur(symbol="£."), "a symbol holds no '.'"),
        (
            "currency_symbol_a_fullwidth_point",
            cur(symbol="\uff0e"),
            "a symbol holds no '.', also by NFKC",
        ),
        ("currency_symbol_a_comma", cur(symbol=","), "a symbol holds no ','"),
        ("currency_symbol_a_space", cur(symbol="£ "), "a symbol holds no space (Zs)"),
        ("currency_symbol_a_no_break_space", cur(symbol="\u00a0"), "a symbol holds no space (Zs)"),
        (
            "currency_symbol_a_zero_width_space",
            cur(symbol="\u200b"),
            "a symbol holds no format character (Cf)",
        ),
        (
            "currency_symbol_a_right_to_left_override",
            cur(symbol="\u202e£"),
            "a symbol holds no format character (Cf)",
        ),
        (
            "currency_symbol_a_c1_control",
            cur(symbol="\u0085"),
            "a symbol holds no control character (Cc, C1)",
        ),
        ("currency_name_blank", cur(name=" "), "a name is not blank"),
        ("currency_name_of_ideographic_spaces", cur(name="\u3000\u3000"), "a name is not blank"),
        (
            "currency_name_a_c1_control",
            cur(name="credits\u009b"),
            "a name holds no control character (Cc, C1)",
        ),
        (
            "currency_name_a_format_character",
            cur(name="credits\u202e"),
            "a name holds no format character (Cf)",
        ),
        (
            "currency_name_a_line_separator",
            cur(name="credits\u2028"),
            "a name holds no line separator (Zl)",
        ),
        # policies.hours_limit (§16.1, §20): quarter hours, 0 to 4,000,000, default 160.
        ("hours_limit_set", hours(400), ""),
        ("hours_limit_stating_the_default", hours(160), ""),
        ("hours_limit_zero", hours(0), ""),
        ("hours_limit_at_its_bound", hours(4_000_000), ""),
        ("hours_limit_over_its_bound", hours(4_000_001), "hours_limit is 0-4000000"),
        ("hours_limit_negative", hours(-4), "hours_limit is 0-4000000"),
        ("hours_limit_a_string", hours("40 h"), "hours_limit is an integer"),
        ("hours_limit_a_fraction", hours(40.5), "a charter holds no fractions"),
    ]


def hours(limit: Any) -> dict[str, Any]:
    """The example charter with `policies.hours_limit` set to `limit` (§16.1)."""
    return _example_charter(policies={"hours_limit": limit})


def build_charters() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, value, why in charter_cases():
        text = _escape_invisible(json.dumps(value, indent=2, ensure_ascii=False))
        entry: dict[str, Any] = {"name": name, "text": text, "valid": not why}
        try:
            charter, net = parse_charter(text.encode())
        except CharterError:
            assert why, f"charter vector {name} is refused"
            entry["why"] = why
        else:
            assert not why, f"charter vector {name} is accepted"
            entry["canonical"] = canonical_bytes(json.loads(text)).decode()
            entry["net"] = net.hex()
            entry["currency"] = msgspec.to_builtins(charter.currency_or_default())
            entry["hours_limit"] = charter.policies.hours_limit
        out.append(entry)
    return out


def _escape_invisible(text: str) -> str:
    """JSON text with every space, separator, control or format character other than " "
    and the newlines of its layout written as a \\uXXXX escape: the same value, and a
    vector file that shows what its charters hold (U+202E, U+2028 would not show)."""
    return "".join(
        json.dumps(c)[1:-1] if c not in " \n" and unicodedata.category(c)[0] in "CZ" else c
        for c in text
    )


def render_charters() -> str:
    return json.dumps(build_charters(), indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args()
    files = ((OUT, render()), (CHARTERS_OUT, render_charters()))
    if args.check:
        stale = [p for p, text in files if not p.exists() or p.read_text(encoding="utf-8") != text]
        for path in stale:
            print(f"{path} is out of date: run python scripts/make_vectors.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in files:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {len(json.loads(text))} vectors to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
