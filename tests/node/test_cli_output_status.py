"""`coopnet node status` asks a running node what it is doing, and says when none runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from tests.conftest import make_node, running, wait_until
from tests.node.test_cli_output_market import coopnet

pytestmark = pytest.mark.timeout(120)


async def test_status_of_a_running_node_is_what_the_node_says(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    data = await make_node(tmp_path, "oakley", nats_server.url)
    node = Node(data)
    async with running(node):

        async def published() -> bool:
            status = await coopnet("node", "status", "--data", str(data), "--json")
            return bool(status.json["published"] >= 1)

        await wait_until(published, what="the founding event published")
        status = (await coopnet("node", "status", "--data", str(data), "--json")).json
        assert status["running"] is True
        assert status["bus_connected"] is True and status["ready_to_sign"] is True
        assert status["bus_url"] == nats_server.url and status["published"] >= 1
        assert status["api_url"] == node.api_url != ""
        shown = await coopnet("node", "status", "--data", str(data))
        assert "running · API" in shown.out and "connected to the bus" in shown.out
    stopped = await coopnet("node", "status", "--data", str(data), "--json")
    assert stopped.json["running"] is False
    assert stopped.json["own_head"] == 1 and stopped.json["bus_connected"] is False
    shown = await coopnet("node", "status", "--data", str(data))
    assert "not running" in shown.out
