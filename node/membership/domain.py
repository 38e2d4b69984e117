"""The membership domain: applications, consent and objections, retirement (PROTOCOL.md §16)."""

from __future__ import annotations

from coopnet.node.engine.domain import Domain
from coopnet.node.engine.projection import OwnTables, Projection
from coopnet.node.membership.api import membership_router
from coopnet.node.membership.governance import Governance
from coopnet.node.membership.projection import MembershipProjection

PROJECTIONS: tuple[Projection, ...] = (MembershipProjection(),)
TABLES: tuple[OwnTables, ...] = ()


def membership_domain(governance: Governance) -> Domain:
    """The membership projection, its routes (reading `governance`), and the one-off
    application of a neighborhood added with an application text."""
    return Domain(
        name="membership",
        projections=PROJECTIONS,
        routers=(membership_router,),
        services={"governance": governance},
        activities=(("membership", governance.apply_if_due),),
    )
