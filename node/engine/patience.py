"""Waiting out a database locked by another process, for work that must not be dropped.

A receive that finds the store locked for longer than a write waits (StorageBusy) changed
nothing: neither the store nor the engine's memory (`Chains.receive`). A batch from the
stream or from a peer must not be skipped, so it is received again after a pause, doubling
up to `MAX_PAUSE_S`, for as long as the lock lasts; between tries every lock of the engine
is free, so residents' posts get their own answer (`storage_busy`) meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from coopnet.node.engine.store import StorageBusy

log = logging.getLogger("coopnet.store")

T = TypeVar("T")
FIRST_PAUSE_S = 0.5
MAX_PAUSE_S = 5.0


async def until_stored(
    attempt: Callable[[], Awaitable[T]], *, who: str, on_busy: Callable[[], None]
) -> T:
    """`await attempt()` again and again while it raises StorageBusy (calling `on_busy`,
    say to count it, each time); return what it returns. Anything else it raises passes
    through (StorageFailure: the owner stops). Cancellable between tries."""
    pause = FIRST_PAUSE_S
    while True:
        try:
            return await attempt()
        except StorageBusy as exc:
            on_busy()
            log.warning("%s: %s; receiving the batch again in %.1f s", who, exc, pause)
            await anyio.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE_S)
