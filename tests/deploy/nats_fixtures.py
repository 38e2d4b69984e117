"""Real nats-servers with the federation's auth, for the deploy tests: a hub started from
`hub_config`, clients that log in with minted creds, and a look at what the stream holds.

Servers are plain context managers (nats-server runs as a child process); clients are async
context managers opened inside each test."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import JetStreamContext

from coopnet.deploy.nats_auth import Authority, Permissions, admin_permissions, inbox_prefix
from coopnet.deploy.nats_config import hub_config
from coopnet.node.engine.bus import stream_config
from coopnet.node.engine.nats_server import NatsServer
from tests.processes import free_ports, stream_messages

# A refused JetStream call gets no reply at all: keep the wait for it short.
REFUSED_WAIT_S = 0.5


@dataclass
class Hub:
    """A hub nats-server started from `hub_config`, and where it keeps its state."""

    root: Path
    authority: Authority
    server: NatsServer
    leaf_port: int

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def leaf_url(self) -> str:
        return f"nats-leaf://127.0.0.1:{self.leaf_port}"

    def creds(self, name: str, permissions: Permissions, *, seed: bytes | None = None) -> Path:
        """Mint a COOP user and write its creds file; return the path."""
        return self.authority.user_creds(name, permissions, seed=seed).write(
            self.root / f"{name}.creds"
        )


def _start_hub(root: Path, authority: Authority) -> Hub:
    port, http_port, leaf_port = free_ports(3)
    config = root / "hub.conf"
    config.write_text(
        hub_config(
            authority,
            server_name="hub",
            port=port,
            http_port=http_port,
            leaf_port=leaf_port,
            store_dir=root / "jetstream",
            jwt_dir=root / "jwt",
        )
    )
    server = NatsServer(root / "hub", port=port, config=config)
    server.start()
    return Hub(root, authority, server, leaf_port)


@contextlib.contextmanager
def running_hub(root: Path) -> Iterator[Hub]:
    """A hub of a fresh authority (saved in `root/nats/`), stopped on exit."""
    authority = Authority.generate()
    authority.save(root)
    hub = _start_hub(root, authority)
    try:
        yield hub
    finally:
        hub.server.stop()


@dataclass
class Session:
    """One client connection, and every error the server sent it (nats-py's error_cb)."""

    nc: Client
    errors: list[Exception] = field(default_factory=list)

    def jetstream(self, timeout: float = 5.0) -> JetStreamContext:
        return self.nc.jetstream(timeout=timeout)

    def violations(self) -> list[str]:
        return [str(e) for e in self.errors if "permissions violation" in str(e).lower()]


@contextlib.asynccontextmanager
async def session(
    url: str, creds: Path | None = None, *, user: str | None = None
) -> AsyncIterator[Session]:
    """Connect (without reconnecting) as the user of `creds`, with `user`'s inbox prefix."""
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    options: dict[str, object] = {}
    if creds is not None:
        options["user_credentials"] = str(creds)
    if user is not None:
        options["inbox_prefix"] = inbox_prefix(user)
    nc = await nats.connect(
        url, allow_reconnect=False, connect_timeout=5, error_cb=on_error, **options
    )
    try:
        yield Session(nc, errors)
    finally:
        await nc.close()


async def login_errors(url: str, creds: Path) -> list[Exception]:
    """Try to log in; return what the server said, or fail if the login succeeds.

    With `allow_reconnect=False` nats-py 2.16 re-raises a refused CONNECT before closing
    its socket (a ResourceWarning later); one bounded retry makes it close the socket."""
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    try:
        nc = await nats.connect(
            url,
            user_credentials=str(creds),
            max_reconnect_attempts=1,
            reconnect_time_wait=0.05,
            connect_timeout=5,
            error_cb=on_error,
        )
    except nats.errors.NoServersError:
        return errors
    await nc.close()
    raise AssertionError(f"{creds.name} logged in")


async def create_stream(url: str, admin: Path) -> None:
    """The COOP stream, as the operator creates it (nodes may not)."""
    async with session(url, admin) as s:
        await s.jetstream().add_stream(stream_config())


def admin_creds(hub: Hub) -> Path:
    return hub.creds("admin", admin_permissions())


async def stream_counts(url: str, admin: Path) -> Counter[tuple[str, bytes]]:
    """How many times each (subject, payload) is in the COOP stream."""
    msgs = await stream_messages(url, creds=admin)
    return Counter((str(m.subject), bytes(m.data or b"")) for m in msgs)


async def refused(call: Awaitable[object]) -> bool:
    """True when a JetStream request gets no reply within REFUSED_WAIT_S: what a denied
    publish looks like (some nats-py calls ignore the context's timeout, hence our own)."""
    with anyio.move_on_after(REFUSED_WAIT_S):
        try:
            await call
        except nats.errors.TimeoutError:
            return True
        return False
    return True
