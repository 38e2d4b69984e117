"""Passkeys (docs/APP.md, "Passkeys"): a coordinator adds one in the app and signs in with
it, in Debian's chromium with its virtual authenticator (the DevTools WebAuthn domain);
the ceremonies refuse what they must (an IP address as the RP, a replayed or unknown
ceremony, a credential this node does not hold)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from tests.accounts import session
from tests.conftest import make_node, running
from tests.federation.test_dashboard_browser import browser_page, require_chromium
from tests.node.test_app_browser import sign_in_as_coordinator

pytestmark = pytest.mark.timeout(120)
WAIT_MS = 20_000


async def test_a_coordinator_adds_a_passkey_and_signs_in_with_it(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    require_chromium()
    node = Node(await make_node(tmp_path, "oakley", nats_server.url))
    console: list[str] = []
    async with running(node), httpx.AsyncClient(base_url=node.api_url) as api:
        port = node.api_url.rsplit(":", 1)[1]
        app = f"http://localhost:{port}/"  # passkeys need a name: browsers refuse an IP
        async with browser_page(console) as page:
            cdp = await page.context.new_cdp_session(page)
            await cdp.send("WebAuthn.enable")
            added = await cdp.send(
                "WebAuthn.addVirtualAuthenticator",
                {"options": {"protocol": "ctap2", "transport": "internal",
                             "hasResidentKey": True, "hasUserVerification": True,
                             "isUserVerified": True, "automaticPresenceSimulation": True}},
            )  # fmt: skip
            await sign_in_as_coordinator(page, api, app)
            tabs = page.get_by_role("navigation", name="Main")
            await tabs.get_by_role("link", name="Help", exact=True).wait_for(timeout=WAIT_MS)
            await tabs.get_by_role("link", name="Me", exact=True).click()
            await page.get_by_role("button", name="Add a passkey").click()
            await page.get_by_text("Passkey added").wait_for(timeout=WAIT_MS)
            held = await cdp.send(
                "WebAuthn.getCredentials", {"authenticatorId": added["authenticatorId"]}
            )
            assert len(held["credentials"]) == 1
            assert held["credentials"][0]["rpId"] == "localhost"
            await page.get_by_role("button", name="Sign out").click()
            await page.get_by_role("heading", name="Sign in").wait_for(timeout=WAIT_MS)
            await page.get_by_role("button", name="Sign in with a passkey").click()
            await page.get_by_text("Signed in as ada").wait_for(timeout=WAIT_MS)
            me = await page.evaluate("fetch('/auth/me').then((r) => r.json())")
            assert (me["name"], me["role"]) == ("ada", "coordinator")
    assert not [line for line in console if "uncaught" in line], console


async def test_passkey_ceremonies_refuse_what_they_must(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    node = Node(await make_node(tmp_path, "oakley", nats_server.url))
    async with running(node), session(node, "coordinator", "cora") as cora:
        at_ip = await cora.post("/auth/passkeys/options")  # the client reached 127.0.0.1
        assert (at_ip.status_code, at_ip.json()["code"]) == (400, "passkey_needs_a_name")
        port = node.api_url.rsplit(":", 1)[1]
        async with httpx.AsyncClient(base_url=f"http://localhost:{port}") as web:
            started = (await web.post("/auth/passkey/options")).json()
            assert started["options"]["rpId"] == "localhost"
            forged = {"id": "AAAA", "rawId": "AAAA", "type": "public-key",
                      "response": {"clientDataJSON": "", "authenticatorData": "",
                                   "signature": ""}}  # fmt: skip
            r = await web.post(
                "/auth/passkey/sign-in",
                json={"ceremony": started["ceremony"], "credential": forged},
            )
            assert (r.status_code, r.json()["code"]) == (401, "passkey_not_valid")
            # One use: the same ceremony is over.
            r = await web.post(
                "/auth/passkey/sign-in",
                json={"ceremony": started["ceremony"], "credential": forged},
            )
            assert (r.status_code, r.json()["code"]) == (400, "passkey_not_valid")


async def test_malformed_passkey_answers_are_refused_never_500(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """What the security review sent: a credential with an empty response, a null type, no
    id: a typed refusal each time, and the node goes on."""
    node = Node(await make_node(tmp_path, "oakley", nats_server.url))
    async with running(node):
        localhost = "http://localhost:" + node.api_url.rsplit(":", 1)[1]
        async with session(node, "coordinator", "cora", base_url=localhost) as cora:
            malformed: list[dict[str, object]] = [
                {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}},
                {"id": "AAAA", "rawId": "AAAA", "type": None, "response": {}},
                {"response": {"clientDataJSON": "x"}},
                {},
            ]
            for credential in malformed:
                started = (await cora.post("/auth/passkeys/options")).json()
                r = await cora.post(
                    "/auth/passkeys",
                    json={"ceremony": started["ceremony"], "credential": credential},
                )
                assert (r.status_code, r.json()["code"]) == (400, "passkey_not_valid"), credential
                started = (await cora.post("/auth/passkey/options")).json()
                r = await cora.post(
                    "/auth/passkey/sign-in",
                    json={"ceremony": started["ceremony"], "credential": credential},
                )
                assert (r.status_code, r.json()["code"]) == (401, "passkey_not_valid"), credential
            assert (await cora.get("/auth/me")).status_code == 200


async def test_a_coordinator_makes_an_api_token_in_the_app_and_a_script_uses_it(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """The Me page's API tokens: made with a label, shown once, usable as a Bearer token
    by a script with the account's role, revoked from the same page."""
    require_chromium()
    node = Node(
        await make_node(
            tmp_path,
            "oakley",
            nats_server.url,
        )
    )
    console: list[str] = []
    async with (
        running(node),
        httpx.AsyncClient(base_url=node.api_url) as api,
        browser_page(console) as page,
    ):
        await sign_in_as_coordinator(page, api, node.api_url + "/")
        tabs = page.get_by_role("navigation", name="Main")
        await tabs.get_by_role("link", name="Help", exact=True).wait_for(timeout=WAIT_MS)
        await tabs.get_by_role("link", name="Me", exact=True).click()
        await page.get_by_label("What it is for").fill("till script")
        await page.get_by_role("button", name="Make a token").click()
        token = (await page.locator("code.secret").text_content() or "").strip()
        assert len(token) == 43
        async with httpx.AsyncClient(
            base_url=node.api_url,
            headers={"authorization": f"Bearer {token}", "sec-fetch-site": "none"},
        ) as script:
            assert (await script.post("/notes", json={"text": "from a script"})).status_code == 201
            await page.get_by_role("button", name="Revoke token till script").click()
            await page.get_by_text("Token revoked").wait_for(timeout=WAIT_MS)
            r = await script.get("/auth/me")
            assert (r.status_code, r.json()["code"]) == (401, "token_not_valid")
    assert not [line for line in console if "uncaught" in line], console
