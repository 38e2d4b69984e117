"""Creates under a client-chosen id, answered once: a retry gets the original result.

A resident's app retries (a double click, a timeout): `POST /trades` with the same `trade`
id must not sign a second proposal. `once` keeps, in the node's private `created` table,
each (scope, id) with a digest of the request and the response it got. A retry of the
same request is answered with that response; another request under the same id is
refused (409 `duplicate`); nothing is signed twice. One create runs at a time per node, so
two racing retries cannot both sign.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec

from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store import Store, now_ms
from coopnet.node.engine.store_io import fetch_one

R = TypeVar("R")
# The `created` table is the engine's (node/engine/store.py LOG_MIGRATIONS): private to the
# node, never on the bus, never rebuilt from the log.


async def once(
    store: Store,
    scope: str,
    key: str | None,
    request: object,
    create: Callable[[], Awaitable[R]],
    response_type: type[R],
) -> R:
    """Run `create()` once for `(scope, key)` and remember its response.

    `request` is what the client asked (a msgspec Struct, encoded to JSON for its digest);
    `key` None means the client chose no id, and `create` simply runs. Raises Refused
    (`duplicate`, 409) when `key` was used before with another request; otherwise whatever
    `create` raises (nothing is remembered then, so a retry tries again).
    """
    if key is None:
        return await create()
    digest = hashlib.sha256(msgspec.json.encode(request)).digest()
    async with store.create_lock:
        row = await fetch_one(
            store.db, "SELECT digest, response FROM created WHERE scope = ? AND key = ?",
            (scope, key),
        )  # fmt: skip
        if row is not None:
            if bytes(row[0]) != digest:
                raise Refused(
                    "duplicate",
                    f"{scope} {key} was created already, from another request: choose another id",
                )
            return msgspec.json.decode(bytes(row[1]), type=response_type)
        response = await create()
        async with store.transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO created VALUES (?, ?, ?, ?, ?)",
                (scope, key, digest, msgspec.json.encode(response), now_ms()),
            )
        return response


__all__ = ["once"]
