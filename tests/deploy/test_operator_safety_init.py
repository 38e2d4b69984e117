"""`federation init --force` never destroys: every argument is checked before the old
federation is touched, the old one is set aside whole (DIR/replaced-<UTC time>/), never
deleted, and nothing is replaced while a part of it runs (a `federation up` of it, a node
answering on its API, a process holding its store open). Ports outside 1024..65535 and
slugs that are no author name are refused first, in one line; a pid in run/up.pid counts
only if that process is a `coopnet federation up` of this directory."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from coopnet.deploy import federation as fed
from coopnet.deploy.control import running_up, up_pid_file
from coopnet.deploy.launcher import ensure_stream, start_hubs, start_node
from tests.conftest import wait_until
from tests.deploy.test_operator_cli import coopnet, init_args, one_error_line
from tests.processes import free_port

pytestmark = pytest.mark.timeout(240)


def made(root: Path) -> dict[str, bytes]:
    """What must survive a refused init: the federation's id and every node's key."""
    files = [root / "charter.net", root / "admission.key"] + [
        fed.neighborhood_dir(root, slug) / "node.key" for slug in ("oakley", "elmwood")
    ]
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def first_federation(root: Path) -> dict[str, bytes]:
    done = coopnet(*init_args(root, "--port", str(free_port())))
    assert done.returncode == 0, done.stderr
    return made(root)


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--hubs", "3", "--host", "a,b"], "--host: one address, or one per hub (3)"),
        (["--neighborhoods", "oakley,oakley"], "distinct neighborhood slugs"),
        (["--member-quota-mib", "0.01"], "member_bytes must be at least"),
    ],
)
def test_force_with_a_refused_argument_leaves_the_old_federation_whole(
    tmp_path: Path, extra: list[str], said: str
) -> None:
    root = tmp_path / "f1"
    before = first_federation(root)
    # The last --neighborhoods given wins (argparse): the repro's own.
    line = one_error_line(coopnet(*init_args(root, "--force", *extra)))
    assert said in line, line
    assert made(root) == before
    assert (fed.neighborhood_dir(root, "oakley") / "node.toml").exists()
    assert not list(root.glob("replaced-*"))


def test_force_sets_the_old_federation_aside_and_says_where(tmp_path: Path) -> None:
    root = tmp_path / "f1"
    before = first_federation(root)
    (root / "notes.txt").write_text("the operator's own file\n")
    again = coopnet(*init_args(root, "--force", "--port", str(free_port()), "--json"))
    assert again.returncode == 0, again.stderr
    out = json.loads(again.stdout)
    aside = Path(out["set_aside"])
    assert out["replaced"] is True and aside.parent == root
    assert aside.name.startswith("replaced-") and aside.name.endswith("Z")
    assert made(aside) == before  # keys and ids as they were, every node's folder whole
    assert made(root)["charter.net"] != before["charter.net"]  # a new federation
    assert (root / "notes.txt").exists()

    middle = made(root)
    said = coopnet(*init_args(root, "--force", "--port", str(free_port())))
    assert said.returncode == 0, said.stderr
    [second] = [p for p in root.glob("replaced-*") if p != aside]
    assert f"the old one is kept, whole, in {second}" in " ".join(said.stdout.split())
    assert made(second) == middle and made(aside) == before


def test_force_is_refused_while_a_node_answers_or_holds_its_store(tmp_path: Path) -> None:
    """Nodes run by systemd (no `federation up`): a node answering on its API, then any
    process holding a node's store open, keeps the federation where it is."""
    root = tmp_path / "fed"
    first_federation(root)
    config = fed.read_federation(root)
    hubs = start_hubs(root, config)
    (root / "logs").mkdir()
    (root / "run" / "nodes").mkdir(parents=True, exist_ok=True)
    try:
        anyio.run(lambda: ensure_stream(root, config))
        node = start_node(root, "oakley", root / "logs")
        url_file = fed.neighborhood_dir(root, "oakley") / "api.url"

        async def answering() -> bool:
            return url_file.exists() and bool(url_file.read_text().strip())

        anyio.run(lambda: wait_until(answering, within=60, what="oakley's API"))
        before = made(root)
        line = one_error_line(coopnet(*init_args(root, "--force", "--port", str(free_port()))))
        assert f"oakley's node answers at {url_file.read_text().strip()}" in line, line
        assert "systemctl stop coopnet-node@oakley" in line
        assert made(root) == before and node.poll() is None
        node.terminate()
        assert node.wait(timeout=30) == 0
    finally:
        for hub in hubs:
            hub.stop()

    # No node answers now; a process (here: this one) holds elmwood's store open.
    store = fed.neighborhood_dir(root, "elmwood") / "node.db"
    with sqlite3.connect(store) as db:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        line = one_error_line(coopnet(*init_args(root, "--force", "--port", str(free_port()))))
    db.close()
    assert f"(pid {os.getpid()}) holds {store.resolve()} open" in line, line
    assert made(root) == before


@pytest.mark.parametrize("port", ["70000", "0", "100", "61536"])
def test_init_refuses_a_port_outside_1024_to_65535(tmp_path: Path, port: str) -> None:
    line = one_error_line(coopnet(*init_args(tmp_path / "f", "--port", port)))
    assert f"--port {port} is refused" in line and "1024..65535" in line, line
    assert "give a --port from 1024 to 61535" in line
    assert not (tmp_path / "f").exists()


def test_a_cluster_s_highest_port_fits_too(tmp_path: Path) -> None:
    line = one_error_line(coopnet(*init_args(tmp_path / "f", "--hubs", "3", "--port", "61535")))
    assert "give a --port from 1024 to 61533" in line


@pytest.mark.parametrize(
    "command",
    [
        ["federation", "stop", "{root}", "{slug}"],
        ["federation", "start", "{root}", "{slug}"],
        ["neighborhood", "retire", "{slug}", "--federation", "{root}"],
        ["neighborhood", "revoke", "{slug}", "--federation", "{root}"],
        ["neighborhood", "rotate-key", "{slug}", "--federation", "{root}"],
    ],
)
def test_commands_on_one_neighborhood_check_its_slug_first(
    tmp_path: Path, command: list[str]
) -> None:
    root = tmp_path / "f"
    made_root = fed.neighborhood_dir(root, "oakley")
    made_root.mkdir(parents=True)
    (made_root / "node.toml").write_text("")  # a path that would resolve to a neighborhood
    slug = "../neighborhoods/oakley"
    args = [word.format(root=root, slug=slug) for word in command]
    line = one_error_line(coopnet(*args))
    assert f"slug {slug!r} is not a valid author name" in line, line


def _sleeper(*argv: str, cwd: Path) -> subprocess.Popen[bytes]:
    """A process whose command line reads as `argv` after `python -c <sleep>`."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", *argv], cwd=cwd)


def test_a_pid_in_up_pid_counts_only_if_it_is_up_of_this_directory(tmp_path: Path) -> None:
    root = tmp_path / "fed"
    first_federation(root)
    up_pid_file(root).parent.mkdir(exist_ok=True)
    other = tmp_path / "other"
    other.mkdir()
    fakes = {
        "this": _sleeper("-m", "coopnet", "federation", "up", "fed", cwd=tmp_path),
        "flagged": _sleeper(
            *("-m", "coopnet", "--debug", "federation", "up", "--seconds", "5", str(root)),
            cwd=other,
        ),
        "elsewhere": _sleeper("-m", "coopnet", "federation", "up", "fed", cwd=other),
        "reused": _sleeper(cwd=tmp_path),  # alive, but no `up`: a pid reused after a crash
    }
    try:
        for name, proc in fakes.items():
            up_pid_file(root).write_text(f"{proc.pid}\n")
            assert (running_up(root) == proc.pid) == (name in ("this", "flagged")), name

        up_pid_file(root).write_text(f"{fakes['this'].pid}\n")
        line = one_error_line(coopnet(*init_args(root, "--force", "--port", str(free_port()))))
        assert f"`coopnet federation up` runs {root} (pid {fakes['this'].pid})" in line

        up_pid_file(root).write_text(f"{fakes['reused'].pid}\n")  # it blocks nothing
        again = coopnet(*init_args(root, "--force", "--port", str(free_port())))
        assert again.returncode == 0, again.stderr
        assert len(list(root.glob("replaced-*"))) == 1
    finally:
        for proc in fakes.values():
            proc.kill()
            proc.wait()
