"""A node of the version before pooled purchases and hours (git commit c1d1727), in the same
federation as today's nodes, while they open, commit to, box-fill, close, deliver, receive
and cancel pools and transfer hours: it stores those events opaque (docs/PROTOCOL.md §8.1),
keeps every author's chain whole (no gap, no fork, no refusal) and still accepts and applies
each author's next ordinary event (a note, an offer, a trade) after them.

The older node is that commit's code, extracted with `git archive` into a directory laid out
as the package `coopnet` imports (the repository root is the package directory), run as a
subprocess of this venv's python with that directory first on its path. Real nats-server,
real SQLite stores. Skipped, saying why, only where the git history is missing."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.store import now_ms
from coopnet.node.runtime import Node
from coopnet.protocol import Envelope, NotePosted
from coopnet.protocol.hours import HoursTransferred
from coopnet.protocol.offers import OfferPosted
from coopnet.protocol.pools import (
    PoolBoxFill,
    PoolCancelled,
    PoolClosed,
    PoolCommitted,
    PoolDelivered,
    PoolOpened,
    PoolReceived,
)
from tests.conftest import NET, make_node, running, wait_until
from tests.processes import api_json, free_port, stop_node, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

BEFORE_ISSUE_18 = "c1d1727"  # the last commit before the pool.* and hours.* kinds
REPO = Path(__file__).resolve().parents[2]  # the repository root: the package `coopnet`
NEW_KINDS = {
    "pool.opened", "pool.committed", "pool.box_fill", "pool.closed", "pool.cancelled",
    "pool.delivered", "pool.received", "hours.transferred",
}  # fmt: skip
DAY_MS = 86_400_000


@pytest.fixture(scope="module")
def older_coopnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory holding the package `coopnet` as it was at BEFORE_ISSUE_18 (put it first
    on PYTHONPATH to run that version)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed: cannot extract the version before issue 18")
    found = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{BEFORE_ISSUE_18}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    if found.returncode != 0:
        pytest.skip(
            f"commit {BEFORE_ISSUE_18} (the version before issue 18) is not in this checkout's"
            " git history (a shallow clone or an sdist): cannot run the older node"
        )
    root = tmp_path_factory.mktemp("older")
    package = root / "coopnet"
    package.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", BEFORE_ISSUE_18], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(package)], input=archive.stdout, check=True)
    yield root


def older_env(root: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(root)}


def run_older(root: Path, code: str) -> str:
    """Run `code` with the older coopnet; return what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=older_env(root),
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def init_older_node(root: Path, data: Path, slug: str, url: str) -> None:
    """The older node's data dir, made by the older coopnet itself (its config and store)."""
    run_older(
        root,
        "import anyio\n"
        "from pathlib import Path\n"
        "from coopnet.node.cli import init_node\n"
        f"anyio.run(lambda: init_node(Path({str(data)!r}), slug={slug!r}, display_name='Linden',"
        f" area='T1', net=bytes.fromhex({NET.hex()!r}), nats_url={url!r}))\n",
    )


def start_older_node(
    root: Path, data: Path, url: str, port: int, log: Path
) -> subprocess.Popen[str]:
    args = ["-m", "coopnet", "node", "run", "--data", str(data), "--nats", url]
    with log.open("a") as err:
        return subprocess.Popen(
            [sys.executable, *args, "--api-port", str(port)],
            env=older_env(root),
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
            start_new_session=True,
        )


def test_the_extracted_version_is_the_one_before_pools_and_hours(older_coopnet: Path) -> None:
    shown = run_older(
        older_coopnet,
        "import coopnet, coopnet.protocol.kinds as k\n"
        "print(coopnet.__file__)\n"
        "print(sorted(k for k in k.KINDS if k.startswith(('pool.', 'hours.'))))\n",
    )
    where, kinds = shown.splitlines()
    assert Path(where).is_relative_to(older_coopnet)  # not this checkout's package
    assert kinds == "[]"


async def test_an_older_node_keeps_every_chain_whole_while_others_pool_and_trade_hours(
    tmp_path: Path, nats_server: NatsServer, older_coopnet: Path
) -> None:
    """Oakley organizes a pool of flour from elmwood (a member supplier); riverside and
    oakley commit, riverside changes its mind; oakley box-fills, closes, is delivered and
    riverside receives; a second pool is cancelled; riverside and oakley sign hours over.
    Linden, the older node, holds all of it opaque, each chain whole, then each author's
    note (and elmwood's offer and riverside's trade) after it, applied."""
    url = nats_server.url
    oak_data = await make_node(tmp_path, "oakley", url)
    riv_data = await make_node(tmp_path, "riverside", url)
    elm_data = await make_node(tmp_path, "elmwood", url)
    old_data, log, port = tmp_path / "linden", tmp_path / "linden.log", free_port()
    await anyio.to_thread.run_sync(init_older_node, older_coopnet, old_data, "linden", url)
    oak, riv, elm = (Node(d, serve_api=False) for d in (oak_data, riv_data, elm_data))
    async with running(oak, riv, elm):
        old = start_older_node(older_coopnet, old_data, url, port, log)
        try:
            await anyio.to_thread.run_sync(wait_ready, port, old)
            assert old.poll() is None, log.read_text()
            new = await pool_and_hours(oak, riv, elm)
            assert {e.kind for e in new} == NEW_KINDS

            # Then each author's next ordinary events.
            after = [
                await elm.post(NotePosted(text="Flour delivered to Oakley.")),
                await elm.post(flour_offer()),
                await oak.post(NotePosted(text="The flour is in at the depot.")),
                await riv.post(NotePosted(text="Thanks for the help with the move.")),
            ]

            async def riverside_sees_the_offer() -> bool:
                rows = await riv.store.all("SELECT offer FROM offers WHERE author = 'elmwood'")
                return [tuple(r) for r in rows] == [("flour-9",)]

            await wait_until(riverside_sees_the_offer, what="riverside holds elmwood's offer")
            after.append(await riv.trading.propose("elmwood", "flour-9", 500, trade="t-after"))
            heads = {n.slug: (await n.status()).own_head for n in (oak, riv, elm)}

            async def linden_holds_every_head() -> bool:
                status = await api_json(port, "/status")
                assert isinstance(status, dict)
                authors = status["authors"]
                return all(authors.get(slug) == head for slug, head in heads.items())

            await wait_until(linden_holds_every_head, within=30, what="linden holds every head")
            status = await api_json(port, "/status")
            assert isinstance(status, dict)
            # No refusal of any kind: not at the door, not by a domain; no fork; no gap.
            assert status["rejected"] == {}
            assert status["forks"] == []
            assert status["buffered"] == 0
            assert status["internal_errors"] == 0
            await check_older_store(old_data, port, oak, new, after)
        finally:
            stop_node(old, log)
        # Today's nodes hold linden's chain too, and refused nothing: the statements were
        # a pool's and hours' ordinary life under the rules of §19 and §20.
        for node in (oak, riv, elm):
            status = await node.status()
            assert status.authors.get("linden") == 1
            assert (status.forks, status.rejected) == ([], {})
            states = await node.store.all("SELECT pool, state FROM pools ORDER BY pool")
            assert [tuple(r) for r in states] == [("flour-1", "delivered"), ("oil-1", "cancelled")]


def flour_offer() -> OfferPosted:
    return OfferPosted(offer="flour-9", item="rye flour", category="bakery", quantity=20_000,
                       unit="gram", unit_price=1, min_order=500,
                       available_until=now_ms() + 7 * DAY_MS, area="T1")  # fmt: skip


async def pool_and_hours(oak: Node, riv: Node, elm: Node) -> list[Envelope]:
    """Every new kind, signed as the rules of §19 and §20 allow, each once its predecessors
    reached the signer (so each author's log is in the pool's order)."""
    closes_at = now_ms() + DAY_MS
    flour = PoolOpened(pool="flour-1", item="rye flour", unit="piece", case_size=10,
                       unit_price=300, min_cases=1, max_cases=2, closes_at=closes_at,
                       supplier="elmwood", single_unit_price=420)  # fmt: skip
    opened = await oak.post(flour)
    await held_by(riv, opened)
    first = await riv.post(PoolCommitted(organizer="oakley", pool="flour-1", quantity=4))
    mine = await oak.post(PoolCommitted(organizer="oakley", pool="flour-1", quantity=3,
                                        tolerance=1))  # fmt: skip
    changed = await riv.post(PoolCommitted(organizer="oakley", pool="flour-1", quantity=6,
                                           tolerance=2))  # fmt: skip
    await held_by(oak, first, changed)
    box_fill = await oak.post(PoolBoxFill(pool="flour-1", counted=[changed.id, mine.id]))
    closed = await oak.post(PoolClosed(pool="flour-1", counted=[changed.id, mine.id]))
    delivered = await oak.post(PoolDelivered(pool="flour-1"))
    await held_by(riv, box_fill, closed, delivered)
    received = await riv.post(PoolReceived(organizer="oakley", pool="flour-1"))
    oil = PoolOpened(pool="oil-1", item="olive oil", unit="litre", case_size=6, unit_price=900,
                     closes_at=closes_at, supplier_name="Valle Olives")  # fmt: skip
    other = await oak.post(oil)
    cancelled = await oak.post(PoolCancelled(pool="oil-1", reason="too few commitments"))
    hours = [
        await riv.post(HoursTransferred(transfer="move-1", to="oakley", quarters=10)),
        await oak.post(HoursTransferred(transfer="bikes-1", to="elmwood", quarters=6)),
    ]
    await held_by(elm, received, cancelled, *hours)
    return [opened, first, mine, changed, box_fill, closed, delivered, received, other,
            cancelled, *hours]  # fmt: skip


async def held_by(node: Node, *events: Envelope) -> None:
    wanted = {e.id for e in events}

    async def holds() -> bool:
        return wanted <= await node.store.event_ids()

    await wait_until(holds, what=f"{node.slug} holds {[e.kind for e in events]}")


async def check_older_store(
    data: Path, port: int, today: Node, new: list[Envelope], after: list[Envelope]
) -> None:
    """What linden holds, by its own SQLite store and its API."""
    with sqlite3.connect(f"file:{data / 'node.db'}?mode=ro", uri=True) as db:
        stored = {bytes(r[0]): (str(r[1]), int(r[2])) for r in db.execute(
            "SELECT id, author, seq FROM events")}  # fmt: skip
        chains: dict[str, list[int]] = {}
        for author, seq in sorted(stored.values()):
            chains.setdefault(author, []).append(seq)
        heads = {str(a): (int(s), f) for a, s, f in db.execute(
            "SELECT author, head_seq, forked_seq FROM authors")}  # fmt: skip
        notes = [tuple(r) for r in db.execute("SELECT author, text FROM notes ORDER BY author")]
        offers = [tuple(r) for r in db.execute("SELECT author, offer FROM offers")]
        trades = [tuple(r) for r in db.execute("SELECT buyer, seller, trade FROM trades")]
        refused = db.execute("SELECT COUNT(*) FROM domain_rejections").fetchone()[0]
    # The same events as today's node: every one of the new kinds among them.
    assert set(stored) == await today.store.event_ids()
    assert {e.id for e in new + after} <= set(stored)
    for author, seqs in chains.items():
        assert seqs == list(range(1, len(seqs) + 1)), (author, seqs)  # no gap
        assert heads[author] == (len(seqs), None), author  # head at the end, never forked
    assert set(chains) == {"oakley", "riverside", "elmwood", "linden"}
    # The ordinary events after the new kinds were applied, not only stored.
    assert notes == [
        ("elmwood", "Flour delivered to Oakley."),
        ("oakley", "The flour is in at the depot."),
        ("riverside", "Thanks for the help with the move."),
    ]
    assert offers == [("elmwood", "flour-9")]
    assert trades == [("riverside", "elmwood", "t-after")]
    assert refused == 0
    # Its API shows the new kinds as opaque: stored and relayed, applied to nothing.
    shown: dict[str, bool] = {}
    after_pos = 0
    while True:
        page = await api_json(port, f"/log?after={after_pos}&limit=1000")
        assert isinstance(page, dict)
        for event in page["events"]:
            shown[event["id"]] = event["opaque"]
        if not page["events"]:
            break
        after_pos = page["next_after"]
    assert {e.id.hex() for e in new} <= {i for i, opaque in shown.items() if opaque}
    assert not any(shown[e.id.hex()] for e in after)
