"""Mutual aid, "Call 4 Help", and crisis alerts, pure (docs/PROTOCOL.md §13-14).

A request starts private to its neighborhood (kept in the node's own tables, never on the
bus); only if the neighborhood does not pledge enough within a window set by its urgency is
it escalated: published as `aid.requested` for the whole federation. From then on:
the requester's log decides the request (it accepts pledges, confirms fulfilment, withdraws
it) and each pledger's log decides its pledge. As with trades, every party's statements
are judged in its own log order, so every node computes the same state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Literal

import msgspec

from coopnet.protocol import errors
from coopnet.protocol.body import AreaCode, Body
from coopnet.protocol.offers import LocalId, Millis
from coopnet.protocol.personal_data import personal_data_in as personal_data_in
from coopnet.protocol.trades import Slug

AidCategory = Literal[
    "food",
    "shelter",
    "transport",
    "medical-supplies",
    "childcare",
    "eldercare",
    "safety",
    "utilities",
    "repair",
    "other",
]
AID_CATEGORIES: tuple[str, ...] = AidCategory.__args__  # type: ignore[attr-defined]
Urgency = Literal["critical", "high", "normal", "low"]
URGENCIES: tuple[str, ...] = Urgency.__args__  # type: ignore[attr-defined]
Count = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
Description = Annotated[str, msgspec.Meta(min_length=1, max_length=280)]
What = Annotated[str, msgspec.Meta(min_length=1, max_length=140)]
Advice = Annotated[str, msgspec.Meta(max_length=1000)]
AlertKind = Literal["storm", "outage", "flood", "heat", "cold", "fire", "water", "other"]
Severity = Literal["info", "warning", "danger"]

# Default escalation windows (seconds) by urgency; None: never escalated by itself.
ESCALATION_S: dict[str, int | None] = {
    "critical": 15 * 60,
    "high": 2 * 3600,
    "normal": 24 * 3600,
    "low": None,
}


class AidRequested(Body, frozen=True, kw_only=True):
    """An escalated request: the neighborhood could not meet it alone."""

    kind = "aid.requested"
    request: LocalId
    category: AidCategory
    urgency: Urgency
    needed_by: Millis
    quantity: Count  # units or people
    area: AreaCode
    description: Description
    raised_at: Millis  # when a resident first asked, in the neighborhood
    pledged_locally: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    reason: Annotated[str, msgspec.Meta(max_length=140)] = ""  # why it was escalated


class AidPledged(Body, frozen=True, kw_only=True):
    kind = "aid.pledged"
    requester: Slug
    request: LocalId
    pledge: LocalId
    what: What
    quantity: Count


class AidPledgeAccepted(Body, frozen=True, kw_only=True):
    """The requester takes up a pledge; it repeats the quantity so its log alone suffices."""

    kind = "aid.pledge_accepted"
    request: LocalId
    pledger: Slug
    pledge: LocalId
    quantity: Count


class AidFulfilled(Body, frozen=True, kw_only=True):
    kind = "aid.fulfilled"
    request: LocalId
    pledges: Annotated[list[tuple[Slug, LocalId]], msgspec.Meta(max_length=100)] = msgspec.field(
        default_factory=list
    )


class AidWithdrawn(Body, frozen=True, kw_only=True):
    kind = "aid.withdrawn"
    request: LocalId


class AidPledgeWithdrawn(Body, frozen=True, kw_only=True):
    kind = "aid.pledge_withdrawn"
    requester: Slug
    request: LocalId
    pledge: LocalId


class AlertRaised(Body, frozen=True, kw_only=True):
    kind = "alert.raised"
    alert: LocalId
    alert_kind: AlertKind
    severity: Severity
    area: AreaCode
    advice: Advice = ""


class AlertResolved(Body, frozen=True, kw_only=True):
    kind = "alert.resolved"
    alert: LocalId


AID_KINDS: tuple[type[Body], ...] = (
    AidRequested,
    AidPledged,
    AidPledgeAccepted,
    AidFulfilled,
    AidWithdrawn,
    AidPledgeWithdrawn,
    AlertRaised,
    AlertResolved,
)

# -- the lifecycle ----------------------------------------------------------------------------

NONE = "none"
# The requester's own statements, in its log order.
REQUEST_TABLE: dict[str, dict[str, str]] = {
    NONE: {"aid.requested": "open"},
    "open": {
        "aid.pledge_accepted": "open",
        "aid.fulfilled": "fulfilled",
        "aid.withdrawn": "withdrawn",
    },
    "fulfilled": {},
    "withdrawn": {},
}
# Each pledger's statements about its own pledge, in its log order.
PLEDGE_TABLE: dict[str, dict[str, str]] = {
    NONE: {"aid.pledged": "pledged"},
    "pledged": {"aid.pledge_withdrawn": "withdrawn"},
    "withdrawn": {},
}
# What residents see: closed states come from the requester; open ones from the pledges.
REQUEST_STATES = ("open", "partly_pledged", "pledged", "fulfilled", "withdrawn", "expired")
URGENCY_RANK = {u: i for i, u in enumerate(URGENCIES)}


class AidStatement(msgspec.Struct, frozen=True, kw_only=True):
    id: bytes
    author: str
    seq: int
    at: int
    body: Body


class PledgeView(msgspec.Struct, kw_only=True):
    pledger: str
    pledge: str
    what: str
    quantity: int
    state: str = "pledged"
    accepted: bool = False
    at: int = 0


class RequestView(msgspec.Struct, kw_only=True):
    requester: str
    request: str
    category: str = ""
    urgency: str = ""
    needed_by: int = 0
    quantity: int = 0
    area: str = ""
    description: str = ""
    raised_at: int = 0
    escalated_at: int = 0
    pledged_locally: int = 0
    requester_state: str = NONE
    closed_at: int = 0
    accepted: int = 0  # quantity taken up, locally and from accepted pledges
    pledges: list[PledgeView] = msgspec.field(default_factory=list)
    refused: list[tuple[bytes, str]] = msgspec.field(default_factory=list)

    @property
    def pledged(self) -> int:
        """What neighbors and the federation have offered and not withdrawn."""
        live = sum(p.quantity for p in self.pledges if p.state == "pledged")
        return self.pledged_locally + live

    def state_at(self, now: int) -> str:
        if self.requester_state in ("fulfilled", "withdrawn"):
            return self.requester_state
        if self.requester_state == NONE:
            return "unknown"
        if now > self.needed_by:
            return "expired"
        if self.pledged >= self.quantity:
            return "pledged"
        return "partly_pledged" if self.pledged > 0 else "open"


def fold_request(requester: str, request: str, statements: Iterable[AidStatement]) -> RequestView:
    """The state of an escalated request from every statement held about it (§13)."""
    view = RequestView(requester=requester, request=request)
    own = sorted((s for s in statements if s.author == requester), key=lambda s: s.seq)
    others = sorted(
        (s for s in statements if s.author != requester), key=lambda s: (s.author, s.seq)
    )
    pledges: dict[tuple[str, str], PledgeView] = {}
    for s in others:
        b = s.body
        key = (s.author, b.pledge)  # type: ignore[attr-defined]
        current = pledges.get(key)
        nxt = PLEDGE_TABLE[current.state if current else NONE].get(b.kind)
        if nxt is None:
            view.refused.append((s.id, "not_authorized"))
            continue
        if isinstance(b, AidPledged):
            pledges[key] = PledgeView(
                pledger=s.author, pledge=b.pledge, what=b.what, quantity=b.quantity, at=s.at
            )
        else:
            assert current is not None
            current.state = nxt
    for s in own:
        b = s.body
        nxt = REQUEST_TABLE[view.requester_state].get(b.kind)
        if nxt is None:
            view.refused.append((s.id, "not_authorized"))
            continue
        if isinstance(b, AidRequested):
            view.category, view.urgency, view.needed_by = b.category, b.urgency, b.needed_by
            view.quantity, view.area, view.description = b.quantity, b.area, b.description
            view.raised_at, view.escalated_at = b.raised_at, s.at
            view.pledged_locally = view.accepted = b.pledged_locally
        elif isinstance(b, AidPledgeAccepted):
            pledge = pledges.get((b.pledger, b.pledge))
            # Bounded by the need, in the requester's own order: no over-acceptance.
            if (
                pledge is None
                or pledge.accepted
                or b.quantity != pledge.quantity
                or view.accepted + b.quantity > view.quantity
            ):
                view.refused.append((s.id, "not_authorized"))
                continue
            pledge.accepted = True
            view.accepted += b.quantity
        elif isinstance(b, (AidFulfilled, AidWithdrawn)):
            view.closed_at = s.at
        view.requester_state = nxt
    view.pledges = sorted(pledges.values(), key=lambda p: (p.pledger, p.pledge))
    return view


def aid_key(author: str, body: Body) -> tuple[str, str] | None:
    """`(requester, request)` of an aid event, or None for other kinds."""
    if isinstance(body, (AidRequested, AidPledgeAccepted, AidFulfilled, AidWithdrawn)):
        return author, body.request
    if isinstance(body, (AidPledged, AidPledgeWithdrawn)):
        return body.requester, body.request
    return None


def pledge_allowed(view: RequestView, pledger: str, now: int) -> str | None:
    """Why `pledger` may not pledge to this request now (None: it may). Node-side check."""
    if pledger == view.requester:
        return "not_authorized"  # a neighborhood does not pledge to its own request
    state = view.state_at(now)
    if state in ("fulfilled", "withdrawn", "expired"):
        return "request_closed"
    if state == "pledged":
        return "fully_pledged"
    return None


def due_for_escalation(
    urgency: str,
    raised_at: int,
    now: int,
    pledged: int,
    quantity: int,
    windows: Mapping[str, int | None] = ESCALATION_S,
) -> bool:
    """A local request escalates once its urgency's window passed and it is not fully pledged."""
    window = windows.get(urgency)
    return window is not None and pledged < quantity and now >= raised_at + window * 1000


def rank_key(urgency: str, needed_by: int, distance: int) -> tuple[int, int, int]:
    """Open requests first by urgency, then by needed-by, then by distance (0 same area)."""
    return (URGENCY_RANK.get(urgency, len(URGENCIES)), needed_by, distance)


def area_distance(mine: str, theirs: str, neighbors: Iterable[str]) -> int:
    if mine == theirs:
        return 0
    return 1 if theirs in set(neighbors) else 2


def check_personal_data(body: Body) -> None:
    """Raise PersonalData (`personal_data`) if a call for help's description or a pledge's
    text holds personal data (PROTOCOL.md §13.1, protocol/personal_data.py). The same rule
    for what a node signs and what it receives: a received event that breaks it is stored
    (its author's chain stays whole) but refused by the aid projection, so no node lists
    it."""
    text = (
        body.description
        if isinstance(body, AidRequested)
        else body.what
        if isinstance(body, AidPledged)
        else ""
    )
    found = personal_data_in(text) if text else None
    if found is not None:
        raise errors.PersonalData(f"{body.kind} holds {found}: calls for help carry none")
