"""The pools domain: pooled purchases across co-ops, sold by the case (PROTOCOL.md §19)."""

from __future__ import annotations

from coopnet.node.engine.domain import Domain
from coopnet.node.engine.projection import OwnTables, Projection
from coopnet.node.pools.api import pools_router
from coopnet.node.pools.organizer import PoolOrganizer
from coopnet.node.pools.pooling import Pooling
from coopnet.node.pools.projection import Pools

PROJECTIONS: tuple[Projection, ...] = (Pools(),)
TABLES: tuple[OwnTables, ...] = ()


def pools_domain(pooling: Pooling, organizer: PoolOrganizer) -> Domain:
    """The pools projection, its routes (reading `pooling`), and the organizer's activity
    that closes this node's pools on time."""
    return Domain(
        name="pools",
        projections=PROJECTIONS,
        routers=(pools_router,),
        services={"pooling": pooling},
        activities=(("pool organizer", organizer.run),),
        listeners=(organizer.notice,),
    )
