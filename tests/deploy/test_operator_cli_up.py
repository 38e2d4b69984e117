"""`coopnet federation up` as an operator runs it, against a real hub and real nodes: one
clear line when a port it needs is taken, one neighborhood stopped and started under it,
what stopped said on Ctrl-C; and `coopnet audit` alone in the federation's directory,
`observe` saying what stopped. A retired neighborhood under `up`: test_operator_safety_retired."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from coopnet.deploy import federation as fed
from coopnet.deploy.launcher import node_file, pid_alive, read_pid
from tests.conftest import wait_until
from tests.deploy.test_operator_cli import coopnet, one_error_line
from tests.processes import free_ports

pytestmark = pytest.mark.timeout(240)


def make_federation(root: Path, slugs: str = "ana,ben") -> fed.FederationConfig:
    client, http, leaf = free_ports(3)
    ports = fed.Ports(client=[client], http=[http], leaf=[leaf])
    return anyio.run(
        lambda: fed.init_federation(root, name="Test", slugs=slugs.split(","), ports=ports)
    )


@contextmanager
def federation_up(root: Path) -> Iterator[subprocess.Popen[str]]:
    """`coopnet federation up DIR` as a process, until every node runs on the bus; stopped
    with SIGINT (Ctrl-C) at the end if the test did not stop it."""
    env = {**os.environ, "COLUMNS": "200"}
    up = subprocess.Popen(
        [sys.executable, "-m", "coopnet", "federation", "up", str(root), "--seconds", "200"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        anyio.run(lambda: wait_until(lambda: _all(root, "running"), within=60, what="up"))
        yield up
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGINT)
            up.communicate(timeout=60)


async def status(root: Path) -> dict[str, Any]:
    r = await anyio.run_process(
        [sys.executable, "-m", "coopnet", "federation", "status", str(root), "--json"]
    )
    result: dict[str, Any] = json.loads(r.stdout)
    return result


async def _all(root: Path, state: str) -> bool:
    s = await status(root)
    return all(n["state"] == state and n.get("bus_connected") for n in s["neighborhoods"])


async def _state_of(root: Path, slug: str) -> str:
    rows = {n["slug"]: n for n in (await status(root))["neighborhoods"]}
    return str(rows[slug]["state"])


def stop_up(up: subprocess.Popen[str]) -> str:
    """Ctrl-C; return what `up` printed."""
    up.send_signal(signal.SIGINT)
    out, err = up.communicate(timeout=60)
    assert up.returncode == 0, err
    assert "Traceback" not in err, err
    return out


def test_up_fails_in_one_line_naming_a_taken_port(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    config = make_federation(root)
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", config.ports.client[0]))
        holder.listen()
        line = one_error_line(coopnet("federation", "up", str(root), "--seconds", "5"))
    port = config.ports.client[0]
    assert f"port {port} (hub client port) on 127.0.0.1 is taken" in line
    assert f"(pid {os.getpid()})" in line  # who holds it, read from /proc
    assert not (root / "run" / "up.pid").exists()  # nothing left half-started
    assert not list((root / "neighborhoods" / "ana").glob("api.url"))


def test_stop_and_start_one_neighborhood_under_up(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    make_federation(root)
    with federation_up(root) as up:
        ben = read_pid(node_file(root, "ben", "pid"))
        assert ben is not None
        stopped = coopnet("federation", "stop", str(root), "ben", "--json")
        assert stopped.returncode == 0, stopped.stderr
        assert json.loads(stopped.stdout) == {
            "slug": "ben", "state": "stopped", "pid": ben, "already": False,
        }  # fmt: skip
        assert not pid_alive(ben)
        rows = {n["slug"]: n for n in anyio.run(status, root)["neighborhoods"]}
        assert rows["ben"]["state"] == "stopped" and not rows["ben"]["running"]
        assert rows["ana"]["state"] == "running"  # the others go on
        assert up.poll() is None  # `up` shows it stopped rather than failing

        started = coopnet("federation", "start", str(root), "ben", "--json")
        assert started.returncode == 0, started.stderr
        again = json.loads(started.stdout)
        assert again["state"] == "running" and again["pid"] != ben and pid_alive(again["pid"])
        assert again["api"].startswith("http://127.0.0.1:")
        anyio.run(lambda: wait_until(lambda: _all(root, "running"), within=60, what="ben"))
        out = stop_up(up)
    assert "stopped node ana (pid" in out
    assert f"stopped node ben (pid {again['pid']})" in out
    assert "stopped hub (nats://127.0.0.1:" in out
    assert "Test: stopped 2 node(s) and 1 server(s) after" in out
    assert not (root / "run" / "up.pid").exists()


def test_audit_alone_reads_the_stream_once_and_observe_says_what_stopped(
    tmp_path: Path,
) -> None:
    root = tmp_path / "fed"
    make_federation(root)
    with federation_up(root):
        assert not (root / "observer" / "observer.db").exists()
        audited = coopnet("audit", "--json", cwd=root)  # no --federation: this directory
        assert audited.returncode == 0, audited.stderr
        assert json.loads(audited.stdout)["critical"] == 0
        assert (root / "observer" / "observer.db").exists()

        observe = subprocess.Popen(
            [sys.executable, "-m", "coopnet", "observe", "--federation", str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            url = root / "observer" / "dashboard.url"

            async def serving() -> bool:
                return url.exists() or observe.poll() is not None

            anyio.run(lambda: wait_until(serving, within=60, what="the dashboard"))
        finally:
            observe.send_signal(signal.SIGINT)
            _, err = observe.communicate(timeout=60)
    assert observe.returncode == 0, err
    assert "Traceback" not in err
    assert "stopped the observer observer after" in err
    assert f"its store stays in {root / 'observer' / 'observer.db'}" in err


def test_start_runs_a_neighborhood_added_after_up_began(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    make_federation(root)
    with federation_up(root) as up:
        added = coopnet(
            "neighborhood", "add", "cara", "--federation", str(root), "--reason", "We bake"
        )
        assert added.returncode == 0, added.stderr
        assert read_pid(node_file(root, "cara", "pid")) is None  # `up` did not know it

        started = coopnet("federation", "start", str(root), "cara", "--json")
        assert started.returncode == 0, started.stderr
        cara = json.loads(started.stdout)
        assert cara["state"] == "running" and not cara["already"] and pid_alive(cara["pid"])
        assert cara["api"].startswith("http://127.0.0.1:")
        anyio.run(lambda: wait_until(lambda: _all(root, "running"), within=60, what="cara"))
        assert up.poll() is None
        out = stop_up(up)
    assert f"stopped node cara (pid {cara['pid']})" in out  # `up` follows it as the others
    assert "Test: stopped 3 node(s) and 1 server(s) after" in out
    assert not pid_alive(cara["pid"])
