"""How other commands talk to a running `coopnet federation up`: files in the federation's
directory, so that they can ask it things without a socket (docs/OPERATIONS.md).

    DIR/run/up.pid              the pid of the `up` that runs this federation
    DIR/run/nodes/<slug>.pid    the pid of that neighborhood's node, while it runs
    DIR/run/nodes/<slug>.stop   `federation stop` asks `up` to stop the node and keep it
                                stopped (up shows it as "stopped")
    DIR/run/nodes/<slug>.start  `federation start` asks `up` to start it again
    DIR/run/nodes/<slug>.exit   the exit code of a node that stopped by itself
    DIR/neighborhoods/<slug>/retired   the neighborhood retired: `up` never starts it again

`up` (deploy/launcher.py) writes the pids and exit codes and reads the requests; `federation
stop|start` (deploy/cli_up.py) and `neighborhood retire` (deploy/cli_neighborhood.py) write
the requests and wait (`wait_for`) for `up` or the node to act. The `retired` marker is
written by the node itself (node/runtime.py) as it stops once its retirement is on the bus,
by `neighborhood retire` once the node signed it, and by `up` when the members list it as
retired; never from what a log says (its text is partly other members' words).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from coopnet.deploy.federation import neighborhood_dir
from coopnet.node.engine.config import ConfigError

CONTROL_SUFFIXES = (".pid", ".stop", ".start", ".exit")


def up_pid_file(root: Path) -> Path:
    """DIR/run/up.pid: the pid of the `federation up` that runs `root`."""
    return root / "run" / "up.pid"


def node_file(root: Path, slug: str, suffix: str) -> Path:
    """DIR/run/nodes/<slug>.<suffix>: pid, stop, start or exit."""
    return root / "run" / "nodes" / f"{slug}.{suffix}"


def retired_marker(root: Path, slug: str) -> Path:
    """DIR/neighborhoods/<slug>/retired: once it exists, `up` never starts that node again."""
    return neighborhood_dir(root, slug) / "retired"


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (one of another user's counts)."""
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
    """The pid of the `federation up` that runs `root` now, or None: the pid in
    DIR/run/up.pid, if that process lives and is a `coopnet federation up` of `root` (after
    `up` crashed its pid may be another program's)."""
    pid = read_pid(up_pid_file(root))
    if pid is None or pid == os.getpid() or is_up_of(pid, root):
        return pid
    return None


def is_up_of(pid: int, root: Path) -> bool:
    """Whether process `pid` is a `coopnet federation up` of `root`, from its
    /proc/<pid>/cmdline (`python -m coopnet [--debug] federation up [--seconds S] DIR`, or
    the `coopnet` script), DIR resolved from its /proc/<pid>/cwd. Where /proc cannot say
    (not Linux, or another user's relative DIR), True: a live pid then counts as `up`."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc: trust the pid
    except OSError:
        return True
    words = [a for a in argv if a]
    for i in range(len(words) - 1):
        if words[i : i + 2] != ["federation", "up"]:
            continue
        if not any(Path(w).name in ("coopnet", "coopnet.__main__") for w in words[:i]):
            return False
        rest, place = words[i + 2 :], ""
        while rest:
            word = rest.pop(0)
            if word == "--seconds":
                rest = rest[1:]
            elif not word.startswith("-"):
                place = word
                break
        if not place:
            return False
        where = Path(place)
        if not where.is_absolute():
            try:
                where = Path(os.readlink(f"/proc/{pid}/cwd")) / where
            except OSError:
                return True
        return where.resolve() == root.resolve()
    return False


def open_files_under(root: Path) -> list[tuple[int, str, Path]]:
    """(pid, program, path) for each file under `root` that another process holds open
    (a node's store, a hub's JetStream files), read from /proc/*/fd; [] where /proc says
    nothing (not Linux; another user's processes are not seen)."""
    top = root.resolve()
    found: list[tuple[int, str, Path]] = []
    for proc in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    target = Path(os.readlink(fd))
                    if target.is_relative_to(top):
                        name = (proc / "comm").read_text().strip()
                        found.append((int(proc.name), name, target))
                        break
    return found


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


def reset_run_files(root: Path) -> None:
    """A fresh `up` starts every neighborhood that has not retired: forget the stop and
    start requests, pids and exit codes of the last one."""
    folder = root / "run" / "nodes"
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.suffix in CONTROL_SUFFIXES:
            path.unlink(missing_ok=True)


def wait_for(done: Callable[[], bool], *, within: float, what: str, hint: str) -> None:
    """Poll `done()` every 0.1 s until it holds (another process does the work: nothing to
    await); after `within` seconds a ConfigError "<what> within <within> s" (`what`: "`up`
    did not stop oakley") with `hint`."""
    deadline = time.monotonic() + within
    while not done():
        if time.monotonic() > deadline:
            raise ConfigError(f"{what} within {within:g} s", hint)
        time.sleep(0.1)
