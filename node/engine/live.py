"""Live updates: the node's app (and the observer's dashboard) learn that events arrived.

`Changes` is told of every stored batch (a domain listener) and wakes whoever waits;
`GET /live` (role `resident`, docs/APP.md) is a server-sent-events stream that says
`update` with the node's event count at most every `LIVE_DEBOUNCE_S`, and a comment every
`LIVE_HEARTBEAT_S` so proxies keep the connection.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence

import anyio
import msgspec
from litestar import get
from litestar.datastructures import State
from litestar.response import ServerSentEvent, ServerSentEventMessage

from coopnet.node.engine.auth import RESIDENT
from coopnet.protocol import Envelope

LIVE_DEBOUNCE_S = 0.5
LIVE_HEARTBEAT_S = 15.0


class Changes:
    """Wakes every live client when events are stored."""

    def __init__(self) -> None:
        self.version = 0
        self._event = anyio.Event()

    def notice(self, events: Sequence[Envelope]) -> None:
        """A listener (node/engine/domain.py `Listener`): events were stored."""
        self.version += 1
        self._event.set()
        self._event = anyio.Event()

    async def wait(self, seen: int) -> int:
        """Return the version once it is past `seen`."""
        if self.version == seen:
            await self._event.wait()
        return self.version


async def live_updates(
    changes: Changes, data: Callable[[], Awaitable[object]]
) -> AsyncGenerator[ServerSentEventMessage, None]:
    """Server-sent events: an `update` with `data()` as JSON at once, then after each change
    (at most every `LIVE_DEBOUNCE_S`), and a comment every `LIVE_HEARTBEAT_S` without one.
    The node's `/live` and the observer's `/api/live` both stream this."""
    seen = changes.version
    yield ServerSentEventMessage(data=msgspec.json.encode(await data()).decode(), event="update")
    while True:
        changed = False
        with anyio.move_on_after(LIVE_HEARTBEAT_S):
            await changes.wait(seen)
            changed = True
        if not changed:
            yield ServerSentEventMessage(comment="keep-alive")  # nothing new: no work
            continue
        await anyio.sleep(LIVE_DEBOUNCE_S)  # let a burst of batches land first
        seen = changes.version  # anything after this wakes the next round
        yield ServerSentEventMessage(
            data=msgspec.json.encode(await data()).decode(), event="update"
        )


@get("/live", opt=RESIDENT, summary="Server-sent events: `update` whenever events are stored")
async def live(state: State) -> ServerSentEvent:
    changes: Changes = state.changes

    async def version() -> dict[str, int]:
        return {"version": changes.version}

    return ServerSentEvent(live_updates(changes, version))


__all__ = ["LIVE_DEBOUNCE_S", "LIVE_HEARTBEAT_S", "Changes", "live", "live_updates"]
