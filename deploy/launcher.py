"""`coopnet federation up|status|start|stop`: a whole federation on this machine, as
child processes.

`up` checks that the hubs' ports are free (one clear error naming the port and who holds
it, never a half-started federation), starts the hub server(s) from the generated configs,
creates the COOP stream with the operator's credentials (nodes may not), then every
neighborhood's leaf server (if it has one) and node; it shows a live status table and stops
everything on Ctrl-C (SIGTERM to the nodes first, so their outboxes flush; then the
servers), saying what it stopped. `status` asks each node's API and each hub's monitoring
port, whether `up` runs here or the parts run under systemd.

One neighborhood under a running `up` (docs/OPERATIONS.md): `up` keeps its state in files,
so that other commands can ask it things without a socket:

    DIR/run/up.pid              the pid of the `up` that runs this federation
    DIR/run/nodes/<slug>.pid    the pid of that neighborhood's node, while it runs
    DIR/run/nodes/<slug>.stop   `federation stop` asks `up` to stop the node and keep it
                                stopped (up shows it as "stopped")
    DIR/run/nodes/<slug>.start  `federation start` asks `up` to start it again
    DIR/run/nodes/<slug>.exit   the exit code of a node that stopped by itself
    DIR/neighborhoods/<slug>/retired   the neighborhood retired: `up` never starts it again

A node that exits by itself after its `membership.retired` (exit code 0 and "retired" in
its log's last lines, or a member list that says "retired") is shown as retired and never
restarted; any other exit is shown with its code and waits for `federation start`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
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
    OperatorError,
    Ports,
    client_tls,
    neighborhood_dir,
    read_federation,
    read_leaf_port,
)
from coopnet.deploy.nats_config import MONITOR_HOST
from coopnet.deploy.streams import INSUFFICIENT_RESOURCES, StreamLimitError, ensure_streams
from coopnet.node.engine.bus import STREAM
from coopnet.node.engine.client import API_URL_FILE
from coopnet.node.engine.nats_server import NatsServer, NatsServerError

log = logging.getLogger("coopnet.launcher")


# ---- ports: free before `init` writes them and before `up` starts servers on them --------


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on `host`:`port` now (as nats-server binds: with
    SO_REUSEADDR, so a port in TIME_WAIT counts as free). An address that is not this
    machine's (a hub on another host) cannot be checked here: counted as free."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return True
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            return exc.errno != errno.EADDRINUSE
    return True


def port_holder(port: int) -> str:
    """Who listens on TCP `port` on this machine, as "nats-server (pid 1234)", or "" when
    that cannot be seen (not Linux, or a process of another user). Reads /proc: no tool
    such as `ss` or `lsof` is needed."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                # local_address is HEXIP:HEXPORT; state 0A is LISTEN.
                listening = len(fields) > 9 and fields[3] == "0A"
                if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    if not inodes:
        return ""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    name = (proc / "comm").read_text().strip()
                    return f"{name} (pid {proc.name})"
    return ""


def _roles(ports: Ports) -> Iterator[tuple[str, int, list[int], int]]:
    """(role, hub index, the list it is in, index in that list) for every port of `ports`."""
    for name, values in (
        ("client", ports.client), ("monitoring", ports.http),
        ("leafnode", ports.leaf), ("route", ports.route),
    ):  # fmt: skip
        for i in range(len(values)):
            yield name, i, values, i


def choose_free_ports(
    ports: Ports, hosts: list[str], *, keep_client: bool = False
) -> tuple[Ports, list[dict[str, Any]]]:
    """`ports` with each port that is taken now replaced by the next free one above it
    (not one `ports` already uses); hub i listens on `hosts[i]` (monitoring: on
    MONITOR_HOST). Returns the ports and what moved: [{"role", "hub", "wanted", "used",
    "held_by"}]. `keep_client`: the operator chose the first client port (`--port`): an
    OperatorError if it is taken, rather than moving it."""
    chosen = Ports(
        client=list(ports.client), http=list(ports.http),
        leaf=list(ports.leaf), route=list(ports.route),
    )  # fmt: skip
    moved: list[dict[str, Any]] = []
    used = {p for _, _, values, i in _roles(chosen) for p in [values[i]]}
    for role, hub, values, i in _roles(chosen):
        host = MONITOR_HOST if role == "monitoring" else hosts[hub]
        wanted = values[i]
        if port_is_free(host, wanted):
            continue
        holder = port_holder(wanted)
        if keep_client and role == "client" and hub == 0:
            raise OperatorError(
                f"port {wanted} (--port) on {host} is taken" + (f" by {holder}" if holder else ""),
                "choose another --port, or leave --port out and init picks free ports",
            )
        candidate = wanted + 1
        while candidate in used or not port_is_free(host, candidate):
            candidate += 1
            if candidate > 65_535:
                raise OperatorError(f"no free port above {wanted} on {host}", "free a port")
        used.add(candidate)
        values[i] = candidate
        moved.append(
            {"role": role, "hub": hub, "wanted": wanted, "used": candidate, "held_by": holder}
        )
    return chosen, moved


def check_ports_free(root: Path, config: FederationConfig) -> None:
    """Before `up` starts anything: every hub port (client, monitoring, leafnode, route) and
    every leaf neighborhood's port must be free; else an OperatorError naming the port, who
    holds it and what to do."""
    wanted: list[tuple[str, str, int]] = []
    for role, hub, values, i in _roles(config.ports):
        host = MONITOR_HOST if role == "monitoring" else config.host_of(hub)
        wanted.append((f"hub {role} port", host, values[i]))
    for slug in neighborhoods(root):
        if (neighborhood_dir(root, slug) / "leaf.conf").exists():
            leaf = read_leaf_port(neighborhood_dir(root, slug))
            wanted.append((f"{slug}'s leaf server port", "127.0.0.1", leaf))
    for role, host, port in wanted:
        if not port_is_free(host, port):
            holder = port_holder(port)
            raise OperatorError(
                f"port {port} ({role}) on {host} is taken"
                + (f" by {holder}" if holder else " by another program"),
                (f"stop {holder}" if holder else "stop what holds it")
                + f" (another `coopnet federation up`?), then run `coopnet federation up {root}`"
                f" again; a federation just made can be made again on free ports with "
                f"`coopnet federation init {root} --force ...`",
            )


# ---- one neighborhood under a running `up`: files in DIR/run (see the module docstring) ---


def up_pid_file(root: Path) -> Path:
    return root / "run" / "up.pid"


def node_file(root: Path, slug: str, suffix: str) -> Path:
    """DIR/run/nodes/<slug>.<suffix>: pid, stop, start or exit."""
    return root / "run" / "nodes" / f"{slug}.{suffix}"


def retired_marker(root: Path, slug: str) -> Path:
    return neighborhood_dir(root, slug) / "retired"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_pid(path: Path) -> int | None:
    """The pid in `path` if that process still runs, else None."""
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def running_up(root: Path) -> int | None:
    """The pid of the `federation up` that runs `root` now, or None."""
    return read_pid(up_pid_file(root))


def node_state(root: Path, slug: str) -> str:
    """What `up` did with a neighborhood's node, from its files: "retired", "stopped" (by
    the operator), "exited N" (by itself), "running" (a pid that lives), or "" (unknown:
    no `up` runs it, e.g. systemd does)."""
    if retired_marker(root, slug).exists():
        return "retired"
    if node_file(root, slug, "stop").exists():
        return "stopped"
    if read_pid(node_file(root, slug, "pid")) is not None:
        return "running"
    with contextlib.suppress(OSError):
        return f"exited {node_file(root, slug, 'exit').read_text().strip()}"
    return ""


def said_retired(log_file: Path, tail_bytes: int = 4096) -> bool:
    """Whether a node's log ends by saying it retired (its last `tail_bytes`)."""
    try:
        with log_file.open("rb") as f:
            f.seek(max(f.seek(0, os.SEEK_END) - tail_bytes, 0))
            return b"retired" in f.read().lower()
    except OSError:
        return False


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
    """Start every hub from its config; if one does not start, stop those that did and
    raise OperatorError naming its log."""
    servers: list[NatsServer] = []
    for i, conf in enumerate(config.hub_configs(root)):
        server = NatsServer(
            root / "run" / conf.stem, port=config.ports.client[i], config=conf, listen=None
        )  # the config's `host`: a hub may listen elsewhere than 127.0.0.1
        try:
            server.start()
        except NatsServerError as exc:
            for started in servers:
                started.stop()
            raise OperatorError(
                f"{conf.stem} did not start: {exc}",
                f"its log says why: {root / 'run' / conf.stem / 'nats-server.log'}",
            ) from None
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
    """Start a neighborhood's node (`coopnet node run`), its output appended to
    logs/<slug>.log; record its pid in DIR/run/nodes/<slug>.pid."""
    data = neighborhood_dir(root, slug)
    log = (logs / f"{slug}.log").open("ab")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "coopnet", "node", "run", "--data", str(data)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    finally:
        log.close()
    node_file(root, slug, "pid").write_text(f"{proc.pid}\n")
    return proc


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
            row: dict[str, Any] = {"slug": slug, "running": False, "state": node_state(root, slug)}
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
            if row["running"]:
                row["state"] = "running"
            elif row["membership"] == "retired" or row["state"] == "retired":
                row["state"] = "retired"
    return out


def status_table(status: dict[str, Any]) -> Table:
    table = Table(
        "neighborhood", "membership", "running", "bus", "own head", "events", "outbox",
        "rejected", title=_title(status), title_justify="left",
    )  # fmt: skip
    for n in status["neighborhoods"]:
        if not n["running"]:
            state = n.get("state") or "no"
            style = "dim" if state in ("stopped", "retired") else "red"
            table.add_row(n["slug"], n["membership"], f"[{style}]{state}[/]", *[""] * 5)
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


@dataclass
class NodeRun:
    """One neighborhood's node under `up`: its process (None when it is not running) and
    its state: "running", "stopped" (by the operator), "retired", "exited N"."""

    slug: str
    proc: subprocess.Popen[bytes] | None = None
    state: str = "running"
    pid: int = field(default=0)


async def run_federation(root: Path, console: Console, *, seconds: float | None = None) -> int:
    """Start everything, show it live, stop everything (Ctrl-C, SIGTERM or after
    `seconds`) and say what stopped. Meanwhile `federation stop|start DIR SLUG` stop and
    start one neighborhood (the files in DIR/run). Raises OperatorError before starting
    anything if another `up` runs this federation or a port it needs is taken."""
    config = read_federation(root)
    other = running_up(root)
    if other is not None and other != os.getpid():
        raise OperatorError(
            f"`coopnet federation up` already runs {root} (pid {other})",
            "stop it first (Ctrl-C in its terminal), or stop and start one neighborhood "
            f"under it with `coopnet federation stop|start {root} SLUG`",
        )
    check_ports_free(root, config)
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    _reset_run_files(root)
    up_pid_file(root).write_text(f"{os.getpid()}\n")
    began = anyio.current_time()
    hubs: list[NatsServer] = []
    runs: dict[str, NodeRun] = {}
    lines: list[str] = []
    try:
        hubs += await anyio.to_thread.run_sync(start_hubs, root, config)
        try:
            await ensure_stream(root, config)
        except StreamLimitError as exc:  # the account cannot hold the streams: say so, stop
            console.print(f"[red]error: {exc}[/]")
            return 1
        for slug in neighborhoods(root):
            if retired_marker(root, slug).exists():  # a retired neighborhood stays stopped
                runs[slug] = NodeRun(slug, state="retired")
                continue
            leaf = await anyio.to_thread.run_sync(start_leaf, root, slug)
            if leaf is not None:
                hubs.append(leaf)  # stopped with the hubs, after the nodes
            proc = start_node(root, slug, logs)
            runs[slug] = NodeRun(slug, proc, pid=proc.pid)
        console.print(
            f"[bold]{config.name}[/]: {config.hubs} hub(s), {len(runs)} nodes; logs in {logs}"
            f"\n  one neighborhood: coopnet federation stop|start {root} SLUG"
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stop_on_signal, tg.cancel_scope)
            with Live(console=console, refresh_per_second=2) as live:
                with anyio.move_on_after(seconds):
                    while True:
                        status = await gather_status(root)
                        retired = {
                            n["slug"] for n in status["neighborhoods"]
                            if n["membership"] == "retired"
                        }  # fmt: skip
                        await anyio.to_thread.run_sync(follow_controls, root, runs, retired)
                        live.update(status_table(await gather_status(root)))
                        await anyio.sleep(1)
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            lines = await anyio.to_thread.run_sync(_stop_all, list(runs.values()), hubs)
            _reset_run_files(root)
            up_pid_file(root).unlink(missing_ok=True)
        console.print()  # below the live table
        for line in lines:
            console.print(line, highlight=False, soft_wrap=True)
        stopped = sum(1 for line in lines if line.startswith("stopped node"))
        console.print(
            f"{config.name}: stopped {stopped} node(s) and {len(hubs)} server(s) after "
            f"{anyio.current_time() - began:.0f} s; logs in {logs}",
            highlight=False,
            soft_wrap=True,
        )
    return 0


def _reset_run_files(root: Path) -> None:
    """A fresh `up` starts every neighborhood that has not retired: forget the stop and
    start requests, pids and exit codes of the last one."""
    folder = root / "run" / "nodes"
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.suffix in (".pid", ".stop", ".start", ".exit"):
            path.unlink(missing_ok=True)


def follow_controls(root: Path, runs: dict[str, NodeRun], retired: set[str]) -> None:
    """One pass of `up` over its nodes (in a thread: stopping a node waits for it): start
    what `federation start` asked for, stop what `federation stop` asked for, and notice a
    node that ended by itself: retired (`retired` names the neighborhoods the members list
    as retired, `neighborhood retire` left its marker, or it exited with code 0 and
    "retired" in its log) or exited with its code."""
    logs = root / "logs"
    for slug, run in runs.items():
        stop, start = node_file(root, slug, "stop"), node_file(root, slug, "start")
        alive = run.proc is not None and run.proc.poll() is None
        if run.state == "retired":
            start.unlink(missing_ok=True)  # `federation start` refuses it; never started
            continue
        if start.exists():
            start.unlink(missing_ok=True)
            stop.unlink(missing_ok=True)
            if not alive:
                node_file(root, slug, "exit").unlink(missing_ok=True)
                run.proc = start_node(root, slug, logs)
                run.pid, run.state = run.proc.pid, "running"
                log.info("%s: started again (pid %d)", slug, run.pid)
            continue
        if stop.exists() and run.state != "stopped":
            if run.proc is not None and alive:
                _terminate(run.proc)
            node_file(root, slug, "pid").unlink(missing_ok=True)
            run.proc, run.state = None, "stopped"
            continue
        if run.state == "running" and run.proc is not None and not alive:
            code = run.proc.returncode
            node_file(root, slug, "pid").unlink(missing_ok=True)
            run.proc = None
            retiring = slug in retired or retired_marker(root, slug).exists()
            if retiring or (code == 0 and said_retired(logs / f"{slug}.log")):
                retired_marker(root, slug).write_text("retired: its node stopped by itself\n")
                run.state = "retired"
            else:
                node_file(root, slug, "exit").write_text(f"{code}\n")
                run.state = f"exited {code}"


def _terminate(proc: subprocess.Popen[bytes], within: float = 15) -> None:
    """SIGTERM (the node flushes its outbox and stops), SIGKILL after `within` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def _stop_on_signal(scope: anyio.CancelScope) -> None:
    """Ctrl-C or SIGTERM (systemd, a terminal closing): stop everything in order."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return


def _stop_all(runs: list[NodeRun], hubs: list[NatsServer]) -> list[str]:
    """Stop the nodes (SIGTERM together, then wait for each), then the servers; return a
    line for each: "stopped node oakley (pid 123)", "elm: stopped earlier (federation
    stop)", "stopped hub (nats://127.0.0.1:4222)"."""
    lines: list[str] = []
    for run in runs:
        if run.proc is not None and run.proc.poll() is None:
            run.proc.terminate()
    for run in runs:
        if run.proc is not None:
            try:
                run.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                run.proc.kill()
                run.proc.wait()
            lines.append(f"stopped node {run.slug} (pid {run.pid})")
        elif run.state == "stopped":
            lines.append(f"{run.slug}: stopped earlier (`coopnet federation stop`)")
        else:
            lines.append(f"{run.slug}: {run.state}, not running")
    for hub in hubs:
        url, name = hub.url, hub.workdir.name
        hub.stop()
        lines.append(f"stopped {name} ({url})")
    return lines
