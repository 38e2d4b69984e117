"""`coopnet offer|need|match|trade|balance` against running nodes' APIs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from tests.conftest import converged, make_node, running, wait_until

pytestmark = pytest.mark.timeout(120)


async def coopnet(*args: str) -> tuple[int, Any]:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "coopnet", *args, "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    out = await anyio.to_thread.run_sync(run)
    return out.returncode, json.loads(out.stdout) if out.stdout.strip() else out.stderr


async def test_market_from_the_command_line(tmp_path: Path, nats_server: NatsServer) -> None:
    oak_data = await make_node(tmp_path, "oakley", nats_server.url)
    elm_data = await make_node(tmp_path, "elm", nats_server.url)
    oak, elm = Node(oak_data), Node(elm_data)
    async with running(oak, elm):
        code, ref = await coopnet(
            "offer", "post", "sourdough loaves", "--category", "bakery", "--quantity", "40",
            "--unit", "piece", "--price", "4.50", "--id", "bread-1", "--data", str(oak_data),
        )  # fmt: skip
        assert code == 0 and ref["event"]["kind"] == "offer.posted"
        code, _ = await coopnet(
            "need", "post", "sourdough", "--category", "bakery", "--quantity", "10",
            "--unit", "piece", "--data", str(elm_data),
        )  # fmt: skip
        assert code == 0
        await wait_until(lambda: converged(oak, elm), what="convergence")
        code, offers = await coopnet("offer", "list", "--data", str(elm_data))
        assert [(o["author"], o["offer"], o["remaining"]) for o in offers] == [
            ("oakley", "bread-1", 40)
        ]
        code, matches = await coopnet("match", "--data", str(elm_data))
        assert [m["offer"] for found in matches.values() for m in found] == ["bread-1"]
        code, ref = await coopnet(
            "trade", "propose", "oakley", "bread-1", "--quantity", "10", "--data", str(elm_data)
        )
        assert code == 0 and ref["event"]["kind"] == "trade.proposed"
        await wait_until(lambda: converged(oak, elm), what="the proposal spreads")
        code, trades = await coopnet("trade", "list", "--data", str(oak_data))
        trade = trades[0]["trade"]
        for action, data in (("accept", oak_data), ("ship", oak_data), ("receive", elm_data)):
            await wait_until(lambda: converged(oak, elm), what=f"before {action}")
            code, ref = await coopnet("trade", action, "elm", trade, "--data", str(data))
            assert code == 0, ref
        await wait_until(lambda: converged(oak, elm), what="settlement spreads")
        code, balance = await coopnet("balance", "--data", str(oak_data))
        assert balance["balance"] == 4500
        assert balance["ledger"] == {"oakley": 4500, "elm": -4500}
        assert balance["ledger_sum"] == 0
        # A refusal is a clear code, and exit status 1.
        code, refused = await coopnet(
            "trade", "propose", "oakley", "bread-1", "--quantity", "31", "--data", str(elm_data)
        )
        assert code == 1
        assert refused["code"] == "offer_unavailable"


async def test_commands_need_a_running_node(tmp_path: Path) -> None:
    data = await make_node(tmp_path, "oakley", "nats://127.0.0.1:9")
    code, err = await coopnet("balance", "--data", str(data))
    assert code == 2
    assert "no running node" in err
