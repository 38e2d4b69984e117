"""kill -9 of a node process while it publishes: nothing lost, nothing twice."""

from __future__ import annotations

import os
import random
import signal
from collections import Counter
from pathlib import Path

import anyio
import httpx
import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from coopnet.protocol import unseal
from tests.conftest import NET, make_node, running, wait_until
from tests.processes import free_port, start_node, stream_messages

pytestmark = pytest.mark.timeout(240)

TOTAL = 1000


async def api_ready(client: httpx.AsyncClient) -> bool:
    try:
        r = await client.get("/status")
    except httpx.TransportError:
        return False
    return r.status_code == 200 and bool(r.json()["ready_to_sign"])


async def stream_ids(url: str, author: str) -> Counter[str]:
    """How many times each event id of `author` is in the stream."""
    msgs = await stream_messages(url, f"coop.{author}.>")
    return Counter(unseal(m.data or b"", net=NET).id.hex() for m in msgs)


async def test_kill_9_while_publishing_1000_events(tmp_path: Path, nats_server: NatsServer) -> None:
    a_data = await make_node(tmp_path, "oakley", nats_server.url)
    b = Node(await make_node(tmp_path, "elm", nats_server.url), serve_api=False)
    port = free_port()
    log = tmp_path / "oakley.log"
    kill_at = random.randint(50, TOTAL - 50)
    acked: list[str] = []
    async with running(b), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        proc = start_node(a_data, nats_server.url, port, log=log)
        try:
            await wait_until(lambda: api_ready(client), within=30, what="oakley's API")

            async def poster() -> None:
                while len(acked) < TOTAL:
                    try:
                        r = await client.post("/notes", json={"text": f"note {len(acked)}"})
                    except httpx.TransportError:
                        return  # the process is gone
                    assert r.status_code == 201, r.text
                    acked.append(r.json()["id"])

            async with anyio.create_task_group() as tg:
                tg.start_soon(poster)
                await wait_until(_count_at_least(acked, kill_at), within=120, what="posts")
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
            killed_after = len(acked)
            assert killed_after < TOTAL

            proc = start_node(a_data, nats_server.url, port, log=log)
            await wait_until(lambda: api_ready(client), within=30, what="oakley after restart")
            while len(acked) < TOTAL:
                r = await client.post("/notes", json={"text": f"note {len(acked)}"})
                assert r.status_code == 201, r.text
                acked.append(r.json()["id"])

            async def drained() -> bool:
                status = (await client.get("/status")).json()
                return bool(status["outbox_depth"] == 0)

            await wait_until(drained, within=60, what="oakley's outbox drains")
            status = (await client.get("/status")).json()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)

        head: int = status["own_head"]
        # Every acknowledged post is in oakley's log, and nothing else was signed but the
        # founding event and at most the one post in flight when the process died.
        assert head in (TOTAL + 1, TOTAL + 2)
        counts = await stream_ids(nats_server.url, "oakley")
        assert set(acked) <= set(counts)
        assert len(counts) == head  # every event of oakley reached the stream...
        assert max(counts.values()) == 1  # ...exactly once

        async def elm_has_all() -> bool:
            return (await b.status()).authors.get("oakley") == head

        await wait_until(elm_has_all, within=60, what="elm holds every event of oakley")
        assert {i.hex() for i in await b.store.event_ids()} >= set(acked)
        assert (await b.status()).rejected == {}
    print(f"killed after {killed_after} acknowledged posts (target {kill_at}); head {head}")


def _count_at_least(items: list[str], n: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return len(items) >= n

    return check
