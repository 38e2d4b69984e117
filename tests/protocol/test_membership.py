"""Membership by consent (docs/PROTOCOL.md §16): the position table, the admission rule, and
that arrival order never changes the answer."""

from __future__ import annotations

import contextlib
import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coopnet.protocol.body import Body
from coopnet.protocol.errors import NotAuthorized
from coopnet.protocol.membership import (
    POSITION_TABLE,
    VOTE_KINDS,
    Application,
    MembershipConsented,
    MembershipObjected,
    MembershipObjectionWithdrawn,
    Position,
    Standing,
    consents_needed,
    decide,
    position_step,
)

FOUNDERS = ("ana", "ben", "cai")


def app_id(slug: str) -> bytes:
    return hashlib.sha256(f"application of {slug}".encode()).digest()


def application(slug: str) -> Application:
    return Application(
        applicant=slug, id=app_id(slug), display_name=slug.title(), area="N9", about="",
        reason="we grow potatoes", at=0,
    )  # fmt: skip


def consent(slug: str) -> MembershipConsented:
    return MembershipConsented(applicant=slug, application=app_id(slug))


def objection(slug: str) -> MembershipObjected:
    return MembershipObjected(applicant=slug, application=app_id(slug), reason="not yet")


def withdrawal(slug: str) -> MembershipObjectionWithdrawn:
    return MembershipObjectionWithdrawn(applicant=slug, application=app_id(slug))


def fold(statements: list[tuple[str, Body]]) -> list[Position]:
    """Positions after statements given in arrival order (each voter's in its log order);
    refused statements are skipped, as a node records them as domain rejections."""
    held: dict[tuple[str, str, bytes], Position] = {}
    for voter, body in statements:
        assert isinstance(
            body, MembershipConsented | MembershipObjected | MembershipObjectionWithdrawn
        )
        key = (voter, body.applicant, body.application)
        with contextlib.suppress(NotAuthorized):
            held[key] = position_step(held.get(key), voter, body)
    return list(held.values())


def standing(
    statements: list[tuple[str, Body]],
    applicants: tuple[str, ...] = ("dee",),
    retired: tuple[str, ...] = (),
    quorum: int = 50,
) -> dict[str, Standing]:
    return decide(
        founders=FOUNDERS,
        applications={a: application(a) for a in applicants},
        positions=fold(statements),
        retired=retired,
        quorum_percent=quorum,
    )


# PROTOCOL.md §16.3, the position table, typed cell by cell (never read from
# POSITION_TABLE); a missing cell is the spec's *not_authorized*.
SPEC_POSITION: dict[str, dict[str, str]] = {
    "none": {"membership.consented": "consent", "membership.objected": "object"},
    "consent": {"membership.consented": "consent", "membership.objected": "object"},
    "object": {
        "membership.consented": "consent",
        "membership.objected": "object",
        "membership.objection_withdrawn": "none",
    },
}
STATEMENT_KINDS = (
    "membership.consented",
    "membership.objected",
    "membership.objection_withdrawn",
)
MAKE = {
    "membership.consented": consent,
    "membership.objected": objection,
    "membership.objection_withdrawn": withdrawal,
}
# The statement that takes a voter from "none" to each position (the spec's table).
TO_POSITION = {"none": [], "consent": ["membership.consented"], "object": ["membership.objected"]}


def test_the_position_table_is_the_specs_cell_by_cell() -> None:
    """PROTOCOL.md §16.3: no cell added, removed or changed."""
    assert POSITION_TABLE == SPEC_POSITION
    assert set(VOTE_KINDS) == set(STATEMENT_KINDS)


@pytest.mark.parametrize("stance", list(SPEC_POSITION))
@pytest.mark.parametrize("kind", STATEMENT_KINDS)
def test_every_cell_of_the_position_table(stance: str, kind: str) -> None:
    """PROTOCOL.md §16.3: a member's statements in its own log order, the latest standing;
    a withdrawal with no objection to withdraw is refused `not_authorized`, saying who
    has none against whom."""
    current: Position | None = None
    for k in TO_POSITION[stance]:
        current = position_step(current, "ana", MAKE[k]("dee"))
    assert (current.stance if current else "none") == stance
    expected = SPEC_POSITION[stance].get(kind)
    if expected is None:
        with pytest.raises(NotAuthorized) as caught:
            position_step(current, "ana", MAKE[kind]("dee"))
        assert caught.value.code == "not_authorized"
        assert "ana has no objection to dee to withdraw" in caught.value.message
    else:
        after = position_step(current, "ana", MAKE[kind]("dee"))
        assert (after.voter, after.applicant, after.application) == ("ana", "dee", app_id("dee"))
        assert after.stance == expected
        assert after.reason == ("not yet" if kind == "membership.objected" else "")


def test_withdrawing_an_objection_is_not_a_consent() -> None:
    """PROTOCOL.md §16.3: object → `membership.objection_withdrawn` → none. With ben's
    consent alone dee lacks the two of three it needs."""
    votes: list[tuple[str, Body]] = [
        ("ana", objection("dee")), ("ana", withdrawal("dee")), ("ben", consent("dee")),
    ]  # fmt: skip
    assert [p.stance for p in fold(votes) if p.voter == "ana"] == ["none"]
    result = standing(votes)["dee"]
    assert (result.status, result.consents, result.objections) == ("applicant", ("ben",), ())


def test_a_member_who_consented_can_still_object() -> None:
    """PROTOCOL.md §16.3: consent → `membership.objected` → object, and it blocks."""
    votes: list[tuple[str, Body]] = [
        ("ana", consent("dee")), ("ben", consent("dee")), ("ana", objection("dee")),
    ]  # fmt: skip
    result = standing(votes)["dee"]
    assert (result.status, result.consents, result.objections) == ("applicant", ("ben",), ("ana",))
    # And a consent may follow again: the latest statement stands.
    assert standing([*votes, ("ana", consent("dee"))])["dee"].status == "admitted"


def test_a_withdrawal_without_an_objection_changes_nothing() -> None:
    """PROTOCOL.md §16.3: none or consent → `membership.objection_withdrawn` is
    *not_authorized*; a consent stays a consent."""
    votes: list[tuple[str, Body]] = [
        ("ana", consent("dee")), ("ana", withdrawal("dee")), ("ben", consent("dee")),
    ]  # fmt: skip
    assert standing(votes)["dee"].status == "admitted"
    with pytest.raises(NotAuthorized):
        position_step(position_step(None, "ana", consent("dee")), "ana", withdrawal("dee"))


def test_answering_ones_own_application_is_refused() -> None:
    """PROTOCOL.md §16.3: answering one's own application is `not_authorized`."""
    for kind in STATEMENT_KINDS:
        with pytest.raises(NotAuthorized) as caught:
            position_step(None, "dee", MAKE[kind]("dee"))
        assert "dee cannot answer its own application" in caught.value.message


@pytest.mark.parametrize(
    ("members", "percent", "needed"),
    [(1, 50, 1), (2, 50, 2), (3, 50, 2), (4, 50, 3), (5, 50, 3), (3, 0, 1), (3, 100, 3),
     (10, 66, 7), (0, 50, 1)],
)  # fmt: skip
def test_consents_needed(members: int, percent: int, needed: int) -> None:
    assert consents_needed(members, percent) == needed


def test_a_majority_of_consents_admits() -> None:
    assert standing([("ana", consent("dee"))])["dee"].status == "applicant"
    s = standing([("ana", consent("dee")), ("ben", consent("dee"))])["dee"]
    assert s.status == "admitted"
    assert s.consents == ("ana", "ben")


def test_a_standing_objection_blocks_until_withdrawn() -> None:
    votes: list[tuple[str, Body]] = [
        ("ana", consent("dee")), ("ben", consent("dee")), ("cai", objection("dee")),
    ]  # fmt: skip
    blocked = standing(votes)["dee"]
    assert blocked.status == "applicant"
    assert blocked.objections == ("cai",)
    assert standing([*votes, ("cai", withdrawal("dee"))])["dee"].status == "admitted"
    # Changing one's mind to consent also lifts the objection.
    assert standing([*votes, ("cai", consent("dee"))])["dee"].status == "admitted"


def test_outsiders_do_not_count_until_they_are_members() -> None:
    # eve's consent counts only once eve is admitted; eve needs ana and ben.
    votes: list[tuple[str, Body]] = [("ana", consent("fay")), ("eve", consent("fay"))]
    assert standing(votes, ("eve", "fay"))["fay"].status == "applicant"
    votes += [("ana", consent("eve")), ("ben", consent("eve"))]
    result = standing(votes, ("eve", "fay"))
    assert result["eve"].status == "admitted"
    # Four members now: fay needs 3 of them; it has ana and eve.
    assert result["fay"].status == "applicant"
    assert result["fay"].needed == 3
    votes.append(("cai", consent("fay")))
    assert standing(votes, ("eve", "fay"))["fay"].status == "admitted"


def test_an_outsider_objection_does_not_block() -> None:
    votes: list[tuple[str, Body]] = [
        ("ana", consent("dee")), ("ben", consent("dee")), ("zed", objection("dee")),
    ]  # fmt: skip
    assert standing(votes)["dee"].status == "admitted"


def test_a_retired_founder_no_longer_counts() -> None:
    votes: list[tuple[str, Body]] = [("ana", consent("dee")), ("ben", consent("dee"))]
    result = standing(votes, retired=("ben",))
    assert result["ben"].status == "retired"
    # Two members left (ana, cai): both must consent.
    assert result["dee"].status == "applicant"
    assert standing([*votes, ("cai", consent("dee"))], retired=("ben",))["dee"].status == (
        "admitted"
    )


def test_answers_to_another_application_do_not_count() -> None:
    other = MembershipConsented(applicant="dee", application=hashlib.sha256(b"x").digest())
    assert standing([("ana", other), ("ben", other)])["dee"].status == "applicant"


def test_founders_need_no_admission() -> None:
    result = standing([("ana", objection("cai"))], applicants=("cai",))
    assert result["cai"].status == "founder"


def test_a_neighborhood_admitted_later_cannot_undo_an_admission() -> None:
    """PROTOCOL.md §16.4 step 3: an applicant admitted in a round is judged by the members
    of that round only. With quorum 0 one consent admits: dee in round 1 (ana), eve in round
    2 (dee); eve's objection to dee does not count, and dee's standing names its judges."""
    votes: list[tuple[str, Body]] = [
        ("ana", consent("dee")), ("dee", consent("eve")), ("eve", objection("dee")),
    ]  # fmt: skip
    result = standing(votes, ("dee", "eve"), quorum=0)
    assert result["dee"] == Standing(slug="dee", status="admitted", consents=("ana",), needed=1)
    assert result["eve"] == Standing(slug="eve", status="admitted", consents=("dee",), needed=1)
    # Admitted in the same round, a neighborhood is not a judge of the other either.
    votes = [("ana", consent("dee")), ("ben", consent("eve")), ("eve", objection("dee"))]
    result = standing(votes, ("dee", "eve"), quorum=0)
    assert result["dee"] == Standing(slug="dee", status="admitted", consents=("ana",), needed=1)


def test_an_objection_heard_after_admission_makes_an_applicant_again() -> None:
    """PROTOCOL.md §16.4: a standing objection by a member of the deciding round blocks
    whenever it is heard, until it is withdrawn."""
    admitted: list[tuple[str, Body]] = [("ana", consent("dee")), ("ben", consent("dee"))]
    assert standing(admitted)["dee"].status == "admitted"
    objected = [*admitted, ("cai", objection("dee"))]
    assert standing(objected)["dee"] == Standing(
        slug="dee", status="applicant", consents=("ana", "ben"), objections=("cai",), needed=2
    )
    assert standing([*objected, ("cai", withdrawal("dee"))])["dee"].status == "admitted"


def test_a_retired_members_objection_stops_counting() -> None:
    """PROTOCOL.md §16.5: once retired, a member's consents and objections stop counting;
    two members left, both consenting, admit."""
    votes: list[tuple[str, Body]] = [
        ("ana", consent("dee")), ("ben", consent("dee")), ("cai", objection("dee")),
    ]  # fmt: skip
    assert standing(votes)["dee"].status == "applicant"
    assert standing(votes, retired=("cai",))["dee"] == Standing(
        slug="dee", status="admitted", consents=("ana", "ben"), needed=2
    )


def test_a_retired_applicant_or_member_is_retired() -> None:
    """PROTOCOL.md §16.4-16.5: an applicant that retired is not admitted, whatever its
    consents; an admitted member that retired leaves the members."""
    votes: list[tuple[str, Body]] = [
        ("ana", consent("dee")), ("ben", consent("dee")), ("dee", consent("eve")),
        ("ana", consent("eve")),
    ]  # fmt: skip
    result = standing(votes, ("dee", "eve"), retired=("dee",))
    assert result["dee"].status == "retired"
    # Without dee, eve has ana of the three founders: it needs two.
    assert (result["eve"].status, result["eve"].consents) == ("applicant", ("ana",))


def test_statements_on_a_founder_have_no_effect() -> None:
    """PROTOCOL.md §16.2: a founder needs no admission; statements on it have no effect
    (coopnet refuses them `not_authorized`)."""
    with pytest.raises(NotAuthorized) as caught:
        position_step(None, "ana", objection("cai"), founders=FOUNDERS)
    assert "cai is a founder" in caught.value.message
    result = standing([("ana", objection("cai")), ("ben", objection("cai"))], applicants=("cai",))
    assert result["cai"].status == "founder"


STATEMENT = st.tuples(
    st.sampled_from([*FOUNDERS, "dee", "eve", "fay"]),
    st.sampled_from(["consent", "object", "withdraw"]),
    st.sampled_from(["dee", "eve", "fay"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(STATEMENT, max_size=30), st.randoms(use_true_random=False),
       st.sampled_from([0, 34, 50, 100]))  # fmt: skip
def test_the_answer_does_not_depend_on_arrival_order(
    raw: list[tuple[str, str, str]], rnd: random.Random, quorum: int
) -> None:
    make = {"consent": consent, "object": objection, "withdraw": withdrawal}
    statements: list[tuple[str, Body]] = [(v, make[what](a)) for v, what, a in raw]
    # Another arrival order that keeps each voter's own log order (§16.3).
    queues = {v: [s for s in statements if s[0] == v] for v, _ in statements}
    shuffled: list[tuple[str, Body]] = []
    while any(queues.values()):
        voter = rnd.choice(sorted(v for v, q in queues.items() if q))
        shuffled.append(queues[voter].pop(0))
    apps = ("dee", "eve", "fay")
    assert standing(statements, apps, quorum=quorum) == standing(shuffled, apps, quorum=quorum)


@settings(max_examples=200, deadline=None)
@given(st.lists(STATEMENT, max_size=30))
def test_admitted_applicants_meet_the_rule(raw: list[tuple[str, str, str]]) -> None:
    make = {"consent": consent, "object": objection, "withdraw": withdrawal}
    result = standing([(v, make[w](a)) for v, w, a in raw], ("dee", "eve", "fay"))
    members = {s for s, v in result.items() if v.status in ("founder", "admitted")}
    for s in result.values():
        if s.status == "admitted":
            assert len(set(s.consents) & members) >= 2  # at least a majority of 3 founders
            assert not s.objections
