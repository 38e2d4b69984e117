"""systemd units for a federation's servers and nodes (`federation init --systemd`).

    coopnet-hub.service        the hub (or coopnet-hub@N.service for hub-N of a cluster)
    coopnet-node@.service      one node per neighborhood: `systemctl enable coopnet-node@oakley`
    coopnet-observer.service   the federation's observer (once this package has one:
                               `coopnet observe` is the observers' issue)

Paths are absolute (this machine's Python and nats-server), so the units run what `init`
ran. Each unit is sandboxed: its own user, a read-only system, writes only under DIR.
"""

from __future__ import annotations

import getpass
import importlib.util
import sys
from pathlib import Path

from coopnet.deploy.federation import FederationConfig
from coopnet.node.engine.nats_server import nats_server_binary

_HARDENING = """NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
ReadWritePaths={root}
"""


def _unit(description: str, after: str, exec_start: str, root: Path, user: str) -> str:
    return (
        f"[Unit]\nDescription={description}\nAfter=network-online.target {after}".rstrip() + "\n"
        "Wants=network-online.target\n\n"
        "[Service]\n"
        f"User={user}\n"
        f"WorkingDirectory={root}\n"
        f"ExecStart={exec_start}\n"
        "Restart=on-failure\n"
        "RestartSec=2\n"
        # SIGTERM: a node flushes its outbox and exits 0; nats-server shuts down cleanly.
        "KillSignal=SIGTERM\n"
        "TimeoutStopSec=30\n" + _HARDENING.format(root=root) + "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def write_units(root: Path, config: FederationConfig, *, user: str | None = None) -> list[Path]:
    root = root.resolve()
    user = user or getpass.getuser()
    folder = root / "systemd"
    folder.mkdir(exist_ok=True)
    server = nats_server_binary()
    python = Path(sys.executable)
    units: dict[str, str] = {}
    if config.hubs == 1:
        units["coopnet-hub.service"] = _unit(
            "coopnet hub (nats-server with JetStream)", "",
            f"{server} -c {root / 'nats' / 'hub.conf'}", root, user,
        )  # fmt: skip
        hub_units = "coopnet-hub.service"
    else:
        units["coopnet-hub@.service"] = _unit(
            "coopnet hub %i of the cluster (nats-server with JetStream)", "",
            f"{server} -c {root / 'nats' / 'hub-%i.conf'}", root, user,
        )  # fmt: skip
        hub_units = " ".join(f"coopnet-hub@{i}.service" for i in range(1, config.hubs + 1))
    units["coopnet-node@.service"] = _unit(
        "coopnet node of neighborhood %i", hub_units,
        f"{python} -m coopnet node run --data {root / 'neighborhoods' / '%i'}", root, user,
    )  # fmt: skip
    if importlib.util.find_spec("coopnet.federation.observer") is not None:
        units["coopnet-observer.service"] = _unit(
            "coopnet observer of the federation", hub_units,
            f"{python} -m coopnet observe --federation {root} --data {root / 'observer'}",
            root, user,
        )  # fmt: skip
    paths = []
    for name, text in units.items():
        path = folder / name
        path.write_text(text)
        paths.append(path)
    return paths
