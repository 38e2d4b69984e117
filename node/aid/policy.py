"""An optional per-node aid policy: pledges and accepts calls for help automatically.

With `auto_aid = true` in node.toml, the node pledges what an escalated request of another
neighborhood still needs, and for its own escalated requests accepts pledges up to the need
and confirms fulfilment once it is covered. Every step goes through `Aid`, so the policy can
do nothing a resident could not. An unattended node and the demo help each other this way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anyio

from coopnet.node.aid.projection import load_request
from coopnet.node.aid.requests import Aid
from coopnet.node.engine.context import NodeContext
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store_io import fetch_all
from coopnet.protocol import Envelope
from coopnet.protocol.aid import aid_key

log = logging.getLogger("coopnet.policy")
SWEEP_S = 5.0


class AidPolicy:
    """With `auto_aid = true`: pledge what an escalated request of another neighborhood still
    needs; for this node's own escalated requests, accept pledges up to the need and confirm
    fulfilment once it is covered. Every step goes through `Aid`, within the rules."""

    def __init__(self, node: NodeContext, aid: Aid) -> None:
        self.node = node
        self.aid = aid
        self._wake = anyio.Event()

    def notice(self, events: Sequence[Envelope]) -> None:
        if any(aid_key(e.author, e.body) is not None for e in events):
            self._wake.set()

    async def run(self) -> None:
        await self.node.ready.wait()
        while True:
            with anyio.move_on_after(SWEEP_S):
                await self._wake.wait()
            self._wake = anyio.Event()
            await self.sweep()

    async def sweep(self) -> None:
        aid, me, now = self.aid, self.node.slug, self.node.clock()
        rows = await fetch_all(self.node.store.db, "SELECT requester, request FROM aid_requests")
        for requester, request in rows:
            view = await load_request(self.node.store.db, str(requester), str(request))
            state = view.state_at(now)
            try:
                if view.requester != me:
                    if state in ("open", "partly_pledged") and not any(
                        p.pledger == me and p.state == "pledged" for p in view.pledges
                    ):
                        await aid.pledge(
                            view.requester, view.request, f"help from {me}",
                            max(1, view.quantity - view.pledged),
                        )  # fmt: skip
                    continue
                for p in view.pledges:
                    fits = view.accepted + p.quantity <= view.quantity
                    if p.state == "pledged" and not p.accepted and fits:
                        await aid.accept(view.request, p.pledger, p.pledge)
                        view.accepted += p.quantity
                if view.requester_state == "open" and view.accepted >= view.quantity:
                    await aid.fulfil(view.request)
            except Refused as exc:
                log.debug("%s: aid step on %s/%s refused: %s", me, requester, request, exc.message)
