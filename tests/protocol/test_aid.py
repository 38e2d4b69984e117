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


# PROTOCOL.md §13, "Requester": the spec's table row by row, never read from REQUEST_TABLE.
# A state the table names only as a result (fulfilled, withdrawn) has no row there: the
# request is closed and every statement of the requester about it is refused.
SPEC_REQUEST: dict[str, dict[str, str]] = {
    "none": {"aid.requested": "open"},
    "open": {
        "aid.pledge_accepted": "open",
        "aid.fulfilled": "fulfilled",
        "aid.withdrawn": "withdrawn",
    },
    "fulfilled": {},
    "withdrawn": {},
}
# PROTOCOL.md §13, "Pledger": each pledger's own pledge.
SPEC_PLEDGE: dict[str, dict[str, str]] = {
    "none": {"aid.pledged": "pledged"},
    "pledged": {"aid.pledge_withdrawn": "withdrawn"},
    "withdrawn": {},
}
# PROTOCOL.md §13, "Local first": critical 15 minutes, high 2 hours, normal 24 hours, low
# never (seconds).
SPEC_ESCALATION_S: dict[str, int | None] = {
    "critical": 15 * 60,
    "high": 2 * 60 * 60,
    "normal": 24 * 60 * 60,
    "low": None,
}
AID_KINDS_OF_BOTH = {**REQUESTER_BODIES, **PLEDGER_BODIES}


def test_the_request_and_pledge_tables_are_the_specs_cell_by_cell() -> None:
    """PROTOCOL.md §13: no cell added, removed or changed; in particular a pledge
    acceptance leaves the request open."""
    assert REQUEST_TABLE == SPEC_REQUEST
    assert PLEDGE_TABLE == SPEC_PLEDGE


@pytest.mark.parametrize("state", list(SPEC_REQUEST))
@pytest.mark.parametrize("kind", sorted(AID_KINDS_OF_BOTH))
def test_the_requester_fold_follows_every_cell_of_the_specs_table(state: str, kind: str) -> None:
    """PROTOCOL.md §13: the requester's statements, in its log order, move the request by
    its table; anything else (its own pledge included) is refused with `not_authorized`."""
    pledge = st_("elm", 1, pledged())  # so that an acceptance has something to accept
    path = path_to(SPEC_REQUEST, state)
    own = [st_("oak", i + 1, REQUESTER_BODIES[k]) for i, k in enumerate(path)]
    before = fold_request("oak", "r1", [pledge, *own])
    assert (before.requester_state, before.refused) == (state, [])
    nxt = st_("oak", len(own) + 1, AID_KINDS_OF_BOTH[kind])
    after = fold_request("oak", "r1", [pledge, *own, nxt])
    expected = SPEC_REQUEST[state].get(kind)
    if expected is None:
        assert after.requester_state == state
        assert after.refused == [(nxt.id, "not_authorized")]
        assert after.accepted == before.accepted
    else:
        assert (after.requester_state, after.refused) == (expected, [])


@pytest.mark.parametrize("state", list(SPEC_PLEDGE))
@pytest.mark.parametrize("kind", sorted(PLEDGER_BODIES))
def test_the_pledger_fold_follows_every_cell_of_the_specs_table(state: str, kind: str) -> None:
    """PROTOCOL.md §13: a pledger's statements about its own pledge, in its log order."""
    path = path_to(SPEC_PLEDGE, state)
    mine = [st_("elm", i + 1, PLEDGER_BODIES[k]) for i, k in enumerate(path)]
    before = fold_request("oak", "r1", [st_("oak", 1, REQUEST), *mine])
    assert [p.state for p in before.pledges] == ([] if state == "none" else [state])
    nxt = st_("elm", len(mine) + 1, PLEDGER_BODIES[kind])
    view = fold_request("oak", "r1", [st_("oak", 1, REQUEST), *mine, nxt])
    expected = SPEC_PLEDGE[state].get(kind)
    if expected is None:
        assert view.refused == [(nxt.id, "not_authorized")]
        assert [p.state for p in view.pledges] == [p.state for p in before.pledges]
    else:
        assert view.refused == []
        assert [p.state for p in view.pledges] == [expected]


def test_accepting_a_pledge_does_not_close_the_request() -> None:
    """PROTOCOL.md §13: `open → aid.pledge_accepted → open`: after the first acceptance the
    requester can still accept another pledge, then confirm fulfilment or withdraw."""
    request = msgspec.structs.replace(REQUEST, pledged_locally=0)  # 4 needed
    p1, p2 = st_("elm", 1, pledged("elm", "p1", 2)), st_("ash", 1, pledged("ash", "p2", 2))
    req = st_("oak", 1, request)
    a1 = st_("oak", 2, AidPledgeAccepted(request="r1", pledger="elm", pledge="p1", quantity=2))
    first = fold_request("oak", "r1", [req, p1, p2, a1])
    assert (first.requester_state, first.closed_at, first.refused) == ("open", 0, [])
    assert first.accepted == 2
    assert first.state_at(T0) == "pledged"  # pledged in full, not closed: not fulfilled
    a2 = st_("oak", 3, AidPledgeAccepted(request="r1", pledger="ash", pledge="p2", quantity=2))
    second = fold_request("oak", "r1", [req, p1, p2, a1, a2])
    assert (second.requester_state, second.accepted, second.refused) == ("open", 4, [])
    for close, state in (
        (AidFulfilled(request="r1"), "fulfilled"),
        (AidWithdrawn(request="r1"), "withdrawn"),
    ):
        done = st_("oak", 3, close)
        view = fold_request("oak", "r1", [req, p1, p2, a1, done])
        assert (view.requester_state, view.closed_at, view.refused) == (state, done.at, [])


@pytest.mark.parametrize(
    ("accept", "counts"),
    [
        (("elm", "p1", 3), True),
        (("elm", "p9", 3), False),  # no such pledge
        (("ash", "p1", 3), False),  # another pledger's pledge of that id: none
        (("elm", "p1", 2), False),  # does not repeat its quantity
        (("elm", "p1", 4), False),
    ],
)
def test_an_acceptance_must_name_an_existing_pledge_and_repeat_its_quantity(
    accept: tuple[str, str, int], counts: bool
) -> None:
    """PROTOCOL.md §13, further rules: an `aid.pledge_accepted` must name a pledge that
    exists (by its pledger and id) and repeat its quantity; otherwise `not_authorized`."""
    pledger, pledge, quantity = accept
    acceptance = st_(
        "oak", 2, AidPledgeAccepted(request="r1", pledger=pledger, pledge=pledge, quantity=quantity)
    )
    view = fold_request("oak", "r1", [st_("oak", 1, REQUEST), st_("elm", 1, pledged()), acceptance])
    if counts:
        assert (view.accepted, view.refused) == (1 + 3, [])
        assert [p.accepted for p in view.pledges] == [True]
    else:
        assert (view.accepted, view.refused) == (1, [(acceptance.id, "not_authorized")])
        assert [p.accepted for p in view.pledges] == [False]


def test_a_pledge_is_accepted_once() -> None:
    """PROTOCOL.md §13: the pledge named must be "not yet accepted"."""
    request = msgspec.structs.replace(REQUEST, quantity=10)
    body = AidPledgeAccepted(request="r1", pledger="elm", pledge="p1", quantity=3)
    again = st_("oak", 3, body)
    view = fold_request(
        "oak", "r1", [st_("oak", 1, request), st_("elm", 1, pledged()), st_("oak", 2, body), again]
    )
    assert (view.accepted, view.refused) == (1 + 3, [(again.id, "not_authorized")])


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


def test_the_escalation_windows_are_the_specs() -> None:
    """PROTOCOL.md §13: critical 15 minutes, high 2 hours, normal 24 hours, low never."""
    assert ESCALATION_S == SPEC_ESCALATION_S


@pytest.mark.parametrize(
    ("urgency", "window_ms"),
    [("critical", 900_000), ("high", 7_200_000), ("normal", 86_400_000), ("low", None)],
)
def test_escalation_at_each_urgency(urgency: str, window_ms: int | None) -> None:
    """PROTOCOL.md §13: a local request not fully pledged once its urgency's default window
    has passed is escalated; `low` never is; a request met locally never is."""
    if window_ms is None:
        assert not due_for_escalation(urgency, T0, T0 + 10**12, 0, 1)
        return
    edge = T0 + window_ms
    assert not due_for_escalation(urgency, T0, edge - 1, 0, 1)
    assert due_for_escalation(urgency, T0, edge, 0, 1)
    assert due_for_escalation(urgency, T0, edge, 1, 2)  # partly pledged: still short
    assert not due_for_escalation(urgency, T0, edge, 2, 2)  # met locally: never escalates
    assert not due_for_escalation(urgency, T0, edge, 3, 2)


def test_a_node_may_configure_the_windows() -> None:
    """PROTOCOL.md §13: "each node may configure them" (here critical 60 s, low 1 h)."""
    windows = {"critical": 60, "high": None, "normal": 24 * 3600, "low": 3600}
    assert not due_for_escalation("critical", T0, T0 + 59_999, 0, 1, windows)
    assert due_for_escalation("critical", T0, T0 + 60_000, 0, 1, windows)
    assert due_for_escalation("low", T0, T0 + 3_600_000, 0, 1, windows)
    assert not due_for_escalation("high", T0, T0 + 10**12, 0, 1, windows)


# PROTOCOL.md §13, "What residents see", as cases: (requester's last statement, now,
# pledged locally, pledges not withdrawn) → state. The request: 4 needed by T0 + 3,600,000.
SPEC_SEEN = [
    (AidFulfilled(request="r1"), T0 + 3_600_001, 0, 0, "fulfilled"),  # closed wins over expiry
    (AidWithdrawn(request="r1"), T0 + 3_600_001, 4, 0, "withdrawn"),
    (AidFulfilled(request="r1"), T0, 0, 0, "fulfilled"),
    (None, T0 + 3_600_001, 4, 0, "expired"),  # after needed_by, even pledged in full
    (None, T0 + 3_600_000, 4, 0, "pledged"),  # at needed_by: not after it
    (None, T0, 0, 0, "open"),
    (None, T0, 1, 0, "partly_pledged"),
    (None, T0, 0, 3, "partly_pledged"),
    (None, T0, 1, 3, "pledged"),
    (None, T0, 0, 4, "pledged"),
    (None, T0, 4, 3, "pledged"),  # over-pledged
]


@pytest.mark.parametrize(("closing", "now", "local", "pledges", "seen"), SPEC_SEEN)
def test_what_residents_see_is_the_specs(
    closing: Body | None, now: int, local: int, pledges: int, seen: str
) -> None:
    """PROTOCOL.md §13: `fulfilled` or `withdrawn` when the requester closed it; otherwise
    `expired` after `needed_by`; otherwise, with pledged = `pledged_locally` + pledges not
    withdrawn, `pledged` when pledged ≥ quantity, `partly_pledged` when > 0, else `open`."""
    statements = [st_("oak", 1, msgspec.structs.replace(REQUEST, pledged_locally=local))]
    if pledges:
        statements.append(st_("elm", 1, pledged(quantity=pledges)))
        # A withdrawn pledge no longer counts.
        statements.append(st_("ash", 1, pledged("ash", "p2", 4)))
        statements.append(
            st_("ash", 2, AidPledgeWithdrawn(requester="oak", request="r1", pledge="p2"))
        )
    if closing is not None:
        statements.append(st_("oak", 2, closing))
    view = fold_request("oak", "r1", statements)
    assert view.refused == []
    assert view.pledged == local + pledges
    assert view.state_at(now) == seen


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
