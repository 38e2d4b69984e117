"""Values a rule gives when it has nothing to say (docs/PROTOCOL.md §6.1, §8.1, §13.1,
§16.1): a verdict carries no fork or gap details it did not find, an absent optional charter
key reads as its documented default, an opaque body names no kind of its own, and a phone
number's pieces are joined by at most three separators."""

from __future__ import annotations

import json

from coopnet.protocol.body import Opaque, kind_of
from coopnet.protocol.charter import parse_charter
from coopnet.protocol.history import Classification, Head, Verdict, classify
from coopnet.protocol.personal_data import personal_data_in

ID = b"\x01" * 32


def _nothing_held(seq: int) -> bytes | None:
    return None


def test_a_next_event_carries_no_fork_or_gap_details() -> None:
    got = classify(Head(1, ID), 2, b"\x02" * 32, ID, _nothing_held)
    assert got == Classification(verdict=Verdict.NEXT, fork_seq=0, held_id=b"", missing=(0, 0))


def test_a_stale_event_carries_no_fork_or_gap_details() -> None:
    got = classify(Head(5, ID), 3, b"\x02" * 32, ID, _nothing_held)
    assert got == Classification(verdict=Verdict.STALE, fork_seq=0, held_id=b"", missing=(0, 0))


def test_a_gap_names_its_range_and_no_fork() -> None:
    got = classify(Head(1, ID), 4, b"\x02" * 32, ID, _nothing_held)
    assert got == Classification(verdict=Verdict.GAP, fork_seq=0, held_id=b"", missing=(2, 3))


def test_a_charter_without_created_reads_as_an_empty_created() -> None:
    founder = {"slug": "oak", "display_name": "Oak", "area": "N1", "key": "a" * 64}
    charter, _ = parse_charter(json.dumps({"name": "R", "founders": [founder]}).encode())
    assert (charter.created, charter.admission_key, charter.version) == ("", "", 1)


def test_an_opaque_body_names_no_kind_of_its_own() -> None:
    # The envelope's kind names an opaque event (§8.1); the body claims none.
    assert kind_of(Opaque(raw=b"\x80")) == ""
    assert kind_of(Opaque) == ""


def test_three_separators_join_the_pieces_of_a_phone_number_and_four_do_not() -> None:
    # §13.1 step 4: "digits with at most three of the separators ... between two of them".
    assert personal_data_in("ring 0612 - 345678") == "a phone number"  # " - ": three
    assert personal_data_in("ring 0612 -- 345678") is None  # " -- ": four, two short runs
