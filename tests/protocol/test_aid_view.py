"""What a node shows of a call for help (protocol/aid.py `fold_request`, PROTOCOL.md §13):
every field of the view, before and after the request is heard, and a refused statement
that does not stop the statements after it from counting."""

from __future__ import annotations

from coopnet.protocol.aid import (
    AidFulfilled,
    AidPledgeAccepted,
    AidPledgeWithdrawn,
    PledgeView,
    RequestView,
    fold_request,
    rank_key,
)
from tests.protocol.test_aid import REQUEST, T0, pledged, st_


def test_pledges_heard_before_the_request_show_an_empty_request_in_state_unknown() -> None:
    view = fold_request("oak", "r1", [st_("elm", 1, pledged(quantity=2))])
    assert view.state_at(T0) == "unknown"
    assert (view.category, view.urgency, view.area, view.description) == ("", "", "", "")
    assert (view.needed_by, view.quantity, view.raised_at, view.escalated_at) == (0, 0, 0, 0)
    assert (view.pledged_locally, view.accepted, view.closed_at) == (0, 0, 0)
    assert view.pledged == 2
    assert view.refused == []


def test_an_unheard_request_is_all_defaults() -> None:
    assert fold_request("oak", "r1", []) == RequestView(
        requester="oak", request="r1", category="", urgency="", needed_by=0, quantity=0,
        area="", description="", raised_at=0, escalated_at=0, pledged_locally=0,
        requester_state="none", closed_at=0, accepted=0, pledges=[], refused=[],
    )  # fmt: skip


def test_a_pledge_shows_who_what_how_many_and_when() -> None:
    pledge = st_("elm", 7, pledged(pledge="p9", quantity=2))
    view = fold_request("oak", "r1", [st_("oak", 1, REQUEST), pledge])
    assert view.pledges == [
        PledgeView(pledger="elm", pledge="p9", what="meals", quantity=2, state="pledged",
                   accepted=False, at=T0 + 7),
    ]  # fmt: skip
    assert (view.requester, view.request) == ("oak", "r1")


def test_the_request_fills_every_field_of_the_view() -> None:
    view = fold_request("oak", "r1", [st_("oak", 3, REQUEST)])
    assert (view.category, view.urgency, view.needed_by) == ("food", "high", T0 + 3_600_000)
    assert (view.quantity, view.area, view.description) == (4, "N1", "Hot meals for a family")
    assert (view.raised_at, view.escalated_at) == (T0, T0 + 3)
    assert (view.pledged_locally, view.accepted) == (1, 1)


def test_a_refused_pledger_statement_does_not_stop_the_next_pledgers() -> None:
    # "ash" withdraws a pledge it never made (refused); "elm", read after it, pledges.
    stray = st_("ash", 1, AidPledgeWithdrawn(requester="oak", request="r1", pledge="p1"))
    view = fold_request("oak", "r1", [st_("oak", 1, REQUEST), stray, st_("elm", 1, pledged())])
    assert view.refused == [(stray.id, "not_authorized")]
    assert [p.pledger for p in view.pledges] == ["elm"]


def test_a_refused_statement_of_the_requester_does_not_stop_its_next_ones() -> None:
    early = st_("oak", 1, AidFulfilled(request="r1", pledges=[]))  # before the request
    view = fold_request("oak", "r1", [early, st_("oak", 2, REQUEST)])
    assert view.refused == [(early.id, "not_authorized")]
    assert view.state_at(T0) == "partly_pledged"  # 1 of 4 pledged locally


def test_a_refused_acceptance_does_not_stop_the_next_acceptance() -> None:
    wrong = st_("oak", 2, AidPledgeAccepted(request="r1", pledger="elm", pledge="p1", quantity=2))
    right = st_("oak", 3, AidPledgeAccepted(request="r1", pledger="elm", pledge="p1", quantity=3))
    view = fold_request(
        "oak", "r1", [st_("oak", 1, REQUEST), st_("elm", 1, pledged()), wrong, right]
    )
    assert view.refused == [(wrong.id, "not_authorized")]
    assert view.accepted == 1 + 3
    assert view.pledges[0].accepted is True


def test_an_urgency_no_one_knows_ranks_after_low() -> None:
    assert rank_key("low", 5, 1) == (3, 5, 1)
    assert rank_key("someday", 5, 1) == (4, 5, 1)
