"""The observer's dashboard behind the HTTP doors (node/engine/http_doors.py, OPERATIONS.md
§13), over real HTTP: security headers on every answer, its own Host only, nothing taken
from a foreign Origin. Case `dashboard-no-security-headers`. (That its pages run under the
CSP without a console error is tests/federation/test_dashboard_browser.py.)"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from coopnet.federation.dashboard import serve_dashboard
from coopnet.federation.observer import Observer
from coopnet.node.engine.http_doors import CONTENT_SECURITY_POLICY
from coopnet.node.engine.nats_server import NatsServer
from tests.conftest import NET

pytestmark = pytest.mark.timeout(60)


async def test_dashboard_doors(tmp_path: Path, nats_server: NatsServer) -> None:
    observer = Observer(tmp_path / "observer", net=NET, nats_url=nats_server.url)
    async with anyio.create_task_group() as tg:
        await tg.start(observer.run)
        url = await tg.start(
            partial(serve_dashboard, names=["obs.example"]), observer, "127.0.0.1", 0
        )
        port = urlsplit(url).port
        async with httpx.AsyncClient(base_url=url) as web:
            answers = [
                await web.get("/"),
                await web.get("/app.js"),
                await web.get("/style.css"),
                await web.get("/api/summary"),
                await web.get("/metrics"),
                await web.get("/export/trades.csv"),
                await web.get("/no/such/page.js"),
            ]
            assert [a.status_code for a in answers] == [200, 200, 200, 200, 200, 200, 404]
            for answer in answers:
                assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
                assert "unsafe-inline" not in answer.headers["content-security-policy"]
                assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
                assert answer.headers["x-content-type-options"] == "nosniff"
                assert answer.headers["x-frame-options"] == "DENY"
                assert answer.headers["referrer-policy"] == "no-referrer"
            # No inline script or style left in the page (the CSP would block it).
            page = answers[0].text
            assert "<script>" not in page and "<style" not in page and " style=" not in page

            # DNS rebinding: a foreign Host reads nothing; the configured name does.
            r = await web.get("/api/summary", headers={"host": f"rebind.evil.example:{port}"})
            assert (r.status_code, r.json()["code"]) == (421, "host_not_allowed")
            assert (
                await web.get("/api/summary", headers={"host": "obs.example"})
            ).status_code == 200
            # Nothing here changes state; a cross-site simple POST is refused at the door.
            r = await web.post(
                "/api/summary",
                content=b"x",
                headers={"content-type": "text/plain", "origin": "http://evil.example"},
            )
            assert r.status_code == 403
            summary = (await web.get("/api/summary")).json()
            assert summary["http_refused"] == {"host_not_allowed": 1, "origin_not_allowed": 1}
        tg.cancel_scope.cancel()
