"""The market domain: offers, needs, trades and the mutual-credit ledger (PROTOCOL.md §10-12)."""

from __future__ import annotations

from coopnet.node.engine.domain import Domain
from coopnet.node.engine.projection import OwnTables, Projection
from coopnet.node.market.api import market_router
from coopnet.node.market.policy import Policy
from coopnet.node.market.projection import Market
from coopnet.node.market.trading import Trading

PROJECTIONS: tuple[Projection, ...] = (Market(),)
TABLES: tuple[OwnTables, ...] = ()


def market_domain(trading: Trading, policy: Policy | None) -> Domain:
    """The market projection, its routes (reading `trading`), and the `auto_trade` policy
    when node.toml turns it on."""
    return Domain(
        name="market",
        projections=PROJECTIONS,
        routers=(market_router,),
        services={"trading": trading},
        activities=(("trading policy", policy.run),) if policy else (),
        listeners=(policy.notice,) if policy else (),
    )
