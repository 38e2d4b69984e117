"""`coopnet demo`: a federation on an embedded nats-server that converges with no rejections."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import anyio.to_thread
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.accounts import PASSWORD
from tests.conftest import wait_until
from tests.processes import free_port

DEMO_ARGS = ["--neighborhoods", "3", "--seconds", "12", "--json"]


@pytest.mark.timeout(120)
async def test_demo_json_converges_and_its_observer_answers() -> None:
    port = free_port()
    args = [sys.executable, "-m", "coopnet", "demo", *DEMO_ARGS, "--observer-port", str(port)]
    demo = await anyio.to_thread.run_sync(
        lambda: subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    )
    seen: dict[str, httpx.Response] = {}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:

        async def observer_answers() -> bool:
            try:
                for path in ("/metrics", "/api/summary", "/"):
                    seen[path] = await client.get(path)
            except httpx.TransportError:
                return False
            hoods = seen["/api/summary"].json()["neighborhoods"]
            return "coopnet_events_total" in seen["/metrics"].text and hoods == 3

        await wait_until(observer_answers, within=60, what="the demo's observer")
    stdout, stderr = await anyio.to_thread.run_sync(lambda: demo.communicate(timeout=110))
    assert demo.returncode == 0, stderr
    families = {f.name for f in text_string_to_metric_families(seen["/metrics"].text)}
    assert {"coopnet_events", "coopnet_ledger_sum", "coopnet_aid_open"} <= families
    assert "text/html" in seen["/"].headers["content-type"]
    result = json.loads(stdout)
    assert result["dashboard_url"] == f"http://127.0.0.1:{port}"
    assert result["audit_critical"] == 0
    assert result["observer_converged"] is True
    assert result["neighborhoods"] == 3
    assert result["converged"] is True
    assert result["rejected"] == {}
    assert result["nats_url"].startswith("nats://127.0.0.1:")
    # A sign-in link to each neighborhood's app, on the port its API was served on.
    assert set(result["apps"]) == {"oakley", "riverside", "elmwood"}
    for slug, link in result["apps"].items():
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/#/join/[\w-]{43}", link), link
        assert link.startswith(result["apis"][slug] + "/#/join/")
    stored = result["events_stored"]
    assert set(stored) == {"oakley", "riverside", "elmwood"}
    assert len(set(stored.values())) == 1
    assert stored["oakley"] == result["events_published"] >= 3
    # The market: co-ops traded, and the rules held.
    assert result["offers_posted"] >= 9  # 3 each, and more from a co-op deep in debt
    assert result["trades_settled"] > 0
    assert result["ledger_sum"] == 0
    assert sum(result["ledger"].values()) == 0
    assert result["oversold_offers"] == 0
    assert result["credit_limit_breaches"] == 0
    assert result["projections_equal"] is True
    hoods = result["trades_by_neighborhood"]
    assert set(hoods) == {"oakley", "riverside", "elmwood"}
    assert sum(h["bought"] for h in hoods.values()) == result["trades_settled"]
    assert result["trades_settled_by_window"] == []  # 12 s: no whole 30 s window
    assert result["window_seconds"] == 30
    # Calls for help: some met by neighbors, some escalated and met by the federation.
    assert result["aid_requests"] > 0
    assert result["aid_fulfilled"] > 0
    assert result["aid_escalated"] >= 0
    assert result["aid_escalated"] <= result["aid_requests"]


LINK = re.compile(r"^(\S+) +app  (http://127\.0\.0\.1:\d+)/#/join/([\w-]+)  \(sign-in link")


@pytest.mark.timeout(120)
async def test_demo_prints_a_sign_in_link_per_neighborhood_that_makes_a_coordinator() -> None:
    args = [sys.executable, "-m", "coopnet", "demo", "--neighborhoods", "2", "--seconds", "8"]
    # A narrow terminal: each link stays on one line all the same (it is copied whole).
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "90"}
    demo = await anyio.to_thread.run_sync(
        lambda: subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
    )
    assert demo.stdout is not None
    lines: list[str] = []
    links: dict[str, tuple[str, str]] = {}
    with anyio.fail_after(60):
        while len(links) < 2:
            line = await anyio.to_thread.run_sync(demo.stdout.readline)
            assert line, f"the demo ended before printing its links: {lines}"
            lines.append(line)
            if found := LINK.match(line):
                links[found[1]] = (found[2], found[3])
    assert lines[0].startswith("dashboard http://127.0.0.1:")
    assert set(links) == {"oakley", "riverside"}
    app, secret = links["oakley"]
    async with httpx.AsyncClient(base_url=app, timeout=10) as web:
        joined = await web.post(
            "/auth/join", json={"invitation": secret, "name": "ada", "password": PASSWORD}
        )
        assert joined.status_code == 201, joined.text
        assert (joined.json()["name"], joined.json()["role"]) == ("ada", "coordinator")
        me = await web.get("/auth/me", headers={"sec-fetch-site": "same-origin"})
        assert me.json()["role"] == "coordinator"
        again = await web.post(
            "/auth/join", json={"invitation": secret, "name": "eve", "password": PASSWORD}
        )
        assert (again.status_code, again.json()["code"]) == (400, "invitation_not_valid")
    _, stderr = await anyio.to_thread.run_sync(lambda: demo.communicate(timeout=100))
    assert demo.returncode == 0, stderr
