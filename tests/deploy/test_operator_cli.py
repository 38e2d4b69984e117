"""The operator's commands without a running federation: `federation init` checks the ports
it writes and may be redone with --force, every failure is one line with a hint (never a
traceback), every positional argument has help, and the packaging names every data folder.

The commands run as `python -m coopnet`, as an operator runs them, except where a test
needs to make `main` meet a bug."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

import coopnet.deploy.cli as cli
from coopnet.deploy import federation as fed
from coopnet.deploy.cli import build_parser, main
from coopnet.node.engine.nats_server import nats_server_binary
from coopnet.protocol.envelope import AUTHOR_RE
from tests.processes import free_port

REPO = Path(__file__).resolve().parents[2]


def coopnet(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COOPNET_DEBUG"}
    return subprocess.run(
        [sys.executable, "-m", "coopnet", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=cwd,
        env=env,
    )


@contextlib.contextmanager
def listening(port: int) -> Iterator[bool]:
    """Hold `port` on 127.0.0.1 as a server would; yields False if something else holds it
    already (it is taken either way)."""
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            yield False
            return
        sock.listen()
        yield True
    finally:
        sock.close()


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The failure as an operator sees it: a non-zero exit, one line on stderr that says
    what and what to do, and no traceback."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "(hint: " in lines[0], lines[0]
    return lines[0]


def init_args(root: Path, *extra: str, slugs: str = "oakley,elmwood") -> list[str]:
    return ["federation", "init", str(root), "--name", "Riverside", "--neighborhoods", slugs,
            *extra]  # fmt: skip


def test_init_moves_a_taken_default_port_and_says_so(tmp_path: Path) -> None:
    root = tmp_path / "riverside"
    with listening(4222):
        result = coopnet(*init_args(root))
        assert result.returncode == 0, result.stderr
    config = fed.read_federation(root)
    assert config.ports.client[0] != 4222
    assert "port 4222 (hub client port) is taken" in result.stdout
    assert f"using {config.ports.client[0]}" in result.stdout
    assert f"nats://127.0.0.1:{config.ports.client[0]}" in result.stdout
    # The hub config and the nodes name the port actually chosen.
    assert f"port: {config.ports.client[0]}" in (root / "nats" / "hub.conf").read_text()
    node = (root / "neighborhoods" / "oakley" / "node.toml").read_text()
    assert f":{config.ports.client[0]}" in node
    check = subprocess.run(
        [str(nats_server_binary()), "-t", "-c", str(root / "nats" / "hub.conf")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def test_init_json_lists_the_moved_ports(tmp_path: Path) -> None:
    base = free_port()
    with listening(base + 4000) as held:  # the monitoring port derived from --port
        result = coopnet(*init_args(tmp_path / "f", "--port", str(base), "--json"))
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["ports"]["client"] == [base]
    moved = {m["role"]: m for m in out["ports_moved"]}
    assert moved["monitoring"]["wanted"] == base + 4000
    assert out["ports"]["http"] == [moved["monitoring"]["used"]] != [base + 4000]
    if held:  # this process holds it: /proc names it
        assert moved["monitoring"]["held_by"].endswith(f"(pid {os.getpid()})")


def test_init_refuses_a_taken_port_the_operator_chose(tmp_path: Path) -> None:
    port = free_port()
    with listening(port) as held:
        line = one_error_line(coopnet(*init_args(tmp_path / "f", "--port", str(port))))
    assert f"port {port} (--port) on 127.0.0.1 is taken" in line
    if held:
        assert f"(pid {os.getpid()})" in line
    assert not (tmp_path / "f").exists()


def test_init_again_is_refused_with_a_hint_and_force_replaces_it(tmp_path: Path) -> None:
    root = tmp_path / "riverside"
    (root).mkdir()
    (root / "notes.txt").write_text("the operator's own file\n")
    assert coopnet(*init_args(root, "--port", str(free_port()))).returncode == 0
    net = (root / "charter.net").read_text()
    line = one_error_line(coopnet(*init_args(root, "--port", str(free_port()))))
    assert "already holds a federation" in line and "--force" in line
    assert (root / "charter.net").read_text() == net  # nothing touched

    again = coopnet(*init_args(root, "--force", "--port", str(free_port()), slugs="ashgrove,elm"))
    assert again.returncode == 0, again.stderr
    assert f"replaced the federation that was in {root}" in again.stdout
    assert (root / "charter.net").read_text() != net  # a new federation, new keys
    assert sorted(p.name for p in (root / "neighborhoods").iterdir()) == ["ashgrove", "elm"]
    assert (root / "notes.txt").exists()  # --force sets aside what init wrote, nothing else
    [aside] = root.glob("replaced-*")
    assert (aside / "charter.net").read_text() == net  # the old one, kept whole


def test_force_is_refused_while_up_runs_the_federation(tmp_path: Path) -> None:
    root = tmp_path / "f"
    assert coopnet(*init_args(root, "--port", str(free_port()))).returncode == 0
    (root / "run").mkdir(exist_ok=True)
    # A live process whose command line is `... -m coopnet federation up DIR`: "up runs".
    up = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                           "-m", "coopnet", "federation", "up", str(root)])  # fmt: skip
    try:
        (root / "run" / "up.pid").write_text(f"{up.pid}\n")
        line = one_error_line(coopnet(*init_args(root, "--force", "--port", str(free_port()))))
    finally:
        up.kill()
        up.wait()
    assert "`coopnet federation up` runs" in line
    assert (root / "neighborhoods" / "oakley" / "node.key").exists()


def test_init_help_gives_slugs_the_protocol_accepts() -> None:
    text = coopnet("federation", "init", "--help").stdout
    example = re.search(r"e\.g\.\s+(\S+)", " ".join(text.split()))
    assert example is not None
    slugs = example.group(1).strip(",.()").split(",")
    assert len(slugs) >= 2
    assert all(AUTHOR_RE.fullmatch(s) for s in slugs), slugs


def test_failures_are_one_line_with_a_hint_never_a_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    # A directory that is no federation, for each command that takes one.
    for args in (
        ["federation", "up", str(missing)],
        ["federation", "status", str(missing)],
        ["federation", "streams", str(missing), "--within", "1"],
        ["federation", "stop", str(missing), "oakley"],
        ["federation", "start", str(missing), "oakley"],
        ["federation", "cluster", str(missing)],
        ["neighborhood", "add", "ashgrove", "--federation", str(missing), "--reason", "x"],
        ["neighborhood", "retire", "oakley", "--federation", str(missing)],
        ["neighborhood", "rotate-key", "oakley", "--federation", str(missing)],
        ["observe", "--federation", str(missing), "--seconds", "1"],
        ["audit", "--federation", str(missing)],
    ):
        line = one_error_line(coopnet(*args))
        assert str(missing) in line, (args, line)
    # A slug the protocol refuses, before anything is written.
    line = one_error_line(coopnet(*init_args(tmp_path / "x", slugs="a,b,c")))
    assert "slug 'a'" in line and "federation init --help" in line
    assert not (tmp_path / "x").exists()
    # `audit` alone, where there is no federation, says what to give it.
    line = one_error_line(coopnet("audit", cwd=tmp_path))
    assert "--federation DIR" in line


def test_stop_and_start_need_a_running_up(tmp_path: Path) -> None:
    root = tmp_path / "f"
    assert coopnet(*init_args(root, "--port", str(free_port()))).returncode == 0
    line = one_error_line(coopnet("federation", "stop", str(root), "oakley"))
    assert "no `coopnet federation up` runs" in line and f"federation up {root}" in line
    line = one_error_line(coopnet("federation", "start", str(root), "nowhere"))
    assert "nowhere is not a neighborhood" in line and "elmwood, oakley" in line
    # A node that is not running cannot be asked to retire; the hint says how to start it.
    line = one_error_line(coopnet("neighborhood", "retire", "oakley", "--federation", str(root)))
    assert "oakley's node is not running" in line and "federation up" in line


def test_an_unexpected_error_is_one_line_and_its_traceback_goes_to_a_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(args: argparse.Namespace) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "_cmd_version", broken)
    monkeypatch.delenv("COOPNET_DEBUG", raising=False)
    assert main(["version"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unexpected RuntimeError: a bug (hint: ")
    assert len(err.splitlines()) == 1
    saved = Path(re.search(r"traceback is in (\S+)", err).group(1))  # type: ignore[union-attr]
    try:
        assert "Traceback" in saved.read_text() and "a bug" in saved.read_text()
    finally:
        saved.unlink()
    # --debug (or COOPNET_DEBUG=1) lets it through, traceback and all.
    with pytest.raises(RuntimeError):
        main(["--debug", "version"])
    monkeypatch.setenv("COOPNET_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["version"])


def _positionals(parser: argparse.ArgumentParser, path: list[str]) -> Iterator[tuple[str, str]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _positionals(sub, [*path, name])
        elif not action.option_strings:
            yield " ".join([*path, action.dest]), action.help or ""


def test_every_positional_argument_of_the_operator_commands_has_help() -> None:
    found = [
        (where, text)
        for where, text in _positionals(build_parser(), [])
        if where.split()[0] in ("federation", "neighborhood", "observe", "audit")
    ]
    assert "federation stop slug" in [w for w, _ in found]
    assert [w for w, text in found if not text] == []


def test_the_packaging_names_every_data_folder() -> None:
    """setuptools warns about a folder of package data that is not itself a listed package
    ("absent from the packages configuration"): every such folder is listed, with data."""
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages, data = set(tool["packages"]), tool["package-data"]
    for package in packages - {"coopnet"}:  # the root's docs/, tests/ … are not shipped
        folder = REPO.joinpath(*package.split(".")[1:])
        for sub in folder.iterdir():
            data_folder = sub.is_dir() and not (sub / "__init__.py").exists()
            if (
                data_folder
                and not sub.name.startswith((".", "__"))
                and any(f.is_file() and f.suffix not in (".py", ".pyc") for f in sub.rglob("*"))
            ):
                name = f"{package}.{sub.name}"
                assert name in packages, f"{name} holds data but is not listed"
                assert name in data, f"{name} lists no package data"


def test_audit_with_no_store_and_no_hub_says_to_start_the_federation(tmp_path: Path) -> None:
    root = tmp_path / "riverside"
    assert coopnet(*init_args(root, "--port", str(free_port()))).returncode == 0
    line = one_error_line(coopnet("audit", cwd=root))  # alone, in the federation's directory
    assert "no observer store yet, and no hub answers" in line
    assert "`coopnet federation up .`" in line
    # No empty store left behind, which a later audit would report as "no findings".
    assert not (root / "observer" / "observer.db").exists()


@pytest.mark.parametrize(
    ("raised", "code", "said"),
    [
        (KeyboardInterrupt(), 130, "error: interrupted (hint: "),
        (FileNotFoundError(2, "No such file or directory", "/nowhere/node.toml"), 1,
         "error: No such file or directory: /nowhere/node.toml (hint: check the path"),
        (OSError(98, "Address already in use"), 1,
         "error: Address already in use (hint: another program holds the port"),
        # anyio's task groups wrap what failed inside them: the inner failure is told.
        (ExceptionGroup("task group", [ConnectionRefusedError(111, "Connection refused")]), 1,
         "error: nothing answers: [Errno 111] Connection refused (hint: start the server"),
    ],
)  # fmt: skip
def test_expected_failures_are_told_in_one_line(
    raised: BaseException,
    code: int,
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def failing(args: argparse.Namespace) -> int:
        raise raised

    monkeypatch.setattr(cli, "_cmd_version", failing)
    assert main(["version"]) == code
    err = capsys.readouterr().err
    assert err.startswith(said) and len(err.strip().splitlines()) == 1, err
