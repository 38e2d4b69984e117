"""What a rogue does with pools and hours that the rules cannot refuse, and the audit reports
(PROTOCOL.md §17, §19-§20): a close naming a commitment that never arrives (the pool stays
`closing`, holding its participants' credit), pool commitments beyond the credit limit,
credit and hours paid to a neighborhood never admitted or after its retirement; and the
savings of a pool whose declared single-unit price passes 64 bits.

Honest nodes and an observer over a real nats-server; the rogue's events are signed by test
code with the protocol's own seal and published straight onto the bus
(tests/federation/test_audit.py `Rogue`). A node that skipped its signer's checks signs
with `Node.post`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from coopnet.federation import measures
from coopnet.federation.audit import GAP_GRACE_MS, audit
from coopnet.federation.findings import Finding
from coopnet.federation.observer import Observer
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.store import now_ms
from coopnet.protocol.hours import HoursTransferred
from coopnet.protocol.membership import MembershipRetired
from coopnet.protocol.pools import (
    PoolClosed,
    PoolCommitted,
    PoolDelivered,
    PoolOpened,
    PoolReceived,
)
from tests.conftest import converged, running, wait_until
from tests.federation.test_audit import (
    Rogue,
    finding,
    findings,
    holds,
    honest,
    observing,
    publish,
)
from tests.federation.test_measures_pools_hours import pool_everywhere

pytestmark = pytest.mark.timeout(120)
DAY_MS = 86_400_000


async def audit_at(obs: Observer, at_ms: int) -> list[Finding]:
    return await audit(obs.store.db, obs.charter, now_ms=at_ms)


def coded(found: list[Finding], code: str) -> list[Finding]:
    return [f for f in found if f.code == code]


async def test_a_close_naming_a_missing_commitment_and_commitments_over_the_limit(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    zed = Rogue("zed")
    founded = zed.found()
    nodes = await honest(tmp_path, url, "elm", "ash")
    async with running(*nodes) as (elm, ash), observing(tmp_path / "observer", url) as obs:
        await publish(url, founded)
        await wait_until(lambda: holds(obs, founded), what="zed founded")
        await wait_until(lambda: converged(elm, ash), what="elm knows ash, its supplier")
        far = now_ms() + DAY_MS
        opened = zed.next(
            PoolOpened(pool="z1", item="flour", unit="kilogram", case_size=10, unit_price=100,
                       closes_at=far, supplier_name="Mill")
        )  # fmt: skip
        await publish(url, opened)
        await pool_everywhere([elm, ash, obs], "zed", "z1", "open")
        mine = await elm.pooling.commit("zed", "z1", 5, 5)  # holds (5 + 5) × 100 cents
        await wait_until(lambda: holds(obs, mine), what="elm's commitment at the observer")
        ghost = os.urandom(32)  # an id no participant signed
        close = zed.next(PoolClosed(pool="z1", counted=[ghost, mine.id]))
        # elm's pool of gold at 1000 cents a kilogram, up to 1000 cases of 100: zed commits far
        # beyond its credit limit (99,999 kg, 99,999,000 cents held), one kilogram short of
        # the pool's capacity, so elm's node does not close it at once (a close would leave
        # zed's commitment out: §19, the organizer's credit).
        await elm.pooling.open(
            item="gold", unit="kilogram", case_size=100, unit_price=1000, max_cases=1000,
            closes_at=far, supplier="ash", pool="e1",
        )  # fmt: skip
        await pool_everywhere([obs], "elm", "e1", "open")
        greedy = zed.next(PoolCommitted(organizer="elm", pool="e1", quantity=99_999))
        await publish(url, close, greedy)
        await wait_until(lambda: holds(obs, close, greedy), what="the close and the commitment")
        await pool_everywhere([elm, ash, obs], "zed", "z1", "closing")

        # Within the grace period the commitment may still arrive: nothing said yet.
        assert coded(await audit_at(obs, close.at + GAP_GRACE_MS), "pool_closing_stalled") == []
        later = await audit_at(obs, close.at + GAP_GRACE_MS + 1000)
        (stalled,) = coded(later, "pool_closing_stalled")
        assert (stalled.severity, stalled.author) == ("warning", "zed")
        assert stalled.evidence == [close.id.hex(), ghost.hex()]
        assert "1 counted commitment(s) never arrived, 1000 cents of credit held" in stalled.title
        assert "elm 1000 cents" in stalled.detail and ghost.hex() in stalled.detail

        over = await finding(obs, "credit_commitments_over_limit", "zed")
        assert over.severity == "warning"
        assert over.evidence == [greedy.id.hex()]
        assert "hold 99999000 cents" in over.title and "-50000" in over.title
        # elm's own hold (1000 cents) is within its limit: not flagged.
        assert [f.author for f in coded(later, "credit_commitments_over_limit")] == ["zed"]


async def test_payments_to_a_never_admitted_and_to_a_retired_neighborhood(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    zed = Rogue("zed")
    founded = zed.found()
    nodes = await honest(tmp_path, url, "elm", "ash")
    async with running(*nodes) as (elm, ash), observing(tmp_path / "observer", url) as obs:
        await publish(url, founded)
        await wait_until(lambda: holds(obs, founded), what="zed founded")
        far = now_ms() + DAY_MS
        # zed buys salt for elm from "ghost", a slug no one founded: its delivery pays ghost.
        opened = zed.next(
            PoolOpened(pool="z1", item="salt", unit="kilogram", case_size=10, unit_price=100,
                       closes_at=far, supplier="ghost")
        )  # fmt: skip
        await publish(url, opened)
        await pool_everywhere([elm, ash, obs], "zed", "z1", "open")
        mine = await elm.pooling.commit("zed", "z1", 10)
        await wait_until(lambda: holds(obs, mine), what="elm's commitment at the observer")
        delivered = [zed.next(PoolClosed(pool="z1", counted=[mine.id])),
                     zed.next(PoolDelivered(pool="z1"))]  # fmt: skip
        to_ghost = zed.next(HoursTransferred(transfer="g1", to="ghost", quarters=6))
        # A pool of zed's own, its savings beyond 64 bits: 10^7 units each 10^12 - 1 cents
        # cheaper than the single-unit price zed declares.
        big = [
            zed.next(PoolOpened(pool="z2", item="sand", unit="kilogram", case_size=10**6,
                                unit_price=1, max_cases=10, closes_at=far,
                                supplier_name="Quarry", single_unit_price=10**12)),
            zed.next(PoolCommitted(organizer="zed", pool="z2", quantity=10**7)),
        ]  # fmt: skip
        big += [zed.next(PoolClosed(pool="z2", counted=[big[1].id])),
                zed.next(PoolDelivered(pool="z2"))]  # fmt: skip
        retired = zed.next(MembershipRetired(reason="gone"))  # with elm's receipt pending
        await publish(url, *delivered, to_ghost, *big, retired)
        await wait_until(lambda: holds(elm, retired), what="zed's retirement at elm")
        # elm's node skips its signer's checks: it pays the retired organizer, and hours.
        received = await elm.post(PoolReceived(organizer="zed", pool="z1"))
        hours = await elm.post(HoursTransferred(transfer="h1", to="zed", quarters=8))
        await wait_until(lambda: holds(obs, retired, received, hours), what="the payments")
        await pool_everywhere([obs], "zed", "z2", "delivered")

        outside = await finding(obs, "payment_to_non_member", "ghost")
        assert outside.severity == "warning"
        assert outside.evidence == [delivered[1].id.hex(), to_ghost.id.hex()]
        assert outside.title == "2 payment(s) of 1000 cents and 1.5 h to ghost (not a member)"
        late = await finding(obs, "payment_to_retired", "zed")
        assert late.severity == "warning"
        assert late.evidence == [received.id.hex(), hours.id.hex()]
        assert late.title.startswith("2 payment(s) of 1000 cents and 2 h to zed after it retired")
        # Payments to members are not flagged.
        flagged = {f.author for f in await findings(obs) if f.code.startswith("payment_to_")}
        assert flagged == {"ghost", "zed"}

        totals = await measures.pool_totals(obs.store.db)
        assert totals["saved"] == (10**12 - 1) * 10**7  # an exact integer, past 2^63
        assert type(totals["saved"]) is int and totals["saved"] > 2**63
