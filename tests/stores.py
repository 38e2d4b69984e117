"""Opening a node's store in tests as `coopnet node run` opens it: every domain's tables."""

from __future__ import annotations

from pathlib import Path

from coopnet.node.engine.store import Store
from coopnet.node.runtime import domain_tables


async def open_node_store(path: Path | str, net: bytes) -> Store:
    """A real SQLite store at `path` with every domain's projections and tables."""
    projections, tables = domain_tables()
    return await Store.open(path, net=net, projections=projections, tables=tables)
