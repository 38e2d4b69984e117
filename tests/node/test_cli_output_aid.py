"""`coopnet aid|alert|note` against running nodes: ids printed, requests named by their id
alone, the description shown whole at 80 columns, times as durations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from tests.conftest import converged, make_node, running, wait_until
from tests.node.test_cli_output_market import coopnet

pytestmark = pytest.mark.timeout(150)

DESCRIPTION = "Soup and bread for forty people at the hall tonight, vegetarian if possible"


async def test_what_the_aid_commands_create_they_print(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    oak_data = await make_node(tmp_path, "oakley", nats_server.url)
    elm_data = await make_node(tmp_path, "elm", nats_server.url)
    oak, elm = Node(oak_data), Node(elm_data)
    oak_d, elm_d = str(oak_data), str(elm_data)
    async with running(oak, elm):
        local = await coopnet(
            "aid", "request", "Beds for a family for two nights", "--category", "shelter",
            "--urgency", "critical", "--quantity", "2", "--data", oak_d,
        )  # fmt: skip
        assert local.code == 0, local.err
        said = r"request r-[0-9a-f]{8} raised \(critical, shelter, 2 needed, needed in 1 d\): kept"
        assert re.match(said + " in the neighborhood", local.out), local.out
        assert "after 15 min" in local.out  # when the federation will be asked
        asked = await coopnet(
            "aid", "request", DESCRIPTION, "--category", "food", "--urgency", "high",
            "--quantity", "40", "--escalate-now", "--data", oak_d, "--json",
        )  # fmt: skip
        made = asked.json
        rid = made["id"]
        assert (made["request"], made["requester"], made["description"]) == (
            rid, "oakley", DESCRIPTION,
        )  # fmt: skip
        assert made["escalated"] is True
        await wait_until(lambda: converged(oak, elm), what="the request spreads")

        listed = await coopnet("aid", "list", "--data", elm_d)
        assert rid in listed.out and "from oakley" in listed.out
        words = " ".join(
            line.split("│")[3].strip() for line in listed.out.splitlines() if line.count("│") > 4
        )
        assert DESCRIPTION in words  # wrapped, not cut
        assert "in 1 d" in listed.out and "min" not in listed.out.replace("1 d", "")

        pledged = await coopnet(
            "aid", "pledge", rid, "--what", "a pot of soup", "--quantity", "20", "--data", elm_d
        )
        assert pledged.code == 0, pledged.err
        found = re.match(rf"pledge (p-[0-9a-f]{{8}}) made to oakley's request {rid}", pledged.out)
        assert found, pledged.out
        pid = found[1]
        await wait_until(lambda: converged(oak, elm), what="the pledge spreads")
        accepted = await coopnet("aid", "accept", rid, pid, "--data", oak_d)
        assert accepted.code == 0, accepted.err
        assert accepted.out == f"pledge {pid} of elm accepted for request {rid}\n"
        done = await coopnet("aid", "fulfil", rid, "--data", oak_d)
        assert done.out == f"request {rid} fulfilled\n"

        alert = await coopnet(
            "alert", "raise", "storm", "--severity", "danger", "--advice",
            "The hall is open all night", "--data", oak_d,
        )  # fmt: skip
        found = re.fullmatch(
            r"alert (a-[0-9a-f]{8}) raised \(danger storm\): The hall is open all night\n",
            alert.out,
        )
        assert found, alert.out
        await wait_until(lambda: converged(oak, elm), what="the alert spreads")
        alerts = await coopnet("alert", "list", "--data", elm_d)
        assert found[1] in alerts.out and "now" in alerts.out

        note = await coopnet("note", "post", "Seedlings to share", "--data", oak_d, "--json")
        assert note.code == 0, note.err
        assert (note.json["author"], note.json["kind"]) == ("oakley", "note.posted")
        assert note.json["body"]["text"] == "Seedlings to share"
        await wait_until(lambda: converged(oak, elm), what="the note spreads")
        notes = await coopnet("note", "list", "--data", elm_d)
        assert f"oakley#{note.json['seq']}" in notes.out and "Seedlings to share" in notes.out
