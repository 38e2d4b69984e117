"""A full disk or a read-only database: the node stops with a clear error, nothing committed
is lost, the file is not corrupted. Real limits, no fakes: the disk is "full" for the node's
process through RLIMIT_FSIZE (Python ignores SIGXFSZ, so the write fails with EFBIG exactly
as on a full disk); the database is made read-only with `chattr +i` (root only: skipped
where it cannot be applied, and said so)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

import anyio
import httpx
import pytest

from coopnet.node.nats_server import NatsServer
from tests.conftest import make_node
from tests.processes import free_port, start_node, wait_ready

pytestmark = pytest.mark.timeout(120)


def integrity(db: Path) -> tuple[str, int]:
    with sqlite3.connect(db) as conn:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
        notes = conn.execute("SELECT COUNT(*) FROM notes").fetchone()[0]
    return str(check), int(notes)


def test_a_full_disk_stops_the_node_cleanly(tmp_path: Path, nats_server: NatsServer) -> None:
    data = anyio.run(make_node, tmp_path, "oakley", nats_server.url)
    port = free_port()
    size = sum(f.stat().st_size for f in data.glob("node.db*"))
    proc = start_node(data, nats_server.url, port, max_file_bytes=size + 256 * 1024)
    acked = 0
    last_error: dict[str, str] = {}
    try:
        wait_ready(port, proc)
        for i in range(5000):
            try:
                r = httpx.post(
                    f"http://127.0.0.1:{port}/notes", json={"text": f"note {i} " + "x" * 1500}
                )
            except httpx.TransportError:
                break  # the node stopped
            if r.status_code != 201:
                last_error = r.json()
                break
            acked += 1
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert acked > 0
    assert last_error.get("code") in (None, "storage_failure")
    assert proc.returncode == 3, err
    assert "STORAGE FAILURE" in err and "Traceback" not in err
    check, notes = integrity(data / "node.db")
    assert check == "ok"
    assert notes >= acked  # every acknowledged note survived


def test_a_read_only_database_stops_the_node_with_a_clear_error(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed here: cannot make a file read-only for root")
    data = anyio.run(make_node, tmp_path, "oakley", nats_server.url)
    before = integrity(data / "node.db")
    files = [data, *data.glob("node.db*")]
    applied = subprocess.run(["chattr", "+i", *map(str, files)], capture_output=True, check=False)
    if applied.returncode != 0:
        pytest.skip(f"chattr +i is not permitted here: {applied.stderr.decode().strip()}")
    try:
        proc = start_node(data, nats_server.url, free_port())
        _, err = proc.communicate(timeout=60)
    finally:
        subprocess.run(["chattr", "-i", *map(str, files)], check=True)
    assert proc.returncode == 3, err
    assert "cannot be" in err and "Traceback" not in err
    assert integrity(data / "node.db") == before
