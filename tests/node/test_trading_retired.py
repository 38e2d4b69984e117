"""No step toward settling with a retired neighborhood (node/market/trading.py; PROTOCOL.md
§16.5: a retired neighborhood's balance is frozen): a trade left open when a neighborhood
retired is neither shipped to it nor received from it; both steps are refused
`not_a_member`, as proposing and accepting are. Real nodes under a charter on a real
nats-server.

`governance.retire` refuses a neighborhood with open trades (it must settle first), so the
case is built as a node that skipped that check builds it: ben signs `membership.retired`
through the node's lower-level `post`, with two trades open."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.refusals import Refused
from coopnet.node.market import projection as market
from coopnet.node.runtime import Node
from coopnet.protocol.membership import MembershipRetired
from tests.conftest import converged, running, wait_until
from tests.federation.test_audit import eggs, everywhere
from tests.node.test_governance import everywhere as standing_everywhere
from tests.node.test_governance import federation

pytestmark = pytest.mark.timeout(120)


async def test_a_trade_open_with_a_retired_neighborhood_is_not_shipped_nor_received(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    dirs = await federation(tmp_path, nats_server.url, joining=())
    ana, ben = (Node(data, serve_api=False) for data in dirs[:2])
    async with running(ana, ben):
        await ana.post(eggs(20, offer="eggs-ana"))
        await ben.post(eggs(20, offer="eggs-ben"))
        await wait_until(lambda: converged(ana, ben), what="both offers on both nodes")

        # ben buys from ana: accepted, ana's to ship.
        await ben.trading.propose("ana", "eggs-ana", 4, trade="t-ship")
        await everywhere([ana], "ben", "t-ship", "proposed")
        await ana.trading.accept("ben", "t-ship")
        # ana buys from ben: shipped, ana's to receive (which settles).
        await ana.trading.propose("ben", "eggs-ben", 3, trade="t-receive")
        await everywhere([ben], "ana", "t-receive", "proposed")
        await ben.trading.accept("ana", "t-receive")
        await ben.trading.ship("ana", "t-receive")
        await everywhere([ana], "ana", "t-receive", "shipped")
        await everywhere([ana], "ben", "t-ship", "accepted")

        await ben.post(MembershipRetired(reason="moving away"))  # the settle check skipped
        with anyio.fail_after(30):
            await ben.stopped.wait()
        await standing_everywhere((ana,), "ben", "retired")
        balances = await market.balances(ana.store.db)

        with pytest.raises(Refused) as shipped:
            await ana.trading.ship("ben", "t-ship")
        assert shipped.value.code == "not_a_member"
        assert "ben is not a member of the federation (retired)" in shipped.value.message

        with pytest.raises(Refused) as received:
            await ana.trading.receive("ana", "t-receive")
        assert received.value.code == "not_a_member"
        assert "ben is not a member of the federation (retired)" in received.value.message

        # Nothing signed: both trades stay open, ben's balance stays where it froze.
        await everywhere([ana], "ben", "t-ship", "accepted")
        await everywhere([ana], "ana", "t-receive", "shipped")
        assert await market.balances(ana.store.db) == balances
        assert balances.get("ben", 0) == 0
