"""Every endpoint of the node declares its role, and the guard holds for each (docs/APP.md,
"Who may call what"): the expected roles are written here from the spec, not read from the
code, and every operation of the OpenAPI schema is called with no credential, as a
resident and as a coordinator."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from coopnet.node.engine.auth import declared_role
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from tests.accounts import anonymous, session
from tests.conftest import make_node, running

pytestmark = pytest.mark.timeout(120)

P, R, C = "public", "resident", "coordinator"
# docs/APP.md: the sign-in flow and /health are public; residents ask for help, pledge,
# act on their own requests, and read; coordinators sign the co-op's events and manage
# accounts.
EXPECTED: dict[tuple[str, str], str] = {
    ("POST", "/auth/sign-in"): P,
    ("POST", "/auth/invitation"): P,
    ("POST", "/auth/join"): P,
    ("POST", "/auth/reset"): P,
    ("GET", "/health"): P,
    ("GET", "/auth/me"): R,
    ("POST", "/auth/sign-out"): R,
    ("POST", "/auth/password"): R,
    ("GET", "/auth/tokens"): R,
    ("POST", "/auth/tokens"): R,
    ("POST", "/auth/tokens/{token}/revoke"): R,
    ("POST", "/auth/passkeys/options"): R,
    ("POST", "/auth/passkeys"): R,
    ("GET", "/auth/passkeys"): R,
    ("POST", "/auth/passkeys/{passkey}/remove"): R,
    ("POST", "/auth/passkey/options"): P,
    ("POST", "/auth/passkey/sign-in"): P,
    ("GET", "/accounts"): C,
    ("POST", "/accounts/invitations"): C,
    ("GET", "/accounts/invitations"): C,
    ("POST", "/accounts/invitations/{invitation}/revoke"): C,
    ("POST", "/accounts/{name}/role"): C,
    ("POST", "/accounts/{name}/reset"): C,
    ("POST", "/accounts/{name}/disable"): C,
    ("GET", "/status"): C,
    ("GET", "/log"): R,
    ("GET", "/log/{author}/{seq}"): R,
    ("POST", "/keys/rotate"): C,
    ("GET", "/app/info"): R,
    ("GET", "/live"): R,
    ("POST", "/notes"): C,
    ("GET", "/notes"): R,
    ("POST", "/aid/requests"): R,
    ("GET", "/aid/requests"): R,
    ("POST", "/aid/requests/{requester}/{request_id}/pledges"): R,
    ("POST", "/aid/requests/{request_id}/accept"): R,
    ("POST", "/aid/requests/{request_id}/fulfil"): R,
    ("POST", "/aid/requests/{request_id}/withdraw"): R,
    ("POST", "/aid/requests/{request_id}/escalate"): R,
    ("POST", "/aid/requests/{requester}/{request_id}/pledges/{pledge}/withdraw"): R,
    ("POST", "/alerts"): C,
    ("POST", "/alerts/{alert}/resolve"): C,
    ("GET", "/alerts"): R,
    ("POST", "/offers"): C,
    ("GET", "/offers"): R,
    ("POST", "/offers/{offer}/revise"): C,
    ("POST", "/offers/{offer}/withdraw"): C,
    ("POST", "/needs"): C,
    ("GET", "/needs"): R,
    ("POST", "/needs/{need}/withdraw"): C,
    ("GET", "/match"): R,
    ("POST", "/trades"): C,
    ("GET", "/trades"): R,
    ("POST", "/trades/{buyer}/{trade}/{action}"): C,
    ("GET", "/balance"): R,
    ("GET", "/hours/me"): R,
    ("POST", "/hours/entries"): R,
    ("POST", "/hours/entries/{entry}/confirm"): R,
    ("POST", "/hours/entries/{entry}/decline"): R,
    ("GET", "/hours/residents"): C,
    ("POST", "/hours/credit"): C,
    ("GET", "/hours/neighborhoods"): R,
    ("POST", "/hours/transfers"): C,
    ("GET", "/pools"): R,
    ("GET", "/pools/{organizer}/{pool}"): R,
    ("POST", "/pools"): C,
    ("POST", "/pools/{organizer}/{pool}/commit"): C,
    ("POST", "/pools/{organizer}/{pool}/box-fill"): C,
    ("POST", "/pools/{organizer}/{pool}/close"): C,
    ("POST", "/pools/{organizer}/{pool}/cancel"): C,
    ("POST", "/pools/{organizer}/{pool}/deliver"): C,
    ("POST", "/pools/{organizer}/{pool}/receive"): C,
    ("GET", "/membership"): R,
    ("POST", "/membership/apply"): C,
    ("POST", "/membership/{applicant}/consent"): C,
    ("POST", "/membership/{applicant}/object"): C,
    ("POST", "/membership/{applicant}/withdraw"): C,
    ("POST", "/membership/retire"): C,
}
# A body no endpoint accepts as it stands (`reason` is text wherever it exists): a call
# that passes the guard is refused by validation, so nothing is retired or signed.
HARMLESS = {"reason": 5}
LAST = ("/auth/sign-out",)  # ends the caller's own session: called last


async def _status(client: httpx.AsyncClient, method: str, path: str) -> tuple[int, str]:
    url = re.sub(r"\{seq\}", "1", re.sub(r"\{(?!seq)[a-z_]+\}", "x", path))
    request = client.build_request(method, url, json=HARMLESS if method == "POST" else None)
    answer = await client.send(request, stream=True)  # /live streams: read no further
    try:
        code = ""
        if answer.headers.get("content-type", "").startswith("application/json"):
            await answer.aread()
            body = answer.json()
            code = body.get("code", "") if isinstance(body, dict) else ""
        return answer.status_code, code
    finally:
        await answer.aclose()


async def test_every_endpoint_admits_exactly_its_role(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    node = Node(await make_node(tmp_path, "oakley", nats_server.url))
    async with (
        running(node),
        anonymous(node) as stranger,
        session(node, "resident", "ana") as resident,
        session(node, "coordinator", "cora") as coordinator,
    ):
        schema = (await coordinator.get("/schema/openapi.json")).json()
        operations = {
            (method.upper(), path) for path, ops in schema["paths"].items() for method in ops
        }
        assert operations == set(EXPECTED), operations ^ set(EXPECTED)
        ordered = sorted(EXPECTED.items(), key=lambda item: item[0][1] in LAST)
        for (method, path), role in ordered:
            status, code = await _status(stranger, method, path)
            if role == P:
                assert status not in (401, 403), (method, path, status, code)
            else:
                assert (status, code) == (401, "sign_in_required"), (method, path)
            status, code = await _status(resident, method, path)
            if role == C:
                assert (status, code) == (403, "role_required"), (method, path, status)
            else:
                assert status not in (401, 403) or code not in (
                    "sign_in_required", "role_required", "csrf_token_missing"
                ), (method, path, status, code)  # fmt: skip
            status, code = await _status(coordinator, method, path)
            assert code not in ("sign_in_required", "role_required", "csrf_token_missing"), (
                method, path, status, code
            )  # fmt: skip
        # Nothing was signed by any of it but the key rotation.
        kinds = [e["kind"] for e in (await coordinator.get("/log")).json()["events"]]
        assert set(kinds) <= {"node.founded", "node.key_rotated"}, kinds


async def test_every_route_of_the_app_declares_a_role(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """Routes outside the schema too (the app's page, its static files): each handler
    names its role; only the OpenAPI pages fall back (to resident), by path."""
    node = Node(await make_node(tmp_path, "oakley", nats_server.url))
    async with running(node), anonymous(node) as stranger:
        app = node.app
        assert app is not None
        undeclared = []
        for route in app.routes:
            for handler in getattr(route, "route_handlers", []):
                methods = getattr(handler, "http_methods", {"?"})
                if methods == {"OPTIONS"}:
                    continue  # Litestar's own answer to a preflight (the doors refuse those)
                if "role" not in handler.opt and not route.path.startswith("/schema"):
                    undeclared.append((route.path, methods))
                assert declared_role(handler, route.path) in (P, R, C)
        assert undeclared == []
        assert (await stranger.get("/schema")).status_code == 401
        assert (await stranger.get("/static/app/index.html")).status_code in (200, 404)
