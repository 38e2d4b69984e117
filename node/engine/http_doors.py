"""The HTTP doors: what every request must show before an app sees it, and the headers
every answer carries (docs/OPERATIONS.md §13, "The API's doors").

`Doors` wraps an ASGI app (the node's API, the observer's dashboard) and checks, in order:

1. `Host` names this server: a loopback name (`127.0.0.1`, `localhost`, `[::1]`), the
   listen host, or a configured name, with the port the server listens on. Anything else
   is a DNS-rebinding page or a misrouted request: 421 `host_not_allowed`.
2. A state-changing request (any method but GET, HEAD, OPTIONS) that carries an `Origin`
   must come from this server's own origin (`http(s)://` + the checked Host): 403
   `origin_not_allowed`. Requests without `Origin` (curl, the CLI) pass: a browser always
   sends one on such requests.
3. A state-changing request with a body, or with any Content-Type, must declare
   `application/json` (a `charset=utf-8` parameter allowed): 415 `unsupported_media_type`.
   Browsers send `text/plain`, form and multipart bodies across sites without asking
   (no CORS preflight); JSON they only send after a preflight this server never grants.
4. The body is at most `max_body_bytes`: 413 `body_too_large`; a JSON body nests at most
   `max_json_depth` arrays and objects: 400 `too_deep` (the JSON decoder recurses once per
   level, so a deeper body would raise RecursionError deep inside the app).

Every answer, the app's and the doors' own, gets the security headers of `SECURITY_HEADERS`
(a Content-Security-Policy with no `unsafe-inline`, nosniff, no framing, no referrer).
Refusals are JSON `{"code", "message"}` like the app's own errors, and counted by code in
`DoorCounts` (the node reports them in `GET /status` as `http_refused`).

Cookie sessions add their CSRF check after these doors (node/engine/auth.py): a refused
Origin never reaches a session.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, ReceiveMessage, Scope, Send

MAX_BODY_BYTES = 256 * 1024  # an event body is at most 64 KiB on the wire; JSON escapes grow it
MAX_JSON_DEPTH = 32  # our request schemas nest 3 levels; msgspec recurses once per level
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})

# Scripts, styles, images and fetches from this origin only; no inline script or style, no
# plugins, no <base>, forms post here only, and no page may frame this one.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    # Other origins may not embed our answers (<script src>, <img src>: no-cors reads).
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)

# A JSON string (to its closing quote, or to the end if it has none: never rescanned from
# a later quote, so the scan stays linear) or one bracket.
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)
_OPENERS = frozenset(b"[{")


class DoorCounts:
    """Requests refused at the doors since start, by stable code (`host_not_allowed`,
    `origin_not_allowed`, `unsupported_media_type`, `body_too_large`, `too_deep`,
    `bad_request`)."""

    def __init__(self) -> None:
        self.refused: Counter[str] = Counter()

    def as_dict(self) -> dict[str, int]:
        """The counts as a plain dict, codes sorted."""
        return dict(sorted(self.refused.items()))


class _Refusal(msgspec.Struct):
    code: str
    message: str


def json_depth(body: bytes, limit: int) -> int:
    """How deeply `body` nests JSON arrays and objects (0: a scalar), counting brackets
    outside strings; stops counting at `limit + 1`. Linear in the body's length."""
    depth = deepest = 0
    for token in _JSON_TOKEN.finditer(body):
        lead = token.group()[0]
        if lead in _OPENERS:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif lead != 0x22:  # a closing bracket (0x22 is the quote of a string)
            depth = max(0, depth - 1)
    return deepest


def split_host(value: str) -> tuple[str, int | None]:
    """`host[:port]` as (host, port); IPv6 stays bracketed. Raises ValueError if malformed."""
    host, sep, port = value.rpartition(":")
    if not sep or (value.startswith("[") and not host.endswith("]")):
        host, port = value, ""  # no port (an IPv6 literal's colons are inside brackets)
    if port and not (port.isascii() and port.isdigit() and len(port) <= 5):
        raise ValueError(f"bad port in {value!r}")
    if not host:
        raise ValueError("empty host")
    return host.lower(), int(port) if port else None


def _is_json(content_type: str) -> bool:
    media, *params = (part.strip().lower() for part in content_type.split(";"))
    if media != "application/json":
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() != "charset" or value.strip().strip('"') not in ("utf-8", "utf8"):
            return False
    return True


class Doors:
    """An ASGI app behind the doors above.

    `listen_host` is the host the server binds (a wildcard adds no name); `names` are the
    further host names it answers to (a reverse proxy's, a LAN name): `name` allows any
    port, `name:port` that port only. Loopback names are always allowed, with the port
    the server listens on. `counts` (shared with the app, e.g. for its status) records
    every refusal. WebSocket and lifespan scopes pass through unchecked (neither app
    serves them).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        listen_host: str,
        names: Iterable[str] = (),
        counts: DoorCounts | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_json_depth: int = MAX_JSON_DEPTH,
    ) -> None:
        self.app = app
        self.counts = counts if counts is not None else DoorCounts()
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth
        self._own = {*LOOPBACK_NAMES}
        listen = listen_host.lower()
        if listen not in WILDCARD_HOSTS:
            self._own.add(f"[{listen}]" if ":" in listen and not listen.startswith("[") else listen)
        self._any_port: set[str] = set()
        self._exact: set[tuple[str, int]] = set()
        for name in names:
            host, port = split_host(name.strip())
            if port is None:
                self._any_port.add(host)
            else:
                self._exact.add((host, port))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {name.lower() for name, _ in message.get("headers", ())}
                extra = [h for h in SECURITY_HEADERS if h[0] not in have]
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        headers = _headers(scope)
        refusal = self._check_request(scope, headers)
        if refusal is None and scope["method"] not in SAFE_METHODS:
            body, refusal = await self._read_body(receive, headers)
            if refusal is None:
                receive = _replay(body, receive)
        if refusal is not None:
            status, code, message = refusal
            self.counts.refused[code] += 1
            await _answer(send_with_headers, status, code, message)
            return
        await self.app(scope, receive, send_with_headers)

    def host_allowed(self, host_header: str, server_port: int | None) -> bool:
        """Whether a request's `Host` names this server (see the class)."""
        try:
            host, port = split_host(host_header)
        except ValueError:
            return False
        if host in self._any_port or (port is not None and (host, port) in self._exact):
            return True
        if host not in self._own:
            return False
        return port == server_port or (port is None and server_port == 80)

    def _check_request(
        self, scope: HTTPScope, headers: dict[str, str]
    ) -> tuple[int, str, str] | None:
        host = headers.get("host", "")
        server = scope.get("server")
        server_port = server[1] if server else None
        if not self.host_allowed(host, server_port):
            return 421, "host_not_allowed", f"this server does not answer to Host {host!r}"
        if scope["method"] in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and origin.lower() not in (f"http://{host}", f"https://{host}"):
            return 403, "origin_not_allowed", f"requests from {origin!r} may not change anything"
        content_type = headers.get("content-type")
        has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
        if (content_type is not None or has_body) and not _is_json(content_type or ""):
            return (
                415,
                "unsupported_media_type",
                f"send the body as application/json, not {content_type or 'without a type'}",
            )
        length = headers.get("content-length")
        if length is not None:
            if not (length.isascii() and length.isdigit()):
                return 400, "bad_request", "Content-Length is not a number"
            if int(length) > self.max_body_bytes:
                return 413, "body_too_large", f"bodies are at most {self.max_body_bytes} bytes"
        return None

    async def _read_body(
        self, receive: Receive, headers: dict[str, str]
    ) -> tuple[bytes, tuple[int, str, str] | None]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return b"", (400, "bad_request", "the client disconnected")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return b"", (
                    413,
                    "body_too_large",
                    f"bodies are at most {self.max_body_bytes} bytes",
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_depth(body, self.max_json_depth) > self.max_json_depth:
            return b"", (400, "too_deep", f"JSON nests at most {self.max_json_depth} levels")
        return body, None


def _headers(scope: HTTPScope) -> dict[str, str]:
    """The request's headers by lower-case name (latin-1, as HTTP defines them); a repeated
    header keeps its first value, except Host, where a second one is refused as bad."""
    out: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        if name == "host" and name in out:
            out[name] = ""  # two Hosts: ambiguous, so allowed for none
            continue
        out.setdefault(name, raw_value.decode("latin-1"))
    return out


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> ReceiveMessage:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _answer(send: Send, status: int, code: str, message: str) -> None:
    body = msgspec.json.encode(_Refusal(code=code, message=message))
    start: dict[str, Any] = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    await send(start)  # type: ignore[arg-type]
    await send({"type": "http.response.body", "body": body, "more_body": False})


__all__ = [
    "CONTENT_SECURITY_POLICY",
    "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "SECURITY_HEADERS",
    "DoorCounts",
    "Doors",
    "json_depth",
    "split_host",
]
