"""Membership by consent, pure (docs/PROTOCOL.md §16).

Founders are members from the charter. A new neighborhood founds its log, then applies
(`membership.applied`: who it is and why). Members answer in their own logs: they consent,
or object with a reason, and may withdraw an objection. A neighborhood leaves with
`membership.retired`, the last event its log may hold.

Each member's position on an application is judged in that member's log order (one table,
`POSITION_TABLE`), and admission is a function of the set of positions alone (`decide`),
never of the order in which different logs arrived: every node and observer that holds the
same events gives the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Literal

import msgspec

from coopnet.protocol import errors
from coopnet.protocol.body import AreaCode, Body, Digest, DisplayName
from coopnet.protocol.trades import Slug

Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=280)]
About = Annotated[str, msgspec.Meta(max_length=280)]


class MembershipApplied(Body, frozen=True, kw_only=True):
    """A neighborhood asks to join. Its first application is the one members answer."""

    kind = "membership.applied"
    display_name: DisplayName
    area: AreaCode
    about: About  # who it is: the co-op, how many households, what it makes
    reason: Reason  # why it wants to join


class MembershipConsented(Body, frozen=True, kw_only=True):
    kind = "membership.consented"
    applicant: Slug
    application: Digest  # the id of the applicant's `membership.applied`


class MembershipObjected(Body, frozen=True, kw_only=True):
    """A paramount objection: it blocks admission while it stands."""

    kind = "membership.objected"
    applicant: Slug
    application: Digest
    reason: Reason


class MembershipObjectionWithdrawn(Body, frozen=True, kw_only=True):
    kind = "membership.objection_withdrawn"
    applicant: Slug
    application: Digest


class MembershipRetired(Body, frozen=True, kw_only=True):
    """A neighborhood leaves the federation. Its log ends here (§5.3)."""

    kind = "membership.retired"
    reason: About = ""


MEMBERSHIP_KINDS: tuple[type[Body], ...] = (
    MembershipApplied,
    MembershipConsented,
    MembershipObjected,
    MembershipObjectionWithdrawn,
    MembershipRetired,
)

Stance = Literal["none", "consent", "object"]
# A member's position on one application, in that member's log order (§16.3). A missing
# cell is refused with `not_authorized`: there is no objection to withdraw.
POSITION_TABLE: dict[Stance, dict[str, Stance]] = {
    "none": {"membership.consented": "consent", "membership.objected": "object"},
    "consent": {"membership.consented": "consent", "membership.objected": "object"},
    "object": {
        "membership.consented": "consent",
        "membership.objected": "object",
        "membership.objection_withdrawn": "none",
    },
}
VOTE_KINDS = frozenset(k for row in POSITION_TABLE.values() for k in row)

Status = Literal["founder", "admitted", "applicant", "retired", "outsider"]


class Position(msgspec.Struct, frozen=True, kw_only=True):
    """Where `voter` stands on `applicant`'s application `application`."""

    voter: str
    applicant: str
    application: bytes
    stance: Stance
    reason: str = ""


def position_step(
    current: Position | None, author: str, body: Body, *, founders: Iterable[str] = ()
) -> Position:
    """The voter's position after one more of its statements (raises NotAuthorized)."""
    if not isinstance(
        body, MembershipConsented | MembershipObjected | MembershipObjectionWithdrawn
    ):
        raise TypeError(f"{body.kind} is not a statement on an application")
    if body.applicant == author:
        raise errors.NotAuthorized(f"{author} cannot answer its own application")
    if body.applicant in set(founders):
        raise errors.NotAuthorized(f"{body.applicant} is a founder: there is nothing to decide")
    stance: Stance = current.stance if current is not None else "none"
    after = POSITION_TABLE[stance].get(body.kind)
    if after is None:
        raise errors.NotAuthorized(
            f"{author} has no objection to {body.applicant} to withdraw ({body.kind})"
        )
    reason = body.reason if isinstance(body, MembershipObjected) else ""
    return Position(
        voter=author,
        applicant=body.applicant,
        application=body.application,
        stance=after,
        reason=reason,
    )


class Application(msgspec.Struct, frozen=True, kw_only=True):
    applicant: str
    id: bytes  # the `membership.applied` event id members answer
    display_name: str
    area: str
    about: str
    reason: str
    at: int


class Standing(msgspec.Struct, frozen=True, kw_only=True):
    """One neighborhood's membership as `decide` computes it."""

    slug: str
    status: Status
    # For an admitted applicant, among the members of the round that admitted it; for one
    # still applying, among the members now.
    consents: tuple[str, ...] = ()
    objections: tuple[str, ...] = ()
    needed: int = 0  # consents the rule needs from those members


def consents_needed(members: int, quorum_percent: int) -> int:
    """More than `quorum_percent` % of `members`, at least one, at most all (§16.4)."""
    return max(1, min(members, members * quorum_percent // 100 + 1))


def decide(
    *,
    founders: Iterable[str],
    applications: Mapping[str, Application],
    positions: Iterable[Position],
    retired: Iterable[str],
    quorum_percent: int,
) -> dict[str, Standing]:
    """Who is a member, from the set of statements alone (§16.4).

    Members start as the founders who have not retired. In rounds, every applicant with
    enough consents from the current members and no standing objection from any of them is
    admitted, all at once; admitted neighborhoods then count in the next round. Only
    positions on an applicant's own (first) application count. The result depends on the
    set of positions, so arrival order cannot change it.
    """
    gone = set(retired)
    founding = set(founders)
    by_applicant: dict[str, list[Position]] = {}
    for p in positions:
        app = applications.get(p.applicant)
        if app is not None and p.application == app.id:
            by_applicant.setdefault(p.applicant, []).append(p)
    members = founding - gone
    judged_by: dict[str, frozenset[str]] = {}  # an admitted applicant: the members who decided
    pending = set(applications) - founding - gone
    while True:
        newly = {a for a in pending if _qualifies(by_applicant.get(a, []), members, quorum_percent)}
        if not newly:
            break
        for a in newly:
            judged_by[a] = frozenset(members)
        members |= newly
        pending -= newly
    out: dict[str, Standing] = {}
    for slug in founding | set(applications) | gone:
        status: Status
        if slug in gone:
            status = "retired"
        elif slug in founding:
            status = "founder"
        elif slug in judged_by:
            status = "admitted"
        else:
            status = "applicant"
        voters = set(judged_by.get(slug, members - {slug}))
        votes = by_applicant.get(slug, [])
        out[slug] = Standing(
            slug=slug,
            status=status,
            consents=tuple(sorted(_voters(votes, voters, "consent"))),
            objections=tuple(sorted(_voters(votes, voters, "object"))),
            needed=consents_needed(len(voters), quorum_percent),
        )
    return out


def _qualifies(votes: list[Position], members: set[str], quorum_percent: int) -> bool:
    consents = _voters(votes, members, "consent")
    return len(consents) >= consents_needed(len(members), quorum_percent) and not _voters(
        votes, members, "object"
    )


def _voters(votes: Iterable[Position], members: set[str], stance: Stance) -> set[str]:
    return {p.voter for p in votes if p.stance == stance and p.voter in members}


def is_member(standings: Mapping[str, Standing], slug: str) -> bool:
    s = standings.get(slug)
    return s is not None and s.status in ("founder", "admitted")
