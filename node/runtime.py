"""The neighborhood node: the one place that assembles the engine and the domains.

`DOMAINS` lists the domains a node runs, in the order their projections fold each batch;
the `Node` opens the store with their projections and tables, mounts their routes, starts
their activities and tells their listeners of every stored batch (docs/ARCHITECTURE.md,
"Adding a domain"). Everything else here is the engine's lifecycle:

    Node.run()
      ├─ resident API (uvicorn + Litestar), up first: reads work even with the bus down
      └─ bus supervisor: connect (embedded nats-server by default) → ensure stream →
         recover own head → ready to sign → { outbox publisher, stream follower,
         sync server, gap filler }

A retired node stops by itself (PROTOCOL.md §16.5): once it holds its own
`membership.retired` (signed here, or learned from the bus when a store restored from
an old backup recovers its head) and its outbox has reached the bus, it says so in one
line (`retired_line`), writes it to DATA/retired (RETIRED_MARKER) and `run()` returns;
`coopnet node run` then exits 0. A node whose store already ends with its retirement,
published, does not start at all.

Offline first: once the node has confirmed its head, residents keep posting while the bus
is down; the outbox drains on reconnect. A node that starts while neither the stream nor a
peer answers cannot know whether its store lost writes, so it signs nothing until it can
check (unless started with `trust_local_head`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import NamedTuple

import anyio
import nats.errors
from anyio.abc import TaskGroup, TaskStatus
from litestar import Litestar
from nats.aio.msg import Msg
from nats.js.api import StreamInfo

from coopnet.node.aid import domain as aid
from coopnet.node.aid.policy import AidPolicy
from coopnet.node.aid.requests import Aid
from coopnet.node.engine import sync
from coopnet.node.engine.accounts import Accounts, AccountTables
from coopnet.node.engine.api import create_app, serve_api
from coopnet.node.engine.bus import CURSOR_KEY, Bus, follow, keep_running, stay_connected
from coopnet.node.engine.chains import Chains, Report
from coopnet.node.engine.client import API_TOKEN_FILE, API_URL_FILE
from coopnet.node.engine.config import (
    ConfigError,
    NodeConfig,
    creds_user_key,
    db_path,
    nkey_public,
    read_charter,
    read_config,
    read_identity,
)
from coopnet.node.engine.context import NotReady
from coopnet.node.engine.domain import Domain
from coopnet.node.engine.keys import finish_rotation, prepare_rotation, reconcile_keys
from coopnet.node.engine.live import Changes
from coopnet.node.engine.nats_server import acquire_embedded, release_embedded
from coopnet.node.engine.outbox import Publisher
from coopnet.node.engine.patience import until_stored
from coopnet.node.engine.private_files import write_private
from coopnet.node.engine.projection import OwnTables, Projection
from coopnet.node.engine.recovery import RecoveryError, recover_own_head
from coopnet.node.engine.status import NodeStatus, read_status
from coopnet.node.engine.store import StorageBusy, StorageFailure, Store, now_ms
from coopnet.node.market import domain as market
from coopnet.node.market.policy import Policy
from coopnet.node.market.trading import Trading
from coopnet.node.membership import domain as membership
from coopnet.node.membership.governance import Governance
from coopnet.node.neighborhoods import domain as neighborhoods
from coopnet.node.notes import domain as notes
from coopnet.node.pools import domain as pools
from coopnet.node.pools.organizer import PoolOrganizer
from coopnet.node.pools.pooling import Pooling
from coopnet.node.timebank import domain as timebank
from coopnet.node.timebank.bank import TimeBank
from coopnet.protocol import Body, Envelope, Identity, decode_unsealed
from coopnet.protocol.membership import MembershipRetired

log = logging.getLogger("coopnet.node")

READY_WAIT_S = 5.0
FLUSH_ON_STOP_S = 3.0
# The file a node writes in its data dir as it stops because it retired (`_mark_retired`).
RETIRED_MARKER = "retired"

# How long a retired node waits for its outbox (its retirement last) to reach the bus.
RETIRED_FLUSH_S = 30.0


class _Registered(NamedTuple):
    """A domain as the runtime knows it: its tables (for a store opened without a running
    node) and how a node builds it from the services it made."""

    projections: tuple[Projection, ...]
    tables: tuple[OwnTables, ...]
    build: Callable[[Node], Domain]


# The domains a node runs, by name: the only registration point. Their projections fold
# each batch in this order (membership before the market, whose checks read it).
_REGISTRY: dict[str, _Registered] = {
    "neighborhoods": _Registered(
        neighborhoods.PROJECTIONS, neighborhoods.TABLES,
        lambda _: neighborhoods.neighborhoods_domain(),
    ),
    "notes": _Registered(notes.PROJECTIONS, notes.TABLES, lambda _: notes.notes_domain()),
    "membership": _Registered(
        membership.PROJECTIONS, membership.TABLES,
        lambda n: membership.membership_domain(n.governance),
    ),
    "market": _Registered(
        market.PROJECTIONS, market.TABLES, lambda n: market.market_domain(n.trading, n.policy)
    ),
    "aid": _Registered(aid.PROJECTIONS, aid.TABLES, lambda n: aid.aid_domain(n.aid, n.aid_policy)),
    "timebank": _Registered(
        timebank.PROJECTIONS, timebank.TABLES,
        lambda n: timebank.timebank_domain(TimeBank(n, n.governance, n.governance.charter)),
    ),
    "pools": _Registered(
        pools.PROJECTIONS, pools.TABLES, lambda n: pools.pools_domain(n.pooling, n.pool_organizer)
    ),
}  # fmt: skip
DOMAINS: tuple[str, ...] = tuple(_REGISTRY)


def domain_tables(
    names: Sequence[str] = DOMAINS,
) -> tuple[tuple[Projection, ...], tuple[OwnTables, ...]]:
    """The projections and other tables of the named domains, for whoever opens a node's or
    an observer's store without running a node (`coopnet node status`, observers, tools)."""
    projections = tuple(p for name in names for p in _REGISTRY[name].projections)
    tables = tuple(t for name in names for t in _REGISTRY[name].tables)
    return projections, tables


class Node:
    """One neighborhood's node (DESIGN.md "A node"); `run()` runs it until stopped.

    `domains` names the domains it runs (default `DOMAINS`): a node without one still
    stores, verifies and relays that domain's events, it only does not fold them into
    tables, serve its routes or run its activities. Implements the engine's `NodeContext`
    and `ApiHost` protocols, which is all a domain sees of it.
    """

    def __init__(
        self,
        data: Path,
        *,
        nats_url: str | None = None,
        api_port: int | None = None,
        serve_api: bool = True,
        trust_local_head: bool = False,
        embedded_dir: Path | None = None,
        clock: Callable[[], int] = now_ms,
        domains: Sequence[str] = DOMAINS,
    ) -> None:
        self.data = data
        self.config: NodeConfig = read_config(data)
        self.identity: Identity = read_identity(data, self.config.slug)
        self.charter = read_charter(data, self.config)
        self.governance: Governance = Governance(self, self.charter)
        self.nats_url = nats_url or self.config.nats_url or None
        self.api_port = self.config.api_port if api_port is None else api_port
        self.serve_api = serve_api
        self.trust_local_head = trust_local_head
        self.embedded_dir = embedded_dir or data.resolve().parent / ".coopnet-nats"
        self.net = self.config.net_bytes
        self.slug = self.config.slug
        creds = str(data / self.config.nats_creds) if self.config.nats_creds else None
        ca = str(data / self.config.nats_ca) if self.config.nats_ca else None
        self.bus = Bus(
            "", name=f"coopnet-{self.slug}", creds=creds, inbox=f"_INBOX.{self.slug}", tls_ca=ca,
            # Without credentials (a dev federation on a plain nats-server) the node makes
            # the stream, again if the server lost it, and its consumer; with them the
            # operator makes both (§7) and the node only reads them (PROTOCOL.md §9).
            makes_stream=creds is None,
        )  # fmt: skip
        self.ready = anyio.Event()
        self.api_url = ""
        self._store: Store | None = None
        self._chains: Chains | None = None
        self._publisher: Publisher | None = None
        self._gap_wake = anyio.Event()
        self._lease: str | None = None
        self._scope: anyio.CancelScope | None = None
        self._stream_seq = 0
        self.ready_wait_s = READY_WAIT_S
        self.internal_errors = 0
        # Receives and background activities that found the store locked by another
        # process for longer than a write waits (they try again; nothing is lost).
        self.storage_busy = 0
        self.sync_stats = sync.SyncStats()  # what sync dropped or refused (PROTOCOL.md §9)
        self.credit_limit = self.config.credit_limit
        self.clock = clock  # for mutual aid's windows; tests pass a fake one
        # The domains' services; membership is the market's `Members` seam.
        self.trading: Trading = Trading(self, members=self.governance)
        self.policy: Policy | None = Policy(self, self.trading) if self.config.auto_trade else None
        self.aid: Aid = Aid(self)
        self.pooling: Pooling = Pooling(self, members=self.governance, credit=self.trading)
        self.pool_organizer: PoolOrganizer = PoolOrganizer(self, self.pooling)
        self.aid_policy: AidPolicy | None = (
            AidPolicy(self, self.aid) if self.config.auto_aid else None
        )
        unknown = set(domains) - set(_REGISTRY)
        if unknown:
            raise ValueError(f"no such domain: {', '.join(sorted(unknown))}")
        self.domains: tuple[Domain, ...] = tuple(_REGISTRY[name].build(self) for name in domains)
        # Called (synchronously) with every batch of events this node stores: own and others'.
        self.changes = Changes()  # wakes the app's live updates (GET /live)
        self.aid.on_local_change = lambda: self.changes.notice(())
        self.listeners: list[Callable[[Sequence[Envelope]], None]] = [
            listener for d in self.domains for listener in d.listeners
        ] + [self.changes.notice]
        self._accounts: Accounts | None = None
        self.app: Litestar | None = None  # the HTTP API, once served
        self.failure: StorageFailure | None = None  # why the node stopped by itself, if it did
        self.rotating: anyio.Event | None = None  # set while the signing key rotates
        self._rotation = anyio.Lock()
        self.bus_refused: str | None = None  # why the node does not connect, if it does not
        self.not_ready = ""  # why the node cannot confirm its own head yet, if it cannot
        self.stopped = anyio.Event()
        self.retirement: Envelope | None = None  # its own `membership.retired`, once held
        self._retired = anyio.Event()
        self.retired_line = ""  # what it said when it stopped because it retired

    # -- parts, available once run() has started ---------------------------------------------

    @property
    def store(self) -> Store:
        assert self._store is not None, "node not running"
        return self._store

    @property
    def accounts(self) -> Accounts:
        """The neighborhood's accounts (docs/APP.md), on the node's store."""
        assert self._accounts is not None, "node not running"
        return self._accounts

    @property
    def chains(self) -> Chains:
        assert self._chains is not None, "node not running"
        return self._chains

    # -- lifecycle ----------------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run until cancelled or `stop()`; report started once the API (if any) listens."""
        self._store = await Store.open(
            db_path(self.data),
            net=self.net,
            projections=[p for d in self.domains for p in d.projections],
            tables=[AccountTables(), *(t for d in self.domains for t in d.tables)],
        )
        self._accounts = Accounts(self._store)
        try:
            self._chains = Chains(
                self._store,
                self.net,
                on_accepted=self._on_accepted,
                on_appended=self._on_appended,
                charter_keys=self.charter.founder_keys() if self.charter else None,
                admission_key=self.charter.admission_public_key() if self.charter else None,
            )
            await self._chains.load()
            own = self._chains.states.get(self.slug)
            if own is None or own.keys is None:
                raise RuntimeError(f"{self.data}: no founding event; run `coopnet node init`")
            self.identity = await anyio.to_thread.run_sync(
                reconcile_keys, self.data, self.identity, own.keys
            )
            self._stream_seq = int(await self._store.meta(CURSOR_KEY) or 0)
            if own.keys.retired_seq and await self._retired_at_start(own.keys.retired_seq):
                task_status.started()
                return
            with anyio.CancelScope() as scope:
                self._scope = scope
                async with anyio.create_task_group() as tg:
                    if self.serve_api:
                        app = create_app(
                            self,
                            [r for d in self.domains for r in d.routers],
                            {k: v for d in self.domains for k, v in d.services.items()},
                            accounts=self.accounts,
                            changes=self.changes,
                        )
                        self.app = app
                        token = await self.accounts.operator_token()
                        self.api_url = await tg.start(serve_api, self, app, self.api_port)
                        try:
                            await anyio.to_thread.run_sync(
                                write_private, self.data / API_TOKEN_FILE, token + "\n"
                            )
                            await anyio.Path(self.data / API_URL_FILE).write_text(
                                self.api_url + "\n"
                            )
                        except OSError as exc:
                            self.fail(StorageFailure(f"the data dir cannot be written: {exc}"))
                    if self.trust_local_head:
                        self.ready.set()
                    checkpoints = self._store.checkpoint_forever
                    tg.start_soon(self._keep_running, "checkpointer", checkpoints)
                    tg.start_soon(self._keep_running, "retirement", self._stop_when_retired)
                    tg.start_soon(self._bus_supervisor)
                    task_status.started()
        finally:
            with anyio.CancelScope(shield=True):
                if self.api_url:
                    with contextlib.suppress(OSError):
                        await anyio.Path(self.data / API_URL_FILE).unlink(missing_ok=True)
                        await anyio.Path(self.data / API_TOKEN_FILE).unlink(missing_ok=True)
                await self._flush_outbox()
                await self.bus.close()
                if self._lease is not None:
                    lease, self._lease = self._lease, None
                    await anyio.to_thread.run_sync(release_embedded, self.embedded_dir, lease)
                await self._store.close()
            log.info("%s: stopped", self.slug)
            self.stopped.set()

    async def _foreign_creds(self) -> str | None:
        """Why this node must not connect with its configured NATS credentials, or None.

        Credentials issued to another key (the operator's, a neighbor's) would let this
        node publish and read what its own user may not (DESIGN.md "The bus"). A key this
        node signed with before a rotation is accepted until the operator issues
        credentials to the new one."""
        if not self.config.nats_creds:
            return None
        path = self.data / self.config.nats_creds
        try:
            user, key = await anyio.to_thread.run_sync(creds_user_key, path)
        except ConfigError as exc:
            return str(exc)
        rows = await self.store.all(
            "SELECT DISTINCT key FROM events WHERE author = ?", (self.slug,)
        )
        own = {bytes(r[0]) for r in rows} | {self.identity.public_key}
        if key in own:
            return None
        return (
            f"{path} is issued to NATS user {user}, not the node's key"
            f" ({nkey_public(self.identity.seed)}): a node connects only with its own"
            " credentials (`coopnet neighborhood add` writes them; after a key rotation,"
            " `coopnet neighborhood rotate-key` issues new ones)"
        )

    async def _flush_outbox(self) -> None:
        """On a clean shutdown, give what residents just posted a moment to reach the bus."""
        if self._publisher is None or not self.bus.connected:
            return
        with anyio.move_on_after(FLUSH_ON_STOP_S):
            try:
                await self._publisher.drain()
            except (nats.errors.Error, TimeoutError, StorageFailure, StorageBusy) as exc:
                log.info(
                    "%s: outbox not flushed on stop (%s); it drains next start", self.slug, exc
                )

    def fail(self, exc: StorageFailure) -> None:
        """The store cannot be written: say so plainly and stop the whole node."""
        if self.failure is None:
            self.failure = exc
            log.critical(
                "%s: STORAGE FAILURE, stopping: %s. Everything committed before is intact "
                "(each write is one transaction); free space or fix permissions, then start "
                "the node again.",
                self.slug,
                exc,
            )
        self.stop()

    def stop(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    # -- retired: the node stops (PROTOCOL.md §16.5) -------------------------------------------

    async def _retired_at_start(self, seq: int) -> bool:
        """The store ends with this node's retirement: note it; True (do not start) once
        nothing waits in the outbox, else the node runs until its outbox drains."""
        found = await self.store.event_at(self.slug, seq)
        assert found is not None, "the key log names a retirement the log does not hold"
        self._note_retirement(decode_unsealed(found[1]))
        if await self.store.outbox_depth():
            return False
        self._say_retired(waiting=0)
        await self._mark_retired()
        return True

    def _note_retirement(self, env: Envelope) -> None:
        if self.retirement is None:
            self.retirement = env
            self._retired.set()

    async def _stop_when_retired(self) -> None:
        """Once retired, wait (at most RETIRED_FLUSH_S) for the outbox to reach the bus, say
        so and stop: a retired node neither signs nor connects any more."""
        await self._retired.wait()
        with anyio.move_on_after(RETIRED_FLUSH_S):
            while await self.store.outbox_depth():  # noqa: ASYNC110
                await anyio.sleep(0.1)  # the publisher drains it; no event says "empty"
        waiting = await self.store.outbox_depth()
        self._say_retired(waiting=waiting)
        if not waiting:
            await self._mark_retired()
        self.stop()

    def _say_retired(self, *, waiting: int) -> None:
        env = self.retirement
        assert env is not None
        self.retired_line = retired_line(self.slug, env, waiting=waiting)
        log.warning("%s", self.retired_line)

    async def _mark_retired(self) -> None:
        """Write DATA/retired (RETIRED_MARKER, 0600: the line it said) once its retirement
        is on the bus, before it stops: what tells `federation up` (deploy/launcher.py)
        that this node stopped because it retired and is never to be started again; its
        log's text does not, being partly other members' words. Not written while its
        retirement still waits in the outbox: started again, the node publishes it."""
        try:
            await anyio.to_thread.run_sync(
                write_private, self.data / RETIRED_MARKER, self.retired_line + "\n"
            )
        except OSError as exc:
            log.error("%s: %s not written (%s)", self.slug, self.data / RETIRED_MARKER, exc)

    async def _bus_supervisor(self) -> None:
        refused = await self._foreign_creds()
        if refused is not None:
            # The API still serves what the node holds; it does not connect, and says why.
            self.bus_refused = refused
            log.critical("%s: NOT CONNECTING to the bus: %s", self.slug, refused)
            await anyio.sleep_forever()
        if self.nats_url is None:
            url, self._lease = await anyio.to_thread.run_sync(acquire_embedded, self.embedded_dir)
        else:
            url = self.nats_url
        self.bus.url = url
        await stay_connected(self.bus, self.bus.stream_info, self._bus_activities, who=self.slug)

    async def _bus_activities(self, tg: TaskGroup, _: StreamInfo) -> None:
        log.info("%s: connected to %s", self.slug, self.bus.url)
        self._publisher = publisher = Publisher(self.store, self.bus, self.slug)
        bus, heads, receive = self.bus, self._heads, self._receive_synced
        counts = self.sync_stats
        serve = partial(sync.serve, bus, self.store, heads, self.slug, stats=counts)
        tg.start_soon(self._keep_running, "sync server", serve)
        await self._confirm_head()
        tg.start_soon(self._keep_running, "publisher", publisher.run)
        tg.start_soon(self._keep_running, "stream follower", self._follow)
        entropy = partial(sync.anti_entropy, bus, heads, receive, me=self.slug, stats=counts)
        tg.start_soon(self._keep_running, "anti-entropy", entropy)
        gaps = partial(
            sync.fill_gaps, bus, self.chains.gaps_to_fetch, receive, self._wait_gap,
            me=self.slug, stats=counts,
        )  # fmt: skip
        tg.start_soon(self._keep_running, "gap filler", gaps)
        for domain in self.domains:
            for name, activity in domain.activities:
                tg.start_soon(self._keep_running, name, activity)

    async def _follow(self) -> None:
        await follow(self.bus, f"node-{self.slug}", self._stream_seq, self._on_batch)

    async def _keep_running(self, name: str, run: Callable[[], Awaitable[object]]) -> None:
        """A background activity, restarted if it fails (`internal_errors` in the status
        counts it; the store stays consistent: every write is one transaction). A store
        that cannot be written stops the whole node instead. A store locked by another
        process for longer than a write waits (StorageBusy) is neither: the activity
        starts again after a pause, and `storage_busy` counts it."""

        async def or_stop_on_storage_failure() -> None:
            while True:
                busy: BaseException | None = None
                try:
                    await run()
                except* StorageFailure as group:  # also from inside a task group (the follower's)
                    first: BaseException = group
                    while isinstance(first, BaseExceptionGroup):
                        first = first.exceptions[0]
                    assert isinstance(first, StorageFailure)
                    self.fail(first)
                except* StorageBusy as group:
                    busy = group.exceptions[0]
                if busy is None or self.failure is not None:
                    return
                self.storage_busy += 1
                log.warning("%s: %s: %s; starting it again in 1s", self.slug, name, busy)
                await anyio.sleep(1.0)

        await keep_running(f"{self.slug}: {name}", or_stop_on_storage_failure, self._count_error)

    def _count_error(self) -> None:
        self.internal_errors += 1

    async def _confirm_head(self) -> None:
        backoff = 0.5
        while True:
            try:
                _, resign = await recover_own_head(
                    self.bus, self.store, self.chains, self.slug, stats=self.sync_stats
                )
                break
            except (RecoveryError, nats.errors.Error, TimeoutError) as exc:
                self.not_ready = str(exc) or type(exc).__name__
                log.error("%s: cannot confirm own head yet: %s", self.slug, exc)
                await anyio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
        # Bodies taken out of the log are signed again first, so they keep their place
        # before anything residents post from now on.
        self.not_ready = ""
        if self.retirement is not None:  # the published history ends with the retirement
            if resign:
                log.warning(
                    "%s: %d own event(s) signed after this store's copy was made were never "
                    "published; this neighborhood retired, so they are not signed again",
                    self.slug, len(resign),
                )  # fmt: skip
            return
        for body in resign:
            await self._append(body)
        self.ready.set()

    # -- events in ----------------------------------------------------------------------------

    async def _on_batch(self, msgs: list[Msg], last_stream_seq: int) -> None:
        report = await self._receive_patiently(
            [m.data for m in msgs], source="bus", meta={CURSOR_KEY: str(last_stream_seq)}
        )
        self._stream_seq = last_stream_seq
        if report.gaps:
            self._gap_wake.set()

    async def _receive_synced(self, wires: list[bytes]) -> object:
        return await self._receive_patiently(wires, source="sync")

    async def _receive_patiently(
        self, wires: list[bytes], *, source: str, meta: dict[str, str] | None = None
    ) -> Report:
        """Receive a batch, waiting out a database locked by another process: the same
        batch is received again while the lock lasts (node/engine/patience.py), so no
        accepted event is lost and no batch skipped (the stream cursor moves only with
        it). `storage_busy` counts the tries that found it locked."""
        return await until_stored(
            lambda: self.chains.receive(wires, source=source, meta=meta),
            who=self.slug,
            on_busy=self._count_busy,
        )

    def _count_busy(self) -> None:
        self.storage_busy += 1

    async def _wait_gap(self) -> None:
        await self._gap_wake.wait()
        self._gap_wake = anyio.Event()

    def _heads(self) -> dict[str, int]:
        return {a: st.head.seq for a, st in self.chains.states.items() if st.head is not None}

    def _on_appended(self, fresh: Sequence[tuple[Envelope, str]]) -> None:
        if self._publisher is not None:
            self._publisher.wake(fresh)

    def _on_accepted(self, events: Sequence[Envelope]) -> None:
        if self._publisher is not None and any(e.author == self.slug for e in events):
            self._publisher.wake()  # own events that came back over the bus (recovery)
        for e in events:
            if e.author == self.slug and e.kind == MembershipRetired.kind:
                self._note_retirement(e)
        for listener in self.listeners:
            listener(events)

    # -- events out ---------------------------------------------------------------------------

    async def post(self, body: Body, *, signer: Identity | None = None) -> Envelope:
        """Sign and store the node's next event; the publisher takes it to the bus.
        (`signer`: another identity, only for the key rotation, signed by the next key.)"""
        if not self.ready.is_set():
            with anyio.move_on_after(self.ready_wait_s):
                await self.ready.wait()
            if not self.ready.is_set():
                raise NotReady(
                    "this node has not yet confirmed its own head with the bus or a peer; "
                    "it signs nothing until it has (see `coopnet node run --help`)"
                    + (f": {self.not_ready}" if self.not_ready else "")
                )
        if signer is None:
            while self.rotating is not None:  # posts wait for a key rotation to finish
                await self.rotating.wait()
        # No await between here and the queueing in chains.append: a post takes the key of
        # the identity current when it joins the queue, so it can never follow the rotation
        # with the old key.
        return await self._append(body, signer)

    async def _append(self, body: Body, signer: Identity | None = None) -> Envelope:
        key = (signer or self.identity).signing_key
        try:
            env = await self.chains.append(self.slug, key, body)
        except StorageFailure as exc:
            self.fail(exc)
            raise
        log.debug("%s: signed #%d %s", self.slug, env.seq, env.kind)
        return env

    async def rotate_key(self) -> Envelope:
        """Reveal the committed next key, sign the rotation with it, commit a new next key
        (PROTOCOL.md §5.2). Posts made meanwhile wait, then sign with the new key."""
        async with self._rotation:
            done = self.rotating = anyio.Event()
            try:
                after, body = await anyio.to_thread.run_sync(
                    prepare_rotation, self.data, self.identity
                )
                env = await self.post(body, signer=after)
                self.identity = after  # from now on posts sign with the revealed key
                await anyio.to_thread.run_sync(finish_rotation, self.data, after)
            finally:
                self.rotating = None
                done.set()
            log.warning("%s: key rotated; signing with %s…", self.slug, after.public_key.hex()[:16])
            return env

    # -- status -------------------------------------------------------------------------------

    async def status(self) -> NodeStatus:
        return await read_status(
            self.store,
            self.config,
            ready=self.ready.is_set(),
            bus_url=self.bus.url,
            bus_connected=self.bus.connected,
            published=self._publisher.published if self._publisher else 0,
            buffered=self.chains.gaps.count,
            buffered_bytes=self.chains.gaps.bytes,
            buffer_dropped=self.chains.gaps.dropped,
            sync=self.sync_stats,
            api_url=self.api_url,
            internal_errors=self.internal_errors,
            bus_refused=self.bus_refused or "",
            stream_missing=self.bus.stream_missing,
            consumer_missing=self.bus.consumer_missing,
            not_ready=self.not_ready,
        )


def retired_line(slug: str, retirement: Envelope, *, waiting: int = 0) -> str:
    """What a retired node says as it stops (`waiting`: own events not yet on the bus)."""
    at = datetime.fromtimestamp(retirement.at / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = (
        f"{slug} retired from the federation at {at} (event #{retirement.seq}"
        f" {retirement.id.hex()}): this node stops; its log stays readable"
        " (coopnet node status)"
    )
    if waiting:
        line += (
            f"; {waiting} own event(s), the retirement among them, have not reached the bus:"
            " they go out when it runs again with working credentials"
        )
    return line


__all__ = ["DOMAINS", "Node", "NodeStatus", "NotReady", "domain_tables", "now_ms"]
