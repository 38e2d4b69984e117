"""Who may call what: every endpoint declares a role, and one guard checks it (docs/APP.md).

A route handler declares `opt=PUBLIC`, `opt=RESIDENT` or `opt=COORDINATOR`; one without
a role needs a coordinator (closed unless opened). The guard (`require_role`, on the whole
app) finds the request's principal, in this order:

1. `Authorization: Bearer <token>`: an API token (`401 token_not_valid` if unknown);
2. the `coopnet_session` cookie (`401 session_expired` if over); a state-changing request
   must also carry `X-CSRF-Token` with the session's token (`403 csrf_token_missing`);
3. the node's own OS user over the loopback (node/engine/peer.py), for a request that
   shows no sign of a browser (no Origin, Cookie, Referer or Sec-Fetch-* header) nor of a
   proxy (no Forwarded, X-Forwarded-*, X-Real-IP or Via), when node.toml's
   `api_local_operator` allows it: a coordinator. The client address is the socket's peer
   (uvicorn runs with `proxy_headers` off).

No principal: `401 sign_in_required`; a lower role: `403 role_required`. The principal is
left in the request's state for handlers (`principal_of`).
"""

from __future__ import annotations

import hmac
import os
from typing import Any, Final

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from coopnet.node.engine.accounts import Accounts, Principal, Role
from coopnet.node.engine.peer import is_loopback, peer_uid
from coopnet.node.engine.refusals import Refused

PUBLIC: Final = {"role": "public"}
RESIDENT: Final = {"role": "resident"}
COORDINATOR: Final = {"role": "coordinator"}
SESSION_COOKIE = "coopnet_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_BROWSER_HEADERS = (b"origin", b"cookie", b"sec-fetch-site", b"sec-fetch-mode", b"referer")
# A request relayed by a proxy or forwarder: whoever is behind it is not the node's user.
_FORWARDED_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-forwarded-host", b"x-real-ip", b"via")


def declared_role(handler: BaseRouteHandler, path: str) -> str:
    """The role a handler declared (`public`, `resident`, `coordinator`); the OpenAPI
    pages need a resident; anything else undeclared, a coordinator."""
    role = handler.opt.get("role")
    if isinstance(role, str):
        return role
    return "resident" if path.startswith("/schema") else "coordinator"


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The principal the guard found for this request (only on non-public endpoints)."""
    principal: Principal = connection.scope.get("state", {})["principal"]
    return principal


def _header(connection: ASGIConnection[Any, Any, Any, Any], name: bytes) -> str | None:
    for key, value in connection.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _is_browser_or_relayed(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    return any(
        key in _BROWSER_HEADERS or key in _FORWARDED_HEADERS or key.startswith(b"sec-fetch-")
        for key, _ in connection.scope["headers"]
    )


async def find_principal(
    connection: ASGIConnection[Any, Any, Any, Any], accounts: Accounts, local_operator: bool
) -> Principal | None:
    """The request's principal, None if it brings no credential. Raises Refused for a
    credential that does not hold (`token_not_valid`, `session_expired`)."""
    authorization = _header(connection, b"authorization")
    if authorization is not None:
        scheme, _, secret = authorization.partition(" ")
        found = await accounts.token(secret.strip()) if scheme.lower() == "bearer" else None
        if found is None:
            raise Refused("token_not_valid", "this API token is unknown or revoked", 401)
        return found
    cookie = connection.cookies.get(SESSION_COOKIE)
    if cookie:
        found = await accounts.session(cookie)
        if found is None:
            raise Refused("session_expired", "your session has ended: sign in again", 401)
        return found
    if local_operator and not _is_browser_or_relayed(connection):
        client, server = connection.scope.get("client"), connection.scope.get("server")
        if (
            client
            and server
            and is_loopback(client[0])
            and peer_uid((client[0], client[1]), (server[0], server[1] or 0)) == os.getuid()
        ):
            return Principal(name="@operator", role="coordinator", via="peer")
    return None


async def require_role(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The app's guard: refuse unless the request's principal has the handler's role.
    Reads the `Accounts` in `state.accounts` and `state.local_operator` (a bool)."""
    role = declared_role(handler, connection.scope["path"])
    if role == "public":
        return
    state = connection.app.state
    principal = await find_principal(connection, state.accounts, state.local_operator)
    if principal is None:
        raise Refused("sign_in_required", "sign in first (or send an API token)", 401)
    if principal.via == "session" and connection.scope.get("method") not in SAFE_METHODS:
        sent = _header(connection, CSRF_HEADER.encode()) or ""
        if not hmac.compare_digest(sent.encode(), principal.csrf.encode()):
            raise Refused(
                "csrf_token_missing",
                f"a change made with a session carries the {CSRF_HEADER} header of its sign-in",
                403,
            )
    needed: Role = "coordinator" if role == "coordinator" else "resident"
    if not principal.at_least(needed):
        raise Refused("role_required", f"this needs a {needed}; you are a {principal.role}", 403)
    connection.scope.setdefault("state", {})["principal"] = principal


__all__ = [
    "COORDINATOR",
    "PUBLIC",
    "RESIDENT",
    "SESSION_COOKIE",
    "declared_role",
    "find_principal",
    "principal_of",
    "require_role",
]
