"""The node API's doors over real HTTP (node/engine/http_doors.py, OPERATIONS.md §13): only
JSON bodies, only its own Host and Origin, bounded bodies and depth, security headers on
every answer; and nothing signed for a request the doors refuse. Cases `localhost-csrf`,
`resident-api-csrf`, `deep-json-500` and the node's half of `dashboard-no-security-headers`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest

from coopnet.node.engine.config import read_config, write_config
from coopnet.node.engine.http_doors import (
    CONTENT_SECURITY_POLICY,
    MAX_BODY_BYTES,
    Doors,
    json_depth,
    split_host,
)
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from tests.conftest import make_node, running

pytestmark = pytest.mark.timeout(60)

SECURITY = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@contextlib.asynccontextmanager
async def node_api(
    tmp_path: Path, url: str, names: list[str] | None = None
) -> AsyncIterator[tuple[Node, httpx.AsyncClient]]:
    """A running node (with `names` in node.toml's api_names) and a client for its API."""
    data = await make_node(tmp_path, "oakley", url)
    if names:
        write_config(data, msgspec.structs.replace(read_config(data), api_names=names))
    node = Node(data)
    async with running(node), httpx.AsyncClient(base_url=node.api_url) as client:
        yield node, client


async def own_kinds(api: httpx.AsyncClient) -> list[str]:
    page = (await api.get("/log", params={"author": "oakley"})).json()
    return [e["kind"] for e in page["events"]]


def port_of(api: httpx.AsyncClient) -> int:
    port = urlsplit(str(api.base_url)).port
    assert port is not None
    return port


# -- pure parts ------------------------------------------------------------------------------


def test_json_depth_counts_brackets_outside_strings_only() -> None:
    assert json_depth(b'{"text": "[[[{{{"}', 32) == 1
    assert json_depth(b'{"a": [[{"b": []}]]}', 32) == 5
    assert json_depth(b'"escaped \\" [[["', 32) == 0
    assert json_depth(b"[" * 100_000, 32) == 33  # stops counting past the limit
    assert json_depth(b'"' + b'\\"' * 50_000 + b"[[", 32) == 0  # one unterminated string
    assert json_depth(b'"\\' * 50_000 + b"[[", 32) == 0  # each quote rescanned: still linear


def test_split_host() -> None:
    assert split_host("LocalHost:8080") == ("localhost", 8080)
    assert split_host("[::1]:80") == ("[::1]", 80)
    assert split_host("[::1]") == ("[::1]", None)
    for bad in ("a:b", "", ":80", "x:123456"):
        with pytest.raises(ValueError):
            split_host(bad)


def test_host_allow_list() -> None:
    async def app(*_: object) -> None:  # never called here
        raise AssertionError

    doors = Doors(app, listen_host="0.0.0.0", names=["coop.example", "lan.example:9000"])
    assert doors.host_allowed("127.0.0.1:8000", 8000)
    assert doors.host_allowed("localhost:8000", 8000)
    assert doors.host_allowed("[::1]:8000", 8000)
    assert not doors.host_allowed("127.0.0.1:8001", 8000)  # not this server's port
    assert not doors.host_allowed("0.0.0.0:8000", 8000)  # a wildcard is no name
    assert doors.host_allowed("coop.example", 8000)
    assert doors.host_allowed("coop.example:443", 8000)
    assert doors.host_allowed("lan.example:9000", 8000)
    assert not doors.host_allowed("lan.example:9001", 8000)
    assert not doors.host_allowed("rebind.evil.example:8000", 8000)
    assert not doors.host_allowed("", 8000)


# -- over HTTP -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain;charset=UTF-8", b'{"text": "signed for a web page"}'),
        ("application/x-www-form-urlencoded", b'{"text": "signed for a web page"}'),
        ("multipart/form-data; boundary=x", b'--x\r\ncontent-disposition: form-data; name="text"'
         b'\r\n\r\nsigned\r\n--x--\r\n'),
        (None, b'{"text": "signed for a web page"}'),
        ("application/json; charset=latin-1", b'{"text": "signed for a web page"}'),
        ("application/jsonp", b'{"text": "signed for a web page"}'),
    ],
)  # fmt: skip
async def test_only_json_bodies_are_read(
    tmp_path: Path, nats_server: NatsServer, content_type: str | None, body: bytes
) -> None:
    async with node_api(tmp_path, nats_server.url) as (_, api):
        headers = {"content-type": content_type} if content_type else {}
        for path in ("/notes", "/alerts", "/membership/retire"):
            r = await api.post(path, content=body, headers=headers)
            assert (r.status_code, r.json()["code"]) == (415, "unsupported_media_type"), path
        assert await own_kinds(api) == ["node.founded"]  # nothing signed
        status = (await api.get("/status")).json()
        assert status["http_refused"] == {"unsupported_media_type": 3}


async def test_json_with_charset_and_bodiless_posts_pass(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    async with node_api(tmp_path, nats_server.url) as (_, api):
        r = await api.post(
            "/notes",
            content=b'{"text": "hello"}',
            headers={"content-type": "application/json; charset=UTF-8"},
        )
        assert r.status_code == 201
        # A POST without a body needs no type (the CLI's `coopnet node rotate-key`).
        assert (await api.post("/keys/rotate")).status_code == 201
        assert await own_kinds(api) == ["node.founded", "note.posted", "node.key_rotated"]


async def test_a_foreign_origin_changes_nothing(tmp_path: Path, nats_server: NatsServer) -> None:
    async with node_api(tmp_path, nats_server.url) as (node, api):
        for origin in ("http://evil.example", "null", f"http://localhost:{port_of(api) + 1}"):
            r = await api.post("/notes", json={"text": "x"}, headers={"origin": origin})
            assert (r.status_code, r.json()["code"]) == (403, "origin_not_allowed"), origin
            r = await api.post("/keys/rotate", headers={"origin": origin})
            assert r.status_code == 403
        assert await own_kinds(api) == ["node.founded"]
        # Its own origin passes the doors (then the app needs a session: docs/APP.md), and
        # no Origin at all (curl, the CLI: the node's own OS user) is served.
        own = await api.post("/notes", json={"text": "mine"}, headers={"origin": node.api_url})
        assert (own.status_code, own.json()["code"]) == (401, "sign_in_required")
        assert (await api.post("/notes", json={"text": "curl"})).status_code == 201
        # Reading is not changing: a foreign Origin's GET passes the doors, and then needs
        # a session like any browser's (no CORS header is ever sent either).
        r = await api.get("/status", headers={"origin": "http://evil.example"})
        assert (r.status_code, r.json()["code"]) == (401, "sign_in_required")
        assert "access-control-allow-origin" not in r.headers


async def test_a_foreign_host_reads_nothing(tmp_path: Path, nats_server: NatsServer) -> None:
    """DNS rebinding: a page on rebind.evil.example resolving to 127.0.0.1 sends its own
    name as Host; it must not read the node's status, log or private calls for help."""
    async with node_api(tmp_path, nats_server.url, names=["coop.example"]) as (_, api):
        port = port_of(api)
        for path in ("/status", "/log", "/aid/requests", "/", "/schema/openapi.json"):
            r = await api.get(path, headers={"host": f"rebind.evil.example:{port}"})
            assert (r.status_code, r.json()["code"]) == (421, "host_not_allowed"), path
            assert r.headers["x-frame-options"] == "DENY"
        r = await api.post("/notes", json={"text": "x"}, headers={"host": "evil.example"})
        assert r.status_code == 421
        for host in (f"localhost:{port}", f"[::1]:{port}", "coop.example", "coop.example:443"):
            assert (await api.get("/status", headers={"host": host})).status_code == 200, host
        assert (
            await api.get("/status", headers={"host": f"localhost:{port + 1}"})
        ).status_code == 421
        assert (await api.get("/status")).json()["http_refused"]["host_not_allowed"] == 7


async def test_deep_json_is_a_bad_request_without_a_traceback(
    tmp_path: Path, nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with node_api(tmp_path, nats_server.url) as (_, api):
        caplog.set_level(logging.WARNING)
        deep = b'{"text":' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # 200 KB, under the size cap
        for path in ("/notes", "/offers", "/aid/requests", "/trades", "/membership/apply"):
            r = await api.post(path, content=deep, headers={"content-type": "application/json"})
            assert (r.status_code, r.json()["code"]) == (400, "too_deep"), path
        # Deep within the limit, but not what the schema wants: the usual bad_request.
        shallow = b'{"text":' + b"[" * 30 + b"]" * 30 + b"}"
        r = await api.post("/notes", content=shallow, headers={"content-type": "application/json"})
        assert (r.status_code, r.json()["code"]) == (400, "bad_request")
        assert await own_kinds(api) == ["node.founded"]
        assert not [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
        assert "Traceback" not in caplog.text


async def test_bodies_are_bounded(tmp_path: Path, nats_server: NatsServer) -> None:
    async with node_api(tmp_path, nats_server.url) as (_, api):
        big = b'{"text": "' + b"x" * MAX_BODY_BYTES + b'"}'
        r = await api.post("/notes", content=big, headers={"content-type": "application/json"})
        assert (r.status_code, r.json()["code"]) == (413, "body_too_large")

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
            yield b'{"text": "'
            for _ in range(MAX_BODY_BYTES // 65536 + 1):
                yield b"x" * 65536
            yield b'"}'

        r = await api.post("/notes", content=chunks(), headers={"content-type": "application/json"})
        assert (r.status_code, r.json()["code"]) == (413, "body_too_large")
        assert await own_kinds(api) == ["node.founded"]


async def test_every_answer_has_the_security_headers(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    async with node_api(tmp_path, nats_server.url) as (_, api):
        answers = [
            await api.get("/"),
            await api.get("/status"),
            await api.get("/schema"),
            await api.get("/schema/openapi.json"),
            await api.get("/static/app/app.js"),
            await api.get("/no/such/thing"),
            await api.post("/notes", json={"text": ""}),  # refused by the schema
            await api.post("/notes", content=b"x", headers={"content-type": "text/plain"}),
            await api.post("/notes", json={"text": "fine"}),
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 200, 200, 404, 400, 415, 201]
        for answer in answers:
            for name, value in SECURITY.items():
                assert answer.headers.get(name) == value, (answer.url, name)
            assert "unsafe-inline" not in answer.headers["content-security-policy"]


async def test_app_and_schema_are_served_from_the_package(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    async with node_api(tmp_path, nats_server.url) as (_, api):
        page = await api.get("/")
        assert page.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/static/app/app.js">' in page.text
        schema = await api.get("/schema")
        assert '<script type="module" src="/static/schema.js">' in schema.text
        for html in (page.text, schema.text):
            assert "<style" not in html and " style=" not in html
            assert "<script>" not in html  # no inline script: every script has a src
            assert "http://" not in html and "https://" not in html  # no CDN
        assert (await api.get("/static/schema.js")).status_code == 200
        assert (await api.get("/static/style.css")).headers["content-type"].startswith("text/css")
