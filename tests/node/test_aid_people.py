"""Who asked and who pledged (docs/APP.md): a resident acts only on their own call for
help; the requester's coordinators see who pledged and how to reach them; residents see
only what is theirs; no account name or contact reaches the bus."""

from __future__ import annotations

from pathlib import Path

import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from tests.accounts import session
from tests.conftest import make_node, running

pytestmark = pytest.mark.timeout(90)
SOUP = {"category": "food", "urgency": "normal", "quantity": 2, "description": "soup for two"}


async def test_residents_act_on_their_own_and_coordinators_see_who(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    node = Node(await make_node(tmp_path, "oakley", nats_server.url))
    async with (
        running(node),
        session(node, "resident", "ana") as ana,
        session(node, "coordinator", "cora") as cora,
        session(node, "resident", "bob", contact="knock at number 12") as bob,
    ):
        rid = (await ana.post("/aid/requests", json=SOUP)).json()["id"]
        pledged = await bob.post(
            f"/aid/requests/oakley/{rid}/pledges", json={"what": "a pot of soup", "quantity": 1}
        )
        assert pledged.status_code == 201, pledged.text
        # Bob may not close, escalate or withdraw Ana's request.
        for action in ("fulfil", "withdraw", "escalate"):
            r = await bob.post(f"/aid/requests/{rid}/{action}")
            assert (r.status_code, r.json()["code"]) == (403, "not_yours"), action
        # What each sees.
        (as_ana,) = (await ana.get("/aid/requests")).json()
        assert as_ana["mine"] is True and "asked_by" not in as_ana
        assert [p["mine"] for p in as_ana["pledges"]] == [False]
        assert "pledged_by" not in as_ana["pledges"][0]
        (as_bob,) = (await bob.get("/aid/requests")).json()
        assert as_bob["mine"] is False and as_bob["pledges"][0]["mine"] is True
        (as_cora,) = (await cora.get("/aid/requests")).json()
        assert as_cora["asked_by"]["name"] == "ana"
        assert as_cora["pledges"][0]["pledged_by"] == {
            "name": "bob", "display_name": "bob", "contact": "knock at number 12"
        }  # fmt: skip
        # The federation hears of it without a name: escalated by its asker.
        assert (await ana.post(f"/aid/requests/{rid}/escalate")).status_code == 201
        log = (await cora.get("/log", params={"author": "oakley"})).text
        assert "aid.requested" in log
        for private in ("ana", "bob", "cora", "number 12"):
            assert private not in log, private
        assert (await ana.post(f"/aid/requests/{rid}/withdraw")).status_code == 201
