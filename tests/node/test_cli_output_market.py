"""`coopnet offer|need|trade|balance` against running nodes: what a command creates, it
prints with its id; amounts in the currency's units; tables at 80 columns keep ids whole;
a trade is named by its id alone."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from coopnet.protocol.charter import Currency
from tests.conftest import converged, make_node, running, wait_until
from tests.node.test_currency_config import chartered_node

pytestmark = pytest.mark.timeout(150)


class Ran:
    """One `coopnet` run: exit code, stdout, stderr, and stdout as JSON when it is."""

    def __init__(self, out: subprocess.CompletedProcess[str]) -> None:
        self.code, self.out, self.err = out.returncode, out.stdout, out.stderr

    @property
    def json(self) -> Any:
        return json.loads(self.out)


async def coopnet(*args: str) -> Ran:
    """Run the `coopnet` command as a person would, in a terminal 80 columns wide."""

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "coopnet", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "COLUMNS": "80"},
        )

    return Ran(await anyio.to_thread.run_sync(run))


async def test_what_the_market_commands_create_they_print(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    oak_data = await make_node(tmp_path, "oakley", nats_server.url)
    elm_data = await make_node(tmp_path, "elm", nats_server.url)
    oak, elm = Node(oak_data), Node(elm_data)
    oak_d, elm_d = str(oak_data), str(elm_data)
    async with running(oak, elm):
        posted = await coopnet(
            "offer", "post", "sourdough loaves", "--category", "bakery", "--quantity", "40",
            "--unit", "piece", "--price", "4.50", "--data", oak_d,
        )  # fmt: skip
        assert posted.code == 0, posted.err
        found = re.fullmatch(
            r"offer (o-[0-9a-f]{8}) posted: 40 pieces of sourdough loaves at 4\.50 credits"
            r" per piece \(event #2\)\n",
            posted.out,
        )
        assert found, posted.out
        bread = found[1]
        eggs = await coopnet(
            "offer", "post", "eggs", "--category", "dairy-eggs", "--quantity", "12",
            "--unit", "count", "--price", "0.3", "--data", oak_d, "--json",
        )  # fmt: skip
        made = eggs.json
        assert made["id"] == made["offer"] and made["offer"].startswith("o-")
        assert (made["author"], made["item"], made["quantity"], made["remaining"]) == (
            "oakley", "eggs", 12, 12,
        )  # fmt: skip
        assert (made["unit"], made["unit_price"], made["currency"]) == ("piece", 30, "CRD")
        assert made["event"]["kind"] == "offer.posted" and made["event"]["seq"] == 3
        need = await coopnet(
            "need", "post", "sourdough", "--category", "bakery", "--quantity", "10",
            "--unit", "piece", "--max-price", "5", "--data", elm_d, "--json",
        )  # fmt: skip
        assert need.json["id"] == need.json["need"] and need.json["max_unit_price"] == 500
        dozens = await coopnet(
            "offer", "post", "duck eggs", "--category", "dairy-eggs", "--quantity", "3",
            "--unit", "dozen", "--price", "4", "--data", oak_d,
        )  # fmt: skip
        assert "posted: 3 dozen duck eggs at 4.00 credits per dozen (event #4)" in dozens.out
        refused = await coopnet(
            "offer", "post", "jam", "--category", "other", "--quantity", "1", "--unit",
            "piece", "--price", "4.505", "--data", oak_d,
        )  # fmt: skip
        assert refused.code == 2 and "3 decimal places; credits have 2" in refused.err
        assert "Traceback" not in refused.err

        await wait_until(lambda: converged(oak, elm), what="the offers spread")
        listed = await coopnet("offer", "list", "--data", elm_d)
        assert bread in listed.out and made["offer"] in listed.out  # whole, at 80 columns
        assert "4.50 credits" in listed.out and "0.30 credits" in listed.out

        proposed = await coopnet("trade", "propose", bread, "--quantity", "10", "--data", elm_d)
        assert proposed.code == 0, proposed.err
        found = re.match(
            r"trade (t-[0-9a-f]{8}) proposed to oakley: 10 pieces of sourdough loaves at"
            r" 4\.50 credits per piece, 45\.00 credits in all",
            proposed.out,
        )
        assert found, proposed.out
        trade = found[1]
        assert f"coopnet trade accept {trade}" in proposed.out
        await wait_until(lambda: converged(oak, elm), what="the proposal spreads")
        listed = await coopnet("trade", "list", "--data", oak_d)
        assert trade in listed.out and "45.00 credits" in listed.out
        # The trade's id is enough; the buyer's name still works before it.
        for action, data, args, kind in (
            ("accept", oak_d, [trade], "trade.accepted"),
            ("ship", oak_d, ["elm", trade], "trade.shipped"),
            ("receive", elm_d, [trade], "trade.received"),
        ):
            await wait_until(lambda: converged(oak, elm), what=f"before {action}")
            moved = await coopnet("trade", action, *args, "--data", data, "--json")
            assert moved.code == 0, moved.out + moved.err
            assert (moved.json["id"], moved.json["buyer"]) == (trade, "elm")
            assert moved.json["event"]["kind"] == kind
        await wait_until(lambda: converged(oak, elm), what="settlement spreads")
        balance = await coopnet("balance", "--data", oak_d, "--json")
        assert (balance.json["balance"], balance.json["currency"]) == (4500, "CRD")
        shown = await coopnet("balance", "--data", oak_d)
        assert "balance 45.00 credits" in shown.out and "-45.00 credits" in shown.out
        unknown = await coopnet("trade", "ship", "t-00000000", "--data", oak_d)
        assert unknown.code == 1 and "no trade t-00000000" in unknown.err


async def test_amounts_are_in_the_charters_currency(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    pounds = Currency(code="GBP", name="Riverside pounds", symbol="£", minor_units=2)
    data = await chartered_node(tmp_path, pounds, nats_server.url)
    async with running(Node(data)):
        posted = await coopnet(
            "offer", "post", "childcare", "--category", "care", "--quantity", "2",
            "--unit", "hour", "--price", "£12.5", "--data", str(data),
        )  # fmt: skip
        assert posted.code == 0, posted.err
        assert "posted: 2 hours of childcare at £12.50 per hour" in posted.out
        made = (await coopnet("offer", "list", "--data", str(data), "--json")).json
        assert [(o["unit_price"], o["currency"]) for o in made] == [(1250, "GBP")]
        shown = await coopnet("balance", "--data", str(data))
        assert "balance £0.00" in shown.out
