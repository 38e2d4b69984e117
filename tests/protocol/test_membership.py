"""Membership by consent (docs/PROTOCOL.md §16): the position table, the admission rule, and
that arrival order never changes the answer."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coopnet.protocol.body import Body
from coopnet.protocol.errors import NotAuthorized
from coopnet.protocol.membership import (
    POSITION_TABLE,
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


@pytest.mark.parametrize(
    ("stance", "kind"),
    list(
        itertools.product(
            POSITION_TABLE,
            ["membership.consented", "membership.objected", "membership.objection_withdrawn"],
        )
    ),
)
def test_every_cell_of_the_position_table(stance: str, kind: str) -> None:
    body = {"membership.consented": consent, "membership.objected": objection,
            "membership.objection_withdrawn": withdrawal}[kind]("dee")  # fmt: skip
    current = None
    if stance != "none":
        current = Position(voter="ana", applicant="dee", application=app_id("dee"), stance=stance)  # type: ignore[arg-type]
    expected = POSITION_TABLE[stance].get(kind)  # type: ignore[index]
    if expected is None:
        with pytest.raises(NotAuthorized):
            position_step(current, "ana", body)
    else:
        after = position_step(current, "ana", body)
        assert after.stance == expected
        assert after.reason == ("not yet" if kind == "membership.objected" else "")


def test_answering_ones_own_application_is_refused() -> None:
    with pytest.raises(NotAuthorized):
        position_step(None, "dee", consent("dee"))


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
