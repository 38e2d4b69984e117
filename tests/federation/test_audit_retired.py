"""The audit flags a neighborhood that retired without settling (PROTOCOL.md §16.5, §17):
real nodes and an observer over a real nats-server. Its own node would have refused; the
retirement here is signed past that check, as a node of another make could."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.market import projection as market
from coopnet.protocol.membership import MembershipRetired
from tests.conftest import converged, running, wait_until
from tests.federation.test_audit import eggs, everywhere, finding, findings, honest, observing

pytestmark = pytest.mark.timeout(90)


async def test_a_retired_member_with_a_balance_and_an_open_trade_is_a_warning(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    nodes = await honest(tmp_path, url, "oakley", "elm")
    async with running(*nodes) as (oakley, elm), observing(tmp_path / "observer", url) as obs:
        await oakley.post(eggs(50))
        await wait_until(lambda: converged(oakley, elm), what="the offer at elm")
        await elm.trading.propose("oakley", "eggs-1", 4, trade="t-1")
        await everywhere([oakley], "elm", "t-1", "proposed")
        await oakley.trading.accept("elm", "t-1")
        await oakley.trading.ship("elm", "t-1")
        await everywhere([elm], "elm", "t-1", "shipped")
        await elm.trading.receive("elm", "t-1")
        open_trade = await elm.trading.propose("oakley", "eggs-1", 2, trade="t-2")
        await everywhere([oakley, obs], "elm", "t-2", "proposed")
        assert await findings(obs) == []  # in debt, but a member: nothing to say

        # Signed past its own node's check (Governance.retire would refuse it).
        retired = await elm.post(MembershipRetired(reason="gone"))
        with anyio.fail_after(30):
            await elm.stopped.wait()  # it stopped by itself, its retirement published
        f = await finding(obs, "retired_unsettled", "elm", with_evidence=retired.id.hex())
        assert f.severity == "warning"
        assert f.evidence == [retired.id.hex(), open_trade.id.hex()]
        assert f.title == "elm retired with a balance of -140 cents and 1 open trade(s)"
        assert "elm/t-2 with oakley (proposed, 70 cents)" in f.detail
        assert "frozen" in f.detail and "the members decide how to absorb it" in f.detail
        # The ledger still sums to zero: nothing critical, and oakley is not flagged.
        assert [x.code for x in await findings(obs)] == ["retired_unsettled"]
        assert await market.balances(obs.store.db) == {"oakley": 140, "elm": -140}
