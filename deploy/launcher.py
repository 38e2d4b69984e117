"""`coopnet federation up|status`: a whole federation on this machine, as child processes.

`up` starts the hub server(s) from the generated configs, creates the COOP stream with the
operator's credentials (nodes may not), then every neighborhood's leaf server (if it has
one) and node; it shows a live status table and stops everything on Ctrl-C (SIGTERM to the
nodes first, so their outboxes flush; then the servers). `status` asks each node's API
and each hub's monitoring port, whether `up` runs here or the parts run under systemd.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anyio
import httpx
import nats
import nats.errors
import nats.js.errors
from rich.console import Console
from rich.live import Live
from rich.table import Table

from coopnet.deploy.federation import (
    FederationConfig,
    client_tls,
    neighborhood_dir,
    read_federation,
    read_leaf_port,
)
from coopnet.deploy.nats_config import MONITOR_HOST
from coopnet.deploy.streams import INSUFFICIENT_RESOURCES, StreamLimitError, ensure_streams
from coopnet.node.engine.bus import STREAM
from coopnet.node.engine.client import API_URL_FILE
from coopnet.node.engine.nats_server import NatsServer

log = logging.getLogger("coopnet.launcher")


def neighborhoods(root: Path) -> list[str]:
    folder = root / "neighborhoods"
    return sorted(p.name for p in folder.iterdir() if (p / "node.toml").exists())


def observers(root: Path) -> list[str]:
    """The names of the federation's observers (`DIR/observer/observer.toml`), whose
    consumers `observer-<name>` the operator makes with the streams."""
    path = root / "observer" / "observer.toml"
    if not path.exists():
        return []
    name = tomllib.loads(path.read_text()).get("name", "")
    return [name] if isinstance(name, str) and name else []


def start_hubs(root: Path, config: FederationConfig) -> list[NatsServer]:
    servers = []
    for i, conf in enumerate(config.hub_configs(root)):
        server = NatsServer(
            root / "run" / conf.stem, port=config.ports.client[i], config=conf, listen=None
        )  # the config's `host`: a hub may listen elsewhere than 127.0.0.1
        server.start()
        servers.append(server)
    return servers


async def ensure_stream(
    root: Path,
    config: FederationConfig,
    *,
    within: float = 60,
    slugs: Iterable[str] | None = None,
) -> list[str]:
    """The federation's streams, made or updated by the operator's admin user (replicas =
    number of hubs): each neighborhood's member stream with its quota and the aggregate
    COOP that sources them (deploy/streams.py, OPERATIONS.md §12); an older COOP on
    `coop.>` is converted. Then each member's and the observer's durable pull consumer
    (`node-<slug>`, `observer-<name>`: readers may not make their own, PROTOCOL.md §9).
    `slugs`: the member streams to ensure (default: every neighborhood in `root`). Returns
    the streams created or changed. Retries for up to `within` seconds while the hubs start
    or a cluster forms (TimeoutError after); a StreamLimitError at once when the account's
    disk cannot hold another member stream."""
    members = neighborhoods(root) if slugs is None else list(slugs)
    readers = observers(root)
    nc = await nats.connect(
        config.urls.split(","),
        user_credentials=str(root / "nats" / "admin.creds"),
        tls=client_tls(root, config),
    )
    try:
        js = nc.jetstream()
        with anyio.fail_after(within):
            while True:
                # While a cluster forms, each call may fail for a moment: no JetStream leader
                # yet, or "no suitable peers for placement" until every server has joined.
                try:
                    return await ensure_streams(
                        js, members, config.quotas, replicas=config.hubs, observers=readers
                    )
                except nats.js.errors.APIError as exc:
                    if exc.err_code == INSUFFICIENT_RESOURCES:
                        raise StreamLimitError(
                            f"the hubs refused a stream: {exc.description} (the COOP account"
                            " is sized for members_max member streams: OPERATIONS.md §12)"
                        ) from None
                    log.info("the streams cannot be set up yet (%s); retrying", exc)
                    await anyio.sleep(0.5)
                except (nats.errors.Error, TimeoutError) as exc:
                    log.info("the streams cannot be set up yet (%s); retrying", exc)
                    await anyio.sleep(0.5)
    finally:
        await nc.close()


def start_leaf(root: Path, slug: str) -> NatsServer | None:
    """A leaf neighborhood's own nats-server, if it has one (`neighborhood add --leaf`)."""
    data = neighborhood_dir(root, slug)
    if not (data / "leaf.conf").exists():
        return None
    leaf = NatsServer(
        root / "run" / f"leaf-{slug}", port=read_leaf_port(data), config=data / "leaf.conf"
    )
    leaf.start()
    return leaf


def start_node(root: Path, slug: str, logs: Path) -> subprocess.Popen[bytes]:
    data = neighborhood_dir(root, slug)
    log = (logs / f"{slug}.log").open("ab")
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "coopnet", "node", "run", "--data", str(data)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    finally:
        log.close()


def _coop_messages(jsz: dict[str, Any]) -> int:
    """The messages `COOP` holds, from a hub's `/jsz?accounts=true&streams=true`: the
    server's total would count every event twice, once in its member stream (§12)."""
    for account in jsz.get("account_details") or []:
        for stream in account.get("stream_detail") or []:
            if stream.get("name") == STREAM:
                return int((stream.get("state") or {}).get("messages", 0))
    return int(jsz.get("messages", 0))


async def gather_status(root: Path) -> dict[str, Any]:
    """Each hub (monitoring port) and each node (its API), as one JSON-able object."""
    config = read_federation(root)
    out: dict[str, Any] = {"federation": config.name, "hubs": [], "neighborhoods": []}
    async with httpx.AsyncClient(timeout=2) as client:
        for i, port in enumerate(config.ports.http):
            hub: dict[str, Any] = {"url": config.urls.split(",")[i], "up": False}
            try:
                # Monitoring listens on this machine only (nats_config.MONITOR_HOST).
                varz = (await client.get(f"http://{MONITOR_HOST}:{port}/varz")).json()
                jsz = (
                    await client.get(f"http://{MONITOR_HOST}:{port}/jsz?accounts=true&streams=true")
                ).json()
                hub |= {
                    "up": True,
                    "server": varz.get("server_name", ""),
                    "connections": varz.get("connections", 0),
                    "stream_messages": _coop_messages(jsz),
                }
            except (httpx.HTTPError, ValueError):
                pass
            out["hubs"].append(hub)
        members: dict[str, str] = {}
        for slug in neighborhoods(root):
            row: dict[str, Any] = {"slug": slug, "running": False}
            url_file = neighborhood_dir(root, slug) / API_URL_FILE
            try:
                base = url_file.read_text().strip()
                status = (await client.get(base + "/status")).json()
                if not members:
                    view = (await client.get(base + "/membership")).json()
                    members = {m["slug"]: m["status"] for m in view["members"]}
                row |= {
                    "running": True,
                    "api": base,
                    "own_head": status["own_head"],
                    "bus_connected": status["bus_connected"],
                    "outbox": status["outbox_depth"],
                    "events": status["events_stored"],
                    "rejected": sum(status["rejected"].values()),
                    # The bus refuses its events (its quota: OPERATIONS.md §12), or "".
                    "publish_refused": (status.get("publish_refused") or {}).get("code", ""),
                }
            except (OSError, httpx.HTTPError, ValueError, KeyError):
                pass
            out["neighborhoods"].append(row)
        for row in out["neighborhoods"]:
            row["membership"] = members.get(row["slug"], "unknown")
    return out


def status_table(status: dict[str, Any]) -> Table:
    table = Table(
        "neighborhood", "membership", "running", "bus", "own head", "events", "outbox",
        "rejected", title=_title(status), title_justify="left",
    )  # fmt: skip
    for n in status["neighborhoods"]:
        if not n["running"]:
            table.add_row(n["slug"], n["membership"], "[red]no[/]", "", "", "", "", "")
            continue
        table.add_row(
            n["slug"], n["membership"], "[green]yes[/]",
            f"[red]refused: {n['publish_refused']}[/]" if n.get("publish_refused")
            else "[green]up[/]" if n["bus_connected"] else "[yellow]down[/]",
            str(n["own_head"]), str(n["events"]), str(n["outbox"]), str(n["rejected"]),
        )  # fmt: skip
    return table


def _title(status: dict[str, Any]) -> str:
    hubs = ", ".join(
        f"{h['url']} {'up' if h['up'] else 'DOWN'}"
        + (f" ({h['connections']} conns, {h['stream_messages']} msgs)" if h["up"] else "")
        for h in status["hubs"]
    )
    return f"federation {status['federation']} — hubs: {hubs}"


async def run_federation(root: Path, console: Console, *, seconds: float | None = None) -> int:
    """Start everything, show it live, stop everything (Ctrl-C or after `seconds`)."""
    config = read_federation(root)
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    hubs = await anyio.to_thread.run_sync(start_hubs, root, config)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        try:
            await ensure_stream(root, config)
        except StreamLimitError as exc:  # the account cannot hold the streams: say so, stop
            console.print(f"[red]coopnet: {exc}[/]")
            return 1
        for slug in neighborhoods(root):
            leaf = await anyio.to_thread.run_sync(start_leaf, root, slug)
            if leaf is not None:
                hubs.append(leaf)  # stopped with the hubs, after the nodes
            procs[slug] = start_node(root, slug, logs)
        console.print(
            f"[bold]{config.name}[/]: {config.hubs} hub(s), {len(procs)} nodes; logs in {logs}"
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stop_on_signal, tg.cancel_scope)
            with Live(console=console, refresh_per_second=2) as live:
                with anyio.move_on_after(seconds):
                    while True:
                        live.update(status_table(await gather_status(root)))
                        await anyio.sleep(1)
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_stop_all, list(procs.values()), hubs)
    return 0


async def _stop_on_signal(scope: anyio.CancelScope) -> None:
    """Ctrl-C or SIGTERM (systemd, a terminal closing): stop everything in order."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return


def _stop_all(procs: list[subprocess.Popen[bytes]], hubs: list[NatsServer]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for hub in hubs:
        hub.stop()
