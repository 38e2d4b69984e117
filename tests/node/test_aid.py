"""Mutual aid over a real nats-server: local first, escalation, pledges, refusals, alerts."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import nats
import pytest
from nats.aio.msg import Msg

from coopnet.node.aid.projection import load_request
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.refusals import Refused
from coopnet.node.runtime import Node
from coopnet.protocol import NotePosted, unseal
from coopnet.protocol.aid import AidPledgeAccepted, AidPledged
from tests.conftest import NET, converged, make_node, running, wait_until

pytestmark = pytest.mark.timeout(90)
MIN = 60_000


class Clock:
    """An injectable clock: tests move time, they never sleep for it."""

    def __init__(self) -> None:
        self.now = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.now


async def state_of(node: Node, requester: str, request: str) -> str:
    return (await load_request(node.store.db, requester, request)).state_at(node.clock())


async def test_escalation_at_each_urgency_with_a_fake_clock(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    clock = Clock()
    node = Node(await make_node(tmp_path, "oakley", nats_server.url), serve_api=False, clock=clock)
    async with running(node):
        ids = {}
        for urgency in ("critical", "high", "normal", "low"):
            ids[urgency] = await node.aid.request(
                category="food", urgency=urgency, needed_in_min=3 * 24 * 60, quantity=2,
                description=f"{urgency} need",
            )  # fmt: skip
        met = await node.aid.request(
            category="food", urgency="critical", needed_in_min=4 * 24 * 60, quantity=1,
            description="met by neighbors",
        )  # fmt: skip
        await node.aid.pledge("oakley", met, "a neighbor's soup", 1)
        steps = [
            (15 * MIN - 1, []),
            (15 * MIN, ["critical"]),
            (2 * 60 * MIN, ["high"]),
            (24 * 60 * MIN, ["normal"]),
            (3 * 24 * 60 * MIN - 1, []),  # low: never by itself
        ]
        start = clock.now
        for offset, expected in steps:
            clock.now = start + offset
            escalated = await node.aid.escalate_due()
            assert sorted(escalated) == sorted(ids[u] for u in expected), offset
        listing = {r["request"]: r for r in await node.aid.listing(include_closed=True)}
        assert listing[ids["low"]]["escalated"] is False
        assert listing[met]["escalated"] is False and listing[met]["state"] == "pledged"


async def test_a_request_met_locally_never_reaches_the_bus(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    seen: list[str] = []
    nc = await nats.connect(nats_server.url)

    async def on_msg(msg: Msg) -> None:
        seen.append(unseal(msg.data, net=NET).kind)

    await nc.subscribe("coop.>", cb=on_msg)
    node = Node(await make_node(tmp_path, "oakley", nats_server.url), serve_api=False)
    try:
        async with running(node):
            rid = await node.aid.request(
                category="eldercare", urgency="critical", needed_in_min=30, quantity=1,
                description="Someone to check on a neighbor tonight",
            )  # fmt: skip
            await node.aid.pledge("oakley", rid, "a neighbor from no. 12", 1)
            await node.aid.fulfil(rid)
            await node.post(NotePosted(text="marker"))

            async def marker_seen() -> bool:
                return "note.posted" in seen

            await wait_until(marker_seen, what="the marker on coop.>")
            assert not [k for k in seen if k.startswith("aid.")]
            listing = await node.aid.listing(include_closed=True)
            assert [(r["request"], r["state"]) for r in listing] == [(rid, "fulfilled")]
    finally:
        await nc.close()


async def test_an_escalated_request_is_pledged_by_another_node_and_fulfilled(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    a, b, c = nodes = [
        Node(await make_node(tmp_path, s, nats_server.url), serve_api=False)
        for s in ("oakley", "elm", "ash")
    ]
    async with running(*nodes):
        rid = await a.aid.request(
            category="shelter", urgency="high", needed_in_min=120, quantity=2,
            description="Beds for a family for two nights", escalate_now=True,
        )  # fmt: skip

        async def everywhere(state: str) -> bool:
            return all([await state_of(n, "oakley", rid) == state for n in nodes])

        await wait_until(lambda: everywhere("open"), what="the request reaches every node")
        pledge = await b.aid.pledge("oakley", rid, "two beds", 2)
        await wait_until(lambda: everywhere("pledged"), what="the pledge reaches every node")
        await a.aid.accept(rid, "elm", pledge)
        await wait_until(lambda: converged(*nodes), what="the acceptance spreads")
        await a.aid.fulfil(rid)
        await wait_until(lambda: everywhere("fulfilled"), what="fulfilled everywhere")
        view = await load_request(c.store.db, "oakley", rid)
        assert [(p.pledger, p.accepted) for p in view.pledges] == [("elm", True)]
        # A pledge to a closed request is refused before anything is signed.
        with pytest.raises(Refused) as refused:
            await c.aid.pledge("oakley", rid, "late help", 1)
        assert refused.value.code == "request_closed"


async def test_over_pledging_withdrawals_and_self_pledges(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    a, b, c, d = nodes = [
        Node(await make_node(tmp_path, s, nats_server.url), serve_api=False)
        for s in ("oakley", "elm", "ash", "fir")
    ]
    async with running(*nodes):
        rid = await a.aid.request(
            category="transport", urgency="critical", needed_in_min=60, quantity=2,
            description="A ride to the clinic for two", escalate_now=True,
        )  # fmt: skip
        await wait_until(lambda: converged(*nodes), what="the request spreads")
        pb = await b.aid.pledge("oakley", rid, "car, 2 seats", 2)
        await wait_until(lambda: converged(*nodes), what="elm's pledge spreads")
        # Fully pledged: the next pledge is refused by the node before signing.
        with pytest.raises(Refused) as refused:
            await c.aid.pledge("oakley", rid, "van", 2)
        assert refused.value.code == "fully_pledged"
        # elm withdraws its pledge; ash can pledge now.
        await b.aid.withdraw_pledge("oakley", rid, pb)
        await wait_until(lambda: converged(*nodes), what="the withdrawal spreads")
        pc = await c.aid.pledge("oakley", rid, "van", 2)
        await wait_until(lambda: converged(*nodes), what="ash's pledge spreads")
        with pytest.raises(Refused) as refused:
            await a.aid.accept(rid, "elm", pb)  # withdrawn: nothing to accept
        assert refused.value.code == "not_found"
        await a.aid.accept(rid, "ash", pc)
        # Over-acceptance signed anyway (bypassing the node's check) and a self-pledge:
        await a.post(AidPledgeAccepted(request=rid, pledger="ash", pledge=pc, quantity=2))
        await a.post(
            AidPledged(requester="oakley", request=rid, pledge="self", what="x", quantity=1)
        )

        async def refused_everywhere() -> bool:
            return all([(await n.status()).rejected.get("not_authorized", 0) >= 2 for n in nodes])

        await wait_until(refused_everywhere, what="not_authorized on every node")
        # Withdrawal after pledges: the request closes for everyone.
        await a.aid.withdraw(rid)
        await wait_until(lambda: converged(*nodes), what="the withdrawal spreads")
        assert {await state_of(n, "oakley", rid) for n in nodes} == {"withdrawn"}
        assert d.aid is not None


async def test_personal_data_is_refused_and_alerts_work(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    node = Node(await make_node(tmp_path, "oakley", nats_server.url))
    other = Node(await make_node(tmp_path, "elm", nats_server.url), serve_api=False)
    async with running(node, other), httpx.AsyncClient(base_url=node.api_url) as api:
        for text in ("Call Ana on 0612 345 678", "mail ana@example.org for details"):
            r = await api.post(
                "/aid/requests",
                json={"category": "food", "urgency": "high", "quantity": 1, "description": text},
            )
            assert r.status_code == 400
            assert r.json()["code"] == "personal_data"
        r = await api.post(
            "/aid/requests",
            json={"category": "food", "urgency": "high", "quantity": 1,
                  "description": "Meals for one", "escalate_now": True},
        )  # fmt: skip
        assert r.status_code == 201
        # Alerts: raised, shown most severe first, resolved only by their author.
        for kind, severity in (("heat", "warning"), ("storm", "danger")):
            r = await api.post("/alerts", json={"kind": kind, "severity": severity,
                                                "advice": "Check on neighbors"})  # fmt: skip
            assert r.status_code == 201
        await wait_until(lambda: converged(node, other), what="alerts spread")
        shown = await other.aid.alerts()
        assert [a["kind"] for a in shown] == ["storm", "heat"]
        with pytest.raises(Refused):
            await other.aid.resolve_alert(shown[0]["alert"])  # not elm's alert
        r = await api.post(f"/alerts/{shown[0]['alert']}/resolve")
        assert r.status_code == 201
        await wait_until(lambda: converged(node, other), what="the resolution spreads")
        assert [a["kind"] for a in await other.aid.alerts()] == ["heat"]
        listed = (await api.get("/aid/requests")).json()
        assert listed[0]["escalated"] is True
