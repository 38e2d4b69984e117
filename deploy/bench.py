"""`coopnet bench ingest|publish|api|trade`: figures next to the limits of this machine.

Each figure is measured in the same run as the limit it is compared with (DESIGN.md,
"Performance"), so a busy or slow machine moves both: the ratio is what to read.
- ingest: events through a node's whole receive path, beside single-core Ed25519 verify
  (PyNaCl) of the same events.
- publish: own events sealed, stored (synced), published and acknowledged, beside raw
  nats-py `publish_async` of the same bytes to the same server.
- api: signed posts through the authenticated HTTP API (`POST /notes`, clients in another
  process, each with its own API token, then with its own session cookie and CSRF
  header), beside `publish` of as many events at the same concurrency.
- trade: full trade round trips between two nodes over a real nats-server, per step.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import nacl.bindings
import nats
from rich.progress import Progress

from coopnet.node.cli import init_node
from coopnet.node.engine.auth import SESSION_COOKIE
from coopnet.node.engine.bus import PIPELINE_DEPTH
from coopnet.node.engine.chains import Chains
from coopnet.node.engine.nats_server import NatsServer, nats_server_binary
from coopnet.node.engine.store import Store
from coopnet.node.engine.store_io import fetch_one
from coopnet.node.runtime import Node, domain_tables
from coopnet.protocol import Envelope, Identity, NotePosted, seal
from coopnet.protocol.envelope import SIGNING_CONTEXT
from coopnet.protocol.offers import OfferPosted

NET = hashlib.sha256(b"coopnet bench").digest()[:16]


async def open_node_store(path: Path) -> Store:
    """The store as a node opens it: every domain's projections fold what is stored."""
    projections, tables = domain_tables()
    return await Store.open(path, net=NET, projections=projections, tables=tables)


def machine() -> dict[str, Any]:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    server = subprocess.run(
        [str(nats_server_binary()), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "versions": {
            name: metadata.version(name)
            for name in ("coopnet", "pynacl", "nats-py", "msgspec", "aiosqlite")
        }
        | {"nats-server": server.removeprefix("nats-server: ")},
    }


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def presealed(events: int, authors: int) -> list[bytes]:
    """`events` notes from `authors` authors, each history starting with node.founded."""
    per = max(2, events // authors)
    base = int(time.time() * 1000) - 3_600_000  # an hour ago: never in a receiver's future
    wires: list[bytes] = []
    for a in range(authors):
        ident = Identity.from_passphrase(f"bench-{a}", "bench")
        prev: bytes | None = None
        for seq in range(1, per + 1):
            body = (
                ident.founding_body(f"Bench {a}", "B1")
                if seq == 1
                else NotePosted(text=f"bench note {seq} of author {a}")
            )
            wire = seal(
                signing_key=ident.signing_key, net=NET, author=ident.author, seq=seq,
                prev=prev, at=base + seq, body=body,
            )  # fmt: skip
            prev = hashlib.sha256(
                msgspec.msgpack.decode(wire, type=tuple[bytes, bytes, bytes])[0]
            ).digest()
            wires.append(wire)
    return wires


def held_events(chains: Chains) -> int:
    """Events a node holds, from its chain heads in memory (each chain is contiguous): a
    COUNT(*) every tenth of a second would scan the growing table and slow what it
    measures."""
    return sum(st.head.seq for st in chains.states.values() if st.head is not None)


def verify_limit(wires: Sequence[bytes], passes: int = 3) -> float:
    """Single-core Ed25519 verifications per second over the same events (PyNaCl): the
    median of `passes` passes, since one pass on a shared machine can be slowed (or helped)
    by its neighbours for a second."""
    parts = []
    for wire in wires:
        header, sig, _ = msgspec.msgpack.decode(wire, type=tuple[bytes, bytes, bytes])
        key = msgspec.msgpack.decode(header)[3]
        parts.append((sig + SIGNING_CONTEXT + header, key))
    rates = []
    for _ in range(passes):
        start = time.perf_counter()
        for signed, key in parts:
            nacl.bindings.crypto_sign_open(signed, key)
        rates.append(len(parts) / (time.perf_counter() - start))
    return statistics.median(rates)


async def _ingest(store: Store, wires: Sequence[bytes], batch: int) -> tuple[int, float, int]:
    """Feed `wires` through a node's receive path as its stream follower does: batches
    started in order, PIPELINE_DEPTH at once. The events stored, the seconds taken, and how
    many events worker processes verified."""
    chains = Chains(store, NET, clock=lambda: 1_900_000_000_000)
    await chains.verifier.warm_up()  # a running node's workers are up after its first batch
    with Progress(transient=True) as progress:
        task = progress.add_task("ingest", total=len(wires))
        in_flight = anyio.Semaphore(PIPELINE_DEPTH)

        async def one(part: Sequence[bytes]) -> None:
            try:
                await chains.receive(part, source="bench")
            finally:
                in_flight.release()
            progress.update(task, advance=len(part))

        start = time.perf_counter()
        async with anyio.create_task_group() as checkpoints:
            checkpoints.start_soon(store.checkpoint_forever)  # as a node runs it
            async with anyio.create_task_group() as tg:
                for i in range(0, len(wires), batch):
                    await in_flight.acquire()
                    tg.start_soon(one, wires[i : i + batch])
            elapsed = time.perf_counter() - start
            checkpoints.cancel_scope.cancel()
    return await store.event_count(), elapsed, chains.verifier.in_processes


async def bench_ingest(events: int, authors: int, batch: int) -> dict[str, Any]:
    wires = presealed(events, authors)
    limit = await anyio.to_thread.run_sync(verify_limit, wires[:10_000])
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_node_store(Path(tmp) / "node.db")
        try:
            stored, elapsed, in_processes = await _ingest(store, wires, batch)
        finally:
            await store.close()
    rate = stored / elapsed
    return {
        "bench": "ingest",
        "events": stored,
        "authors": authors,
        "batch": batch,
        "seconds": round(elapsed, 3),
        "events_per_s": round(rate),
        "verify_limit_per_s": round(limit),
        "ratio": round(rate / limit, 3),
        "verified_in_worker_processes": in_processes,
        "peak_rss_mb": peak_rss_mb(),
    }


async def _raw_publish_rate(url: str, payloads: Sequence[bytes], in_flight: int) -> float:
    nc = await nats.connect(url)
    js = nc.jetstream()
    sem = anyio.Semaphore(in_flight)
    start = time.perf_counter()
    futures = []
    for i, payload in enumerate(payloads):
        async with sem:
            pass
        fut = await js.publish_async(
            f"coop.raw-bench.n{i % 8}", payload, headers={"Nats-Msg-Id": f"raw-{i}-{start}"}
        )
        futures.append(fut)
        if len(futures) >= in_flight:
            await futures.pop(0)
    for fut in futures:
        await fut
    elapsed = time.perf_counter() - start
    await nc.close()
    return len(payloads) / elapsed


@contextlib.asynccontextmanager
async def nats_server() -> AsyncIterator[tuple[Path, str]]:
    """A temporary directory and a nats-server started in it: (the directory, its URL)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = NatsServer(root / "nats")
        url = await anyio.to_thread.run_sync(server.start)
        try:
            yield root, url
        finally:
            await anyio.to_thread.run_sync(server.stop)


@contextlib.asynccontextmanager
async def running_node(
    root: Path, url: str, slug: str, *, serve_api: bool = False, **settings: object
) -> AsyncIterator[Node]:
    """A fresh node (node.toml `settings` on top of the defaults) running in this event loop
    until the block ends, ready (its head confirmed on the stream)."""
    data = root / slug
    await init_node(
        data, slug=slug, display_name="Bench", area="B1", net=NET, settings=settings
    )  # fmt: skip
    node = Node(data, nats_url=url, serve_api=serve_api)
    async with anyio.create_task_group() as tg:
        await tg.start(node.run)
        await node.ready.wait()
        try:
            yield node
        finally:
            node.stop()


async def outbox_drained(node: Node) -> None:
    """Until every own event is published and acknowledged. Polled on the read-only
    connection: a poll on the writing one would queue between the node's own commits and
    slow what it measures."""
    while await fetch_one(node.store.reader, "SELECT 1 FROM outbox LIMIT 1"):  # noqa: ASYNC110
        await anyio.sleep(0.005)


async def bench_publish(events: int, concurrency: int = 32) -> dict[str, Any]:
    """`concurrency` residents post at once (their posts share commits); 1: one at a time."""
    async with nats_server() as (root, url):
        async with running_node(root, url, "bench-pub") as node:
            with Progress(transient=True) as progress:
                task = progress.add_task("publish", total=events)
                start = time.perf_counter()
                envs: list[Envelope] = []

                async def resident(r: int) -> None:
                    for i in range(r, events, concurrency):
                        envs.append(await node.post(NotePosted(text=f"publish bench {i}")))
                        if len(envs) % 64 == 0:  # a bar redrawn per post costs 3 % here
                            progress.update(task, completed=len(envs))

                async with anyio.create_task_group() as residents:
                    for r in range(concurrency):
                        residents.start_soon(resident, r)
                await outbox_drained(node)
                elapsed = time.perf_counter() - start
        # The median of three runs: one short run on a shared machine swings by half.
        wires = [e.wire for e in envs]
        limit = statistics.median(
            [await _raw_publish_rate(url, wires, in_flight=256) for _ in range(3)]
        )
    rate = events / elapsed
    return {
        "bench": "publish",
        "events": events,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "events_per_s": round(rate),
        "raw_publish_async_per_s": round(limit),
        "ratio": round(rate / limit, 3),
        "peak_rss_mb": peak_rss_mb(),
    }


def percentiles_ms(values: list[float]) -> dict[str, float]:
    """p50 and p99 of `values` (milliseconds), rounded to 0.01 ms."""
    values = sorted(values)
    p99 = values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]
    return {"p50": round(statistics.median(values), 2), "p99": round(p99, 2)}


async def _api_clients(job: dict[str, Any]) -> dict[str, Any]:
    """One client per credential in `job["headers"]`, each on its own kept-alive connection
    (opened before the clock starts), posting notes i = c, c + n, ... until `job["events"]`.
    Times are `time.monotonic()`: the same clock as the node's process on this machine."""
    posts: list[tuple[float, int]] = []
    every = len(job["headers"])
    limits = httpx.Limits(max_connections=1)
    clients = [
        httpx.AsyncClient(base_url=job["url"], headers=h, limits=limits, timeout=60)
        for h in job["headers"]
    ]
    try:
        for client in clients:
            (await client.get("/health")).raise_for_status()

        async def client_posts(c: int) -> None:
            for i in range(c, job["events"], every):
                sent = time.monotonic()
                r = await clients[c].post("/notes", json={"text": f"api bench {i}"})
                posts.append((time.monotonic() - sent, r.status_code))
                if r.status_code != 201:
                    raise RuntimeError(f"POST /notes answered {r.status_code}: {r.text}")

        cpu = time.process_time()
        start = time.monotonic()
        async with anyio.create_task_group() as tg:
            for c in range(every):
                tg.start_soon(client_posts, c)
        end = time.monotonic()
        cpu = time.process_time() - cpu
    finally:
        for client in clients:
            await client.aclose()
    return {"start": start, "end": end, "cpu_s": cpu, "latencies_s": [p[0] for p in posts]}


def api_clients_main() -> None:
    """The clients' process: a job as JSON on stdin, what `_api_clients` found on stdout."""
    print(json.dumps(anyio.run(_api_clients, json.loads(sys.stdin.read()))))


async def _credentials(
    api: httpx.AsyncClient, node: Node, how: str, n: int
) -> list[dict[str, str]]:
    """`n` coordinator credentials, made as people make them: a coordinator joins from an
    invitation (`POST /auth/join`), then makes `n` API tokens (`how` "token"), or signs in
    on `n` devices (`how` "session": a cookie and the CSRF header each)."""
    _, secret = await node.accounts.invite("coordinator", by="@operator")
    password = "bench passphrase"
    joined = await api.post(
        "/auth/join", json={"invitation": secret, "name": "bench", "password": password}
    )
    joined.raise_for_status()
    if joined.json()["role"] != "coordinator":
        raise RuntimeError(f"the bench's account joined as {joined.json()['role']}")
    cookie = f"{SESSION_COOKIE}={joined.cookies[SESSION_COOKIE]}"
    as_joined = {"cookie": cookie, "x-csrf-token": joined.json()["csrf"]}
    headers = []
    for k in range(n):
        if how == "token":
            r = await api.post("/auth/tokens", json={"label": f"bench {k}"}, headers=as_joined)
            r.raise_for_status()
            headers.append({"authorization": f"Bearer {r.json()['token']}"})
        else:
            r = await api.post("/auth/sign-in", json={"name": "bench", "password": password})
            r.raise_for_status()
            cookie = f"{SESSION_COOKIE}={r.cookies[SESSION_COOKIE]}"
            headers.append({"cookie": cookie, "x-csrf-token": r.json()["csrf"]})
    return headers


async def _api_run(events: int, concurrency: int, how: str) -> dict[str, Any]:
    """Signed notes posted through a fresh node's API by `concurrency` clients in another
    process, each with its own credential (`how`: "token" or "session"); timed from the
    first post to the last event published and acknowledged, as `bench_publish` is."""
    # Without the node's own-user trust on the loopback: every request authenticates.
    async with (
        nats_server() as (root, url),
        running_node(root, url, "bench-api", serve_api=True, api_local_operator=False) as node,
    ):
        async with httpx.AsyncClient(base_url=node.api_url, timeout=30) as api:
            anonymous = await api.post("/notes", json={"text": "no credential"})
            if anonymous.status_code != 401:
                raise RuntimeError(
                    f"a post without a credential answered {anonymous.status_code}: the"
                    " bench would not measure authentication"
                )
            headers = await _credentials(api, node, how, concurrency)
        job = {"url": node.api_url, "events": events, "headers": headers}
        with Progress(transient=True) as progress:
            task = progress.add_task(f"api ({how})", total=events)
            async with anyio.create_task_group() as tg:

                async def show() -> None:
                    while True:
                        progress.update(task, completed=held_events(node.chains) - 1)
                        await anyio.sleep(0.25)

                tg.start_soon(show)
                cpu = time.process_time()
                code = "from coopnet.deploy.bench import api_clients_main; api_clients_main()"
                done = await anyio.run_process(
                    [sys.executable, "-c", code], input=json.dumps(job).encode()
                )
                tg.cancel_scope.cancel()
        clients = json.loads(done.stdout)
        drained = await fetch_one(node.store.reader, "SELECT 1 FROM outbox LIMIT 1") is None
        await outbox_drained(node)
        end = clients["end"] if drained else time.monotonic()
        cpu = time.process_time() - cpu
        if held_events(node.chains) != events + 1:
            raise RuntimeError(f"{held_events(node.chains) - 1} notes stored, not {events}")
    elapsed = end - clients["start"]
    return {
        "seconds": round(elapsed, 3),
        "posts_per_s": round(events / elapsed),
        "latency_ms": percentiles_ms([s * 1000 for s in clients["latencies_s"]]),
        # CPU seconds each process spent while the posts ran: the machine's cores are
        # shared by the node (with its HTTP server), the clients and the nats-server.
        "node_cpu_s": round(cpu, 2),
        "clients_cpu_s": round(clients["cpu_s"], 2),
    }


async def bench_api(events: int, concurrency: int = 32) -> dict[str, Any]:
    """Signed posts through the authenticated API, with API tokens (as scripts post) and
    with session cookies and the CSRF header (as the web app posts), beside `bench_publish`
    of as many events at the same concurrency, in the same run: the ratio is the cost of
    HTTP, authentication and the clients sharing the machine."""
    token = await _api_run(events, concurrency, "token")
    session = await _api_run(events, concurrency, "session")
    publish = await bench_publish(events, concurrency)
    rate = publish["events_per_s"]
    return {
        "bench": "api",
        "events": events,
        "concurrency": concurrency,
        "api_posts_per_s": token["posts_per_s"],
        "publish_events_per_s": rate,
        "ratio": round(token["posts_per_s"] / rate, 3),
        "latency_ms": token["latency_ms"],
        "token": token | {"ratio": round(token["posts_per_s"] / rate, 3)},
        "session": session | {"ratio": round(session["posts_per_s"] / rate, 3)},
        "publish": {k: publish[k] for k in ("seconds", "raw_publish_async_per_s", "ratio")},
        "peak_rss_mb": peak_rss_mb(),
    }


async def bench_trade(trades: int) -> dict[str, Any]:
    """Round trips: the buyer proposes; the seller's policy accepts and ships; the buyer's
    policy confirms receipt. Times are taken on the buyer's node as each step arrives."""
    steps = ("trade.accepted", "trade.shipped", "trade.received")
    seen: dict[tuple[str, str], float] = {}
    settled: dict[str, anyio.Event] = {}
    offer_here = anyio.Event()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = NatsServer(root / "nats")
        url = await anyio.to_thread.run_sync(server.start)
        try:
            for slug in ("seller", "buyer"):
                await init_node(
                    root / slug, slug=slug, display_name=slug, area="B1", net=NET,
                    nats_url=url, auto_trade=True, settings={"credit_limit": 10**12},
                )  # fmt: skip
            seller = Node(root / "seller", serve_api=False)
            buyer = Node(root / "buyer", serve_api=False)

            def on_events(events: Sequence[Envelope]) -> None:
                now = time.perf_counter()
                for e in events:
                    trade = getattr(e.body, "trade", None)
                    if trade is not None and e.kind in steps:
                        seen.setdefault((trade, e.kind), now)
                        if e.kind == "trade.received" and trade in settled:
                            settled[trade].set()
                    elif e.kind == "offer.posted":
                        offer_here.set()

            buyer.listeners.append(on_events)
            async with anyio.create_task_group() as tg:
                await tg.start(seller.run)
                await tg.start(buyer.run)
                await seller.ready.wait()
                await buyer.ready.wait()
                bread = OfferPosted(
                    offer="bread",
                    item="bread",
                    category="bakery",
                    quantity=10**9,
                    unit="piece",
                    unit_price=1,
                    available_until=2**62,
                    area="B1",
                )
                await seller.post(bread)
                with anyio.fail_after(30):
                    await offer_here.wait()
                started: dict[str, float] = {}
                with Progress(transient=True) as progress:
                    task = progress.add_task("trade", total=trades)
                    for i in range(trades):
                        tid = f"b-{i}"
                        settled[tid] = anyio.Event()
                        started[tid] = time.perf_counter()
                        await buyer.trading.propose("seller", "bread", 1, trade=tid)
                        with anyio.fail_after(30):
                            await settled[tid].wait()
                        progress.update(task, advance=1)
                seller.stop()
                buyer.stop()
        finally:
            await anyio.to_thread.run_sync(server.stop)

    per_step: dict[str, dict[str, float]] = {}
    previous = {tid: t for tid, t in started.items()}
    names = {"trade.accepted": "proposed_to_accepted", "trade.shipped": "accepted_to_shipped",
             "trade.received": "shipped_to_received"}  # fmt: skip
    for kind in steps:
        gaps = [(seen[(tid, kind)] - previous[tid]) * 1000 for tid in started]
        per_step[names[kind]] = percentiles_ms(gaps)
        previous = {tid: seen[(tid, kind)] for tid in started}
    overall = percentiles_ms(
        [(seen[(tid, "trade.received")] - t) * 1000 for tid, t in started.items()]
    )
    return {
        "bench": "trade",
        "trades": trades,
        "steps_ms": per_step,
        "round_trip_ms": overall,
        "target_p99_proposed_to_accepted_ms": 20,
    }


async def _publish_raw(url: str, wires: Sequence[bytes], progress: Progress) -> None:
    """Put pre-sealed events straight into the stream, as their authors would have."""
    from coopnet.node.engine.bus import stream_config

    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(stream_config())
    task = progress.add_task("filling the stream", total=len(wires))
    pending = []
    for wire in wires:
        header = msgspec.msgpack.decode(wire, type=tuple[bytes, bytes, bytes])[0]
        fields = msgspec.msgpack.decode(header)
        author, kind = fields[2], fields[7]
        pending.append(
            await js.publish_async(
                f"coop.{author}.{kind}",
                wire,
                headers={"Nats-Msg-Id": hashlib.sha256(header).hexdigest()},
            )
        )
        if len(pending) >= 256:
            await pending.pop(0)
            progress.update(task, advance=1)
    for fut in pending:
        await fut
        progress.update(task, advance=1)
    await nc.close()


async def bench_catchup(events: int, authors: int) -> dict[str, Any]:
    """A fresh node backfilling `events` from the stream, beside this run's ingest rate."""
    ingest = await bench_ingest(min(events, 20_000), authors, 512)
    wires = presealed(events, authors)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = NatsServer(root / "nats")
        url = await anyio.to_thread.run_sync(server.start)
        try:
            with Progress(transient=True) as progress:
                await _publish_raw(url, wires, progress)
                data = root / "newcomer"
                await init_node(data, slug="newcomer", display_name="New", area="B1", net=NET)
                node = Node(data, nats_url=url, serve_api=False)
                task = progress.add_task("catching up", total=len(wires))
                async with anyio.create_task_group() as tg:
                    start = time.perf_counter()
                    await tg.start(node.run)
                    held = 0
                    while held < len(wires) + 1:
                        await anyio.sleep(0.1)
                        held = held_events(node.chains)
                        progress.update(task, completed=held)
                    elapsed = time.perf_counter() - start
                    node.stop()
        finally:
            await anyio.to_thread.run_sync(server.stop)
    rate = len(wires) / elapsed
    return {
        "bench": "catchup",
        "events": len(wires),
        "authors": authors,
        "seconds": round(elapsed, 2),
        "events_per_s": round(rate),
        "ingest_per_s": ingest["events_per_s"],
        "ratio": round(rate / ingest["events_per_s"], 3),
        "target_ratio": 0.8,
        "peak_rss_mb": peak_rss_mb(),
    }


async def bench_scale(sizes: Sequence[int], burst: int) -> dict[str, Any]:
    """N neighborhoods in this one process on one nats-server: each posts `burst` notes at
    once; seconds until every node holds every event, and memory per node."""
    results = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            server = NatsServer(root / "nats")
            url = await anyio.to_thread.run_sync(server.start)
            try:
                datas = []
                for i in range(n):
                    data = root / f"n{i:03d}"
                    await init_node(
                        data, slug=f"n{i:03d}", display_name=f"N{i}", area="B1", net=NET,
                        nats_url=url,
                    )  # fmt: skip
                    datas.append(data)
                rss_before = _rss_now_mb()
                nodes = [Node(d, serve_api=False) for d in datas]
                async with anyio.create_task_group() as tg:
                    for node in nodes:
                        await tg.start(node.run)
                    with anyio.fail_after(120):
                        for node in nodes:
                            await node.ready.wait()
                    rss_running = _rss_now_mb()
                    start = time.perf_counter()
                    async with anyio.create_task_group() as burst_tg:
                        for node in nodes:
                            for k in range(burst):
                                burst_tg.start_soon(node.post, NotePosted(text=f"burst {k}"))
                    total = n * (1 + burst)
                    with anyio.fail_after(600):
                        for node in nodes:
                            while held_events(node.chains) < total:  # noqa: ASYNC110
                                await anyio.sleep(0.1)
                    elapsed = time.perf_counter() - start
                    for node in nodes:
                        node.stop()
            finally:
                await anyio.to_thread.run_sync(server.stop)
        results.append(
            {
                "neighborhoods": n,
                "events_each_node_holds": total,
                "seconds_to_converge": round(elapsed, 2),
                "memory_per_node_mb": round((rss_running - rss_before) / n, 2),
            }
        )
    return {"bench": "scale", "burst_per_node": burst, "runs": results}


def _rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
