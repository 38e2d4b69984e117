"""The notes domain: public notes, posted and read through the API."""

from __future__ import annotations

from coopnet.node.engine.domain import Domain
from coopnet.node.engine.projection import OwnTables, Projection
from coopnet.node.notes.api import notes_router
from coopnet.node.notes.projection import Notes

PROJECTIONS: tuple[Projection, ...] = (Notes(),)
TABLES: tuple[OwnTables, ...] = ()


def notes_domain() -> Domain:
    """The `notes` projection and the `/notes` routes."""
    return Domain(name="notes", projections=PROJECTIONS, routers=(notes_router,))
