"""After `trade propose`, the hint names the command the seller's node runs, whole: with
`--data`, which a newcomer would otherwise leave out."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import pytest

from coopnet.deploy.cli import main
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from tests.conftest import converged, make_node, running, wait_until

pytestmark = pytest.mark.timeout(120)


async def test_the_hint_after_a_proposal_says_where_the_seller_answers(
    tmp_path: Path, nats_server: NatsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    oak_data = await make_node(tmp_path, "oakley", nats_server.url)
    elm_data = await make_node(tmp_path, "elm", nats_server.url)
    oak, elm = Node(oak_data), Node(elm_data)

    def coopnet(*args: str) -> str:
        assert main(list(args)) == 0
        return capsys.readouterr().out

    async with running(oak, elm):
        posted = await anyio.to_thread.run_sync(
            lambda: coopnet("offer", "post", "bread", "--category", "bakery", "--quantity",
                            "4", "--unit", "piece", "--price", "3", "--data", str(oak_data))
        )  # fmt: skip
        offer = re.search(r"o-[0-9a-f]{8}", posted)
        assert offer, posted
        await wait_until(lambda: converged(oak, elm), what="the offer spreads")
        proposed = await anyio.to_thread.run_sync(
            lambda: coopnet("trade", "propose", offer[0], "--quantity", "1", "--data",
                            str(elm_data))
        )  # fmt: skip
    trade = re.search(r"t-[0-9a-f]{8}", proposed)
    assert trade, proposed
    assert proposed.splitlines()[-1] == (
        f"oakley's node answers with: coopnet trade accept {trade[0]} --data <oakley's data dir>"
    )
