"""Pool refusals do not depend on how a pool's statements arrived (PROTOCOL.md §19, §7.1).

The fold of a pool decides from the whole set of statements held, and a later arrival can
change its verdict: a close counting two commitments of one author is refused only once
both are held (which frees the organizer's next close), a box fill naming a statement that
is not a commitment only once that statement is held (which frees a second box fill). The
projection (node/pools/projection.py) replaces a pool's refusals by the fold's current ones,
so two nodes holding the same events hold the same `domain_rejections`, and count the same
refusals in their status. Real SQLite files through the store, and (hypothesis) every
arrival order and batching on an in-memory database.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coopnet.node.engine.projection import REFUSALS_SCHEMA
from coopnet.node.engine.status import all_rejections
from coopnet.node.engine.store import Batch, Store
from coopnet.node.pools.projection import Pools
from coopnet.protocol import Body, Envelope, Identity, seal, unseal
from coopnet.protocol.pools import (
    PoolBoxFill,
    PoolCancelled,
    PoolClosed,
    PoolCommitted,
    PoolDelivered,
    PoolOpened,
    PoolReceived,
    PoolStatement,
    fold_pool,
)

NET = hashlib.sha256(b"pool refusal tests").digest()[:16]
ORG = "orchard"
POOL = "rice"
OPENED = PoolOpened(pool=POOL, item="rice", unit="kilogram", case_size=10, unit_price=100,
                    closes_at=0, supplier_name="Wholesale")  # fmt: skip
IDENTITIES = {a: Identity.from_passphrase(a, "pools") for a in (ORG, "ann", "bob")}


class Log:
    """One author's log after its founding: each body sealed as its next event, from seq 2
    (the store and the projection judge no chain: the founding is left out)."""

    def __init__(self, author: str) -> None:
        self.author = author
        self.events: list[Envelope] = []

    def sign(self, body: Body) -> Envelope:
        prev = self.events[-1].id if self.events else None
        wire = seal(signing_key=IDENTITIES[self.author].signing_key, net=NET,
                    author=self.author, seq=len(self.events) + 2, prev=prev or bytes(32),
                    at=1000 + len(self.events), body=body)  # fmt: skip
        env = unseal(wire, net=NET)
        self.events.append(env)
        return env


def commit(log: Log, quantity: int, tolerance: int = 0) -> Envelope:
    return log.sign(PoolCommitted(organizer=ORG, pool=POOL, quantity=quantity, tolerance=tolerance))


def two_closes() -> tuple[list[Envelope], list[list[Envelope]], Envelope]:
    """ann commits twice; the organizer's first close counts both (refused once both are
    held), its second counts ann's latest. Returns every event, a node's arrival (the
    organizer's log first, ann's second commitment last) and the close refused."""
    org, ann = Log(ORG), Log("ann")
    opened = org.sign(OPENED)
    c1, c2 = commit(ann, 4), commit(ann, 10)
    close1 = org.sign(PoolClosed(pool=POOL, counted=[c1.id, c2.id]))
    close2 = org.sign(PoolClosed(pool=POOL, counted=[c2.id]))
    return [opened, c1, c2, close1, close2], [[opened, c1, close1, close2], [c2]], close1


def two_box_fills() -> tuple[list[Envelope], list[list[Envelope]], Envelope]:
    """The organizer's first box fill names ann's receipt (refused once it is held), its
    second names ann's commitment; then it closes counting that commitment."""
    org, ann = Log(ORG), Log("ann")
    opened = org.sign(OPENED)
    c1 = commit(ann, 10)
    received = ann.sign(PoolReceived(organizer=ORG, pool=POOL))
    fill1 = org.sign(PoolBoxFill(pool=POOL, counted=[received.id]))
    fill2 = org.sign(PoolBoxFill(pool=POOL, counted=[c1.id]))
    close = org.sign(PoolClosed(pool=POOL, counted=[c1.id]))
    every = [opened, c1, received, fill1, fill2, close]
    return every, [[opened, c1, fill1, fill2, close], [received]], fill1


async def node_rows(path: Path, batches: Sequence[Sequence[Envelope]]) -> tuple[Any, ...]:
    """A node's store on a file, fed `batches` in turn: its pool tables and refusals, and
    the refusals its status counts by code."""
    store = await Store.open(path, net=NET, projections=[Pools()])
    try:
        for batch in batches:
            await store.commit(Batch(events=list(batch)), received=True)
        rows = await store.projection_rows()
        refused = await store.all("SELECT id, author, seq, kind, code FROM domain_rejections")
        return rows, sorted(tuple(r) for r in refused), await all_rejections(store)
    finally:
        await store.close()


@pytest.mark.parametrize("story", [two_closes, two_box_fills])
async def test_two_nodes_holding_the_same_events_hold_the_same_refusals(
    tmp_path: Path, story: Any
) -> None:
    every, arrival, refused = story()
    at_once = await node_rows(tmp_path / "a.db", [every])
    in_turn = await node_rows(tmp_path / "b.db", arrival)
    assert in_turn == at_once
    _, rows, counted = at_once
    assert rows == [(refused.id, ORG, refused.seq, refused.kind, "not_authorized")]
    assert counted.get("not_authorized") == 1
    # What the fold says of the whole set, whatever the node saw before.
    statements = [PoolStatement(id=e.id, author=e.author, seq=e.seq, at=e.at, body=e.body)
                  for e in every]  # fmt: skip
    assert fold_pool(ORG, POOL, statements).refused == [(refused.id, "not_authorized")]


async def test_a_rebuild_keeps_the_refusals_the_arrival_left(tmp_path: Path) -> None:
    _, arrival, _ = two_closes()
    path = tmp_path / "a.db"
    before = await node_rows(path, arrival)
    store = await Store.open(path, net=NET, projections=[Pools()])
    try:
        await store.rebuild_projections()
        assert await store.projection_rows() == before[0]
    finally:
        await store.close()


# -- every arrival order and batching (in memory: the projection's own SQL) -------------------


def fresh() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute(REFUSALS_SCHEMA)
    for sql in Pools.migrations[0]:
        conn.execute(sql)
    return conn


def rows_after(batches: Sequence[Sequence[Envelope]]) -> dict[str, list[tuple[Any, ...]]]:
    conn = fresh()
    projection = Pools()
    for batch in batches:
        projection.apply(conn, batch)
    tables = ("domain_rejections", *Pools.tables)
    return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}


@st.composite
def pool_history(draw: st.DrawFn) -> list[Envelope]:
    """The logs of the organizer and two participants about one pool: commitments, receipts,
    and the organizer's statements in any order, their `counted` naming commitments, other
    statements or ids held nowhere."""
    org, ann, bob = Log(ORG), Log("ann"), Log("bob")
    seen: list[bytes] = []
    commitments: list[bytes] = []
    for log in (ann, bob):
        for _ in range(draw(st.integers(0, 3))):
            env = commit(log, draw(st.integers(0, 15)), draw(st.integers(0, 6)))
            commitments.append(env.id)
            seen.append(env.id)
        if draw(st.booleans()):
            seen.append(log.sign(PoolReceived(organizer=ORG, pool=POOL)).id)
    steps = draw(st.lists(st.sampled_from(
        ["opened", "commit", "box_fill", "closed", "cancelled", "delivered", "received"]
    ), max_size=7))  # fmt: skip
    if draw(st.booleans()):
        steps.insert(0, "opened")
    for step in steps:
        if step == "opened":
            seen.append(org.sign(OPENED).id)
        elif step == "commit":
            env = commit(org, draw(st.integers(0, 15)), draw(st.integers(0, 6)))
            commitments.append(env.id)
            seen.append(env.id)
        elif step == "received":
            seen.append(org.sign(PoolReceived(organizer=ORG, pool=POOL)).id)
        elif step in ("box_fill", "closed"):
            choices = [*commitments, *seen[-2:], hashlib.sha256(b"held nowhere").digest()]
            counted = draw(st.lists(st.sampled_from(choices), max_size=4))
            cls = PoolBoxFill if step == "box_fill" else PoolClosed
            seen.append(org.sign(cls(pool=POOL, counted=counted)).id)
        elif step == "cancelled":
            seen.append(org.sign(PoolCancelled(pool=POOL)).id)
        else:
            seen.append(org.sign(PoolDelivered(pool=POOL)).id)
    return [*org.events, *ann.events, *bob.events]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_arrival_order_and_batching_gives_the_refusals_of_one_batch(
    data: st.DataObject,
) -> None:
    every = data.draw(pool_history())
    order = data.draw(st.permutations(every))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(len(order) - 1, 1)), max_size=5)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]
    assert rows_after(batches) == rows_after([every])
