"""What a domain may ask of the running node: the `NodeContext` protocol.

The node's runtime (node/runtime.py `Node`) is the one implementation. Domains take a
`NodeContext` rather than the `Node` class, so a domain imports the engine and never the
runtime that assembles it (docs/ARCHITECTURE.md, "Layers").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import anyio

from coopnet.node.engine.config import NodeConfig
from coopnet.node.engine.store import Store
from coopnet.protocol import Body, Envelope


class NotReady(RuntimeError):
    """The node has not yet confirmed its own head with the bus or a peer: it cannot sign
    (HTTP 503 `head_unconfirmed`; DESIGN.md "Never fork yourself")."""

    code = "head_unconfirmed"


class NodeContext(Protocol):
    """The running node as a domain sees it.

    - `slug`: this neighborhood's author name; `net`: the federation id (16 bytes).
    - `config`: node.toml as read at start (area, neighbors, policies' switches).
    - `credit_limit`: the default limit of mutual credit, in cents (charter or node.toml).
    - `clock()`: milliseconds since the Unix epoch (tests pass a fake one).
    - `ready`: set once the node has confirmed its own head and may sign.
    - `store`: the node's store, once it runs (the domains' tables live in it).
    - `post(body)`: sign, store and queue the node's next event; raises NotReady (503
      `head_unconfirmed`) while the head is unconfirmed, InvalidEvent when the node may sign
      nothing more (a fork on record, retired), StorageFailure when the store cannot be
      written.
    """

    slug: str
    net: bytes
    config: NodeConfig
    credit_limit: int
    clock: Callable[[], int]
    ready: anyio.Event

    @property
    def store(self) -> Store: ...

    async def post(self, body: Body) -> Envelope: ...


__all__ = ["NodeContext", "NotReady"]
