"""The `coopnet` command: help on every command, version, and the protocol demo."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from coopnet.deploy.cli import build_parser, main


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coopnet", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_the_commands() -> None:
    out = _run("--help")
    assert out.returncode == 0
    for command in ("version", "demo", "node"):
        assert command in out.stdout


def _commands(parser: argparse.ArgumentParser, prefix: list[str]) -> list[list[str]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append([*prefix, name])
                out += _commands(sub, [*prefix, name])
    return out


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _commands(build_parser(), [])
    assert ["node", "run"] in commands
    for command in commands:
        with pytest.raises(SystemExit) as exit_:
            main([*command, "--help"])
        assert exit_.value.code == 0
        assert "usage: coopnet " + " ".join(command) in capsys.readouterr().out


def test_version_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["protocol"] == 1


def test_protocol_demo_accepts_histories_and_refuses_forgeries() -> None:
    out = _run("demo", "--protocol", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert len(result["accepted"]) == 10
    codes = {row["case"]: row["code"] for row in result["refused"]}
    assert codes["tampered body"] == "body_hash_mismatch"
    assert codes["flipped signature bit"] == "bad_signature"
    assert codes["replayed into another federation"] == "wrong_network"
    assert codes["forked history (second event at seq 2)"] == "fork"
    assert codes["retired key after rotation"] == "wrong_key"
