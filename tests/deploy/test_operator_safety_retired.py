"""`federation up` decides that a neighborhood retired from the node's own state, never from
its log's text: a node that really retired wrote DATA/retired (0600, the line it said) as it
stopped, and is shown retired and never started again; a node that exited 0 on a SIGTERM
with "retired" in its log (log text is partly other members' words) is shown as exited and
starts again."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

import anyio
import httpx
import pytest

from coopnet.deploy.control import node_file, read_pid, retired_marker
from tests.conftest import wait_until
from tests.deploy.test_operator_cli import coopnet, one_error_line
from tests.deploy.test_operator_cli_retire import api, ready
from tests.deploy.test_operator_cli_up import _state_of, federation_up, make_federation, stop_up

pytestmark = pytest.mark.timeout(240)


def wait_state(root: Path, slug: str, state: str) -> None:
    async def there() -> bool:
        return await _state_of(root, slug) == state

    anyio.run(lambda: wait_until(there, within=90, what=f"{slug} {state}"))


def test_up_decides_retired_from_the_node_s_marker_never_from_its_log(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    make_federation(root, "ana,ben,cy")
    with federation_up(root) as up:
        # cy exits 0 on a SIGTERM, its log quoting "retired" as a refused body's reason may.
        cy = read_pid(node_file(root, "cy", "pid"))
        assert cy is not None
        with (root / "logs" / "cy.log").open("a") as log:
            log.write('refused ana#7 (bad_body): unit: "retired"; cy: retired, stopping\n')
        os.kill(cy, signal.SIGTERM)
        wait_state(root, "cy", "exited 0")
        assert not retired_marker(root, "cy").exists()

        # ben really retires: its node signs, publishes, writes its marker and stops.
        ready(root, "ben")
        answer = httpx.post(
            api(root, "ben") + "/membership/retire", json={"reason": "merged"}, timeout=30
        )
        assert answer.status_code == 201, answer.text
        wait_state(root, "ben", "retired")
        marker = retired_marker(root, "ben")
        assert marker.read_text().startswith("ben retired from the federation at ")
        assert f"{answer.json()['id']}): this node stops" in marker.read_text()
        assert stat.S_IMODE(marker.stat().st_mode) == 0o600
        line = one_error_line(coopnet("federation", "start", str(root), "ben"))
        assert "ben retired" in line

        started = coopnet("federation", "start", str(root), "cy")  # exited: it may run again
        assert started.returncode == 0, started.stderr
        wait_state(root, "cy", "running")
        out = stop_up(up)
    assert "ben: retired, not running" in out
    assert "Test: stopped 2 node(s) and 1 server(s)" in out
