"""A three-server NATS cluster (JetStream, stream replicas 3) loses a server during a burst:
no acknowledged event is lost, none is stored twice, and the nodes converge."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from coopnet.protocol import NotePosted
from tests.conftest import converged, make_node, running, wait_until
from tests.node.test_crash import stream_ids
from tests.processes import create_replicated_stream, free_ports

pytestmark = pytest.mark.timeout(180)


def cluster(root: Path) -> tuple[list[NatsServer], str]:
    client, routes = free_ports(3), free_ports(3)
    servers = []
    for i in range(3):
        others = ", ".join(f"nats-route://127.0.0.1:{routes[j]}" for j in range(3) if j != i)
        conf = root / f"s{i}.conf"
        conf.write_text(
            f"server_name: s{i}\n"
            f'jetstream {{ store_dir: "{root / f"js{i}"}" }}\n'
            f"cluster {{ name: coop, listen: 127.0.0.1:{routes[i]}, routes: [{others}] }}\n"
        )
        servers.append(NatsServer(root / f"s{i}", port=client[i], config=conf))
    return servers, ",".join(f"nats://127.0.0.1:{p}" for p in client)


async def test_losing_one_of_three_servers_during_a_burst(tmp_path: Path) -> None:
    servers, url = cluster(tmp_path)
    for server in servers:
        await anyio.to_thread.run_sync(server.start)
    try:
        await create_replicated_stream(url.split(","))
        a = Node(await make_node(tmp_path, "oakley", url), serve_api=False)
        b = Node(await make_node(tmp_path, "elm", url), serve_api=False)
        acked = []
        async with running(a, b):
            for i in range(300):
                acked.append((await a.post(NotePosted(text=f"burst {i}"))).id.hex())
                if i == 100:
                    servers[0].stop(kill=True)  # kill -9 one server mid-burst

            async def drained() -> bool:
                return await a.store.outbox_depth() == 0

            await wait_until(drained, within=90, what="oakley's outbox drains on two servers")
            await wait_until(lambda: converged(a, b), within=90, what="convergence")
            head = (await a.status()).own_head
        counts = await stream_ids(url.split(",")[1], "oakley")
        assert set(acked) <= set(counts)
        assert len(counts) == head == 301
        assert max(counts.values()) == 1
    finally:
        for server in servers:
            await anyio.to_thread.run_sync(server.stop)
