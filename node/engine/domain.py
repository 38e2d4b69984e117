"""How a domain plugs into a node: the `Domain` the runtime registers (node/runtime.py).

A domain (market, mutual aid, membership, notes, neighborhoods …) is a folder of the same
few modules: `projection.py` (its tables, folded from the log), the checks it makes before
signing, `api.py` (its routes), `cli.py` (its commands) and `domain.py`, whose one function
builds this record. The engine reads nothing else of a domain: it opens the store with the
projections and tables, mounts the routers, starts the activities and calls the listeners.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from litestar.types import ControllerRouterHandler

from coopnet.node.engine.projection import OwnTables, Projection
from coopnet.protocol import Envelope

Activity = tuple[str, Callable[[], Awaitable[object]]]
"""A background activity: its name (for logs and `internal_errors`) and what runs it."""

Listener = Callable[[Sequence[Envelope]], None]
"""Called synchronously, on the event loop, with every batch of events the node stored."""


@dataclass(frozen=True, kw_only=True)
class Domain:
    """One domain as the node runs it.

    - `projections`: folded with every stored batch, in the order of the runtime's list.
    - `tables`: the domain's tables that are not derived from the log (never reset).
    - `routers`: its HTTP routes; `services`: what they read from the app's state, by name.
    - `activities`: started once the node is connected and may sign; restarted on failure.
    - `listeners`: told of every stored batch (own events and others').
    """

    name: str
    projections: tuple[Projection, ...] = ()
    tables: tuple[OwnTables, ...] = ()
    routers: tuple[ControllerRouterHandler, ...] = ()
    services: Mapping[str, object] = field(default_factory=dict)
    activities: tuple[Activity, ...] = ()
    listeners: tuple[Listener, ...] = ()


__all__ = ["Activity", "Domain", "Listener"]
