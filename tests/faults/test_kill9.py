"""kill -9 at seeded random points, 50 times: 25 while a node publishes, 25 while a node
ingests. After every restart: nothing acknowledged is lost, nothing is in the stream twice,
both stores are intact, and their projections equal a rebuild from the log."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import anyio
import httpx
import pytest

from coopnet.node.engine.nats_server import NatsServer
from tests.conftest import NET, make_node
from tests.faults.test_storage import integrity
from tests.node.test_crash import stream_ids
from tests.processes import free_port, start_node, wait_ready
from tests.stores import open_node_store

pytestmark = pytest.mark.timeout(900)
RUNS = 50


class Proc:
    """A node process with a fixed API port, that can be started, killed and restarted."""

    def __init__(self, data: Path, url: str) -> None:
        self.data, self.url, self.port = data, url, free_port()
        self.proc: subprocess.Popen[str] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = start_node(self.data, self.url, self.port)
        wait_ready(self.port, self.proc)
        assert self.proc.poll() is None, "the node died at start"

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.communicate()

    def stop(self) -> str:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, err
        return err

    def status(self) -> dict[str, object]:
        result: dict[str, object] = httpx.get(f"{self.api}/status").json()
        return result


def post_until_dead(node: Proc, acked: list[str], deadline: float) -> None:
    with httpx.Client(base_url=node.api, timeout=10) as client:
        while time.monotonic() < deadline:
            try:
                r = client.post("/notes", json={"text": f"note {len(acked)}"})
            except httpx.TransportError:
                return
            if r.status_code == 201:
                acked.append(r.json()["id"])


def projections_equal_rebuild(db: Path) -> bool:
    async def check() -> bool:
        store = await open_node_store(db, NET)
        try:
            before = await store.projection_rows()
            await store.rebuild_projections()
            return before == await store.projection_rows()
        finally:
            await store.close()

    return anyio.run(check)


def test_kill_9_at_random_points_while_publishing_and_ingesting(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    rng = random.Random(random.randrange(2**32))  # seeded by the conftest fixture
    a = Proc(anyio.run(make_node, tmp_path, "oakley", nats_server.url), nats_server.url)
    b = Proc(anyio.run(make_node, tmp_path, "elm", nats_server.url), nats_server.url)
    acked: list[str] = []
    kills: list[tuple[str, int]] = []
    b.start()
    for run in range(RUNS):
        victim = a if run < RUNS // 2 else b
        a_down = a.proc is None or a.proc.poll() is not None
        if a_down and (victim is a or run == RUNS // 2):
            a.start()
        if b.proc is None or b.proc.poll() is not None:
            b.start()
        before = len(acked)
        delay = rng.uniform(0.05, 0.8)
        timer = threading.Timer(delay, victim.kill9)
        timer.start()
        # oakley posts (publishes); elm receives them: one of the two dies mid-way.
        post_until_dead(a, acked, time.monotonic() + delay + 0.3)
        timer.join()
        kills.append((victim.data.name, len(acked) - before))
        check, _ = integrity(victim.data / "node.db")
        assert check == "ok", f"run {run}: {check}"
    # Restart what is down, let everything drain, stop cleanly.
    if b.proc is None or b.proc.poll() is not None:
        b.start()
    if a.proc is None or a.proc.poll() is not None:
        a.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        sa, sb = a.status(), b.status()
        heads = sb["authors"]
        assert isinstance(heads, dict)
        if sa["outbox_depth"] == 0 and heads.get("oakley") == sa["own_head"]:
            break
        time.sleep(0.2)  # other processes: poll their APIs
    head = a.status()["own_head"]
    a.stop()
    b.stop()
    counts = anyio.run(stream_ids, nats_server.url, "oakley")
    assert set(acked) <= set(counts), "an acknowledged post is missing from the stream"
    assert len(counts) == head and max(counts.values()) == 1, "something is in the stream twice"
    for node in (a, b):
        assert integrity(node.data / "node.db")[0] == "ok"
        assert projections_equal_rebuild(node.data / "node.db")
    with_elm = anyio.run(_ids_of, b.data / "node.db")
    assert set(acked) <= with_elm
    print(f"{RUNS} kills: {kills}")


async def _ids_of(db: Path) -> set[str]:
    store = await open_node_store(db, NET)
    try:
        return {i.hex() for i in await store.event_ids()}
    finally:
        await store.close()
