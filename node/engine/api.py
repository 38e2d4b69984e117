"""The node's HTTP API, the engine's part: status, the log, key rotation, errors, serving.

Each domain adds its own router (node/<domain>/api.py); the runtime hands them to
`create_app` with the domain services they read from the app's state. Litestar + msgspec,
served by uvicorn behind the HTTP doors (node/engine/http_doors.py: Host, Origin,
Content-Type, body size and depth, security headers; http_connections.py: request deadline,
connection limit; docs/OPERATIONS.md §13). `GET /` is a status page for people (static
files in node/engine/static/, reading `/status`); OpenAPI at `/schema`, an offline page,
and `/schema/openapi.json`. Errors are JSON with a stable `code`: `{"code": "bad_request",
"message": "..."}`; the codes of refused events are those of docs/PROTOCOL.md §7, and
`head_unconfirmed` (503) while the node cannot yet sign.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Protocol

import anyio
import msgspec
import uvicorn
from anyio.abc import TaskStatus
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException, NotFoundException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, OpenAPIRenderPlugin
from litestar.params import FromPath, PathParameter, QueryParameter
from litestar.response import File
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

import coopnet
from coopnet.node.engine.accounts import Accounts
from coopnet.node.engine.accounts_api import accounts_router
from coopnet.node.engine.auth import COORDINATOR, PUBLIC, RESIDENT, principal_of, require_role
from coopnet.node.engine.config import nkey_public
from coopnet.node.engine.context import NodeContext, NotReady
from coopnet.node.engine.http_connections import ConnectionCounts, server_options
from coopnet.node.engine.http_doors import MAX_BODY_BYTES, MAX_JSON_DEPTH, DoorCounts, Doors
from coopnet.node.engine.live import Changes, live
from coopnet.node.engine.passkeys import Passkeys
from coopnet.node.engine.passkeys_api import passkeys_router
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.status import NodeStatus
from coopnet.node.engine.store import StorageBusy, StorageFailure, is_busy
from coopnet.protocol import Envelope, Identity, InvalidEvent, Opaque, unseal_stored

log = logging.getLogger("coopnet.api")
MAX_INT = 2**63 - 1  # SQLite's integers: a larger number in a query is refused, not a crash
STATIC = Path(__file__).parent / "static"  # the app (static/app/) and the OpenAPI page


class HttpCounts:
    """What a server's doors refused and its connection guard closed, since start: shared
    by the app (its state's `http`) and the server in front of it (`serve_app`)."""

    def __init__(self) -> None:
        self.doors = DoorCounts()
        self.connections = ConnectionCounts()

    def as_dict(self) -> dict[str, int]:
        """Both, by code (`host_not_allowed` … `request_timeout`, `evicted`, `over_limit`)."""
        return dict(sorted({**self.doors.as_dict(), **self.connections.as_dict()}.items()))


class ErrorOut(msgspec.Struct):
    code: str
    message: str


class EventOut(msgspec.Struct, kw_only=True):
    pos: int = 0
    author: str
    seq: int
    id: str
    prev: str | None
    at: int
    kind: str
    body: dict[str, Any]
    # The kind is not one this node knows (PROTOCOL.md §8.1): stored and relayed, its body
    # shown as received, checked only as a strict MessagePack map, applied to nothing.
    opaque: bool = False
    # The kind is known but its body has a shape the kind refuses (§4 step 13, §8.1): stored
    # opaque, its author's chain whole, and this is why (the `bad_body` reason); "" otherwise.
    refused: str = ""


class LogPage(msgspec.Struct, kw_only=True):
    events: list[EventOut]
    next_after: int


class Rotated(msgspec.Struct, kw_only=True):
    id: str
    seq: int
    key: str  # the Ed25519 public key now signing, hex
    nkey: str  # the same key as a NATS user public key (`U…`): what its credentials name


class ApiHost(NodeContext, Protocol):
    """The running node as its HTTP API sees it: a `NodeContext` that also reports its
    status and rotates its key (node/runtime.py `Node`)."""

    identity: Identity

    async def status(self) -> NodeStatus: ...

    async def rotate_key(self) -> Envelope: ...


def body_json(env: Envelope) -> dict[str, Any]:
    """A body as JSON-ready values: binaries (keys, digests) as hex. An opaque body
    (PROTOCOL.md §8.1) is its MessagePack map as received, decoded without a schema."""
    if isinstance(env.body, Opaque):
        shown: dict[str, Any] = _jsonable(msgspec.msgpack.decode(env.body.raw))
        return shown
    out: dict[str, Any] = {}
    for field in env.body.__struct_fields__:
        value = getattr(env.body, field)
        out[field] = value.hex() if isinstance(value, bytes) else msgspec.to_builtins(value)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def event_out(env: Envelope, pos: int = 0) -> EventOut:
    """One stored event as `/log` shows it; `pos` is its position in the store's log
    (the cursor `after` pages by). An opaque body (an unknown kind, or a known kind's body
    the domain refused) is shown as received, `opaque` true, and `refused` says why the
    domain refused it ("" for a kind this node does not know)."""
    return EventOut(
        pos=pos,
        author=env.author,
        seq=env.seq,
        id=env.id.hex(),
        prev=env.prev.hex() if env.prev else None,
        at=env.at,
        kind=env.kind,
        body=body_json(env),
        opaque=isinstance(env.body, Opaque),
        refused=env.body.refused if isinstance(env.body, Opaque) else "",
    )


def _node(state: State) -> ApiHost:
    node: ApiHost = state.node
    return node


@get("/status", opt=COORDINATOR, summary="The node's head, followers, outbox, rejections and forks")
async def get_status(state: State) -> NodeStatus:
    status = await _node(state).status()
    counts: HttpCounts = state.http
    return msgspec.structs.replace(status, http_refused=counts.as_dict())


@get("/", opt=PUBLIC, summary="The neighborhood's web app", include_in_schema=False)
async def index() -> File:
    return File(
        STATIC / "app" / "index.html",
        media_type="text/html; charset=utf-8",
        content_disposition_type="inline",
    )


class SchemaPage(OpenAPIRenderPlugin):
    """`/schema`: a page of this API's endpoints, drawn from `/schema/openapi.json` by a
    script shipped in the package (static/schema.js): it works offline, under the CSP."""

    def __init__(self) -> None:
        super().__init__(path="/")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return (STATIC / "schema.html").read_bytes()


@get("/log", opt=RESIDENT, summary="The verified log, oldest first, paged by storage position")
async def get_log(
    state: State,
    author: Annotated[str | None, QueryParameter(description="only this author")] = None,
    after: Annotated[int, QueryParameter(ge=0, le=MAX_INT, description="storage position")] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> LogPage:
    node = _node(state)
    rows = await node.store.log_page(author=author, after_pos=after, limit=limit)
    events = [event_out(unseal_stored(wire, net=node.net), pos) for pos, wire in rows]
    return LogPage(events=events, next_after=rows[-1][0] if rows else after)


@get("/log/{author:str}/{seq:int}", opt=RESIDENT, summary="One event, by author and seq")
async def get_event(
    state: State,
    author: FromPath[str],
    seq: Annotated[int, PathParameter(ge=1, le=MAX_INT)],
) -> EventOut:
    node = _node(state)
    found = await node.store.event_at(author, seq)
    if found is None:
        raise NotFoundException(f"no event {author}#{seq} here")
    return event_out(unseal_stored(found[1], net=node.net))


@post(
    "/keys/rotate",
    opt=COORDINATOR,
    summary="Rotate the signing key to the one committed in advance",
)
async def rotate(state: State) -> Rotated:
    node = _node(state)
    env = await node.rotate_key()
    ident = node.identity
    return Rotated(
        id=env.id.hex(), seq=env.seq, key=ident.public_key.hex(), nkey=nkey_public(ident.seed)
    )


class Currency(msgspec.Struct, kw_only=True):
    """The federation's currency (the charter's, PROTOCOL.md §16.1; `NodeConfig.currency`)."""

    name: str  # what people call it ("credits", "Riverside pounds")
    code: str  # three capital letters for tables ("CRD", "GBP")
    symbol: str  # written before amounts ("£"); "" for none
    minor_units: int  # 0-4: the API's amounts are integers in 10^-minor_units units (cents)


class AppInfo(msgspec.Struct, kw_only=True):
    slug: str
    display_name: str
    currency: Currency
    role: str  # the caller's: resident or coordinator


@get("/app/info", opt=RESIDENT, summary="This neighborhood's name and the currency amounts are in")
async def app_info(request: Request[Any, Any, Any], state: State) -> AppInfo:
    node = _node(state)
    c = node.config.currency
    return AppInfo(
        slug=node.slug,
        display_name=node.config.display_name,
        currency=Currency(
            name=c.name,
            code=c.code,
            symbol=c.symbol,
            minor_units=c.minor_units,
        ),
        role=principal_of(request).role,
    )


def _error(status: int, code: str, message: str) -> Response[ErrorOut]:
    return Response(ErrorOut(code=code, message=message), status_code=status)


def _on_invalid(_: Request[Any, Any, Any], exc: InvalidEvent) -> Response[ErrorOut]:
    status = 409 if exc.code in ("fork",) else 403 if exc.code == "not_authorized" else 400
    return _error(status, exc.code, exc.message)


def _on_refused(_: Request[Any, Any, Any], exc: Refused) -> Response[ErrorOut]:
    headers = {"retry-after": str(exc.retry_after_s)} if exc.retry_after_s else None
    return Response(
        ErrorOut(code=exc.code, message=exc.message), status_code=exc.status, headers=headers
    )


def _on_storage_failure(_: Request[Any, Any, Any], exc: StorageFailure) -> Response[ErrorOut]:
    return _error(503, exc.code, f"{exc}; the node is stopping")


def _on_storage_busy(_: Request[Any, Any, Any], exc: StorageBusy) -> Response[ErrorOut]:
    # Another process (a backup, a VACUUM) held the database longer than a write waits:
    # nothing was stored; the node runs on, and the same post succeeds once the lock is gone.
    return _error(503, exc.code, f"{exc}; nothing was stored, try again shortly")


def _on_not_ready(_: Request[Any, Any, Any], exc: NotReady) -> Response[ErrorOut]:
    return _error(503, exc.code, str(exc))


def _on_http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorOut]:
    codes = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}
    message = str(exc.detail)
    extra = getattr(exc, "extra", None)
    if extra:
        message = f"{message}: {msgspec.json.encode(extra).decode()}"
    return _error(exc.status_code, codes.get(exc.status_code, "http_error"), message)


def _on_crash(_: Request[Any, Any, Any], exc: Exception) -> Response[ErrorOut]:
    if isinstance(exc, RecursionError):
        # A body nested beyond what the decoder recurses into: the doors refuse those
        # first (`too_deep`); this answers the same should one ever get past them.
        return _error(400, "too_deep", f"JSON nests at most {MAX_JSON_DEPTH} levels")
    if isinstance(exc, sqlite3.OperationalError) and "integer overflow" in str(exc):
        # A sum beyond 64 bits (PROTOCOL.md §11, "Bounds"): SQLite refuses, never wraps.
        return _error(422, "out_of_bounds", "a total here is beyond 2^63 cents; nothing shown")
    if isinstance(exc, sqlite3.Error) and is_busy(exc):  # a read behind another's lock
        return _error(503, StorageBusy.code, "the store is locked by another process; try again")
    log.exception("API request failed", exc_info=exc)
    return _error(500, "internal", "internal error; the node logged it")


def create_app(
    node: ApiHost,
    routers: Sequence[ControllerRouterHandler] = (),
    services: Mapping[str, object] | None = None,
    *,
    accounts: Accounts | None = None,
    changes: Changes | None = None,
) -> Litestar:
    """The node's app: the engine's routes, the accounts' (node/engine/accounts_api.py),
    then each domain's `routers`; a handler reads the node as `state.node`, a domain's
    service under its name in `services`, the `Accounts` as `state.accounts` (default: on
    the node's store) and the live updates' `Changes` as `state.changes`. What its HTTP
    doors refuse is counted in `state.http` (an `HttpCounts`, for `/status`). Every route
    declares its role and one guard checks it (node/engine/auth.py, docs/APP.md)."""
    accounts = accounts if accounts is not None else Accounts(node.store)
    assets = create_static_files_router(
        path="/static", directories=[STATIC], include_in_schema=False, opt=PUBLIC
    )
    engine: list[ControllerRouterHandler] = [
        get_status, index, assets, get_log, get_event, rotate, app_info, live
    ]  # fmt: skip
    return Litestar(
        route_handlers=[*engine, accounts_router, passkeys_router, *routers],
        guards=[require_role],
        state=State(
            {
                **(services or {}),
                "node": node,
                "http": HttpCounts(),
                "accounts": accounts,
                "passkeys": Passkeys(accounts),
                "changes": changes if changes is not None else Changes(),
                "local_operator": node.config.api_local_operator,
            }
        ),
        request_max_body_size=MAX_BODY_BYTES,  # the doors check first; this is the backstop
        exception_handlers={
            InvalidEvent: _on_invalid,
            NotReady: _on_not_ready,
            StorageFailure: _on_storage_failure,
            StorageBusy: _on_storage_busy,
            Refused: _on_refused,
            HTTPException: _on_http,
            Exception: _on_crash,
        },
        openapi_config=OpenAPIConfig(
            title=f"coopnet node {node.slug}",
            version=coopnet.__version__,
            description="The resident API of a coopnet neighborhood node.",
            path="/schema",
            render_plugins=[SchemaPage(), JsonRenderPlugin(path="/openapi.json")],
        ),
        logging_config=None,
    )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the node's task group owns shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_api(
    node: ApiHost, app: Litestar, port: int, *, task_status: TaskStatus[str]
) -> None:
    """Serve the node's `app` on node.toml's `api_host` and `port` (0: any free port),
    answering to the loopback names, the listen host and node.toml's `api_names`."""
    host = node.config.api_host

    def announce(url: str) -> None:
        log.info("%s: resident API at %s (OpenAPI at %s/schema)", node.slug, url, url)

    await serve_app(
        app,
        host,
        port,
        names=node.config.api_names,
        counts=app.state.http,
        announce=announce,
        task_status=task_status,
    )


async def serve_app(
    app: Litestar,
    host: str,
    port: int,
    *,
    names: Iterable[str] = (),
    counts: HttpCounts | None = None,
    announce: Callable[[str], None] | None = None,
    task_status: TaskStatus[str],
) -> None:
    """Serve an ASGI app with uvicorn behind the HTTP doors until cancelled; report started
    with its URL. It answers to Host `names` beyond the loopback ones and `host` (see
    http_doors.Doors); refusals and closed connections are counted in `counts`."""
    counts = counts if counts is not None else HttpCounts()
    config = uvicorn.Config(
        Doors(app, listen_host=host, names=names, counts=counts.doors),
        host=host,
        port=port,
        **server_options(counts.connections),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=3,  # open streams (the dashboard's live updates) end too
    )
    server = _Server(config)

    async def serve_until_told() -> None:
        # Shielded: on shutdown uvicorn is told to exit (should_exit) and finishes its
        # requests, rather than being cancelled in the middle of them.
        with anyio.CancelScope(shield=True):
            await server.serve()

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve_until_told)
        while not server.started:
            if server.should_exit:
                raise RuntimeError(f"cannot listen on {host}:{port}")
            await anyio.sleep(0.01)
        bound = server.servers[0].sockets[0].getsockname()
        url = f"http://{host}:{bound[1]}"
        if announce is not None:
            announce(url)
        task_status.started(url)
        try:
            await anyio.sleep_forever()
        finally:
            server.should_exit = True
