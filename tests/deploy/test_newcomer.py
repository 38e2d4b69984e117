"""A newcomer's first hour with the operator's commands: what `federation init` makes is
private from the start, a forgotten argument is one line and a hint, and the status
table never cuts a slug in an 80-column terminal."""

from __future__ import annotations

import io
import stat
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from coopnet.deploy.cli import main
from coopnet.deploy.status import status_table


def test_federation_init_makes_the_observer_folder_private(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "riverside"
    args = ["federation", "init", str(root), "--name", "Riverside",
            "--neighborhoods", "oakley,elmwood"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    assert stat.S_IMODE((root / "observer").stat().st_mode) == 0o700


def test_a_missing_data_argument_is_one_line_with_a_hint_at_data(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["offer", "post", "bread", "--category", "bakery", "--quantity", "1",
              "--unit", "loaf", "--price", "3"])  # fmt: skip
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "error: the following arguments are required: --data (hint: --data is the node's "
        "directory, e.g. --data ./oakley; see `coopnet offer post --help`)\n"
    )


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["federation", "bogus"], "(hint: see `coopnet federation --help`)"),
        (["node", "init", "--data", "x"], "--name (hint: see `coopnet node init --help`)"),
    ],
)
def test_every_argument_error_is_one_line_with_a_hint(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "usage:" not in err
    assert err.rstrip("\n").endswith(said)


def _status(slugs: list[str]) -> dict[str, Any]:
    hub = {"url": "nats://127.0.0.1:4222", "up": True, "connections": 7, "stream_messages": 12}
    row = {"membership": "founder", "running": True, "bus_connected": True, "own_head": 12,
           "events": 1234567, "outbox": 0, "rejected": 0}  # fmt: skip
    return {"federation": "Riverside", "hubs": [hub],
            "neighborhoods": [{"slug": s, **row} for s in slugs]}  # fmt: skip


@pytest.mark.parametrize(
    "slugs",
    [["millbrook", "riverside-north", "oakley"],
     ["millbrook-upper-riverside", "oakley-and-the-old-mill-yard"]],
)  # fmt: skip
def test_the_status_table_never_cuts_a_slug_at_80_columns(
    slugs: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    out = io.StringIO()
    status = _status(slugs)
    status["neighborhoods"][0]["publish_refused"] = "permissions violation"
    Console(file=out).print(status_table(status))
    shown = out.getvalue()
    assert "…" not in shown
    for slug in slugs:
        assert slug in shown
    assert all(len(line) <= 80 for line in shown.splitlines())
