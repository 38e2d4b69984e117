"""`coopnet hours …` against running nodes' APIs, and `federation init --hours-limit`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from coopnet.deploy.cli import main
from coopnet.node.engine.accounts import Principal
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.runtime import Node
from coopnet.node.timebank.bank import hours_limit_of
from coopnet.protocol.charter import parse_charter
from coopnet.protocol.hours import DEFAULT_HOURS_LIMIT
from tests.accounts import session
from tests.conftest import converged, make_node, running, wait_until
from tests.processes import free_port

pytestmark = pytest.mark.timeout(120)


async def coopnet(*args: str, json_out: bool = True) -> tuple[int, Any]:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "coopnet", *args, *(["--json"] if json_out else [])],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    out = await anyio.to_thread.run_sync(run)
    if not json_out:
        return out.returncode, out.stdout + out.stderr
    return out.returncode, json.loads(out.stdout) if out.stdout.strip() else out.stderr


async def resident_token(node: Node, name: str) -> str:
    """An API token of the resident account `name` (made before, by `session`)."""
    _, secret = await node.accounts.new_token(
        Principal(name=name, role="resident", via="token"), "cli"
    )
    return secret


async def test_hours_from_the_command_line(tmp_path: Path, nats_server: NatsServer) -> None:
    oak_data = await make_node(tmp_path, "oakley", nats_server.url)
    elm_data = await make_node(tmp_path, "elm", nats_server.url)
    oakley, elm = Node(oak_data), Node(elm_data)
    oak = ("--data", str(oak_data))
    async with (
        running(oakley, elm),
        session(oakley, "resident", "ana"),
        session(oakley, "resident", "bob"),
    ):
        ana, bob = await resident_token(oakley, "ana"), await resident_token(oakley, "bob")
        code, text = await coopnet(
            "hours", "record", "1.5", "--to", "bob", "--what", "fixed the bike",
            f"--token={ana}", *oak, json_out=False,
        )  # fmt: skip
        assert code == 0, text
        assert text.startswith("time entry h-") and "pending until bob confirms" in text
        entry = text.split()[2]
        code, refused = await coopnet(
            "hours", "record", "1.3", "--to", "bob", "--what", "x", f"--token={ana}", *oak
        )
        assert (code, refused["code"]) == (1, "not_quarter_hours")
        code, refused = await coopnet("hours", "confirm", entry, f"--token={ana}", *oak)
        assert (code, refused["code"]) == (1, "not_yours")
        code, done = await coopnet("hours", "confirm", entry, f"--token={bob}", *oak)
        assert code == 0, done
        assert (done["id"], done["state"], done["quarters"]) == (
            entry, "confirmed", 6
        )  # fmt: skip
        code, me = await coopnet("hours", "me", f"--token={ana}", *oak)
        assert (me["name"], me["balance"]) == ("ana", 6)
        code, made = await coopnet("hours", "credit", "bob", "2.25", "--what", "elm's garden", *oak)
        assert code == 0 and made["id"].startswith("h-") and made["quarters"] == 9
        code, declined = await coopnet(
            "hours", "record", "0.25", "--to", "ana", "--what", "tea", f"--token={bob}", *oak
        )
        code, done = await coopnet("hours", "decline", declined["id"], f"--token={ana}", *oak)
        assert done["state"] == "declined"
        code, residents = await coopnet("hours", "residents", *oak)
        by_name = {r["name"]: r["balance"] for r in residents["residents"]}
        assert (by_name["ana"], by_name["bob"], by_name["@coop"]) == (6, 3, -9)
        assert residents["ledger_sum"] == 0
        code, text = await coopnet("hours", "residents", *oak, json_out=False)
        assert code == 0 and "debt cap 10 h; the balances sum to 0 h" in text, text
        assert text.splitlines()[1].strip() == "Residents' hours", text  # short: never wrapped
        # Between neighborhoods: elm signs 2.5 h over to oakley.
        code, signed = await coopnet(
            "hours", "transfer", "oakley", "2.5", "--data", str(elm_data), json_out=False
        )
        assert code == 0 and signed.startswith("transfer x-") and "2.5 h to oakley" in signed
        code, signed = await coopnet("hours", "transfer", "oakley", ".5", "--data", str(elm_data))
        assert code == 0 and signed["quarters"] == 2, signed  # ".5" as people write it
        code, refused = await coopnet("hours", "transfer", "elm", "1", "--data", str(elm_data))
        assert (code, refused["code"]) == (1, "not_authorized")
        code, refused = await coopnet("hours", "transfer", "oakley", "41", "--data", str(elm_data))
        assert (code, refused["code"]) == (1, "over_hours_limit")
        await wait_until(lambda: converged(oakley, elm), what="the transfers spread")
        code, ledger = await coopnet("hours", "neighborhoods", *oak)
        assert (ledger["balance"], ledger["hours_limit"], ledger["ledger_sum"]) == (12, 160, 0)
        code, text = await coopnet("hours", "neighborhoods", *oak, json_out=False)
        assert code == 0 and "hour balance 3 h" in text


def test_federation_init_writes_a_hours_limit_only_when_not_the_default(tmp_path: Path) -> None:
    def init(root: Path, *more: str) -> int:
        return main(["federation", "init", str(root), "--name", "t", "--neighborhoods", "aa,bb",
                     "--port", str(free_port()), "--json", *more])  # fmt: skip

    assert init(tmp_path / "limited", "--hours-limit", "12.5") == 0
    raw = json.loads((tmp_path / "limited" / "charter.json").read_text())
    assert raw["policies"]["hours_limit"] == 50
    charter, _ = parse_charter((tmp_path / "limited" / "charter.json").read_bytes())
    assert hours_limit_of(charter) == 50
    assert init(tmp_path / "default") == 0
    raw = json.loads((tmp_path / "default" / "charter.json").read_text())
    assert "hours_limit" not in raw["policies"]
    charter, _ = parse_charter((tmp_path / "default" / "charter.json").read_bytes())
    assert hours_limit_of(charter) == DEFAULT_HOURS_LIMIT
    assert init(tmp_path / "refused", "--hours-limit", "1.3") == 2
    assert not (tmp_path / "refused").exists()


async def hours_cli(*args: str) -> tuple[int, str]:
    """`coopnet hours …` as a person runs it: exit status, and what it printed."""
    code, text = await coopnet("hours", *args, json_out=False)
    return code, " ".join(str(text).split())


async def test_hours_options_are_checked_before_the_node_is_asked(tmp_path: Path) -> None:
    """No node runs here: each refusal is one line naming what to type instead."""
    data = ("--data", str(await make_node(tmp_path, "elm", "nats://127.0.0.1:1")))
    code, said = await hours_cli("me", *data)  # the operator has no hours of its own
    assert code == 2, said
    assert said.startswith("error: `hours me` shows a resident's own hours"), said
    assert "(hint: pass --token with the resident's API token" in said, said
    assert "@operator" not in said
    code, said = await hours_cli("record", "1", "--to", "bob", "--what", "x", *data)
    assert code == 2 and "(hint: --token <the giver's API token>" in said, said
    assert "--giver <resident> records for them as a coordinator" in said, said
    code, said = await hours_cli("transfer", "oakley", "99999999999999999999", *data)
    assert code == 1, said
    assert said.startswith(
        "error: refused (bad_request): '99999999999999999999' hours: at most 10000 h at once"
    ), said
    assert "Expected" not in said and "quarters" not in said, said
    code, said = await hours_cli("transfer", "oakley", "1.3", *data)
    assert code == 1 and "(hint: type hours in quarter steps: .25, .5, 1.5" in said, said


def test_hours_transfer_help_says_whose_call_for_help_it_answered(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["hours", "transfer", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "your own call for help (its id) that the other neighborhood answered" in shown
