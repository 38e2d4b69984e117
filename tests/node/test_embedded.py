"""The embedded default: with no NATS URL a node starts a real nats-server, a second node on
the same machine finds and shares it, and the last one to leave stops it."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest

from coopnet.node.engine.nats_server import _alive
from coopnet.node.runtime import Node
from coopnet.protocol import NotePosted
from tests.conftest import converged, make_node, running, wait_until

pytestmark = pytest.mark.timeout(90)


async def test_two_nodes_share_one_embedded_server(tmp_path: Path) -> None:
    folder = tmp_path / "embedded"
    a = Node(await make_node(tmp_path, "oakley", ""), serve_api=False, embedded_dir=folder)
    b = Node(await make_node(tmp_path, "elm", ""), serve_api=False, embedded_dir=folder)
    async with running(a):
        state = json.loads((folder / "server.json").read_text())
        pid = state["pid"]
        assert _alive(pid)
        assert a.bus.url == state["url"]
        assert (folder / "jetstream").is_dir()  # its store lives in the folder
        async with running(b):
            assert b.bus.url == a.bus.url
            assert json.loads((folder / "server.json").read_text())["pid"] == pid
            await a.post(NotePosted(text="over the embedded bus"))
            await wait_until(lambda: converged(a, b), what="convergence")
        assert _alive(pid)  # oakley still uses it
    # The last node left: the server is stopped.
    await wait_until(_not_alive(pid), within=20, what="the embedded server stops")


async def test_restart_reuses_the_port(tmp_path: Path) -> None:
    folder = tmp_path / "embedded"
    a_data = await make_node(tmp_path, "oakley", "")
    async with running(Node(a_data, serve_api=False, embedded_dir=folder)):
        first = json.loads((folder / "server.json").read_text())
    async with running(Node(a_data, serve_api=False, embedded_dir=folder)) as (a,):
        second = json.loads((folder / "server.json").read_text())
        assert second["port"] == first["port"]
        assert second["pid"] != first["pid"]
        assert (await a.status()).own_head == 1


def _not_alive(pid: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        # The server is this process's child (the first node started it): reap it.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # noqa: ASYNC222 (WNOHANG never blocks)
        return not _alive(pid)

    return check
