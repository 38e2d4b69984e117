"""`coopnet federation up|stop|start|status`: run a federation on this machine, stop and
start one neighborhood under it, and see how it is (docs/OPERATIONS.md).

`up` is deploy/launcher.py; `stop` and `start` ask it through the files of
deploy/control.py and wait until it did; `status` is deploy/status.py. A failure the
operator can act on is a ConfigError with a hint, printed by deploy/cli.py as one line.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import anyio
from rich.console import Console

from coopnet.deploy import federation as fed
from coopnet.deploy.control import (
    node_file,
    node_state,
    pid_alive,
    read_pid,
    retired_marker,
    running_up,
    wait_for,
)
from coopnet.node.engine.client import API_URL_FILE
from coopnet.node.engine.config import ConfigError

DIR_HELP = "the federation's directory (made by `coopnet federation init`)"

# How long `federation stop|start` wait for `up` to do it (a node flushes its outbox first).
CONTROL_WAIT_S = 30.0


def _cmd_up(args: argparse.Namespace) -> int:
    from coopnet.deploy.launcher import run_federation
    from coopnet.node.cli import setup_logging

    setup_logging(quiet=True)
    return anyio.run(lambda: run_federation(Path(args.dir), Console(), seconds=args.seconds))


def _under_up(root: Path, slug: str) -> int:
    """Check that `slug` is a neighborhood of `root`, not retired, and that a `federation
    up` runs `root`; return that up's pid. Raises ConfigError with a hint."""
    fed.check_slug(slug)  # first: a slug is a path under DIR (`../x` is no neighborhood)
    fed.read_federation(root)  # a ConfigError that says so if `root` is no federation
    if not (fed.neighborhood_dir(root, slug) / "node.toml").exists():
        raise ConfigError(
            f"{slug} is not a neighborhood of {root}",
            f"its neighborhoods: {', '.join(fed.neighborhoods(root)) or 'none'}",
        )
    if retired_marker(root, slug).exists():
        raise ConfigError(f"{slug} retired: its node does not run again", "nothing to do")
    pid = running_up(root)
    if pid is None:
        raise ConfigError(
            f"no `coopnet federation up` runs {root}",
            f"start the federation with `coopnet federation up {root}`; a node run by systemd "
            f"stops and starts with `systemctl stop|start coopnet-node@{slug}`",
        )
    return pid


def _wait_for_up(done: Callable[[], bool], what: str, log_file: Path) -> None:
    """Wait (at most CONTROL_WAIT_S) until `up` did `what` ("stop oakley"): `done()`."""
    wait_for(
        done,
        within=CONTROL_WAIT_S,
        what=f"`federation up` did not {what}",
        hint=f"see its log, {log_file}",
    )


def _cmd_stop(args: argparse.Namespace) -> int:
    root, slug = Path(args.dir), args.slug
    _under_up(root, slug)
    pid = read_pid(node_file(root, slug, "pid"))
    already = node_state(root, slug) == "stopped"
    if not already:
        node_file(root, slug, "stop").write_text("")
        pid_file = node_file(root, slug, "pid")
        _wait_for_up(
            lambda: not pid_file.exists() and (pid is None or read_pid(pid_file) is None)
            and (pid is None or not pid_alive(pid)),
            f"stop {slug}", root / "logs" / f"{slug}.log",
        )  # fmt: skip
    result = {"slug": slug, "state": "stopped", "pid": pid, "already": already}
    if args.json:
        print(json.dumps(result))
    elif already:
        print(f"{slug} was stopped already; `coopnet federation start {root} {slug}` starts it")
    else:
        was = f" (was pid {pid})" if pid else ""
        print(f"stopped {slug}{was}; `coopnet federation start {root} {slug}` starts it again")
    return 0


def _cmd_start(args: argparse.Namespace) -> int:
    root, slug = Path(args.dir), args.slug
    _under_up(root, slug)
    pid_file, url_file = (
        node_file(root, slug, "pid"),
        fed.neighborhood_dir(root, slug) / API_URL_FILE,
    )
    pid = read_pid(pid_file)
    already = pid is not None
    if not already:
        asked = time.time()
        node_file(root, slug, "start").write_text("")
        _wait_for_up(lambda: read_pid(pid_file) is not None, f"start {slug}", root / "logs")
        pid = read_pid(pid_file)

        def api_up() -> bool:  # written by the new node (an old one's may remain after a crash)
            try:
                return url_file.stat().st_mtime >= asked - 1 and bool(url_file.read_text())
            except OSError:
                return False

        _wait_for_up(api_up, f"see {slug}'s API answer", root / "logs" / f"{slug}.log")
    api = url_file.read_text().strip() if url_file.exists() else ""
    result = {"slug": slug, "state": "running", "pid": pid, "api": api, "already": already}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{slug} {'was running already' if already else 'started'} (pid {pid}), API {api}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from coopnet.deploy.status import gather_status, status_table

    status = anyio.run(gather_status, Path(args.dir))
    if args.json:
        print(json.dumps(status))
    else:
        Console().print(status_table(status))
    return 0


def add_up_commands(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`federation up|stop|start|status`, into the `federation` command's subparsers."""
    p = cmds.add_parser(
        "up",
        help="run the hub(s) and every node here, with a live table",
        description="Check the hubs' ports, start the hub(s), make the streams, start every "
        "neighborhood's node (logs in DIR/logs) and show a live table until Ctrl-C (or "
        "--seconds); then stop everything and say what stopped. `federation stop|start DIR "
        "SLUG` stop and start one neighborhood meanwhile; a retired one is not started.",
    )
    p.add_argument("dir", help=DIR_HELP)
    p.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    p.set_defaults(func=_cmd_up)
    for name, func, what in (
        ("stop", _cmd_stop, "stop one neighborhood's node under a running `federation up`; "
         "up shows it as stopped and keeps it so until `federation start`"),
        ("start", _cmd_start, "start one neighborhood's node again under a running "
         "`federation up` (after `federation stop`, or after it exited)"),
    ):  # fmt: skip
        p = cmds.add_parser(name, help=what.split(";")[0], description=what[0].upper() + what[1:])
        p.add_argument("dir", help=DIR_HELP)
        p.add_argument("slug", help="the neighborhood, e.g. oakley")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.set_defaults(func=func)
    p = cmds.add_parser("status", help="hubs and nodes: up, membership, heads, outboxes")
    p.add_argument("dir", help=DIR_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_status)
