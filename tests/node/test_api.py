"""The resident API over real HTTP: status, log paging, notes, errors with stable codes."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from tests.conftest import make_node, running

pytestmark = pytest.mark.timeout(60)


@contextlib.asynccontextmanager
async def api_of(tmp_path: Path, url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A running node and an HTTP client for its API. (A context manager, not an async
    fixture: the node's task group must be entered and left in the test's own task.)"""
    node = Node(await make_node(tmp_path, "oakley", url))
    async with running(node), httpx.AsyncClient(base_url=node.api_url) as client:
        yield client


async def test_status(tmp_path: Path, nats_server: NatsServer) -> None:
    async with api_of(tmp_path, nats_server.url) as api:
        r = await api.get("/status")
        assert r.status_code == 200
        body = r.json()
        assert body["slug"] == "oakley"
        assert body["own_head"] == 1
        assert body["ready_to_sign"] is True
        assert body["bus_connected"] is True


async def test_post_note_then_read_it(tmp_path: Path, nats_server: NatsServer) -> None:
    async with api_of(tmp_path, nats_server.url) as api:
        r = await api.post("/notes", json={"text": "Seedlings to share 🌱"})
        assert r.status_code == 201
        event = r.json()
        assert (event["author"], event["seq"], event["kind"]) == ("oakley", 2, "note.posted")
        assert event["body"] == {"text": "Seedlings to share 🌱"}
        notes = (await api.get("/notes")).json()
        assert notes[0]["text"] == "Seedlings to share 🌱"
        one = await api.get("/log/oakley/2")
        assert one.json()["id"] == event["id"]


async def test_log_is_paged(tmp_path: Path, nats_server: NatsServer) -> None:
    async with api_of(tmp_path, nats_server.url) as api:
        for i in range(5):
            assert (await api.post("/notes", json={"text": f"n{i}"})).status_code == 201
        seen: list[int] = []
        after = 0
        while True:
            page = (await api.get("/log", params={"after": after, "limit": 2})).json()
            if not page["events"]:
                break
            assert len(page["events"]) <= 2
            seen += [e["seq"] for e in page["events"]]
            after = page["next_after"]
        assert seen == [1, 2, 3, 4, 5, 6]
        founded = (await api.get("/log", params={"author": "oakley", "limit": 1})).json()
        assert founded["events"][0]["kind"] == "node.founded"
        assert len(founded["events"][0]["body"]["key"]) == 64  # binaries as hex


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"text": ""}, 400, "bad_request"),
        ({"text": "x" * 2001}, 400, "bad_request"),
        ({"text": 5}, 400, "bad_request"),
        ({}, 400, "bad_request"),
    ],
)
async def test_bad_notes_get_a_code(
    tmp_path: Path, nats_server: NatsServer, payload: object, status: int, code: str
) -> None:
    async with api_of(tmp_path, nats_server.url) as api:
        r = await api.post("/notes", json=payload)
        assert r.status_code == status
        assert r.json()["code"] == code
        assert r.json()["message"]


async def test_not_json_gets_a_code(tmp_path: Path, nats_server: NatsServer) -> None:
    async with api_of(tmp_path, nats_server.url) as api:
        r = await api.post(
            "/notes", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400
        assert r.json()["code"] == "bad_request"


async def test_unknown_event_is_not_found(tmp_path: Path, nats_server: NatsServer) -> None:
    async with api_of(tmp_path, nats_server.url) as api:
        r = await api.get("/log/oakley/99")
        assert r.status_code == 404
        assert r.json()["code"] == "not_found"


async def test_bad_query_gets_a_code(tmp_path: Path, nats_server: NatsServer) -> None:
    async with api_of(tmp_path, nats_server.url) as api:
        r = await api.get("/log", params={"limit": 0})
        assert r.status_code == 400
        assert r.json()["code"] == "bad_request"


async def test_openapi_schema(tmp_path: Path, nats_server: NatsServer) -> None:
    async with api_of(tmp_path, nats_server.url) as api:
        schema = (await api.get("/schema/openapi.json")).json()
        assert {"/status", "/log", "/notes", "/log/{author}/{seq}"} <= set(schema["paths"])


async def test_a_node_that_cannot_confirm_its_head_refuses_to_sign(tmp_path: Path) -> None:
    dead = "nats://127.0.0.1:9"  # nothing listens there
    node = Node(await make_node(tmp_path, "oakley", dead))
    node.ready_wait_s = 0.2
    async with (
        running(node, ready=False),
        httpx.AsyncClient(base_url=node.api_url) as client,
    ):
        r = await client.post("/notes", json={"text": "too early"})
        assert r.status_code == 503
        assert r.json()["code"] == "head_unconfirmed"
        status = (await client.get("/status")).json()  # reads still work
        assert status["ready_to_sign"] is False
        assert status["own_head"] == 1
