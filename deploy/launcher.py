"""`coopnet federation up|status`: a whole federation on this machine, as child processes.

`up` checks that the hubs' ports are free (one clear error naming the port and who holds
it, never a half-started federation), starts the hub server(s) from the generated configs,
creates the COOP stream with the operator's credentials (nodes may not), then every
neighborhood's leaf server (if it has one) and node; it shows a live status table and stops
everything on Ctrl-C (SIGTERM to the nodes first, so their outboxes flush; then the
servers), saying what it stopped. `status` asks each node's API and each hub's monitoring
port, whether `up` runs here or the parts run under systemd.

One neighborhood under a running `up`: `up` keeps its state in files that `federation
stop|start` and `neighborhood retire` read and write (deploy/control.py). A node that exits
by itself after its `membership.retired` (it wrote DATA/retired as it stopped,
node/runtime.py; or the members list it as "retired") is shown as retired and never
restarted; any other exit, whatever its log says, is shown with its code and waits for
`federation start`. The hubs' ports are
checked first (deploy/ports.py).

Re-exported here (`x as x`), as callers and tests know them: node_file, pid_alive,
read_pid, retired_marker (deploy/control.py), gather_status, status_table (deploy/status.py).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import nats
import nats.errors
import nats.js.errors
from rich.console import Console
from rich.live import Live

from coopnet.deploy.control import node_file as node_file
from coopnet.deploy.control import pid_alive as pid_alive
from coopnet.deploy.control import read_pid as read_pid
from coopnet.deploy.control import reset_run_files, running_up, up_pid_file
from coopnet.deploy.control import retired_marker as retired_marker
from coopnet.deploy.federation import (
    FederationConfig,
    client_tls,
    neighborhood_dir,
    neighborhoods,
    read_federation,
    read_leaf_port,
)
from coopnet.deploy.ports import check_ports_free
from coopnet.deploy.status import gather_status as gather_status
from coopnet.deploy.status import status_table as status_table
from coopnet.deploy.streams import INSUFFICIENT_RESOURCES, StreamLimitError, ensure_streams
from coopnet.node.engine.config import ConfigError
from coopnet.node.engine.nats_server import NatsServer, NatsServerError

log = logging.getLogger("coopnet.launcher")


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
    raise ConfigError naming its log."""
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
            raise ConfigError(
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
    start one neighborhood (the files in DIR/run). Raises ConfigError before starting
    anything if another `up` runs this federation or a port it needs is taken."""
    config = read_federation(root)
    other = running_up(root)
    if other is not None and other != os.getpid():
        raise ConfigError(
            f"`coopnet federation up` already runs {root} (pid {other})",
            "stop it first (Ctrl-C in its terminal), or stop and start one neighborhood "
            f"under it with `coopnet federation stop|start {root} SLUG`",
        )
    check_ports_free(root, config)
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    reset_run_files(root)
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
                        await anyio.to_thread.run_sync(follow_controls, root, runs, retired, hubs)
                        live.update(status_table(await gather_status(root)))
                        await anyio.sleep(1)
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            lines = await anyio.to_thread.run_sync(_stop_all, list(runs.values()), hubs)
            reset_run_files(root)
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


def follow_controls(
    root: Path,
    runs: dict[str, NodeRun],
    retired: set[str],
    servers: list[NatsServer] | None = None,
) -> None:
    """One pass of `up` over its nodes (in a thread: stopping a node waits for it): start
    what `federation start` asked for, stop what `federation stop` asked for, and notice a
    node that ended by itself: retired (its DATA/retired marker, written by the node as it
    stopped or by `neighborhood retire`; or `retired` names it, the neighborhoods the
    members list as retired) or exited with its code. A start asked for a neighborhood
    added (`neighborhood add`) after `up` began joins `runs`, so `up` follows and stops
    it as the others; its leaf server, if it has one, is started and added to `servers`
    (stopped with the hubs)."""
    logs = root / "logs"
    _add_new_runs(root, runs, servers if servers is not None else [])
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
            # The node's own marker (written as it stops once retired), or the members'
            # signed view: never its log's text, partly other members' words.
            if retired_marker(root, slug).exists():
                run.state = "retired"
            elif slug in retired:
                retired_marker(root, slug).write_text("retired: the members list it so\n")
                run.state = "retired"
            else:
                node_file(root, slug, "exit").write_text(f"{code}\n")
                run.state = f"exited {code}"


def _add_new_runs(root: Path, runs: dict[str, NodeRun], servers: list[NatsServer]) -> None:
    """For each `federation start` request (DIR/run/nodes/<slug>.start) of a neighborhood
    `up` does not follow yet, one with a node.toml that has not retired: add it to `runs`,
    stopped, so that the pass that follows starts it as any other (its leaf first)."""
    folder = root / "run" / "nodes"
    if not folder.is_dir():
        return
    for request in sorted(folder.glob("*.start")):
        slug = request.stem
        if slug in runs or not (neighborhood_dir(root, slug) / "node.toml").is_file():
            continue  # followed already, or no neighborhood (`federation start` refuses it)
        if retired_marker(root, slug).exists():
            runs[slug] = NodeRun(slug, state="retired")  # the pass drops the request
            continue
        try:
            leaf = start_leaf(root, slug)
        except NatsServerError as exc:  # `federation start` times out, pointing to the logs
            log.error("%s: its leaf server did not start: %s", slug, exc)
            request.unlink(missing_ok=True)
            continue
        if leaf is not None:
            servers.append(leaf)
        runs[slug] = NodeRun(slug, state="stopped")
        log.info("%s: added after `up` began", slug)


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
