"""`coopnet pool …` against running nodes' APIs: open, commit, withdraw, close, deliver,
receive, in the federation's currency, with ids printed and refusals as codes."""

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

pytestmark = pytest.mark.timeout(180)


async def coopnet(*args: str, as_json: bool = True) -> tuple[int, Any]:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "coopnet", *args, *(["--json"] if as_json else [])],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    out = await anyio.to_thread.run_sync(run)
    if not as_json:
        return out.returncode, out.stdout + out.stderr
    return out.returncode, json.loads(out.stdout) if out.stdout.strip() else out.stderr


async def test_a_pool_from_the_command_line(tmp_path: Path, nats_server: NatsServer) -> None:
    datas = [await make_node(tmp_path, s, nats_server.url) for s in ("oakley", "elm", "ash")]
    nodes = tuple(Node(d) for d in datas)
    oak, elm, ash = (str(d) for d in datas)
    async with running(*nodes):
        code, text = await coopnet(
            "pool", "open", "rolled oats", "--unit", "kg", "--case-size", "10", "--price",
            "1.20", "--supplier", "ash", "--id", "oats", "--data", oak, as_json=False,
        )  # fmt: skip
        assert code == 0, text
        assert text.startswith("pool oats opened: cases of 10 kilograms of rolled oats at")
        assert "1.20 credits per kilogram from ash" in text
        await wait_until(lambda: converged(*nodes), what="the opening spreads")
        code, made = await coopnet("pool", "commit", "oats", "--quantity", "2", "--data", elm)
        assert code == 0, made
        assert made["id"] == "oats" and made["event"]["kind"] == "pool.committed"
        assert made["currency"] == "CRD"
        code, made = await coopnet("pool", "withdraw", "oakley", "oats", "--data", elm)
        assert code == 0 and made["event"]["kind"] == "pool.committed"
        code, text = await coopnet(
            "pool", "commit", "oats", "--quantity", "6", "--tolerance", "1", "--data", elm,
            as_json=False,
        )  # fmt: skip
        assert code == 0 and "6 kilograms committed, up to 1 more" in text, text
        assert "holds 8.40 credits" in text
        code, made = await coopnet("pool", "commit", "oats", "--quantity", "3", "--data", oak)
        assert code == 0, made
        await wait_until(lambda: converged(*nodes), what="the commitments spread")
        code, listed = await coopnet("pool", "list", "--state", "open", "--data", ash)
        assert [(p["organizer"], p["pool"], p["committed"]) for p in listed] == [
            ("oakley", "oats", 9)
        ]
        # Not the organizer: a clear code, and exit status 1.
        code, refused = await coopnet("pool", "close", "oats", "--data", elm)
        assert code == 1 and refused["code"] == "not_authorized"
        code, closed = await coopnet("pool", "close", "oats", "--data", oak)
        assert code == 0 and closed["event"]["kind"] == "pool.closed", closed
        assert closed["state"] == "closed" and closed["cases"] == 1
        shares = {s["participant"]: s["share"] for s in closed["shares"]}
        assert shares["oakley"] == 3 and shares["elm"] == 7
        code, delivered = await coopnet("pool", "deliver", "oats", "--data", oak)
        assert code == 0 and delivered["state"] == "delivered"
        await wait_until(lambda: converged(*nodes), what="the delivery spreads")
        code, text = await coopnet("pool", "receive", "oats", "--data", elm, as_json=False)
        assert code == 0 and "received: 7 kilograms, 8.40 credits to oakley" in text, text
        await wait_until(lambda: converged(*nodes), what="the receipt spreads")
        code, balance = await coopnet("balance", "--data", ash)
        assert balance["ledger"] == {"oakley": -1200 + 840, "elm": -840, "ash": 1200}
        assert balance["ledger_sum"] == 0
        code, text = await coopnet("pool", "show", "oats", "--data", ash, as_json=False)
        assert code == 0 and "elm pays oakley 8.40 credits" in text, text
        assert "oakley pays ash 12.00 credits" in text
