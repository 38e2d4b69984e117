"""The organizer's activity: a node closes the pools it organizes on time (PROTOCOL.md §19).

Every node runs it for its own pools (there is nothing to switch on: a pool's `closes_at`
is the organizer's promise). For each of its pools still open or in box fill:

- as soon as the latest commitments reach the pool's capacity (max_cases × case_size
  units), it closes the pool;
- at `closes_at`, a pool whose commitments leave a case open (the allocation would give
  someone less than its quantity) turns to box fill, so the participants counted may
  raise to fill that case, and is closed `box_fill_s` seconds later (node.toml
  `[pools] box_fill_s`, default 600; 0 closes at once); any other pool closes then.

A pool below its minimum when it closes is cancelled by the rule every node applies, not
by this activity. Every step goes through `Pooling`, so the activity can do nothing an
organizer could not.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import anyio

from coopnet.node.engine.context import NodeContext
from coopnet.node.engine.refusals import Refused
from coopnet.node.pools import projection as pools
from coopnet.node.pools.pooling import Pooling
from coopnet.protocol import Envelope
from coopnet.protocol.pools import allocate, pool_key

log = logging.getLogger("coopnet.pools")
SWEEP_S = 5.0


class PoolOrganizer:
    """Closes this node's pools at their time, through `pooling`."""

    def __init__(self, node: NodeContext, pooling: Pooling) -> None:
        self.node = node
        self.pooling = pooling
        self._wake = anyio.Event()

    @property
    def box_fill_ms(self) -> int:
        return self.node.config.pools.box_fill_s * 1000

    def notice(self, events: Sequence[Envelope]) -> None:
        """Called after each commit: a statement about one of this node's pools wakes it."""
        me = self.node.slug
        if any((pool_key(e.author, e.body) or ("",))[0] == me for e in events):
            self._wake.set()

    async def run(self) -> None:
        await self.node.ready.wait()
        while True:
            due = await self.sweep()
            wait = SWEEP_S if due is None else max(0.0, (due - self.node.clock()) / 1000)
            with anyio.move_on_after(min(SWEEP_S, wait)):
                await self._wake.wait()
            self._wake = anyio.Event()

    async def sweep(self) -> int | None:
        """Take the steps due on this node's pools; the next time one is due (ms), if any."""
        me, db = self.node.slug, self.node.store.reader
        due: list[int] = []
        for p in await pools.all_pools(db):
            if p["organizer"] != me or p["state"] not in ("open", "box_fill"):
                continue
            found = await pools.load_pool(db, me, p["pool"])
            if found is None:
                continue
            try:
                when = await self.step(found)
            except Refused as exc:  # the pool moved on meanwhile; the next sweep decides
                log.debug("%s: organizer step on %s refused: %s", me, p["pool"], exc.message)
                continue
            if when is not None:
                due.append(when)
        return min(due, default=None)

    async def step(self, p: dict[str, Any]) -> int | None:
        """The next step on one pool of this node's, if due now; else when it is due (ms)."""
        now, pool = self.node.clock(), p["pool"]
        asked = [(s["participant"], s["quantity"], s["tolerance"]) for s in p["shares"]]
        quantity = sum(q for _, q, _ in asked)
        capacity = p["max_cases"] * p["case_size"]
        if capacity and quantity >= capacity:
            await self.pooling.close(pool)
            return None
        if p["state"] == "box_fill":
            at, _ = await pools.box_fill(self.node.store.reader, p["organizer"], pool)
            if now < at + self.box_fill_ms:
                return at + self.box_fill_ms
            await self.pooling.close(pool)
            return None
        if now < p["closes_at"]:
            return int(p["closes_at"])
        counted = [a for a in asked if a[1] > 0]
        alloc = allocate(p["organizer"], pool, p["case_size"], p["max_cases"], counted)
        if alloc.cases * p["case_size"] < quantity and self.box_fill_ms > 0:
            await self.pooling.box_fill(pool)
            return now + self.box_fill_ms
        await self.pooling.close(pool)
        return None


__all__ = ["PoolOrganizer"]
