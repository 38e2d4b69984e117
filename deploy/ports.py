"""The hubs' ports: free before `federation init` writes them into the configs, and before
`federation up` starts servers on them (docs/OPERATIONS.md).

`init` moves a default port that is taken to the next free one and says so; a port the
operator chose (`--port`) that is taken is refused. `up` refuses to start anything while a
port it needs is taken, naming the port and, read from /proc, who holds it: one clear
line, never a half-started federation.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from coopnet.deploy.federation import (
    FederationConfig,
    Ports,
    neighborhood_dir,
    neighborhoods,
    read_leaf_port,
)
from coopnet.deploy.nats_config import MONITOR_HOST
from coopnet.node.engine.config import ConfigError


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
    "held_by"}]. `keep_client`: the operator chose the first client port (`--port`): a
    ConfigError with a hint if it is taken, rather than moving it."""
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
            raise ConfigError(
                f"port {wanted} (--port) on {host} is taken" + (f" by {holder}" if holder else ""),
                "choose another --port, or leave --port out and init picks free ports",
            )
        candidate = wanted + 1
        while candidate in used or not port_is_free(host, candidate):
            candidate += 1
            if candidate > 65_535:
                raise ConfigError(f"no free port above {wanted} on {host}", "free a port")
        used.add(candidate)
        values[i] = candidate
        moved.append(
            {"role": role, "hub": hub, "wanted": wanted, "used": candidate, "held_by": holder}
        )
    return chosen, moved


def check_ports_free(root: Path, config: FederationConfig) -> None:
    """Before `up` starts anything: every hub port (client, monitoring, leafnode, route) and
    every leaf neighborhood's port must be free; else a ConfigError naming the port, who
    holds it, and (its hint) what to do."""
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
            raise ConfigError(
                f"port {port} ({role}) on {host} is taken"
                + (f" by {holder}" if holder else " by another program"),
                (f"stop {holder}" if holder else "stop what holds it")
                + f" (another `coopnet federation up`?), then run `coopnet federation up {root}`"
                f" again; a federation just made can be made again on free ports with "
                f"`coopnet federation init {root} --force ...`",
            )
