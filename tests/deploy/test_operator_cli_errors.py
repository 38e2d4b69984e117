"""A ConfigError carries what went wrong and, optionally, what to do about it (`hint`);
`coopnet` prints both on one line, and a ConfigError without a hint points at the
command's --help."""

from __future__ import annotations

import argparse

import pytest

import coopnet.deploy.cli as cli
from coopnet.deploy.cli import main
from coopnet.node.engine.config import ConfigError


def test_a_config_error_keeps_what_apart_from_its_hint() -> None:
    error = ConfigError("port 4222 is taken", "choose another --port")
    assert str(error) == "port 4222 is taken"
    assert error.hint == "choose another --port"
    assert ConfigError("no hint").hint == ""


@pytest.mark.parametrize(
    ("raised", "said"),
    [
        (ConfigError("it broke", "mend it"), "error: it broke (hint: mend it)"),
        (ConfigError("it broke"), "error: it broke (hint: see `coopnet version --help`)"),
    ],
)
def test_coopnet_prints_a_config_error_and_its_hint_on_one_line(
    raised: ConfigError,
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def failing(args: argparse.Namespace) -> int:
        raise raised

    monkeypatch.setattr(cli, "_cmd_version", failing)
    assert main(["version"]) == 2
    assert capsys.readouterr().err == said + "\n"
