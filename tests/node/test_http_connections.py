"""Connections to the HTTP servers (node/engine/http_connections.py, OPERATIONS.md §13), on
real sockets: a request must arrive within its deadline, the connection budget makes room
by closing the oldest connection still waiting, accept errors are logged at a bounded rate;
and case `api-slowloris` against a real `coopnet node run` at a small descriptor limit."""

from __future__ import annotations

import contextlib
import logging
import resource
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from litestar import Litestar, get

from coopnet.node.engine.api import HttpCounts, serve_app
from coopnet.node.engine.http_connections import (
    GuardedH11Protocol,
    RateLimitedLog,
    connection_limit,
    process_budget,
    raise_fd_limit,
)
from coopnet.node.engine.nats_server import NatsServer
from tests.conftest import make_node
from tests.processes import free_port, wait_ready

pytestmark = pytest.mark.timeout(60)
release = anyio.Event()


@get("/hello")
async def hello() -> str:
    return "hello"


@get("/slow")
async def slow() -> str:
    await release.wait()
    return "done"


@contextlib.asynccontextmanager
async def server(counts: HttpCounts) -> AsyncIterator[tuple[str, int]]:
    app = Litestar(route_handlers=[hello, slow], logging_config=None)
    async with anyio.create_task_group() as tg:
        url = await tg.start(lambda task_status: serve_app(
            app, "127.0.0.1", 0, counts=counts, task_status=task_status
        ))  # fmt: skip
        yield url, int(url.rsplit(":", 1)[1])
        tg.cancel_scope.cancel()


@contextlib.contextmanager
def unfinished(port: int, n: int) -> Iterator[list[socket.socket]]:
    """`n` connections that start a request and never finish its headers."""
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /notes HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            socks.append(s)
        yield socks
    finally:
        for s in socks:
            s.close()


async def closed_by_server(s: socket.socket, within: float) -> bool:
    """Whether the server closes `s` within `within` seconds (reads EOF or a reset)."""
    s.setblocking(False)
    with anyio.move_on_after(within):
        while True:
            try:
                if s.recv(4096) == b"":
                    return True
            except BlockingIOError:
                await anyio.sleep(0.02)
            except OSError:
                return True
    return False


async def test_a_request_that_never_finishes_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GuardedH11Protocol, "request_timeout_s", 0.5)
    counts = HttpCounts()
    async with server(counts) as (url, port):
        with unfinished(port, 1) as (s,):
            started = time.monotonic()
            s.sendall(b"X-a: b\r\n")  # trickling headers does not reset the deadline
            assert await closed_by_server(s, within=3)
            assert time.monotonic() - started < 2
        assert counts.as_dict() == {"request_timeout": 1}
        # A whole request is served, and a kept-alive connection gets a new deadline.
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/hello")).text == "hello"
            await anyio.sleep(0.8)
            assert (await client.get("/hello")).text == "hello"


async def test_at_the_limit_the_oldest_waiting_connection_makes_room(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(process_budget(), "limit", 4)
    counts = HttpCounts()
    async with server(counts) as (url, port):
        with unfinished(port, 4) as socks:
            await anyio.sleep(0.2)  # all four accepted
            async with httpx.AsyncClient(base_url=url) as client:
                assert (await client.get("/hello")).status_code == 200
            assert await closed_by_server(socks[0], within=2)  # the oldest
            assert not await closed_by_server(socks[3], within=0.2)
        assert counts.as_dict()["evicted"] >= 1


async def test_when_every_connection_is_busy_a_new_one_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(process_budget(), "limit", 2)
    global release
    release = anyio.Event()
    counts = HttpCounts()
    async with server(counts) as (url, port), anyio.create_task_group() as tg:
        clients = [httpx.AsyncClient(base_url=url) for _ in range(2)]
        for client in clients:
            tg.start_soon(client.get, "/slow")
        await anyio.sleep(0.3)  # both requests are being answered: nothing to evict
        with unfinished(port, 1) as (s,):
            assert await closed_by_server(s, within=2)
        assert counts.as_dict() == {"over_limit": 1}
        release.set()
        await anyio.sleep(0.2)
        for client in clients:
            await client.aclose()


def test_repeated_accept_errors_are_logged_at_a_bounded_rate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("coopnet.test.accept")
    throttle = RateLimitedLog(every_s=3600)
    logger.addFilter(throttle)
    try:
        with caplog.at_level(logging.ERROR, logger="coopnet.test.accept"):
            for _ in range(2048):  # one wake-up of CPython's accept loop, descriptors gone
                try:
                    raise OSError(24, "Too many open files")
                except OSError:
                    logger.exception("socket.accept() out of system resource\nsocket: <fd=11>")
            logger.error("something else")
    finally:
        logger.removeFilter(throttle)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("socket.accept() out of system resource")
    assert caplog.records[0].exc_info is None  # no traceback per error
    assert lines[1] == "something else"


def test_the_descriptor_limit_is_raised_and_sizes_the_budget() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(soft, 256)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        raised = raise_fd_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == raised
        assert raised == min(hard, 1 << 20) if hard != resource.RLIM_INFINITY else 1 << 20
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert connection_limit(1024) == 512
    assert connection_limit(20) == 16
    assert connection_limit(1 << 20) == 4096


def start_with_fd_limit(data: Path, url: str, port: int, log_path: Path) -> subprocess.Popen[str]:
    """`coopnet node run` with 256 file descriptors, soft and hard; stderr to `log_path`."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    args = ["node", "run", "--data", str(data), "--nats", url, "--api-port", str(port)]
    with log_path.open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "coopnet", *args], stdout=subprocess.DEVNULL, stderr=log,
            text=True, start_new_session=True, preexec_fn=limit,
        )  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_slowloris_at_a_small_descriptor_limit(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """Case `api-slowloris`, scaled down: more connections with unfinished headers than the
    node has descriptors (a hard limit of 256, so it cannot raise it), held past the
    request deadline; the API keeps answering and the log stays small."""
    data = await make_node(tmp_path, "oakley", nats_server.url)
    port, log_path = free_port(), tmp_path / "node.log"

    proc = await anyio.to_thread.run_sync(
        start_with_fd_limit, data, nats_server.url, port, log_path
    )
    try:
        await anyio.to_thread.run_sync(wait_ready, port, proc)
        with unfinished(port, 300) as socks:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as api:
                assert (await api.get("/status")).status_code == 200  # room made at once
                for _ in range(3):  # past the 10 s deadline, trickling headers all along
                    await anyio.sleep(4)
                    for s in socks:
                        with contextlib.suppress(OSError):
                            s.sendall(b"X-a: b\r\n")
                status = (await api.get("/status")).json()
        assert status["http_refused"].get("request_timeout", 0) > 0
        assert status["http_refused"].get("evicted", 0) > 0
    finally:
        proc.terminate()
        await anyio.to_thread.run_sync(proc.wait)
    text = log_path.read_text()
    assert "Too many open files" not in text
    assert "Traceback" not in text
    assert len(text) < 8_000, text[-2000:]
