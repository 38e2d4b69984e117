"""Accounts on a running node (docs/APP.md): invitations, sign-in, sessions in cookies with
a CSRF token, throttled sign-in, passwords as argon2id, API tokens stored hashed, the CLI's
token file, and the node's own OS user on the loopback."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import stat
from pathlib import Path

import httpx
import msgspec
import pytest

from coopnet.node.engine.accounts import HOUR_MS, PER_NAME_AND_CLIENT
from coopnet.node.engine.client import API_TOKEN_FILE
from coopnet.node.engine.config import read_config, write_config
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from tests.accounts import PASSWORD, anonymous, invitation, session
from tests.conftest import make_node, running

pytestmark = pytest.mark.timeout(90)


async def oakley(tmp_path: Path, url: str, **config: object) -> Node:
    data = await make_node(tmp_path, "oakley", url)
    if config:
        write_config(data, msgspec.structs.replace(read_config(data), **config))
    return Node(data)


async def test_a_resident_joins_from_an_invitation_and_signs_out(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    node = await oakley(tmp_path, nats_server.url)
    async with running(node), httpx.AsyncClient(base_url=node.api_url) as web:
        secret = await invitation(node, "resident")
        shown = await web.post("/auth/invitation", json={"invitation": secret})
        assert shown.json()["kind"] == "join" and shown.json()["role"] == "resident"
        r = await web.post(
            "/auth/join",
            json={"invitation": secret, "name": "Ana", "password": PASSWORD,
                  "display_name": "Ana\u202e", "contact": "flat 3"},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        me = r.json()
        assert (me["name"], me["role"], me["display_name"]) == ("ana", "resident", "Ana")
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert "secure" not in cookie  # served over plain HTTP on the loopback
        assert (await web.get("/auth/me")).json()["name"] == "ana"
        # Single use: the same link makes no second account.
        again = await web.post(
            "/auth/join", json={"invitation": secret, "name": "eve", "password": PASSWORD}
        )
        assert (again.status_code, again.json()["code"]) == (400, "invitation_not_valid")
        out = await web.post("/auth/sign-out", headers={"x-csrf-token": me["csrf"]})
        assert out.status_code == 200
        gone = await web.get("/auth/me", headers={"sec-fetch-site": "same-origin"})
        assert (gone.status_code, gone.json()["code"]) == (401, "sign_in_required")
        # The old cookie, replayed, no longer holds.
        replay = await web.get("/auth/me", headers={"cookie": "coopnet_session=" + "x" * 43})
        assert (replay.status_code, replay.json()["code"]) == (401, "session_expired")
        back = await web.post("/auth/sign-in", json={"name": "ana", "password": PASSWORD})
        assert back.status_code == 200 and back.json()["role"] == "resident"


async def test_an_invitation_expires(tmp_path: Path, nats_server: NatsServer) -> None:
    node = await oakley(tmp_path, nats_server.url)
    async with running(node), httpx.AsyncClient(base_url=node.api_url) as web:
        _, secret = await node.accounts.invite("resident", by="@operator", hours=1)
        real = node.accounts.clock
        node.accounts.clock = lambda: real() + HOUR_MS + 1
        r = await web.post(
            "/auth/join", json={"invitation": secret, "name": "late", "password": PASSWORD}
        )
        assert (r.status_code, r.json()["code"]) == (400, "invitation_not_valid")
        assert await node.accounts.listing() == []


async def test_passwords_are_argon2id_and_secrets_are_kept_only_as_digests(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    node = await oakley(tmp_path, nats_server.url)
    async with running(node), session(node, "coordinator", "cora") as cora:
        made = (await cora.post("/auth/tokens", json={"label": "a script"})).json()
        assert made["role"] == "coordinator"
        cookie = cora.cookies["coopnet_session"]
    db = sqlite3.connect(tmp_path / "oakley" / "node.db")
    (hashed,) = db.execute("SELECT password FROM accounts WHERE name = 'cora'").fetchone()
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    digests = {bytes(r[0]) for r in db.execute("SELECT digest FROM api_tokens")}
    assert hashlib.sha256(made["token"].encode()).digest() in digests
    dump = "\n".join(db.iterdump())
    for secret in (made["token"], cookie):
        assert secret not in dump


async def test_sign_in_is_throttled_per_name(tmp_path: Path, nats_server: NatsServer) -> None:
    node = await oakley(tmp_path, nats_server.url)
    async with (
        running(node),
        session(node, "resident", "ana"),
        httpx.AsyncClient(base_url=node.api_url) as web,
    ):
        unknown = await web.post("/auth/sign-in", json={"name": "nobody", "password": "x" * 12})
        assert (unknown.status_code, unknown.json()["code"]) == (401, "bad_credentials")
        for _ in range(PER_NAME_AND_CLIENT):
            r = await web.post("/auth/sign-in", json={"name": "ana", "password": "wrong" * 3})
            assert (r.status_code, r.json()["code"]) == (401, "bad_credentials")
        # Now even the right password waits.
        r = await web.post("/auth/sign-in", json={"name": "ana", "password": PASSWORD})
        assert (r.status_code, r.json()["code"]) == (429, "too_many_attempts")
        assert int(r.headers["retry-after"]) > 0, r.headers


async def test_a_session_change_needs_its_csrf_token(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    node = await oakley(tmp_path, nats_server.url)
    async with running(node), session(node, "coordinator", "cora") as cora:
        without = await cora.post("/notes", json={"text": "no token"}, headers={"x-csrf-token": ""})
        assert (without.status_code, without.json()["code"]) == (403, "csrf_token_missing")
        wrong = await cora.post("/notes", json={"text": "x"}, headers={"x-csrf-token": "nope"})
        assert wrong.status_code == 403
        assert (await cora.post("/notes", json={"text": "with token"})).status_code == 201


async def test_roles_decide_who_signs(tmp_path: Path, nats_server: NatsServer) -> None:
    node = await oakley(tmp_path, nats_server.url)
    async with running(node), session(node, "resident", "ana") as ana:
        r = await ana.post("/alerts", json={"kind": "fire", "severity": "danger"})
        assert (r.status_code, r.json()["code"]) == (403, "role_required")
        assert "coordinator" in r.json()["message"]
        asked = await ana.post(
            "/aid/requests",
            json={"category": "food", "urgency": "normal", "quantity": 1, "description": "soup"},
        )
        assert asked.status_code == 201, asked.text
        assert (await ana.get("/balance")).status_code == 200
        assert (await ana.get("/accounts")).status_code == 403


async def test_api_tokens_carry_their_role_and_can_be_revoked(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    node = await oakley(tmp_path, nats_server.url, api_local_operator=False)
    async with running(node), session(node, "coordinator", "cora") as cora:
        made = (await cora.post("/auth/tokens", json={"label": "till"})).json()
        bearer = {"authorization": f"Bearer {made['token']}"}
        async with httpx.AsyncClient(base_url=node.api_url, headers=bearer) as script:
            assert (await script.post("/notes", json={"text": "by script"})).status_code == 201
            assert [t["id"] for t in (await cora.get("/auth/tokens")).json()] == [made["id"]]
            revoked = await cora.post(f"/auth/tokens/{made['id']}/revoke")
            assert revoked.status_code == 200
            r = await script.get("/status")
            assert (r.status_code, r.json()["code"]) == (401, "token_not_valid")


async def test_the_cli_token_file_is_private_and_works_without_loopback_trust(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    node = await oakley(tmp_path, nats_server.url, api_local_operator=False)
    async with running(node):
        path = tmp_path / "oakley" / API_TOKEN_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        token = path.read_text().strip()
        async with httpx.AsyncClient(base_url=node.api_url) as web:
            plain = await web.get("/status")  # curl-like, but the node trusts no local user
            assert (plain.status_code, plain.json()["code"]) == (401, "sign_in_required")
            ok = await web.get("/status", headers={"authorization": f"Bearer {token}"})
            assert ok.status_code == 200


async def test_the_nodes_own_user_is_trusted_only_outside_a_browser(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    node = await oakley(tmp_path, nats_server.url)
    async with running(node), httpx.AsyncClient(base_url=node.api_url) as web:
        assert os.getuid() == os.stat(tmp_path).st_uid
        assert (await web.get("/status")).status_code == 200  # curl, the CLI, scripts
        for browser in ({"sec-fetch-site": "cross-site"}, {"origin": node.api_url},
                        {"cookie": "theme=dark"}, {"referer": node.api_url + "/"}):  # fmt: skip
            r = await web.get("/status", headers=browser)
            assert (r.status_code, r.json()["code"]) == (401, "sign_in_required"), browser


async def test_password_change_reset_and_disable_end_other_sessions(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    node = await oakley(tmp_path, nats_server.url)
    async with (
        running(node),
        session(node, "coordinator", "cora") as cora,
        session(node, "resident", "ana") as ana,
    ):
        async with httpx.AsyncClient(base_url=node.api_url) as phone:
            signed = await phone.post("/auth/sign-in", json={"name": "ana", "password": PASSWORD})
            phone.headers["x-csrf-token"] = signed.json()["csrf"]
            changed = await ana.post(
                "/auth/password", json={"current": PASSWORD, "new": "a new long secret"}
            )
            assert changed.status_code == 200
            assert (await ana.get("/auth/me")).status_code == 200  # this session stays
            assert (await phone.get("/auth/me")).json()["code"] == "session_expired"
        # A coordinator's reset link: one use, and every earlier session ends.
        link = (await cora.post("/accounts/ana/reset")).json()["link"]
        secret = link.rsplit("/", 1)[1]
        assert "#/reset/" in link
        async with httpx.AsyncClient(base_url=node.api_url) as web:
            r = await web.post("/auth/reset", json={"invitation": secret, "password": "short"})
            assert r.json()["code"] == "weak_password"
            r = await web.post(
                "/auth/reset", json={"invitation": secret, "password": "reset by cora 1"}
            )
            assert r.status_code == 200, r.text
        assert (await ana.get("/auth/me")).json()["code"] == "session_expired"
        # The last coordinator cannot be demoted or disabled; a resident can be disabled.
        r = await cora.post("/accounts/cora/role", json={"role": "resident"})
        assert (r.status_code, r.json()["code"]) == (409, "last_coordinator")
        assert (await cora.post("/accounts/ana/disable")).status_code == 200
        async with httpx.AsyncClient(base_url=node.api_url) as web:
            r = await web.post("/auth/sign-in", json={"name": "ana", "password": "reset by cora 1"})
            assert r.json()["code"] == "bad_credentials"
        names = [a["name"] for a in (await cora.get("/accounts")).json()]
        assert names == ["cora", "ana"]


async def test_a_stranger_gets_nothing_but_the_sign_in_page(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    node = await oakley(tmp_path, nats_server.url)
    async with running(node), anonymous(node) as stranger:
        assert (await stranger.get("/health")).json() == {"ok": True, "neighborhood": "Oakley"}
        page = await stranger.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        for path in ("/status", "/aid/requests", "/log", "/schema/openapi.json", "/live"):
            r = await stranger.get(path)
            assert (r.status_code, r.json()["code"]) == (401, "sign_in_required"), path


async def test_a_stranger_elsewhere_cannot_lock_a_resident_out(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """Failures count per name and address: a guesser at 127.0.0.2 waits; the resident,
    from her own address, still signs in (case of the security review)."""
    node = await oakley(tmp_path, nats_server.url)
    elsewhere = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with (
        running(node),
        session(node, "resident", "ana"),
        httpx.AsyncClient(base_url=node.api_url, transport=elsewhere) as guesser,
        httpx.AsyncClient(base_url=node.api_url) as ana,
    ):
        for _ in range(PER_NAME_AND_CLIENT):
            r = await guesser.post("/auth/sign-in", json={"name": "ana", "password": "x" * 12})
            assert r.json()["code"] == "bad_credentials"
        r = await guesser.post("/auth/sign-in", json={"name": "ana", "password": PASSWORD})
        assert r.status_code == 429
        r = await ana.post("/auth/sign-in", json={"name": "ana", "password": PASSWORD})
        assert r.status_code == 200, r.text


async def test_forwarded_headers_never_make_the_nodes_own_user(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """A request naming another client (X-Forwarded-For with the port of the operator's own
    connection, as the security review did from another OS user) or relayed by a proxy
    gets no trust: uvicorn ignores the header and the guard refuses any relayed request."""
    node = await oakley(tmp_path, nats_server.url)
    async with running(node), httpx.AsyncClient(base_url=node.api_url) as web:
        own = await web.get("/status")  # keeps a connection of this OS user open
        assert own.status_code == 200
        for relayed in ({"x-forwarded-for": "127.0.0.1"}, {"forwarded": "for=127.0.0.1"},
                        {"x-real-ip": "127.0.0.1"}, {"via": "1.1 proxy"}):  # fmt: skip
            r = await web.get("/status", headers=relayed)
            assert (r.status_code, r.json()["code"]) == (401, "sign_in_required"), relayed


async def test_disabling_ends_the_links_a_coordinator_made_and_their_own(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """A disabled coordinator cannot come back through an invitation they made, nor a reset
    link made for them before; a demoted one's invitations end too; two coordinators
    demoting each other at once leave one."""
    node = await oakley(tmp_path, nats_server.url)
    async with (
        running(node),
        session(node, "coordinator", "alice") as alice,
        session(node, "coordinator", "mallory") as mallory,
        httpx.AsyncClient(base_url=node.api_url) as web,
    ):
        made = (await mallory.post("/accounts/invitations", json={"role": "coordinator"})).json()
        reset = (await alice.post("/accounts/mallory/reset")).json()
        assert (await alice.post("/accounts/mallory/disable")).status_code == 200
        for link in (made["link"], reset["link"]):
            secret = link.rsplit("/", 1)[1]
            r = await web.post(
                "/auth/join", json={"invitation": secret, "name": "back", "password": PASSWORD}
            )
            assert r.json()["code"] == "invitation_not_valid"
            r = await web.post("/auth/reset", json={"invitation": secret, "password": PASSWORD})
            assert r.json()["code"] == "invitation_not_valid"
        async with session(node, "coordinator", "bob") as bob:
            invited = (await bob.post("/accounts/invitations", json={"role": "resident"})).json()
            assert (
                await alice.post("/accounts/bob/role", json={"role": "resident"})
            ).status_code == 200
            secret = invited["link"].rsplit("/", 1)[1]
            r = await web.post("/auth/invitation", json={"invitation": secret})
            assert r.json()["code"] == "invitation_not_valid"
            # Both remaining coordinators demote each other at once: one stays.
            assert (
                await alice.post("/accounts/bob/role", json={"role": "coordinator"})
            ).status_code == 200
            answers = await asyncio.gather(
                alice.post("/accounts/bob/role", json={"role": "resident"}),
                bob.post("/accounts/alice/role", json={"role": "resident"}),
                return_exceptions=False,
            )
            codes = sorted(a.status_code for a in answers)
            assert codes in ([200, 409], [200, 403]), codes  # the loser was demoted first
        roles = [a["role"] for a in await _accounts(node) if not a["disabled"]]
        assert roles.count("coordinator") == 1


async def _accounts(node: Node) -> list[dict[str, object]]:
    return [msgspec.structs.asdict(a) for a in await node.accounts.listing()]


async def test_a_password_change_ends_the_tokens_a_stolen_session_could_make(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    node = await oakley(tmp_path, nats_server.url)
    async with running(node), session(node, "coordinator", "cora") as cora:
        stolen = (await cora.post("/auth/tokens", json={"label": "thief"})).json()["token"]
        changed = await cora.post(
            "/auth/password", json={"current": PASSWORD, "new": "a new long secret"}
        )
        assert changed.status_code == 200
        async with httpx.AsyncClient(
            base_url=node.api_url, headers={"authorization": f"Bearer {stolen}"}
        ) as thief:
            r = await thief.get("/auth/me")
            assert (r.status_code, r.json()["code"]) == (401, "token_not_valid")


async def test_behind_a_tls_proxy_the_session_cookie_is_secure(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    node = await oakley(tmp_path, nats_server.url, api_https=True)
    async with running(node), httpx.AsyncClient(base_url=node.api_url) as web:
        r = await web.post(
            "/auth/join",
            json={"invitation": await invitation(node), "name": "ana", "password": PASSWORD},
        )
        assert r.status_code == 201
        assert "secure" in r.headers["set-cookie"].lower()
