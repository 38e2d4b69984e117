"""`GET /log` says why the domain refused an event it stored (node/engine/api.py `event_out`;
docs/APP.md, PROTOCOL.md §8.1): an `offer.posted` in a unit no coopnet lists, published on a
real nats-server by another neighborhood, is kept in the log as `opaque` with `refused`
naming the reason, and the events around it are shown as usual."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import msgspec
import nats
import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from coopnet.protocol import Identity, seal, unseal
from tests.conftest import make_node, running, wait_until

pytestmark = pytest.mark.timeout(60)
SIGNING_CONTEXT = b"coopnet/v1\x00"  # PROTOCOL.md §3
FURLONGS = {
    "offer": "rope-1", "item": "rope", "category": "household-goods", "quantity": 3,
    "unit": "furlong", "unit_price": 450, "available_until": 10**13, "area": "N4",
}  # fmt: skip
REASON = "offer.posted body: Invalid enum value 'furlong' - at `$.unit`"


def delta_history(net: bytes, at: int) -> list[bytes]:
    """Delta's log: founded (sealed as usual), then an offer in furlongs, signed by hand
    (`seal` refuses to sign a body its kind refuses)."""
    delta = Identity.from_passphrase("delta", "furlongs")
    founded = seal(signing_key=delta.signing_key, net=net, author="delta", seq=1, prev=None,
                   at=at, body=delta.founding_body("Delta", "N4"))  # fmt: skip
    body = msgspec.msgpack.encode(FURLONGS)
    header = msgspec.msgpack.encode([
        1, net, "delta", delta.public_key, 2, unseal(founded, net=net).id, at,
        "offer.posted", hashlib.sha256(body).digest(),
    ])  # fmt: skip
    signature = delta.signing_key.sign(SIGNING_CONTEXT + header).signature
    return [founded, msgspec.msgpack.encode([header, signature, body])]


async def test_the_log_shows_why_an_event_was_refused(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    node = Node(await make_node(tmp_path, "oakley", nats_server.url))
    async with running(node), httpx.AsyncClient(base_url=node.api_url) as api:
        founded, offer = delta_history(node.net, node.clock())
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream()
            await js.publish("coop.delta.node.founded", founded)
            await js.publish("coop.delta.offer.posted", offer)
        finally:
            await nc.close()

        async def delta_events() -> list[dict[str, object]]:
            r = await api.get("/log", params={"author": "delta"})
            assert r.status_code == 200, r.text
            events: list[dict[str, object]] = r.json()["events"]
            return events

        async def both_stored() -> bool:
            return len(await delta_events()) == 2

        await wait_until(both_stored, what="oakley stores delta's two events")
        first, second = await delta_events()
        assert (first["kind"], first["opaque"], first["refused"]) == ("node.founded", False, "")
        assert (second["kind"], second["seq"], second["opaque"]) == ("offer.posted", 2, True)
        assert second["refused"] == REASON
        assert second["body"]["unit"] == "furlong"  # type: ignore[index]

        one = await api.get("/log/delta/2")
        assert one.status_code == 200, one.text
        assert one.json()["refused"] == REASON
