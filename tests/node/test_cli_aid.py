"""`coopnet aid|alert` against running nodes' APIs."""

from __future__ import annotations

from pathlib import Path

import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from tests.conftest import converged, make_node, running, wait_until
from tests.node.test_cli_market import coopnet

pytestmark = pytest.mark.timeout(120)


async def test_call_for_help_from_the_command_line(tmp_path: Path, nats_server: NatsServer) -> None:
    oak_data = await make_node(tmp_path, "oakley", nats_server.url)
    elm_data = await make_node(tmp_path, "elm", nats_server.url)
    oak, elm = Node(oak_data), Node(elm_data)
    async with running(oak, elm):
        code, made = await coopnet(
            "aid", "request", "Beds for a family for two nights", "--category", "shelter",
            "--urgency", "critical", "--quantity", "2", "--escalate-now", "--data", str(oak_data),
        )  # fmt: skip
        assert code == 0, made
        rid = made["id"]
        await wait_until(lambda: converged(oak, elm), what="the request spreads")
        code, listed = await coopnet("aid", "list", "--data", str(elm_data))
        assert [(r["requester"], r["request"], r["state"]) for r in listed] == [
            ("oakley", rid, "open")
        ]
        code, pledge = await coopnet(
            "aid", "pledge", "oakley", rid, "--what", "two beds", "--quantity", "2",
            "--data", str(elm_data),
        )  # fmt: skip
        assert code == 0, pledge
        await wait_until(lambda: converged(oak, elm), what="the pledge spreads")
        code, _ = await coopnet("aid", "accept", rid, "elm", pledge["id"], "--data", str(oak_data))
        assert code == 0
        code, _ = await coopnet("aid", "fulfil", rid, "--data", str(oak_data))
        assert code == 0
        await wait_until(lambda: converged(oak, elm), what="fulfilment spreads")
        code, listed = await coopnet("aid", "list", "--all", "--data", str(elm_data))
        assert listed[0]["state"] == "fulfilled"
        code, refused = await coopnet(
            "aid", "request", "Call me on 0612 345 678", "--category", "food",
            "--urgency", "low", "--data", str(oak_data),
        )  # fmt: skip
        assert code == 1 and refused["code"] == "personal_data"
        code, alert = await coopnet(
            "alert", "raise", "storm", "--severity", "danger", "--advice", "Stay in",
            "--data", str(oak_data),
        )  # fmt: skip
        assert code == 0
        await wait_until(lambda: converged(oak, elm), what="the alert spreads")
        code, alerts = await coopnet("alert", "list", "--data", str(elm_data))
        assert [(a["kind"], a["severity"]) for a in alerts] == [("storm", "danger")]
        code, _ = await coopnet("alert", "resolve", alert["id"], "--data", str(oak_data))
        assert code == 0
