"""The neighborhoods domain: who has founded a log (no routes: `/status` lists authors)."""

from __future__ import annotations

from coopnet.node.engine.domain import Domain
from coopnet.node.engine.projection import OwnTables, Projection
from coopnet.node.neighborhoods.projection import Neighborhoods

PROJECTIONS: tuple[Projection, ...] = (Neighborhoods(),)
TABLES: tuple[OwnTables, ...] = ()


def neighborhoods_domain() -> Domain:
    """The `neighborhoods` projection, read by observers and the dashboard."""
    return Domain(name="neighborhoods", projections=PROJECTIONS)
