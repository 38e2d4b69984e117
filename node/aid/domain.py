"""The mutual-aid domain: calls for help, pledges, escalation and alerts (PROTOCOL.md §13-14)."""

from __future__ import annotations

from coopnet.node.aid.api import aid_router
from coopnet.node.aid.policy import AidPolicy
from coopnet.node.aid.projection import AidProjection
from coopnet.node.aid.requests import Aid, LocalRequests
from coopnet.node.engine.domain import Activity, Domain
from coopnet.node.engine.projection import OwnTables, Projection

PROJECTIONS: tuple[Projection, ...] = (AidProjection(),)
TABLES: tuple[OwnTables, ...] = (LocalRequests(),)


def aid_domain(aid: Aid, policy: AidPolicy | None) -> Domain:
    """The aid projection, the node's private requests, their escalation, the routes
    (reading `aid`), and the `auto_aid` policy when node.toml turns it on."""
    activities: list[Activity] = [("aid escalation", aid.escalate_forever)]
    if policy is not None:
        activities.append(("aid policy", policy.run))
    return Domain(
        name="aid",
        projections=PROJECTIONS,
        tables=TABLES,
        routers=(aid_router,),
        services={"aid": aid},
        activities=tuple(activities),
        listeners=(policy.notice,) if policy else (),
    )
