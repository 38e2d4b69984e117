"""An observer: follows the whole stream, verifies every event with the nodes' own rules,
repairs gaps over sync, and keeps its own SQLite store.

It reuses the node's parts rather than re-implementing them: `Chains` (unseal in threads,
key log, chain, forks, evidence of refusals), `Store` with every projection (market, aid,
membership), the bus consumer loop and the sync requests. It signs nothing and serves
nothing on the bus: its credentials may only read (docs/OPERATIONS.md).

    DATA/observer.toml   name, net, NATS URL and credentials, charter (written by
                         `federation init`; `coopnet observe --nats URL` needs none)
    DATA/observer.db     its store
"""

from __future__ import annotations

import json
import logging
import tomllib
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path

import anyio
import msgspec
from anyio.abc import TaskGroup, TaskStatus
from nats.aio.msg import Msg
from nats.js.api import StreamInfo

from coopnet.federation.audit import GAPS_META
from coopnet.federation.quotas import QuotaWatch, watch_quotas
from coopnet.node.engine import sync
from coopnet.node.engine.bus import CURSOR_KEY, STREAM, Bus, follow, keep_running, stay_connected
from coopnet.node.engine.chains import Chains
from coopnet.node.engine.config import ConfigError
from coopnet.node.engine.patience import until_stored
from coopnet.node.engine.store import Batch, Store, now_ms
from coopnet.node.runtime import domain_tables
from coopnet.protocol import Envelope
from coopnet.protocol.charter import Charter, CharterError, parse_charter

log = logging.getLogger("coopnet.observer")

GAP_CHECK_S = 2.0


async def open_observer_store(path: Path, net: bytes) -> Store:
    """An observer's store: the engine's log with every domain's projections (the same
    folds a node makes, so the audit recomputes what the nodes computed), and none of the
    domains' private tables."""
    projections, _ = domain_tables()
    return await Store.open(path, net=net, projections=projections)


class ObserverConfig(msgspec.Struct, kw_only=True):
    name: str = "observer"
    net: str  # hex, 16 bytes
    nats_url: str = ""
    nats_creds: str = ""  # relative to the data dir
    nats_ca: str = ""  # the federation CA (PEM) the hubs' TLS is checked against, if TLS
    charter: str = ""  # relative to the data dir


def read_observer_config(data: Path) -> ObserverConfig:
    path = data / "observer.toml"
    try:
        return msgspec.convert(tomllib.loads(path.read_text()), ObserverConfig)
    except FileNotFoundError:
        raise ConfigError(f"{path} not found (written by `coopnet federation init`)") from None
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_charter(path: Path, net: bytes) -> Charter:
    try:
        charter, charter_net = parse_charter(path.read_bytes())
    except (FileNotFoundError, CharterError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if charter_net != net:
        raise ConfigError(f"{path} hashes to net {charter_net.hex()}, not {net.hex()}")
    return charter


class Progress(msgspec.Struct, kw_only=True):
    """How far the observer has read the stream (for a progress bar)."""

    read: int = 0  # the last stream sequence committed
    target: int = 0  # the stream's last sequence when the observer attached
    caught_up: bool = False


class Observer:
    def __init__(
        self,
        data: Path,
        *,
        net: bytes,
        nats_url: str,
        creds: Path | None = None,
        tls_ca: Path | None = None,
        charter: Charter | None = None,
        name: str = "observer",
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.data = data
        self.net = net
        self.name = name
        self.charter = charter
        self.clock = clock
        user = f"observer-{name}"
        self.bus = Bus(
            nats_url, name=f"coopnet-{user}", creds=str(creds) if creds else None,
            inbox=f"_INBOX.{user}", tls_ca=str(tls_ca) if tls_ca else None,
        )  # fmt: skip
        self.durable = user
        self.progress = Progress()
        self.ready = anyio.Event()
        # Called (synchronously) with every batch the observer stores: the live dashboard.
        self.listeners: list[Callable[[Sequence[Envelope]], None]] = []
        self._store: Store | None = None
        self._chains: Chains | None = None
        self._gap_wake = anyio.Event()
        self.internal_errors = 0
        self.storage_busy = 0  # receives that found the store locked by another process
        # Each member stream's use of its bus quota (OPERATIONS.md §12), read every few s.
        self.quotas = QuotaWatch(name)
        self.sync_stats = sync.SyncStats()  # what sync dropped (oversized answers, hints…)

    @classmethod
    def from_dir(cls, data: Path, *, nats_url: str | None = None) -> Observer:
        """An observer from DATA/observer.toml (as `federation init` writes it)."""
        cfg = read_observer_config(data)
        net = bytes.fromhex(cfg.net)
        charter = load_charter(data / cfg.charter, net) if cfg.charter else None
        creds = data / cfg.nats_creds if cfg.nats_creds else None
        tls_ca = data / cfg.nats_ca if cfg.nats_ca else None
        url = nats_url or cfg.nats_url
        if not url:
            raise ConfigError(f"{data / 'observer.toml'} names no NATS URL; pass --nats")
        return cls(
            data, net=net, nats_url=url, creds=creds, tls_ca=tls_ca, charter=charter,
            name=cfg.name,
        )  # fmt: skip

    @property
    def store(self) -> Store:
        assert self._store is not None, "observer not running"
        return self._store

    @property
    def chains(self) -> Chains:
        assert self._chains is not None, "observer not running"
        return self._chains

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Open the store, then follow the bus until cancelled. Reports started at once:
        the store can be read while the observer is still connecting."""
        self.data.mkdir(parents=True, exist_ok=True)
        self._store = await open_observer_store(self.data / "observer.db", self.net)
        try:
            keys = self.charter.founder_keys() if self.charter else None
            self._chains = Chains(
                self._store, self.net, clock=self.clock, on_accepted=self._on_accepted,
                charter_keys=keys,
                admission_key=self.charter.admission_public_key() if self.charter else None,
            )  # fmt: skip
            await self._chains.load()
            self.progress.read = int(await self._store.meta(CURSOR_KEY) or 0)
            task_status.started()
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._keep_running, "checkpointer", self._store.checkpoint_forever)
                await self._follow_bus()
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.bus.close()
                await self._store.close()

    async def _follow_bus(self) -> None:
        async def stream_info() -> StreamInfo:  # an observer waits for the stream, never makes it
            return await self.bus.jetstream.stream_info(STREAM)

        await stay_connected(self.bus, stream_info, self._activities, who=self.name)

    async def _activities(self, tg: TaskGroup, info: StreamInfo) -> None:
        self.progress.target = max(self.progress.target, info.state.last_seq)
        # After a deletion the stream's last_seq can name a message no consumer delivers.
        if self.progress.read >= self.progress.target or info.state.messages == 0:
            self._caught_up()
        log.info("%s: following %s from stream seq %d", self.name, self.bus.url, self.progress.read)
        heads, receive = self._heads, self._receive_synced

        async def follow_stream() -> None:  # from where the store is now, after a restart too
            await follow(self.bus, self.durable, self.progress.read, self._on_batch)

        me, counts = self.durable, self.sync_stats
        entropy = partial(sync.anti_entropy, self.bus, heads, receive, me=me, stats=counts)
        wanted, wait = self.chains.gaps_to_fetch, self._wait_gap
        gaps = partial(sync.fill_gaps, self.bus, wanted, receive, wait, me=me, stats=counts)
        for name, run in (
            ("stream follower", follow_stream),
            ("anti-entropy", entropy),
            ("gap filler", gaps),
            ("gap recorder", self._record_gaps),
            ("quota watcher", partial(watch_quotas, lambda: self.bus.jetstream, self.quotas)),
        ):
            tg.start_soon(self._keep_running, name, run)

    async def _keep_running(self, name: str, run: Callable[[], Awaitable[object]]) -> None:
        await keep_running(f"{self.name}: {name}", run, self._count_error)

    def _count_error(self) -> None:
        self.internal_errors += 1

    async def _record_gaps(self) -> None:
        """Keep the open gaps, with when each was first seen, in the store for the audit."""
        since: dict[tuple[str, int], int] = {}
        written = ""
        while True:
            now = self.clock()
            gaps = self.chains.missing()
            since = {(a, first): since.get((a, first), now) for a, first, _ in gaps}
            value = json.dumps([[a, f, last, since[(a, f)]] for a, f, last in sorted(gaps)])
            if value != written:
                await self.store.commit(Batch(meta={GAPS_META: value}))
                written = value
            await anyio.sleep(GAP_CHECK_S)

    async def _on_batch(self, msgs: list[Msg], last_stream_seq: int) -> None:
        wires, meta = [m.data for m in msgs], {CURSOR_KEY: str(last_stream_seq)}
        # A store locked by another process: the same batch again, never skipped.
        report = await until_stored(
            lambda: self.chains.receive(wires, source="bus", meta=meta),
            who=self.name,
            on_busy=self._count_busy,
        )
        self.progress.read = last_stream_seq
        # A message re-read by sequence (node/engine/bus.py `_reread`) has no ack subject.
        pending = msgs[-1].metadata.num_pending if msgs[-1].reply else None
        if last_stream_seq >= self.progress.target or pending == 0:
            self._caught_up()
        if report.gaps:
            self._gap_wake.set()

    def _caught_up(self) -> None:
        if not self.progress.caught_up:
            self.progress.caught_up = True
            self.ready.set()
            log.info("%s: caught up with the stream (seq %d)", self.name, self.progress.read)

    async def _receive_synced(self, wires: list[bytes]) -> object:
        return await until_stored(
            lambda: self.chains.receive(wires, source="sync"),
            who=self.name,
            on_busy=self._count_busy,
        )

    def _count_busy(self) -> None:
        self.storage_busy += 1

    async def _wait_gap(self) -> None:
        await self._gap_wake.wait()
        self._gap_wake = anyio.Event()

    def _heads(self) -> dict[str, int]:
        return {a: st.head.seq for a, st in self.chains.states.items() if st.head is not None}

    def _on_accepted(self, events: Sequence[Envelope]) -> None:
        for listener in self.listeners:
            listener(events)
