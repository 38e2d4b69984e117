"""systemd units for a federation's servers and nodes (`federation init --systemd`).

    coopnet-hub.service        the hub (or coopnet-hub@N.service for hub-N of a cluster)
    coopnet-streams.service    a oneshot after the hub(s): `coopnet federation streams DIR`
                               makes the streams and the readers' consumers exist with
                               the operator's admin user
    coopnet-node@.service      one node per neighborhood: `systemctl enable coopnet-node@oakley`
    coopnet-observer.service   the federation's observer (once this package has one:
                               `coopnet observe` is the observers' issue)

Order (docs/OPERATIONS.md §7): hub(s), then streams, then nodes and the observer. The nodes
may not create the stream nor their consumers (their credentials deny it), so the streams
job runs between: it `Requires=` and comes `After=` the hub units, and is `PartOf=` them,
so restarting a hub (one that lost its store, say) runs it again; each node and the
observer `Wants=` it and come `After=` it. It retries on failure; a node started before
it still waits, and says so in its status (`stream_missing`, `consumer_missing`), until
both are there.

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

STREAMS_UNIT = "coopnet-streams.service"
# How long the streams job waits for the hub(s) on each try (a cluster forms in seconds).
STREAMS_WAIT_S = 120

_HARDENING = """NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
ReadWritePaths={root}
"""


def _unit(
    description: str,
    after: str,
    exec_start: str,
    root: Path,
    user: str,
    *,
    unit_extra: str = "",
    service: str = "",
) -> str:
    """One unit's text. `after`: units it starts after (space-separated); `unit_extra`:
    more [Unit] lines; `service`: the [Service] lines that differ from a long-running,
    restarted-on-failure process."""
    service = service or (
        "Restart=on-failure\n"
        "RestartSec=2\n"
        # SIGTERM: a node flushes its outbox and exits 0; nats-server shuts down cleanly.
        "KillSignal=SIGTERM\n"
        "TimeoutStopSec=30\n"
    )
    return (
        f"[Unit]\nDescription={description}\nAfter=network-online.target {after}".rstrip() + "\n"
        "Wants=network-online.target\n" + unit_extra + "\n"
        "[Service]\n"
        f"User={user}\n"
        f"WorkingDirectory={root}\n"
        f"ExecStart={exec_start}\n" + service + _HARDENING.format(root=root) + "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def write_units(root: Path, config: FederationConfig, *, user: str | None = None) -> list[Path]:
    """Write the units into DIR/systemd/ (see the module's docstring); return their paths.
    `user`: who they run as (default: whoever runs this). OPERATIONS.md §7."""
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
    units[STREAMS_UNIT] = _unit(
        "coopnet streams: make the federation's JetStream streams exist (admin user)",
        hub_units,
        f"{python} -m coopnet federation streams {root} --within {STREAMS_WAIT_S}",
        root, user,
        unit_extra=f"Requires={hub_units}\nPartOf={hub_units}\n",
        service=(
            "Type=oneshot\n"
            "RemainAfterExit=yes\n"  # active while the hubs run: nodes see it done
            f"TimeoutStartSec={STREAMS_WAIT_S + 30}\n"
            "Restart=on-failure\n"
            "RestartSec=5\n"
        ),
    )  # fmt: skip
    after_streams = f"{hub_units} {STREAMS_UNIT}"
    wants_streams = f"Wants={STREAMS_UNIT}\n"
    units["coopnet-node@.service"] = _unit(
        "coopnet node of neighborhood %i", after_streams,
        f"{python} -m coopnet node run --data {root / 'neighborhoods' / '%i'}", root, user,
        unit_extra=wants_streams,
    )  # fmt: skip
    if importlib.util.find_spec("coopnet.federation.observer") is not None:
        units["coopnet-observer.service"] = _unit(
            "coopnet observer of the federation", after_streams,
            f"{python} -m coopnet observe --federation {root} --data {root / 'observer'}",
            root, user, unit_extra=wants_streams,
        )  # fmt: skip
    paths = []
    for name, text in units.items():
        path = folder / name
        path.write_text(text)
        paths.append(path)
    return paths
