"""The time bank domain: residents' hours in the node, hours between neighborhoods on the
bus (PROTOCOL.md §20)."""

from __future__ import annotations

from coopnet.node.engine.domain import Domain
from coopnet.node.engine.projection import OwnTables, Projection
from coopnet.node.timebank.api import timebank_router
from coopnet.node.timebank.bank import TimeBank
from coopnet.node.timebank.projection import HourTransfers, TimeEntries

PROJECTIONS: tuple[Projection, ...] = (HourTransfers(),)
TABLES: tuple[OwnTables, ...] = (TimeEntries(),)


def timebank_domain(bank: TimeBank) -> Domain:
    """The `hours` projection, the residents' private time entries, and the `/hours`
    routes (reading `bank`)."""
    return Domain(
        name="timebank",
        projections=PROJECTIONS,
        tables=TABLES,
        routers=(timebank_router,),
        services={"timebank": bank},
    )
