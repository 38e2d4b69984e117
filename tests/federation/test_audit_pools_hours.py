"""The audit over pooled purchases (PROTOCOL.md §19) and hours between neighborhoods (§20).

A real federation (nodes and an observer over a real nats-server) produces every case it
can: a healthy day of pools and hours audits clean and `coopnet audit --json` reports both
ledgers' sums; a node that skipped the signer's hours-limit check is a warning. What only a
rogue can do (a close that counts one participant twice, a delivery out of turn, hours to
itself or under a reused id) is signed by test code with the protocol's own seal and
published straight onto the bus (tests/federation/test_audit.py `Rogue`): every honest
node refuses it with the same code, and the audit names the event. What the rules make
impossible even for a rogue (shares that break the allocation rule, credit settled for a
pool not delivered) can only come from a store that disagrees with its log: those are
hand-made rows in the observer's store, found critical.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from coopnet.federation.audit import audit, ledger_sums
from coopnet.federation.audit_pools_hours import misallocation
from coopnet.federation.findings import Finding
from coopnet.federation.observer import Observer, open_observer_store
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store import now_ms
from coopnet.node.runtime import Node
from coopnet.protocol.body import Body
from coopnet.protocol.charter import Charter, Founder, Policies
from coopnet.protocol.hours import HoursTransferred
from coopnet.protocol.pools import (
    PoolClosed,
    PoolDelivered,
    PoolOpened,
    PoolStatement,
    PoolView,
    fold_pool,
)
from coopnet.protocol.pools import PoolCommitted as Committed
from tests.conftest import NET, converged, running, wait_until
from tests.federation.test_audit import (
    Rogue,
    audit_cli,
    finding,
    findings,
    holds,
    honest,
    observing,
    publish,
    refusals_of,
    refused_everywhere,
)
from tests.federation.test_measures_pools_hours import (
    pool_day,
    pool_everywhere,
    pool_state,
    time_bank,
)

pytestmark = pytest.mark.timeout(120)
DAY_MS = 86_400_000


def critical(found: list[Finding]) -> list[tuple[str, str]]:
    return [(f.code, f.title) for f in found if f.severity == "critical"]


async def test_a_day_of_pools_and_hours_audits_clean_and_reports_both_sums(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    async with pool_day(tmp_path, nats_server.url) as day:
        assert await findings(day.obs) == []
    code, report = await audit_cli(tmp_path / "observer", nats_server.url)
    assert (code, report) == (
        0,
        {"critical": 0, "findings": [], "pool_ledger_sum": 0, "hours_ledger_sum": 0},
    )


async def test_a_rogue_organizers_double_counting_close_and_early_delivery_are_refused(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """zed organizes a pool elm and ash commit to; it closes counting elm's two commitments
    (a close that would give elm two shares) and signs a delivery before any close: every
    node refuses both (`not_authorized`), the audit reports them as refused events of zed's,
    nothing critical; its honest close then stands everywhere."""
    url = nats_server.url
    zed = Rogue("zed")
    founded = zed.found()
    opened = zed.next(
        PoolOpened(
            pool="p-1", item="flour", unit="kilogram", case_size=10, unit_price=120,
            closes_at=now_ms() + DAY_MS, supplier_name="Mill Co",
        )
    )  # fmt: skip
    nodes = await honest(tmp_path, url, "elm", "ash")
    async with running(*nodes) as (elm, ash), observing(tmp_path / "observer", url) as obs:
        await publish(url, founded, opened)
        await pool_everywhere([*nodes, obs], "zed", "p-1", "open")
        first = await elm.pooling.commit("zed", "p-1", 6, 2)
        second = await elm.pooling.commit("zed", "p-1", 7, 2)
        theirs = await ash.pooling.commit("zed", "p-1", 3, 1)
        await wait_until(lambda: holds(obs, first, second, theirs), what="the commitments")
        early = zed.next(PoolDelivered(pool="p-1"))
        twice = zed.next(PoolClosed(pool="p-1", counted=[first.id, second.id, theirs.id]))
        await publish(url, early, twice)

        await refused_everywhere(nodes, early.id, "not_authorized")
        await refused_everywhere(nodes, twice.id, "not_authorized")
        assert await refusals_of(obs, twice.id) == {"not_authorized"}
        f = await finding(obs, "refused_not_authorized", "zed", with_evidence=twice.id.hex())
        assert f.severity == "warning" and "pool.closed" in f.title
        f = await finding(obs, "refused_not_authorized", "zed", with_evidence=early.id.hex())
        assert "pool.delivered" in f.title
        assert critical(await findings(obs)) == []
        everyone: list[Node | Observer] = [*nodes, obs]
        for n in everyone:
            assert await pool_state(n, "zed", "p-1") == "open"

        # The close the rule accepts: elm's latest and ash's, one case of 10.
        close = zed.next(PoolClosed(pool="p-1", counted=[second.id, theirs.id]))
        await publish(url, close)
        await pool_everywhere([*nodes, obs], "zed", "p-1", "closed")
        assert critical(await findings(obs)) == []
        shares = await obs.store.all(
            "SELECT participant, share FROM pool_shares WHERE pool = 'p-1' ORDER BY 1"
        )
        assert shares == [("ash", 3), ("elm", 7)]
        assert await ledger_sums(obs.store.db) == {"pool_ledger_sum": 0, "hours_ledger_sum": 0}

    # What the rules make impossible: only a store that disagrees with its log shows it.
    store = await open_observer_store(tmp_path / "observer" / "observer.db", NET)
    try:
        db = store.db
        await db.execute("UPDATE pool_shares SET share = 8 WHERE participant = 'elm'")
        await db.execute("INSERT INTO pool_settlements VALUES ('zed', 'p-1', 'ash', 'zed', 360)")
        await db.commit()
        found = {f.code: f for f in await audit(db, None, now_ms=now_ms())}
        wrong = found["pool_misallocated"]
        assert (wrong.severity, wrong.author) == ("critical", "zed")
        assert "elm 8" in wrong.detail and "elm 7" in wrong.detail
        settled = found["pool_settled_undelivered"]
        assert (settled.severity, settled.author) == ("critical", "zed")
        assert "closed" in settled.title and "ash paid zed 360 cents" in settled.detail
        assert "ledger_not_zero" not in found  # the ledger folds the log, not the store
    finally:
        await store.close()


def test_misallocation_recomputes_the_rule_from_the_fold() -> None:
    """`misallocation` checks a fold's shares against the rule run again: an honest fold
    passes; shares moved from one participant to another, or more than quantity plus
    tolerance, are named."""

    def statement(seq: int, author: str, body: Body) -> PoolStatement:
        return PoolStatement(id=bytes([seq]) * 32, author=author, seq=seq, at=seq, body=body)

    opened = PoolOpened(
        pool="p", item="eggs", unit="piece", case_size=10, unit_price=25, closes_at=10**13,
        supplier_name="Farm",
    )  # fmt: skip
    commits = [
        statement(2, "a", Committed(organizer="o", pool="p", quantity=3, tolerance=2)),
        statement(3, "b", Committed(organizer="o", pool="p", quantity=4, tolerance=1)),
        statement(4, "c", Committed(organizer="o", pool="p", quantity=2, tolerance=0)),
    ]
    close = statement(5, "o", PoolClosed(pool="p", counted=[s.id for s in commits]))
    view = fold_pool("o", "p", [statement(1, "o", opened), *commits, close])
    assert (view.state, view.cases) == ("closed", 1)
    assert misallocation(view) == ""
    shares = {s.participant: s.share for s in view.shares}
    assert sum(shares.values()) == 10 and shares["c"] == 2
    extra = "a" if shares["a"] > 3 else "b"
    other = "b" if extra == "a" else "a"
    moved = msgspec.structs.replace(
        view,
        shares=[
            msgspec.structs.replace(
                s, share=s.share - (s.participant == extra) + (s.participant == other)
            )
            for s in view.shares
        ],
    )
    assert "the rule allocates 1 case(s)" in misallocation(moved)
    beyond = PoolView(
        organizer="o", pool="p", opened=opened, organizer_state="closed", state="closed",
        cases=1, shares=[msgspec.structs.replace(view.shares[2], share=10)],
    )  # fmt: skip
    assert misallocation(beyond) != ""


async def test_hours_beyond_the_limit_and_refused_transfers(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """elm's time bank refuses to sign beyond the hours limit (`over_hours_limit`); a node
    that skipped the check signs anyway: every node counts the transfer (receivers cannot
    refuse by the limit), the audit warns (`hours_limit_breach`, by the charter's limit).
    zed signs hours to itself and reuses a transfer id: refused everywhere, reported, and
    the hour ledger still sums to zero."""
    url = nats_server.url
    zed = Rogue("zed")
    nodes = await honest(tmp_path, url, "elm", "ash")
    async with running(*nodes) as (elm, ash), observing(tmp_path / "observer", url) as obs:
        await wait_until(lambda: converged(elm, ash), what="elm and ash knowing each other")
        with pytest.raises(Refused) as refused:
            await time_bank(elm).transfer("ash", 161, transfer="h-big")
        assert refused.value.code == "over_hours_limit"
        beyond = await elm.post(HoursTransferred(transfer="h-big", to="ash", quarters=200))
        founded = zed.found()
        itself = zed.next(HoursTransferred(transfer="h-1", to="zed", quarters=4))
        once = zed.next(HoursTransferred(transfer="h-2", to="elm", quarters=6))
        again = zed.next(HoursTransferred(transfer="h-2", to="elm", quarters=6))
        await publish(url, founded, itself, once, again)

        for event in (itself, again):
            await refused_everywhere(nodes, event.id, "not_authorized")
            await finding(obs, "refused_not_authorized", "zed", with_evidence=event.id.hex())
        await wait_until(lambda: holds(obs, beyond, once), what="the transfers that count")
        # elm signed 200 quarter hours over and was given 6: at -194 (-48.5 h), below -160.
        f = await finding(obs, "hours_limit_breach", "elm")
        assert f.severity == "warning"
        assert "-48.5 h (-194 quarter hours)" in f.title and "limit of -40 h" in f.title
        everyone: list[Node | Observer] = [*nodes, obs]
        for n in everyone:
            moved = await n.store.all("SELECT author, to_slug, quarters FROM hour_transfers")
            assert sorted(moved) == [("elm", "ash", 200), ("zed", "elm", 6)]
        assert critical(await findings(obs)) == []
        assert await ledger_sums(obs.store.db) == {"pool_ledger_sum": 0, "hours_ledger_sum": 0}

        # The limit is the charter's (`policies.hours_limit`, quarter hours).
        founders = [
            Founder(slug=n.slug, display_name=n.slug.title(), area="T1",
                    key=n.identity.public_key.hex())
            for n in nodes
        ]  # fmt: skip
        for limit, flagged in ((194, False), (193, True)):
            charter = Charter(name="Hours", founders=founders, policies=Policies(hours_limit=limit))
            found = await audit(obs.store.db, charter, now_ms=now_ms())
            assert (("hours_limit_breach", "elm") in {(f.code, f.author) for f in found}) is (
                flagged
            ), limit
