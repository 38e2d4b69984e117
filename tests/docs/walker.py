"""Walk a document's steps (tests/docs/shell_blocks.py) against real processes: each
command run by bash in a temp dir, the venv's `coopnet` first on PATH, exactly as written
but for its placeholders and ports; background commands waited for, then stopped with
SIGINT (Ctrl-C) at the end, and nothing left running, even when a step fails."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.docs.shell_blocks import (
    PLACEHOLDER_RE,
    Source,
    Step,
    json_field,
    map_ports,
    output_matches,
    ports_named,
)
from tests.processes import free_port

VENV_BIN = Path(sys.executable).parent
COMMAND_TIMEOUT_S = 120.0  # a foreground command (federation init, a trade) takes seconds
READY_WITHIN_S = 60.0  # a background command's ports or nodes
SETTLE_WITHIN_S = 20.0  # running nodes agreeing before the next command; not a failure
STOP_WITHIN_S = 30.0  # after SIGINT


class DocStepFailed(AssertionError):
    """A step did not do what its document says (exit code, output, readiness)."""


@dataclass
class Background:
    step: Step
    command: str
    process: subprocess.Popen[bytes]
    log: Path


class Walk:
    """One walk of one document in `root` (an empty temp dir)."""

    def __init__(self, root: Path, sources: dict[str, Source]) -> None:
        self.root = root
        self.sources = sources
        self.ports: dict[str, str] = {}
        self.done: list[tuple[str, str]] = []  # (command as run, its stdout)
        self.background: list[Background] = []
        self.env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.env.pop("VIRTUAL_ENV", None)

    # -- the steps

    def run(self, steps: list[Step]) -> None:
        """Run every step in order; raises DocStepFailed at the first that differs."""
        for step in steps:
            command = map_ports(self.fill(step, step.command), self.ports, free_port)
            began = time.monotonic()
            self.settle()
            settled = time.monotonic()
            if step.background:
                self.start(step, command)
            else:
                self.run_foreground(step, command)
            print(  # shown with a failure: where the walk's minutes went
                f"{step.where}: settled in {settled - began:.1f} s, "
                f"ran in {time.monotonic() - settled:.1f} s: {command}"
            )

    def fill(self, step: Step, text: str) -> str:
        """`text` with each `<placeholder>` replaced by the value its source printed."""

        def value(m: re.Match[str]) -> str:
            name = m.group(1)
            source = self.sources.get(name)
            if source is None:
                raise DocStepFailed(
                    f"{step.where}: <{name}> is in no placeholder table of the document"
                )
            for command, output in reversed(self.done):
                if " ".join(command.split()).startswith(source.command):
                    found = json_field(output, source.field)
                    if found is not None:
                        return found
                    raise DocStepFailed(
                        f"{step.where}: <{name}> is the `{source.field}` field of "
                        f"`{source.command} … --json`, but `{command}` printed none:\n{output}"
                    )
            raise DocStepFailed(
                f"{step.where}: <{name}> comes from `{source.command} … --json`, "
                "which no earlier step ran"
            )

        return PLACEHOLDER_RE.sub(value, text)

    def run_foreground(self, step: Step, command: str) -> None:
        try:
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=self.root,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DocStepFailed(
                f"{step.where}: `{command}` did not end within {COMMAND_TIMEOUT_S:.0f} s"
            ) from exc
        self.done.append((command, done.stdout))
        said = f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        if done.returncode != step.exit_code:
            raise DocStepFailed(
                f"{step.where}: `{command}` exited {done.returncode}, the document says "
                f"{step.exit_code}\n{said}"
            )
        for expected in step.expected:
            pattern = map_ports(self.fill(step, expected), self.ports, free_port)
            if not output_matches(pattern, done.stdout + done.stderr):
                raise DocStepFailed(
                    f"{step.where}: `{command}` printed no line like `{pattern}`\n{said}"
                )

    # -- background commands

    def start(self, step: Step, command: str) -> None:
        log = self.root / f".docs-walk-{len(self.background)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", f"exec {command}"],
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        job = Background(step, command, process, log)
        self.background.append(job)
        self.wait_ready(job)

    def wait_ready(self, job: Background) -> None:
        """Until every port the line names answers; a line naming none, until every node
        in the directories it names says it is ready to sign."""
        ports = ports_named(job.command)
        nodes = [] if ports else self.nodes_named(job.command)
        deadline = time.monotonic() + READY_WITHIN_S
        while time.monotonic() < deadline:
            if job.process.poll() is not None:
                raise DocStepFailed(
                    f"{job.step.where}: `{job.command}` ended (exit {job.process.returncode}) "
                    f"instead of running:\n{tail(job.log)}"
                )
            if all(port_answers(p) for p in ports) and all(node_ready(n) for n in nodes):
                return
            time.sleep(0.2)  # other processes: nothing to await but their sockets
        raise DocStepFailed(
            f"{job.step.where}: `{job.command}` not ready within {READY_WITHIN_S:.0f} s "
            f"(ports {ports}, nodes {[str(n) for n in nodes]}):\n{tail(job.log)}"
        )

    def nodes_named(self, command: str) -> list[Path]:
        """Node data dirs (holding node.toml) among, or up to two levels below, the
        directories a command names."""
        found: list[Path] = []
        for word in command.split():
            path = self.root / word
            if not word.startswith("-") and path.is_dir():
                for toml in [
                    path / "node.toml",
                    *path.glob("*/node.toml"),
                    *path.glob("*/*/node.toml"),
                ]:
                    if toml.is_file() and toml.parent not in found:
                        found.append(toml.parent)
        return found

    def settle(self) -> None:
        """Wait (a person's pause between two commands) until the running nodes connected
        to the bus are ready, have published their outboxes and hold the same events; go
        on after SETTLE_WITHIN_S regardless (the next command then says what is wrong)."""
        deadline = time.monotonic() + SETTLE_WITHIN_S
        while time.monotonic() < deadline:
            statuses = [s for s in map(node_status, self.root.rglob("api.url")) if s]
            live = [s for s in statuses if not s.get("bus_refused")]
            connected = [s for s in live if s.get("bus_connected")]
            if (
                all(s.get("ready_to_sign") for s in live)
                and all(s.get("outbox_depth", 0) == 0 for s in connected)
                and len({heads(s) for s in connected}) <= 1
            ):
                return
            time.sleep(0.2)

    def stop(self) -> list[str]:
        """SIGINT (Ctrl-C) every background command, last started first; what was still
        running after it (killed then) is returned, named."""
        left: list[str] = []
        for job in reversed(self.background):
            if job.process.poll() is None:
                job.process.send_signal(signal.SIGINT)
                try:
                    job.process.wait(STOP_WITHIN_S)
                except subprocess.TimeoutExpired:
                    left.append(f"{job.command} (did not stop on Ctrl-C)")
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(job.process.pid, signal.SIGKILL)
                    job.process.wait()
        deadline = time.monotonic() + STOP_WITHIN_S
        while (strays := list(processes_under(self.root))) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid, cmdline in strays:
            left.append(f"pid {pid}: {cmdline}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return left

    def logs(self) -> str:
        """The tail of every background command's output, for a failure's message."""
        return "\n".join(f"--- {job.command}\n{tail(job.log)}" for job in self.background)


@contextlib.contextmanager
def walking(root: Path, sources: dict[str, Source]) -> Iterator[Walk]:
    """A walk whose background commands are stopped and whose processes are gone on exit,
    even if a step failed; a process left running after Ctrl-C fails the walk."""
    walk = Walk(root, sources)
    try:
        yield walk
    except DocStepFailed as exc:
        walk.stop()
        raise DocStepFailed(f"{exc}\n\nbackground commands:\n{walk.logs()}") from None
    except BaseException:
        walk.stop()
        raise
    left = walk.stop()
    if left:
        raise DocStepFailed("still running after Ctrl-C:\n" + "\n".join(left))


def port_answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def node_status(api_url_file: Path) -> dict[str, object] | None:
    """A running node's `GET /status` (the node's own OS user on the loopback may read it),
    or None if it does not answer."""
    try:
        url = api_url_file.read_text().strip()
        answer = httpx.get(f"{url}/status", timeout=2.0)
        status: dict[str, object] = answer.json()
        return status if answer.status_code == 200 else None
    except (OSError, httpx.HTTPError, ValueError):
        return None


def heads(status: dict[str, object]) -> str:
    """The head of every author a node holds (`authors` of its status), comparable."""
    authors = status.get("authors")
    return repr(sorted(authors.items())) if isinstance(authors, dict) else ""


def node_ready(data: Path) -> bool:
    status = node_status(data / "api.url")
    return bool(status and status.get("ready_to_sign"))


def processes_under(root: Path) -> Iterator[tuple[int, str]]:
    """Processes whose working directory is `root` or below (what the walk started, and
    what those started: nats-server, nodes, observers)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(proc / "cwd"))
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd == root or root in cwd.parents:
            yield int(proc.name), cmdline.strip()


def tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"
