"""`coopnet node init|status`: files, modes, JSON output, clear errors."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from coopnet.node.engine.nats_server import NatsServer
from tests.processes import free_port, start_node, wait_ready


def coopnet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coopnet", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_init_then_status(tmp_path: Path) -> None:
    data = tmp_path / "oak"
    out = coopnet("node", "init", "--name", "oakley", "--data", str(data), "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["slug"] == "oakley"
    for key in ("node.key", "node.next.key"):
        mode = stat.S_IMODE((data / key).stat().st_mode)
        assert mode == 0o600
        assert (data / key).read_text().startswith("SU")  # an NKey user seed
    status = json.loads(coopnet("node", "status", "--data", str(data), "--json").stdout)
    assert status["own_head"] == 1
    assert status["outbox_depth"] == 1  # the founding event waits for the bus
    assert status["authors"] == {"oakley": 1}
    human = coopnet("node", "status", "--data", str(data))
    assert "oakley" in human.stdout


def test_init_refuses_an_existing_node(tmp_path: Path) -> None:
    data = tmp_path / "oak"
    assert coopnet("node", "init", "--name", "oakley", "--data", str(data)).returncode == 0
    again = coopnet("node", "init", "--name", "oakley", "--data", str(data))
    assert again.returncode == 2
    assert "already holds a node" in again.stderr


def test_bad_slug_is_refused(tmp_path: Path) -> None:
    out = coopnet("node", "init", "--name", "Oak Ley", "--data", str(tmp_path / "x"))
    assert out.returncode == 2
    assert "slug" in out.stderr
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_status_of_a_missing_node(tmp_path: Path) -> None:
    out = coopnet("node", "status", "--data", str(tmp_path / "nothing"))
    assert out.returncode == 2
    assert "node init" in out.stderr


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "oak"
    assert coopnet("node", "init", "--name", "oakley", "--data", str(data)).returncode == 0
    (data / "node.key").chmod(0o644)
    out = coopnet("node", "run", "--data", str(data), "--nats", "nats://127.0.0.1:9")
    assert out.returncode == 2
    assert "readable by others" in out.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_stops_cleanly_on_a_signal(
    tmp_path: Path, nats_server: NatsServer, signum: signal.Signals
) -> None:
    data = tmp_path / "oak"
    assert coopnet("node", "init", "--name", "oakley", "--data", str(data)).returncode == 0
    port = free_port()
    proc = start_node(data, nats_server.url, port)
    try:
        wait_ready(port, proc)
        r = httpx.post(f"http://127.0.0.1:{port}/notes", json={"text": "before shutdown"})
        assert r.status_code == 201
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert f"{signum.name} received, shutting down" in err
    assert "oakley: stopped" in err
    assert "Traceback" not in err
    status = json.loads(coopnet("node", "status", "--data", str(data), "--json").stdout)
    assert status["own_head"] == 2
    assert status["outbox_depth"] == 0


def test_node_invite_prints_a_link_that_makes_the_first_coordinator(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    data = tmp_path / "oak"
    assert coopnet("node", "init", "--name", "oakley", "--data", str(data)).returncode == 0
    port = free_port()
    proc = start_node(data, nats_server.url, port)
    try:
        wait_ready(port, proc)
        shown = coopnet("node", "invite", "--data", str(data))
        assert shown.returncode == 0, shown.stderr
        assert "for a coordinator, single use" in shown.stdout
        link = next(line for line in shown.stdout.splitlines() if "#/join/" in line)
        assert link.startswith(f"http://127.0.0.1:{port}/#/join/")
        made = json.loads(coopnet("node", "invite", "--data", str(data), "--role", "resident",
                                  "--json").stdout)  # fmt: skip
        assert made["role"] == "resident" and made["id"].startswith("inv-")
        secret = link.rsplit("/", 1)[1]
        body = {"invitation": secret, "name": "cora", "password": "a long password"}
        r = httpx.post(f"http://127.0.0.1:{port}/auth/join", json=body)
        assert (r.status_code, r.json()["role"]) == (201, "coordinator")
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
