"""An organizer does not retire while its delivered pool waits for a participant's receipt
(PROTOCOL.md §16.5, §19): between real nodes over a real nats-server."""

from __future__ import annotations

from pathlib import Path

import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store import now_ms
from coopnet.node.membership.settlement import unsettled
from coopnet.node.runtime import Node
from tests.conftest import converged, make_node, running, wait_until
from tests.federation.test_measures_pools_hours import commitments_held, pool_everywhere

pytestmark = pytest.mark.timeout(120)
DAY_MS = 86_400_000


async def test_an_organizer_with_a_receipt_pending_does_not_retire(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    nodes = [Node(await make_node(tmp_path, s, url), serve_api=False) for s in ("ana", "ben")]
    async with running(*nodes) as (ana, ben):
        await wait_until(lambda: converged(ana, ben), what="ana and ben know each other")
        # Oats from a farm outside the federation: nobody is paid on delivery, so ana's
        # balance stays 0 until ben's receipt pays it.
        await ana.pooling.open(
            pool="o", item="oats", unit="kilogram", case_size=10, unit_price=100,
            closes_at=now_ms() + DAY_MS, supplier_name="Valley",
        )  # fmt: skip
        await pool_everywhere([ana, ben], "ana", "o", "open")
        await ana.pooling.commit("ana", "o", 5)  # the organizer's own share: no receipt owed
        await ben.pooling.commit("ana", "o", 5)
        await commitments_held(ana, "ana", "o", 2)
        await ana.pooling.close("o")
        await pool_everywhere([ana, ben], "ana", "o", "closed")
        await ana.pooling.deliver("o")
        await pool_everywhere([ana, ben], "ana", "o", "delivered")

        left = (await unsettled(ana.store.db, ["ana"], now_ms()))["ana"]
        assert (left.balance, left.open_trades, left.open_pools) == (0, (), ("ana/o",))
        with pytest.raises(Refused) as refused:
            await ana.governance.retire("moving away")
        assert refused.value.code == "balance_not_settled"
        message = refused.value.message
        assert "1 pool(s) are open: ana/o" in message, message
        assert "wait for every participant's receipt" in message

        await ben.pooling.receive("ana", "o")

        async def received() -> bool:
            done = (await unsettled(ana.store.db, ["ana"], now_ms()))["ana"]
            return (done.balance, done.open_pools) == (500, ())

        await wait_until(received, what="ben's receipt at ana: the pool is over")
        with pytest.raises(Refused) as refused:
            await ana.governance.retire("moving away")
        assert "pool(s) are open" not in refused.value.message  # only its balance now
