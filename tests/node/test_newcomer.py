"""A newcomer's first hour with a node: a typo'd --data says what is there and where the
nodes are, a slug is explained in prose, refusals are `error: … (hint: …)`, the first
start logs nothing alarming, and the membership table shows what applicants said."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import coopnet.node.membership.cli as membership_cli
from coopnet.deploy.cli import main
from coopnet.node.engine.bus import Bus
from coopnet.node.engine.client import ApiError
from coopnet.node.engine.config import ConfigError, read_config
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.membership.cli import application_text


def _init(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["node", "init", "--name", data.name, "--data", str(data)]) == 0
    capsys.readouterr()


def test_a_typo_in_data_names_the_nodes_beside_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _init(tmp_path / "oakley", capsys)
    with pytest.raises(ConfigError) as raised:
        read_config(tmp_path / "oakly")
    assert str(raised.value) == f"no node at {tmp_path / 'oakly'}: the directory does not exist"
    assert raised.value.hint == f"the nodes beside it: --data {tmp_path / 'oakley'}"
    assert main(["balance", "--data", str(tmp_path / "oakly")]) == 2
    assert capsys.readouterr().err == (
        f"error: no node at {tmp_path / 'oakly'}: the directory does not exist "
        f"(hint: the nodes beside it: --data {tmp_path / 'oakley'})\n"
    )


def test_a_directory_without_a_node_says_so_and_how_to_make_one(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError) as raised:
        read_config(empty)
    assert str(raised.value) == f"no node at {empty}: it holds no node.toml"
    assert raised.value.hint == f"make one with `coopnet node init --data {empty} --name SLUG`"


def test_a_bad_slug_is_explained_in_prose_with_a_suggestion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["node", "init", "--name", "Oakley", "--data", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: slug 'Oakley' is not a valid author name: 2-32 characters, ")
    assert "a lowercase letter then lowercase letters, digits or '-'" in err
    assert "^[a-z]" not in err
    assert err.endswith("(hint: try --name oakley)\n")


def test_a_refused_backup_is_one_error_line_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "oakley"
    _init(data, capsys)
    out = tmp_path / "copy.db"
    out.write_bytes(b"")
    assert main(["node", "backup", "--data", str(data), str(out)]) == 1
    assert capsys.readouterr().err == (
        f"error: backup refused: {out} exists "
        "(hint: choose another name, or --force to replace it)\n"
    )


def test_an_application_without_about_shows_no_dash() -> None:
    assert application_text({"about": "", "reason": "We bake"}) == "We bake"
    assert application_text({"about": "Ash Grove", "reason": "We bake"}) == "Ash Grove — We bake"
    assert application_text(None) == ""


def test_consenting_to_an_unknown_slug_hints_at_the_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def not_found(*args: Any) -> Any:  # the node's answer to a slug it has no application of
        raise ApiError(404, "not_found", "no application from ashgrov here")

    monkeypatch.setattr(membership_cli, "call_api", not_found)
    assert main(["membership", "consent", "ashgrov", "--data", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        "error: refused (not_found): no application from ashgrov here "
        f"(hint: see `coopnet membership list --data {tmp_path}`)\n"
    )


async def test_creating_the_stream_on_a_first_start_is_not_a_warning(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="coopnet")
    bus = Bus(nats_server.url, name="oakley", makes_stream=True)
    await bus.connect()
    try:
        await bus.ensure_stream()
    finally:
        await bus.close()
    created = [r for r in caplog.records if "created stream" in r.getMessage()]
    assert [r.levelno for r in created] == [logging.INFO]
