"""Edges of the mutual-aid rules on both sides (docs/PROTOCOL.md §13, §16.1): each urgency's
escalation window, needed-by, what is pledged against the quantity, what may be accepted,
the open states and the order of the list. Expected values are the spec's, written here."""

from __future__ import annotations

import hashlib
import itertools

import pytest

from coopnet.protocol.aid import (
    ESCALATION_S,
    REQUEST_STATES,
    AidFulfilled,
    AidPledgeAccepted,
    AidPledged,
    AidPledgeWithdrawn,
    AidRequested,
    AidStatement,
    AidWithdrawn,
    RequestView,
    area_distance,
    due_for_escalation,
    fold_request,
    pledge_allowed,
    rank_key,
)
from coopnet.protocol.body import Body
from coopnet.protocol.charter import Policies

T0 = 1_800_000_000_000
MINUTE, HOUR = 60_000, 3_600_000
# §13: "critical 15 minutes, high 2 hours, normal 24 hours, low never", in ms.
WINDOWS_MS = {"critical": 15 * MINUTE, "high": 2 * HOUR, "normal": 24 * HOUR}
NEEDED_BY = T0 + 10 * HOUR

# -- escalation (§13 "Local first") -----------------------------------------------------------


@pytest.mark.parametrize("urgency", sorted(WINDOWS_MS))
@pytest.mark.parametrize(("offset", "due"), [(-1, False), (0, True), (1, True)])
def test_each_escalation_window_at_the_window_and_one_ms_either_side(
    urgency: str, offset: int, due: bool
) -> None:
    """Not fully pledged once the window has passed: escalated. (At exactly the window, the
    window is over: `now ≥ raised_at + window`.)"""
    now = T0 + WINDOWS_MS[urgency] + offset
    assert due_for_escalation(urgency, T0, now, pledged=0, quantity=1) is due


@pytest.mark.parametrize("later", [0, 24 * HOUR, 24 * HOUR + 1, 10 * 365 * 24 * HOUR])
def test_a_low_request_never_escalates_by_itself(later: int) -> None:
    assert due_for_escalation("low", T0, T0 + later, pledged=0, quantity=1) is False


@pytest.mark.parametrize(("pledged", "due"), [(2, True), (3, False), (4, False)])
def test_only_a_request_not_fully_pledged_escalates(pledged: int, due: bool) -> None:
    now = T0 + 24 * HOUR + 1
    for urgency in WINDOWS_MS:
        assert due_for_escalation(urgency, T0, now, pledged=pledged, quantity=3) is due


def test_the_windows_table_is_the_specs() -> None:
    """In seconds; "low" never (a missing entry would also mean never: pinned as written)."""
    assert ESCALATION_S == {"critical": 900, "high": 7200, "normal": 86_400, "low": None}


def test_the_charters_default_windows_are_the_specs() -> None:
    """§13's defaults, in seconds, are what a charter says when it does not set them."""
    p = Policies()
    assert (p.escalate_critical_s, p.escalate_high_s, p.escalate_normal_s) == (900, 7200, 86400)


@pytest.mark.parametrize(("offset", "due"), [(-1, False), (0, True), (1, True)])
def test_a_configured_window_is_in_seconds(offset: int, due: bool) -> None:
    windows: dict[str, int | None] = {"critical": 60, "high": 60, "normal": 60, "low": None}
    now = T0 + 60_000 + offset
    assert due_for_escalation("normal", T0, now, 0, 1, windows) is due


# -- the fold and what residents see ----------------------------------------------------------

_ids = itertools.count()


def st_(author: str, seq: int, body: Body) -> AidStatement:
    sid = hashlib.sha256(f"{author} {seq} {next(_ids)}".encode()).digest()
    return AidStatement(id=sid, author=author, seq=seq, at=T0 + seq, body=body)


def request(quantity: int = 10, pledged_locally: int = 0) -> AidStatement:
    return st_("oak", 1, AidRequested(
        request="r1", category="food", urgency="high", needed_by=NEEDED_BY, quantity=quantity,
        area="N1", description="Meals", raised_at=T0, pledged_locally=pledged_locally,
    ))  # fmt: skip


def pledge(pledger: str, quantity: int, name: str = "p1") -> AidStatement:
    return st_(pledger, 1, AidPledged(requester="oak", request="r1", pledge=name, what="meals",
                                      quantity=quantity))  # fmt: skip


def accept(seq: int, pledger: str, quantity: int, name: str = "p1") -> AidStatement:
    return st_("oak", seq, AidPledgeAccepted(request="r1", pledger=pledger, pledge=name,
                                             quantity=quantity))  # fmt: skip


def view(*statements: AidStatement) -> RequestView:
    return fold_request("oak", "r1", statements)


@pytest.mark.parametrize(
    ("now", "state"), [(NEEDED_BY - 1, "open"), (NEEDED_BY, "open"), (NEEDED_BY + 1, "expired")]
)
def test_a_request_expires_after_needed_by(now: int, state: str) -> None:
    assert view(request()).state_at(now) == state


@pytest.mark.parametrize(("now", "why"), [(NEEDED_BY, None), (NEEDED_BY + 1, "request_closed")])
def test_a_pledge_may_be_made_up_to_needed_by(now: int, why: str | None) -> None:
    assert pledge_allowed(view(request()), "elm", now) == why


@pytest.mark.parametrize(
    ("local", "pledges", "state"),
    [
        (0, [], "open"),
        (1, [], "partly_pledged"),
        (0, [1], "partly_pledged"),
        (9, [], "partly_pledged"),
        (10, [], "pledged"),
        (4, [5], "partly_pledged"),
        (4, [6], "pledged"),
        (4, [7], "pledged"),  # over-pledged: still pledged
        (0, [3, 7], "pledged"),
        (0, [3, 6], "partly_pledged"),
    ],
)
def test_pledged_against_the_quantity(local: int, pledges: list[int], state: str) -> None:
    """§13: pledged = pledged_locally + pledges not withdrawn; `pledged` at ≥ quantity."""
    held = [pledge(f"p{i}x", q) for i, q in enumerate(pledges)]
    v = view(request(10, local), *held)
    assert v.pledged == local + sum(pledges)
    assert v.state_at(T0) == state


def test_a_withdrawn_pledge_no_longer_counts() -> None:
    p = pledge("elm", 10)
    gone = st_("elm", 2, AidPledgeWithdrawn(requester="oak", request="r1", pledge="p1"))
    assert view(request(10), p).state_at(T0) == "pledged"
    assert (view(request(10), p, gone).pledged, view(request(10), p, gone).state_at(T0)) == (
        0,
        "open",
    )


@pytest.mark.parametrize(
    ("local", "pledged_", "why"),
    [(0, 9, None), (9, 0, None), (0, 10, "fully_pledged"), (10, 0, "fully_pledged"),
     (3, 8, "fully_pledged")],
)  # fmt: skip
def test_a_pledge_up_to_the_remaining_amount_and_once_fully_pledged(
    local: int, pledged_: int, why: str | None
) -> None:
    """§13: nodes refuse to sign a pledge to a request already fully pledged."""
    held = [pledge("elm", pledged_)] if pledged_ else []
    assert pledge_allowed(view(request(10, local), *held), "ash", T0) == why


def test_a_pledge_of_more_than_remains_is_held() -> None:
    """Over-pledging is no rule's business (§13): 3 remain, a pledge of 4 is a pledge."""
    v = view(request(10, 7), pledge("elm", 4))
    assert ([p.quantity for p in v.pledges], v.refused) == ([4], [])


@pytest.mark.parametrize(
    ("local", "first", "second", "ok"),
    [(2, 5, 3, True), (2, 5, 4, False), (0, 10, 1, False), (0, 9, 1, True), (10, 0, 1, False)],
)
def test_acceptance_up_to_the_quantity_and_one_beyond(
    local: int, first: int, second: int, ok: bool
) -> None:
    """§13: `pledged_locally` + accepted quantities stays at or below the quantity."""
    statements = [request(10, local), pledge("elm", second, "p2")]
    seq = 2
    if first:
        statements += [pledge("ash", first), accept(seq, "ash", first)]
        seq += 1
    last = accept(seq, "elm", second, "p2")
    v = view(*statements, last)
    if ok:
        assert (v.accepted, v.refused) == (10, [])
    else:
        assert v.accepted == local + first
        assert v.refused == [(last.id, "not_authorized")]


@pytest.mark.parametrize(("quantity", "ok"), [(2, False), (3, True), (4, False)])
def test_an_acceptance_repeats_the_pledges_quantity_exactly(quantity: int, ok: bool) -> None:
    last = accept(2, "elm", quantity)
    v = view(request(10), pledge("elm", 3), last)
    assert v.refused == ([] if ok else [(last.id, "not_authorized")])


# -- open and closed states -------------------------------------------------------------------


def test_the_states_residents_see() -> None:
    assert set(REQUEST_STATES) == {"open", "partly_pledged", "pledged", "fulfilled", "withdrawn",
                                   "expired"}  # fmt: skip


@pytest.mark.parametrize(
    ("how", "why"),
    [("open", None), ("partly_pledged", None), ("pledged", "fully_pledged"),
     ("fulfilled", "request_closed"), ("withdrawn", "request_closed"),
     ("expired", "request_closed")],
)  # fmt: skip
def test_which_states_take_a_pledge(how: str, why: str | None) -> None:
    """§13: a pledge to a closed or expired request is `request_closed`, to a fully pledged
    one `fully_pledged`; an open or partly pledged request takes one."""
    statements = [request(10, {"partly_pledged": 5, "pledged": 10}.get(how, 0))]
    if how in ("fulfilled", "withdrawn"):
        body = AidFulfilled(request="r1") if how == "fulfilled" else AidWithdrawn(request="r1")
        statements.append(st_("oak", 2, body))
    v = view(*statements)
    now = NEEDED_BY + 1 if how == "expired" else T0
    assert v.state_at(now) == how
    assert pledge_allowed(v, "elm", now) == why


def test_the_requester_never_pledges_to_its_own_request() -> None:
    assert pledge_allowed(view(request()), "oak", T0) == "not_authorized"


# -- the order of the list (§13: urgency, then needed-by, then distance) ----------------------


def test_requests_are_listed_by_urgency_then_needed_by_then_distance() -> None:
    keys = {
        (u, n, d): rank_key(u, n, d)
        for u in ("low", "normal", "high", "critical")
        for n in (T0 + 1, T0)
        for d in (2, 1, 0)
    }
    ordered = sorted(keys, key=keys.__getitem__)
    assert [k[0] for k in ordered[::6]] == ["critical", "high", "normal", "low"]
    assert ordered[:6] == [("critical", T0, 0), ("critical", T0, 1), ("critical", T0, 2),
                           ("critical", T0 + 1, 0), ("critical", T0 + 1, 1),
                           ("critical", T0 + 1, 2)]  # fmt: skip


@pytest.mark.parametrize(("theirs", "distance"), [("N1", 0), ("N2", 1), ("N3", 2), ("n1", 2)])
def test_distance_same_area_then_a_neighbor_then_the_rest(theirs: str, distance: int) -> None:
    assert area_distance("N1", theirs, ["N2"]) == distance
