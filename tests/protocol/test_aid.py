"""Mutual aid rules (exhaustive tables, escalation, personal data, ranking), pure."""

from __future__ import annotations

import hashlib
import itertools
import random

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coopnet.protocol import InvalidEvent
from coopnet.protocol.aid import (
    ESCALATION_S,
    PLEDGE_TABLE,
    REQUEST_TABLE,
    AidFulfilled,
    AidPledgeAccepted,
    AidPledged,
    AidPledgeWithdrawn,
    AidRequested,
    AidStatement,
    AidWithdrawn,
    area_distance,
    check_personal_data,
    due_for_escalation,
    fold_request,
    personal_data_in,
    pledge_allowed,
    rank_key,
)
from coopnet.protocol.body import Body
from tests.protocol.shared import path_to

T0 = 1_800_000_000_000
REQUEST = AidRequested(
    request="r1", category="food", urgency="high", needed_by=T0 + 3_600_000, quantity=4,
    area="N1", description="Hot meals for a family", raised_at=T0, pledged_locally=1,
)  # fmt: skip
_ids = itertools.count()


def st_(author: str, seq: int, body: Body) -> AidStatement:
    sid = hashlib.sha256(f"{author}{seq}{body.kind}{next(_ids)}".encode()).digest()
    return AidStatement(id=sid, author=author, seq=seq, at=T0 + seq, body=body)


def pledged(pledger: str = "elm", pledge: str = "p1", quantity: int = 3) -> AidPledged:
    return AidPledged(requester="oak", request="r1", pledge=pledge, what="meals", quantity=quantity)


REQUESTER_BODIES: dict[str, Body] = {
    "aid.requested": REQUEST,
    "aid.pledge_accepted": AidPledgeAccepted(request="r1", pledger="elm", pledge="p1", quantity=3),
    "aid.fulfilled": AidFulfilled(request="r1", pledges=[("elm", "p1")]),
    "aid.withdrawn": AidWithdrawn(request="r1"),
}
PLEDGER_BODIES: dict[str, Body] = {
    "aid.pledged": pledged(),
    "aid.pledge_withdrawn": AidPledgeWithdrawn(requester="oak", request="r1", pledge="p1"),
}


@pytest.mark.parametrize("state", sorted(REQUEST_TABLE))
@pytest.mark.parametrize("kind", sorted(REQUESTER_BODIES))
def test_request_table_every_state_and_event(state: str, kind: str) -> None:
    pledge = st_("elm", 1, pledged())  # so that an acceptance has something to accept
    path = path_to(REQUEST_TABLE, state)
    own = [st_("oak", i + 1, REQUESTER_BODIES[k]) for i, k in enumerate(path)]
    before = fold_request("oak", "r1", [pledge, *own])
    nxt = st_("oak", len(own) + 1, REQUESTER_BODIES[kind])
    after = fold_request("oak", "r1", [pledge, *own, nxt])
    expected = REQUEST_TABLE[state].get(kind)
    if expected is None or (kind == "aid.pledge_accepted" and "aid.pledge_accepted" in path):
        assert after.requester_state == before.requester_state
        assert (nxt.id, "not_authorized") in after.refused
    else:
        assert after.requester_state == expected
        assert after.refused == before.refused


@pytest.mark.parametrize("state", sorted(PLEDGE_TABLE))
@pytest.mark.parametrize("kind", sorted(PLEDGER_BODIES))
def test_pledge_table_every_state_and_event(state: str, kind: str) -> None:
    path = path_to(PLEDGE_TABLE, state)
    mine = [st_("elm", i + 1, PLEDGER_BODIES[k]) for i, k in enumerate(path)]
    nxt = st_("elm", len(mine) + 1, PLEDGER_BODIES[kind])
    view = fold_request("oak", "r1", [st_("oak", 1, REQUEST), *mine, nxt])
    expected = PLEDGE_TABLE[state].get(kind)
    if expected is None:
        assert (nxt.id, "not_authorized") in view.refused
    else:
        assert [p.state for p in view.pledges] == [expected]


def test_states_as_pledges_come_in() -> None:
    req = st_("oak", 1, REQUEST)  # quantity 4, one met locally
    assert fold_request("oak", "r1", [req]).state_at(T0) == "partly_pledged"
    full = fold_request("oak", "r1", [req, st_("elm", 1, pledged(quantity=3))])
    assert (full.pledged, full.state_at(T0)) == (4, "pledged")
    assert full.state_at(T0 + 3_600_001) == "expired"
    gone = fold_request(
        "oak",
        "r1",
        [
            req,
            st_("elm", 1, pledged(quantity=3)),
            st_("elm", 2, PLEDGER_BODIES["aid.pledge_withdrawn"]),
        ],
    )
    assert gone.state_at(T0) == "partly_pledged"


def test_acceptance_is_bounded_by_the_need() -> None:
    """Over-pledging: more is pledged than needed; the requester can take up only the need."""
    req = st_("oak", 1, REQUEST)  # 4 needed, 1 met locally: 3 to take up
    p1, p2 = st_("elm", 1, pledged("elm", "p1", 3)), st_("ash", 1, pledged("ash", "p2", 3))
    a1 = st_("oak", 2, AidPledgeAccepted(request="r1", pledger="elm", pledge="p1", quantity=3))
    a2 = st_("oak", 3, AidPledgeAccepted(request="r1", pledger="ash", pledge="p2", quantity=3))
    view = fold_request("oak", "r1", [req, p1, p2, a1, a2])
    assert view.accepted == 4
    assert view.refused == [(a2.id, "not_authorized")]
    wrong_qty = st_(
        "oak", 2, AidPledgeAccepted(request="r1", pledger="elm", pledge="p1", quantity=2)
    )
    assert (wrong_qty.id, "not_authorized") in fold_request(
        "oak", "r1", [req, p1, wrong_qty]
    ).refused


def test_a_requester_cannot_pledge_to_its_own_request() -> None:
    own = st_("oak", 2, pledged())
    view = fold_request("oak", "r1", [st_("oak", 1, REQUEST), own])
    assert (own.id, "not_authorized") in view.refused
    assert pledge_allowed(view, "oak", T0) == "not_authorized"


def test_pledge_allowed() -> None:
    req = st_("oak", 1, REQUEST)
    assert pledge_allowed(fold_request("oak", "r1", [req]), "elm", T0) is None
    full = fold_request("oak", "r1", [req, st_("ash", 1, pledged("ash", "p9", 3))])
    assert pledge_allowed(full, "elm", T0) == "fully_pledged"
    closed = fold_request("oak", "r1", [req, st_("oak", 2, AidWithdrawn(request="r1"))])
    assert pledge_allowed(closed, "elm", T0) == "request_closed"
    assert (
        pledge_allowed(fold_request("oak", "r1", [req]), "elm", T0 + 3_600_001) == "request_closed"
    )


@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=150)
def test_state_does_not_depend_on_arrival_order(seed: int) -> None:
    statements = [
        st_("oak", 1, REQUEST),
        st_("elm", 1, pledged("elm", "p1", 2)),
        st_("ash", 1, pledged("ash", "p2", 2)),
        st_("ash", 2, AidPledgeWithdrawn(requester="oak", request="r1", pledge="p2")),
        st_("oak", 2, AidPledgeAccepted(request="r1", pledger="elm", pledge="p1", quantity=2)),
        st_("oak", 3, AidFulfilled(request="r1", pledges=[("elm", "p1")])),
    ]
    first = fold_request("oak", "r1", statements)
    shuffled = list(statements)
    random.Random(seed).shuffle(shuffled)
    again = fold_request("oak", "r1", shuffled)
    assert again.state_at(T0) == first.state_at(T0) == "fulfilled"
    assert [(p.pledger, p.state, p.accepted) for p in again.pledges] == [
        (p.pledger, p.state, p.accepted) for p in first.pledges
    ]


@pytest.mark.parametrize("urgency", ["critical", "high", "normal", "low"])
def test_escalation_at_each_urgency(urgency: str) -> None:
    window = ESCALATION_S[urgency]
    if window is None:
        assert not due_for_escalation(urgency, T0, T0 + 10**12, 0, 1)
        return
    edge = T0 + window * 1000
    assert not due_for_escalation(urgency, T0, edge - 1, 0, 1)
    assert due_for_escalation(urgency, T0, edge, 0, 1)
    assert due_for_escalation(urgency, T0, edge, 1, 2)  # partly pledged: still short
    assert not due_for_escalation(urgency, T0, edge, 2, 2)  # met locally: never escalates


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("call me on +44 20 7946 0958", "a phone number"),
        ("ring 0612345678 after six", "a phone number"),
        ("write to ana.g@example.org", "an e-mail address"),
        ("Hot meals for 4 people, by 6pm, near the park", None),
        ("Need 12 sandbags before 2026", None),
    ],
)
def test_personal_data_is_detected(text: str, found: str | None) -> None:
    assert personal_data_in(text) == found


def test_ranking_by_urgency_then_needed_by_then_distance() -> None:
    rows = [
        ("normal", T0, "N1"),
        ("critical", T0 + 5, "N9"),
        ("critical", T0 + 5, "N2"),
        ("critical", T0 + 1, "N9"),
        ("high", T0, "N1"),
    ]
    ranked = sorted(rows, key=lambda r: rank_key(r[0], r[1], area_distance("N1", r[2], ["N2"])))
    assert ranked == [
        ("critical", T0 + 1, "N9"),
        ("critical", T0 + 5, "N2"),
        ("critical", T0 + 5, "N9"),
        ("high", T0, "N1"),
        ("normal", T0, "N1"),
    ]


def test_the_personal_data_rule_holds_for_received_requests_and_pledges() -> None:
    """PROTOCOL.md §13: the rule a node applies before signing is the rule it applies to
    what it receives: a request's description and a pledge's text carry no personal data."""
    check_personal_data(REQUEST)
    check_personal_data(pledged())
    leaky_request = msgspec.structs.replace(REQUEST, description="call me at +44 20 7946 0958")
    leaky_pledge = msgspec.structs.replace(pledged(), what="mail ann@example.org")
    for body, found in ((leaky_request, "a phone number"), (leaky_pledge, "an e-mail address")):
        with pytest.raises(InvalidEvent) as caught:
            check_personal_data(body)
        assert caught.value.code == "personal_data"
        assert found in caught.value.message
    # Other kinds carry no such text: nothing to check.
    check_personal_data(REQUESTER_BODIES["aid.withdrawn"])
