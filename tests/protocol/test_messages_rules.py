"""What the key log, the ledger, admission tickets and membership say when they refuse
(docs/PROTOCOL.md §5, §12, §16), written out whole: an operator reads these in the node's
refusal log and the observer's audit, and each names the author, the seq and the keys."""

from __future__ import annotations

import hashlib

import pytest

from coopnet.protocol import InvalidEvent, NotePosted, check_key, found_key_state
from coopnet.protocol.admission import check_ticket, ticket_message
from coopnet.protocol.history import fold_keys
from coopnet.protocol.identity import Identity
from coopnet.protocol.ledger import Ledger
from coopnet.protocol.membership import Standing, is_member, position_step
from tests.protocol.test_history import FOLLOWING, OAK, _event, _history

NET = hashlib.sha256(b"history").digest()[:16]


def _refused(call: object, *args: object) -> InvalidEvent:
    assert callable(call)
    with pytest.raises(InvalidEvent) as caught:
        call(*args)
    return caught.value


def test_a_wrong_key_names_the_event_and_both_keys_to_16_hex_digits() -> None:
    _, events = _history(1)
    thief = Identity.from_passphrase("oakley", "thief")
    refusal = _refused(
        check_key, fold_keys(events), _event(thief, 3, events[-1].id, NotePosted(text="x"))
    )
    assert refusal.code == "wrong_key"
    assert refusal.message == (
        f"oakley seq 3: signed by {thief.public_key.hex()[:16]}…, "
        f"current key is {OAK.public_key.hex()[:16]}…"
    )


def test_a_founding_signed_by_another_key_than_it_names_says_so() -> None:
    other = Identity.from_passphrase("oakley", "other")
    refusal = _refused(found_key_state, _event(OAK, 1, None, other.founding_body("Oakley", "N1")))
    assert (refusal.code, refusal.message) == (
        "wrong_key",
        "oakley: node.founded must be signed by the key it names",
    )


def test_a_second_founding_says_founding_is_for_seq_1() -> None:
    _, events = _history(1)
    refusal = _refused(
        check_key, fold_keys(events), _event(OAK, 3, events[-1].id, OAK.founding_body("O", "N1"))
    )
    assert (refusal.code, refusal.message) == (
        "not_authorized",
        "oakley: node.founded is allowed only at seq 1",
    )


def test_a_rotation_signed_by_the_old_key_says_which_key_must_sign() -> None:
    _, events = _history(1)
    _, body = OAK.rotated(FOLLOWING)
    refusal = _refused(check_key, fold_keys(events), _event(OAK, 3, events[-1].id, body))
    assert (refusal.code, refusal.message) == (
        "wrong_key",
        "oakley: a rotation must be signed by the key it reveals",
    )


def test_a_rotation_to_a_key_never_committed_says_so() -> None:
    _, events = _history(1)
    stranger = Identity.from_passphrase("oakley", "stranger")
    stranger_next, body = stranger.rotated(FOLLOWING)
    refusal = _refused(check_key, fold_keys(events), _event(stranger_next, 3, events[-1].id, body))
    assert (refusal.code, refusal.message) == (
        "wrong_key",
        "oakley: revealed key does not match the committed digest",
    )


def test_the_key_state_names_its_author_from_founding_and_after_a_rotation() -> None:
    _, events = _history(1)
    assert found_key_state(events[0]).author == "oakley"
    after, body = OAK.rotated(FOLLOWING)
    assert check_key(fold_keys(events), _event(after, 3, events[-1].id, body)).author == "oakley"


def test_a_settlement_of_a_negative_amount_names_it() -> None:
    with pytest.raises(ValueError) as caught:
        Ledger().settle("elm", "oak", -1)
    assert str(caught.value) == "a settlement moves a non-negative integer, not -1"


def test_a_balance_is_the_neighborhoods_own_and_zero_for_one_never_seen() -> None:
    ledger = Ledger([("elm", "oak", 250)])
    assert (ledger.balance_of("oak"), ledger.balance_of("elm")) == (250, -250)
    assert ledger.balance_of("ash") == 0


def test_a_ticket_of_the_wrong_lengths_says_which_lengths() -> None:
    with pytest.raises(ValueError) as caught:
        ticket_message(NET, "dee", b"\x00" * 31)
    assert str(caught.value) == "net is 16 bytes and key 32 bytes"


def test_a_founding_without_a_ticket_says_who_may_found_a_log() -> None:
    refusal = _refused(
        lambda: check_ticket(b"\x01" * 32, net=NET, slug="dee", key=b"\x02" * 32, ticket=None)
    )
    assert (refusal.code, refusal.message) == (
        "wrong_key",
        "dee: node.founded carries no admission ticket, and only a key the federation's "
        "operator admitted may found a log that is not a founder's",
    )


def test_a_body_that_is_no_statement_on_an_application_is_a_programming_error() -> None:
    with pytest.raises(TypeError) as caught:
        position_step(None, "elm", NotePosted(text="hi"))
    assert str(caught.value) == "note.posted is not a statement on an application"


STATUSES = {
    "founder": True,
    "admitted": True,
    "applicant": False,
    "retired": False,
    "outsider": False,
}


@pytest.mark.parametrize(("status", "member"), STATUSES.items())
def test_only_founders_and_the_admitted_are_members(status: str, member: bool) -> None:
    standings = {"elm": Standing(slug="elm", status=status)}  # type: ignore[arg-type]
    assert is_member(standings, "elm") is member
    assert is_member(standings, "oak") is False  # no standing at all


def test_an_invalid_event_carries_its_message_as_its_argument() -> None:
    refusal = InvalidEvent("the reason")
    assert refusal.args == ("the reason",)
    assert (refusal.code, refusal.message, str(refusal)) == (
        "invalid",
        "the reason",
        "invalid: the reason",
    )
