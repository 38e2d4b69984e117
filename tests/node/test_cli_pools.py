"""`coopnet pool …` against running nodes' APIs: open, commit, withdraw, close, deliver,
receive, in the federation's currency, with ids printed and refusals as codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.pools.cli import close_text, receipt_text, state_text
from coopnet.node.runtime import Node
from tests.conftest import converged, make_node, running, wait_until

pytestmark = pytest.mark.timeout(180)


async def coopnet(*args: str, as_json: bool = True) -> tuple[int, Any]:
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "coopnet", *args, *(["--json"] if as_json else [])],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "COLUMNS": "80"},  # a terminal 80 columns wide
        )

    out = await anyio.to_thread.run_sync(run)
    if not as_json:
        return out.returncode, out.stdout + out.stderr
    return out.returncode, json.loads(out.stdout) if out.stdout.strip() else out.stderr


async def test_a_pool_from_the_command_line(tmp_path: Path, nats_server: NatsServer) -> None:
    datas = [await make_node(tmp_path, s, nats_server.url) for s in ("oakley", "elm", "ash")]
    nodes = tuple(Node(d) for d in datas)
    oak, elm, ash = (str(d) for d in datas)
    async with running(*nodes):
        await wait_until(lambda: converged(*nodes), what="the foundings spread")
        code, text = await coopnet(
            "pool", "open", "rolled oats", "--unit", "kg", "--case-size", "10", "--price",
            "1.20", "--supplier", "ash", "--id", "oats", "--data", oak, as_json=False,
        )  # fmt: skip
        assert code == 0, text
        assert text.startswith("pool oats opened: cases of 10 kilograms of rolled oats at")
        assert "1.20 credits per kilogram from ash" in text
        await wait_until(lambda: converged(*nodes), what="the opening spreads")
        code, made = await coopnet("pool", "commit", "oats", "--quantity", "2", "--data", elm)
        assert code == 0, made
        assert made["id"] == "oats" and made["event"]["kind"] == "pool.committed"
        assert made["currency"] == "CRD"
        code, made = await coopnet("pool", "withdraw", "oakley", "oats", "--data", elm)
        assert code == 0 and made["event"]["kind"] == "pool.committed"
        code, text = await coopnet(
            "pool", "commit", "oats", "--quantity", "6", "--tolerance", "1", "--data", elm,
            as_json=False,
        )  # fmt: skip
        assert code == 0 and "6 kilograms committed, up to 1 more" in text, text
        assert "holds 8.40 credits" in text
        code, made = await coopnet("pool", "commit", "oats", "--quantity", "3", "--data", oak)
        assert code == 0, made
        await wait_until(lambda: converged(*nodes), what="the commitments spread")
        code, listed = await coopnet("pool", "list", "--state", "open", "--data", ash)
        assert [(p["organizer"], p["pool"], p["committed"]) for p in listed] == [
            ("oakley", "oats", 9)
        ]
        # At 80 columns every word stays whole: the pool's name, the item, the state.
        code, text = await coopnet("pool", "list", "--data", ash, as_json=False)
        assert code == 0, text
        assert "oakley/oats" in text and "rolled oats" in text and "open" in text, text
        assert "by 10 kilograms" in text, text
        # Not the organizer: a clear code, and exit status 1.
        code, refused = await coopnet("pool", "close", "oats", "--data", elm)
        assert code == 1 and refused["code"] == "not_authorized"
        # Box fill: the organizer's node says when its own timer closes the pool.
        code, made = await coopnet("pool", "box-fill", "oats", "--data", oak)
        assert code == 0 and made["event"]["kind"] == "pool.box_fill", made
        assert made["box_fill_at"] > 0 and made["box_fill_closes_at"] == (
            made["box_fill_at"] + 600_000
        )  # fmt: skip
        code, text = await coopnet("pool", "show", "oats", "--data", oak, as_json=False)
        assert code == 0 and "ash; box fill: closes in 10 min" in " ".join(text.split()), text
        code, text = await coopnet("pool", "close", "oats", "--data", oak, as_json=False)
        assert code == 0, text
        assert text.startswith(
            "pool oakley/oats closed: 1 case of 10 kilograms; shares elm 7, oakley 3 (event #"
        ), text
        code, closed = await coopnet("pool", "show", "oats", "--data", oak)
        assert closed["state"] == "closed" and closed["cases"] == 1
        shares = {s["participant"]: s["share"] for s in closed["shares"]}
        assert shares["oakley"] == 3 and shares["elm"] == 7
        code, text = await coopnet("pool", "show", "oats", "--data", oak, as_json=False)
        assert code == 0 and "from ash; closed at least 1" in " ".join(text.split()), text
        assert "closes" not in text, text  # no "closes in 7 d" once closed
        code, delivered = await coopnet("pool", "deliver", "oats", "--data", oak)
        assert code == 0 and delivered["state"] == "delivered"
        # The organizer's own share moves no credit, and says so.
        code, text = await coopnet("pool", "receive", "oats", "--data", oak, as_json=False)
        assert code == 0, text
        assert "received: 3 kilograms, our own share: nothing settles" in text, text
        await wait_until(lambda: converged(*nodes), what="the delivery spreads")
        code, text = await coopnet("pool", "receive", "oats", "--data", elm, as_json=False)
        assert code == 0 and "received: 7 kilograms, 8.40 credits to oakley" in text, text
        await wait_until(lambda: converged(*nodes), what="the receipt spreads")
        code, balance = await coopnet("balance", "--data", ash)
        assert balance["ledger"] == {"oakley": -1200 + 840, "elm": -840, "ash": 1200}
        assert balance["ledger_sum"] == 0
        code, text = await coopnet("pool", "show", "oats", "--data", ash, as_json=False)
        assert code == 0 and "elm pays oakley 8.40 credits" in text, text
        assert "oakley pays ash 12.00 credits" in text


POOL = {
    "organizer": "oakley", "pool": "oats", "unit": "kilogram", "case_size": 10,
    "unit_price": 120, "min_cases": 1, "closes_at": 10 * 86_400_000, "state": "open",
    "organizer_state": "open", "cases": 0, "committed": 9, "box_fill_closes_at": 0,
    "shares": [{"participant": "elm", "share": 0}, {"participant": "oakley", "share": 0}],
}  # fmt: skip
REF = {"seq": 13}


def test_where_a_pool_stands_is_said_for_its_state() -> None:
    now = 3 * 86_400_000
    assert state_text(POOL, now) == "open, closes in 7 d"
    fill = {**POOL, "state": "box_fill", "box_fill_closes_at": now + 600_000}
    assert state_text(fill, now) == "box fill: closes in 10 min"
    assert state_text({**fill, "box_fill_closes_at": 0}, now) == (
        "box fill: the organizer closes it soon"
    )  # fmt: skip
    for state in ("closed", "delivered"):  # closed: no "closes in 7 d" any more
        assert state_text({**POOL, "state": state, "organizer_state": state}, now) == state
    below = {**POOL, "state": "cancelled", "organizer_state": "closed", "min_cases": 2}
    assert state_text(below, now) == "cancelled: closed below its minimum of 2 case(s)"


def test_a_close_says_the_cases_and_shares_or_why_nothing_settles() -> None:
    shares = [{"participant": "elm", "share": 7}, {"participant": "oakley", "share": 3}]
    closed = {**POOL, "state": "closed", "cases": 1, "shares": shares}
    assert close_text(closed, REF) == (
        "pool oakley/oats closed: 1 case of 10 kilograms; shares elm 7, oakley 3 (event #13)"
    )
    two = {**closed, "cases": 2, "case_size": 6, "unit": "litre"}
    assert close_text(two, REF).startswith("pool oakley/oats closed: 2 cases of 6 litres;")
    below = {**POOL, "state": "cancelled", "min_cases": 2, "case_size": 12, "committed": 15,
             "shares": [{"participant": "elm", "share": 0}]}  # fmt: skip
    assert close_text(below, REF) == (
        "pool oakley/oats closed below its minimum of 2 cases (15 of 24 kilograms"
        " committed): cancelled, nothing settles (event #13)"
    )


def test_a_receipt_of_the_organizers_own_share_moves_nothing() -> None:
    shares = [{"participant": "elm", "share": 7}, {"participant": "oakley", "share": 3}]
    p = {**POOL, "state": "delivered", "shares": shares}
    assert receipt_text(p, "elm", lambda c: f"{c / 100:.2f} credits") == (
        "received: 7 kilograms, 8.40 credits to oakley"
    )
    assert receipt_text(p, "oakley", str) == "received: 3 kilograms, our own share: nothing settles"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["commit", "oats", "--quantity", "-3"],
         "error: --quantity -3 is out of range: the units wanted, 0 to 1,000,000,000"
         " (hint: e.g. --quantity 1)"),
        (["commit", "oats", "--quantity", "2", "--tolerance", "-1"],
         "error: --tolerance -1 is out of range"),
        (["open", "oats", "--unit", "kg", "--case-size", "0", "--price", "1", "--supplier-name",
          "Mill"],
         "error: --case-size 0 is out of range: the units in one case, 1 to 1,000,000"),
        (["open", "oats", "--unit", "kg", "--case-size", "10", "--price", "1", "--closes-in",
          "-5", "--supplier-name", "Mill"],
         "error: --closes-in -5 is out of range: seconds until it closes, 1 to 31,536,000"
         " (hint: e.g. --closes-in 86400 (a day))"),
        (["open", "oats", "--unit", "kg", "--case-size", "10", "--price", "1", "--min-cases",
          "3", "--max-cases", "2", "--supplier-name", "Mill"],
         "error: --max-cases 2 is below --min-cases 3"),
        (["open", "oats", "--unit", "kg", "--case-size", "10", "--price", "1",
          "--supplier-name", "Mill", "--supplier-offer", "o-x"],
         "error: --supplier-offer o-x needs --supplier (hint: --supplier names the member"),
    ],
)  # fmt: skip
async def test_options_out_of_range_are_refused_in_their_own_words(
    tmp_path: Path, args: list[str], said: str
) -> None:
    """Checked before the node is asked (none runs here): one line naming the option, in
    the person's units, with a hint; never the API's JSON about body fields."""
    data = await make_node(tmp_path, "oakley", "nats://127.0.0.1:1")
    code, text = await coopnet("pool", *args, "--data", str(data), as_json=False)
    assert code == 2, text
    assert text.startswith(said), text
    assert "Expected" not in text and "$." not in text, text
