"""Helpers for tests that run a node as a separate process (`python -m coopnet node run`)."""

from __future__ import annotations

import resource
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import anyio
import httpx
import nats
import nats.errors
import nats.js.errors
from nats.js.api import RawStreamMsg

from coopnet.node.engine.bus import STREAM, stream_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports on 127.0.0.1 (all bound at once, so none repeats)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


async def create_replicated_stream(urls: list[str], creds: Path | None = None) -> None:
    """Once a three-server cluster has a JetStream meta leader: COOP on all three."""
    options = {"user_credentials": str(creds)} if creds else {}
    nc = await nats.connect(urls, **options)
    try:
        with anyio.fail_after(60):
            while True:
                try:
                    await nc.jetstream().add_stream(stream_config(replicas=3))
                    return
                except nats.errors.Error:
                    await anyio.sleep(0.5)  # no meta leader yet: the cluster is forming
    finally:
        await nc.close()


async def stream_messages(
    url: str,
    subject: str = "coop.>",
    creds: Path | None = None,
    tls: ssl.SSLContext | None = None,
    stream: str = STREAM,
) -> list[RawStreamMsg]:
    """Every message of the COOP stream (or `stream`) on `subject`, in stream order (`url`
    may list the servers of a cluster, comma-separated; `tls` checks TLS hubs'
    certificates)."""
    options = {"user_credentials": str(creds)} if creds else {}
    nc = await nats.connect(url.split(","), tls=tls, **options)
    try:
        js = nc.jetstream()
        found: list[RawStreamMsg] = []
        seq = 1
        while True:
            try:
                msg = await js.get_msg(stream, seq=seq, subject=subject, next=True)
            except nats.js.errors.NotFoundError:
                return found
            assert msg.seq is not None
            found.append(msg)
            seq = msg.seq + 1
    finally:
        await nc.close()


async def stream_seqs(url: str, subject: str = "coop.>") -> list[int]:
    return [m.seq for m in await stream_messages(url, subject) if m.seq is not None]


async def delete_from_stream(url: str, seqs: Sequence[int]) -> None:
    nc = await nats.connect(url)
    try:
        for seq in seqs:
            await nc.jetstream().delete_msg(STREAM, seq)
    finally:
        await nc.close()


def start_node(
    data: Path,
    url: str,
    port: int,
    *,
    log: Path | None = None,
    max_file_bytes: int | None = None,
) -> subprocess.Popen[str]:
    """Start `coopnet node run`; stderr to `log` (appended) or to a pipe. `max_file_bytes`
    caps the size of any file the process writes (RLIMIT_FSIZE): a full disk, for real."""

    def limit() -> None:
        if max_file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    args = ["node", "run", "--data", str(data), "--nats", url, "--api-port", str(port)]
    err = log.open("a") if log is not None else None
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "coopnet", *args],
            stdout=subprocess.DEVNULL,
            stderr=err if err is not None else subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=limit,  # only sets a resource limit in the child
        )
    finally:
        if err is not None:
            err.close()


def wait_ready(port: int, proc: subprocess.Popen[str], within: float = 30.0) -> None:
    """Until the node's API says it may sign (or the process ended)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return
        try:
            if httpx.get(f"http://127.0.0.1:{port}/status").json()["ready_to_sign"]:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # another process: nothing to await but its API
    raise AssertionError("the node did not become ready")


def stop_node(proc: subprocess.Popen[str], log: Path) -> None:
    """SIGTERM a node started as a process (killed after 30 s); it must have exited 0 with
    no traceback in `log`, its stderr."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text(), log.read_text()


async def api_json(port: int, path: str) -> object:
    """GET `path` of the node API on 127.0.0.1:`port` (its own OS user: no token); the JSON."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        response = await client.get(path)
    response.raise_for_status()
    return response.json()
