"""`coopnet neighborhood retire` against real hubs and real nodes: a node that refuses
(its neighborhood has not settled) is told in one line with its code and message; a node
that signs is waited for until it has published its retirement and stopped by itself, and
only then are its credentials revoked; the command says what the node did, under a
`federation up` here or not."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from coopnet.deploy import federation as fed
from coopnet.deploy.control import node_file, pid_alive, read_pid, retired_marker
from coopnet.deploy.launcher import ensure_stream, start_hubs, start_node
from coopnet.deploy.nats_auth import Authority
from tests.conftest import wait_until
from tests.deploy.test_operator_cli import coopnet, one_error_line
from tests.deploy.test_operator_cli_up import federation_up, make_federation, status

pytestmark = pytest.mark.timeout(240)


def api(root: Path, slug: str) -> str:
    return (fed.neighborhood_dir(root, slug) / "api.url").read_text().strip()


def ready(root: Path, slug: str) -> None:
    """Until `slug`'s node may sign (it has caught up with the bus)."""

    async def may_sign() -> bool:
        try:
            r = await anyio.to_thread.run_sync(lambda: httpx.get(api(root, slug) + "/status"))
            return bool(r.json()["ready_to_sign"])
        except (OSError, httpx.HTTPError):
            return False

    anyio.run(lambda: wait_until(may_sign, within=60, what=f"{slug} ready to sign"))


def call(root: Path, slug: str, method: str, path: str, body: Any = None) -> Any:
    r = httpx.request(method, api(root, slug) + path, json=body, timeout=30)
    assert r.status_code < 400, r.text
    return r.json()


def membership_at(root: Path, at: str, slug: str) -> str:
    members = call(root, at, "GET", "/membership")["members"]
    return str({m["slug"]: m["status"] for m in members}[slug])


def revoked(root: Path, slug: str) -> bool:
    """Whether the account JWT revokes `slug`'s NATS user."""
    return fed.node_user(root, slug) in Authority.load(root).revocations


def test_retire_under_up_is_refused_until_settled_then_waits_for_the_node_to_stop(
    tmp_path: Path,
) -> None:
    root = tmp_path / "fed"
    make_federation(root, "ana,ben,cy")
    with federation_up(root):
        for slug in ("ana", "ben", "cy"):
            ready(root, slug)
        # ben proposes a trade against ana's offer: both have a trade open.
        call(root, "ana", "POST", "/offers", {
            "offer": "o-oat", "item": "oat milk", "category": "dairy-eggs", "quantity": 5000,
            "unit": "millilitre", "unit_price": 1,
        })  # fmt: skip

        async def ben_sees_it() -> bool:
            offers = await anyio.to_thread.run_sync(lambda: call(root, "ben", "GET", "/offers"))
            return any(o["offer"] == "o-oat" for o in offers)

        anyio.run(lambda: wait_until(ben_sees_it, within=60, what="ana's offer at ben"))
        call(root, "ben", "POST", "/trades",
             {"seller": "ana", "offer": "o-oat", "quantity": 10, "trade": "t-milk"})  # fmt: skip

        line = one_error_line(coopnet("neighborhood", "retire", "ben", "--federation", str(root)))
        assert line.startswith("error: ben's node refused (balance_not_settled): ben cannot "
                               "retire yet: "), line  # fmt: skip
        assert "ben/t-milk with ana (proposed" in line and "(hint: settle first" in line
        assert f"coopnet trade list --data {fed.neighborhood_dir(root, 'ben')}" in line
        assert not retired_marker(root, "ben").exists() and not revoked(root, "ben")
        assert read_pid(node_file(root, "ben", "pid")) is not None  # it runs on

        cy = read_pid(node_file(root, "cy", "pid"))
        assert cy is not None
        retired = coopnet("neighborhood", "retire", "cy", "--federation", str(root),
                          "--reason", "merged with ana")  # fmt: skip
        assert retired.returncode == 0, retired.stderr
        # By the time it answers, the node has stopped by itself (after publishing its
        # retirement), and only then were its credentials revoked.
        assert not pid_alive(cy)
        assert not (fed.neighborhood_dir(root, "cy") / "api.url").exists()
        assert revoked(root, "cy")
        assert "cy signed its retirement (event #" in retired.stderr
        assert "waiting for its node to publish it and stop (at most 60 s)" in retired.stderr
        assert retired.stdout.startswith("cy retired (event #")
        assert f"its node (pid {cy}) stopped by itself; `federation up` shows it" in retired.stdout
        assert "its NATS credentials are revoked (1 hub(s) took it now)" in retired.stdout
        # The retirement reached the others over the bus.
        anyio.run(
            lambda: wait_until(
                lambda: _is(membership_at(root, "ana", "cy"), "retired"),
                within=60,
                what="cy's retirement at ana",
            )
        )
        rows = {n["slug"]: n for n in anyio.run(status, root)["neighborhoods"]}
        assert rows["cy"]["state"] == "retired" and rows["ben"]["state"] == "running"


async def _is(value: str, wanted: str) -> bool:
    return value == wanted


def test_retire_of_a_node_run_without_up_waits_for_it_and_says_so(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    config = make_federation(root, "ana,ben")
    hubs = start_hubs(root, config)
    (root / "logs").mkdir()
    (root / "run" / "nodes").mkdir(parents=True, exist_ok=True)
    nodes = {}
    try:
        anyio.run(lambda: ensure_stream(root, config))
        for slug in ("ana", "ben"):  # as systemd would run them: no `federation up` here
            nodes[slug] = start_node(root, slug, root / "logs")
        for slug in ("ana", "ben"):
            ready(root, slug)

        said = coopnet("neighborhood", "retire", "ana", "--federation", str(root))
        assert said.returncode == 0, said.stderr
        # Its API had closed before the answer (the node's last step before it exits).
        assert not (fed.neighborhood_dir(root, "ana") / "api.url").exists()
        assert nodes["ana"].wait(timeout=30) == 0  # it stopped by itself
        assert revoked(root, "ana")
        assert said.stdout.startswith("ana retired (event #")
        assert (
            "its node, which no `coopnet federation up` runs here (systemd, or by hand), "
            "stopped by itself (its API closed) and does not start again" in said.stdout
        )
        assert "waiting for its node to publish it and stop" in said.stderr

        began = time.monotonic()
        retired = coopnet("neighborhood", "retire", "ben", "--federation", str(root), "--json")
        assert retired.returncode == 0, retired.stderr
        assert retired.stderr == ""  # --json: no progress line
        out = json.loads(retired.stdout)
        assert not (fed.neighborhood_dir(root, "ben") / "api.url").exists()
        assert nodes["ben"].wait(timeout=30) == 0
        assert out["slug"] == "ben" and out["under_up"] is False and out["pid"] is None
        assert out["retired_seq"] >= 2 and len(out["retired_id"]) == 64
        assert 0 <= out["waited_s"] <= time.monotonic() - began
        assert out["revoked_on"] and revoked(root, "ben")

        # Once retired, its node does not run to be asked again.
        line = one_error_line(coopnet("neighborhood", "retire", "ana", "--federation", str(root)))
        assert "ana's node is not running" in line
    finally:
        for node in nodes.values():
            if node.poll() is None:
                node.kill()
                node.wait()
        for hub in hubs:
            hub.stop()
