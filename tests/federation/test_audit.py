"""The audit finds each seeded fault, with its evidence, and agrees with the nodes.

Every fault comes from a REAL rogue signer: test code that seals events itself
(`coopnet.protocol.seal`) and publishes the wire straight onto the bus, skipping every check
an honest Node makes before it signs (PROTOCOL.md §9: an event is judged by its signature
and its author's history, never by who published it). Honest nodes and an observer run
meanwhile, over a real nats-server; the observer's findings name the offending event (its
id, or SHA-256 of bytes that cannot be unsealed), and every honest node refused the same
event with the same code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import anyio
import msgspec
import nacl.signing
import nats
import pytest

from coopnet.federation.audit import GAP_GRACE_MS, audit
from coopnet.federation.dashboard import summary
from coopnet.federation.exports import metrics_text
from coopnet.federation.findings import Finding
from coopnet.federation.measures import neighborhoods
from coopnet.federation.observer import Observer
from coopnet.node.cli import init_node
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.status import all_rejections
from coopnet.node.engine.store import now_ms
from coopnet.node.market import projection as market
from coopnet.node.runtime import Node
from coopnet.protocol import Envelope, Identity, NotePosted, encode_body, seal, unseal
from coopnet.protocol.body import Body
from coopnet.protocol.charter import Charter, Founder, Policies, dump_charter, parse_charter
from coopnet.protocol.envelope import encode_wire
from coopnet.protocol.membership import MembershipApplied
from coopnet.protocol.offers import OfferPosted, OfferWithdrawn
from coopnet.protocol.trades import TradeAccepted, TradeProposed, TradeReceived, TradeShipped
from tests.conftest import NET, converged, make_node, running, wait_until

pytestmark = pytest.mark.timeout(60)
HOUR_MS = 3_600_000


# -- the rogue signer -------------------------------------------------------------------------


def sign(
    key: nacl.signing.SigningKey, author: str, seq: int, prev: bytes | None, body: Body,
    net: bytes = NET,
) -> Envelope:  # fmt: skip
    """Seal `body` as event `seq` of `author` with `key`: no key log, no chain, no rule."""
    wire = seal(signing_key=key, net=net, author=author, seq=seq, prev=prev, at=now_ms(), body=body)
    return unseal(wire, net=net)


class Rogue:
    """An author whose events the test signs itself, one after the other."""

    def __init__(self, slug: str, net: bytes = NET) -> None:
        self.ident = Identity.generate(slug)
        self.net = net
        self.head: Envelope | None = None

    @property
    def author(self) -> str:
        return self.ident.author

    def next(self, body: Body) -> Envelope:
        head = self.head
        env = sign(
            self.ident.signing_key, self.author, head.seq + 1 if head else 1,
            head.id if head else None, body, self.net,
        )  # fmt: skip
        self.head = env
        return env

    def found(self) -> Envelope:
        return self.next(self.ident.founding_body(self.author.title(), "Z1"))


async def publish_wires(url: str, items: Sequence[tuple[str, bytes, str]]) -> None:
    """Publish (subject, wire, Nats-Msg-Id) straight into the stream, as a rogue client would."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for subject, wire, msg_id in items:
            await js.publish(subject, wire, headers={"Nats-Msg-Id": msg_id})
    finally:
        await nc.close()


async def publish(url: str, *events: Envelope) -> None:
    await publish_wires(url, [(f"coop.{e.author}.{e.kind}", e.wire, e.id.hex()) for e in events])


# -- honest nodes and the observer ------------------------------------------------------------


async def honest(root: Path, url: str, *slugs: str) -> list[Node]:
    return [Node(await make_node(root, s, url), serve_api=False) for s in slugs]


@contextlib.asynccontextmanager
async def observing(
    data: Path, url: str, *, net: bytes = NET, charter: Charter | None = None
) -> AsyncIterator[Observer]:
    """An observer following the stream (caught up with it) for the duration of the block."""
    obs = Observer(data, net=net, nats_url=url, charter=charter)
    async with anyio.create_task_group() as tg:
        await tg.start(obs.run)
        try:
            with anyio.fail_after(30):
                await obs.ready.wait()
            yield obs
            # An unexpected failure in one of its activities fails the test.
            assert obs.internal_errors == 0
        finally:
            tg.cancel_scope.cancel()


async def findings(obs: Observer) -> list[Finding]:
    return await audit(obs.store.db, obs.charter, now_ms=obs.clock())


async def finding(obs: Observer, code: str, author: str, *, with_evidence: str = "") -> Finding:
    """Wait until the observer's audit reports `code` about `author` (naming `with_evidence`)."""
    found: list[Finding] = []

    async def reported() -> bool:
        found[:] = [
            f
            for f in await findings(obs)
            if f.code == code
            and f.author == author
            and (not with_evidence or with_evidence in f.evidence)
        ]
        return bool(found)

    await wait_until(reported, what=f"the audit reporting {code} about {author!r}")
    return found[0]


async def refusals_of(node: Node | Observer, evidence: bytes) -> set[str]:
    """The codes an event was refused with: on the way in (by id, or SHA-256 of its bytes)
    or by a domain rule."""
    rows = await node.store.all(
        "SELECT code FROM rejected_events WHERE evidence = ?"
        " UNION SELECT code FROM domain_rejections WHERE id = ?",
        (evidence, evidence),
    )
    return {str(r[0]) for r in rows}


async def refused_everywhere(nodes: Sequence[Node], evidence: bytes, code: str) -> None:
    async def refused() -> bool:
        return all([code in await refusals_of(n, evidence) for n in nodes])

    await wait_until(refused, what=f"every node refusing {evidence.hex()[:12]}… with {code}")


def and_observer(nodes: Sequence[Node], obs: Observer) -> list[Node | Observer]:
    return [*nodes, obs]


async def holds(node: Node | Observer, *events: Envelope) -> bool:
    held = await node.store.event_ids()
    return all(e.id in held for e in events)


async def holds_all_of(obs: Observer, nodes: Sequence[Node]) -> bool:
    """The observer holds exactly what the nodes hold (and they agree)."""
    ids = await obs.store.event_ids()
    return all([await n.store.event_ids() == ids for n in nodes])


async def trade_state(node: Node | Observer, buyer: str, trade: str) -> str | None:
    t = await market.load_trade(node.store.db, buyer, trade)
    return None if t is None else str(t["state"])


async def everywhere(nodes: Sequence[Node | Observer], buyer: str, trade: str, state: str) -> None:
    async def there() -> bool:
        return all([await trade_state(n, buyer, trade) == state for n in nodes])

    await wait_until(there, what=f"trade {buyer}/{trade} {state} everywhere")


def eggs(quantity: int, offer: str = "eggs-1") -> OfferPosted:
    return OfferPosted(
        offer=offer, item="eggs", category="dairy-eggs", quantity=quantity, unit="piece",
        unit_price=35, available_until=now_ms() + 24 * HOUR_MS, area="T1",
    )  # fmt: skip


async def audit_cli(data: Path, url: str) -> tuple[int, dict[str, object]]:
    """`coopnet audit --json` as a process, over the observer's store."""
    result = await anyio.run_process(
        [sys.executable, "-m", "coopnet", "audit", "--data", str(data), "--net", NET.hex(),
         "--nats", url, "--json"],
        check=False,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr.decode()
    return result.returncode, json.loads(result.stdout)


# -- the faults -------------------------------------------------------------------------------


async def test_a_tampered_relay_is_refused_by_its_body_hash(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    nodes = await honest(tmp_path, url, "oakley", "elm")
    async with running(*nodes) as (oakley, elm), observing(tmp_path / "observer", url) as obs:
        note = await oakley.post(NotePosted(text="the market opens at nine"))
        await wait_until(lambda: holds(elm, note), what="the honest note at elm")
        # A relay keeps the signed header and swaps the body.
        header, signature, _ = msgspec.msgpack.decode(note.wire, type=tuple[bytes, bytes, bytes])
        tampered = encode_wire(header, signature, encode_body(NotePosted(text="market closed")))
        digest = hashlib.sha256(tampered).digest()
        # Its header is the honest event's, so under that Nats-Msg-Id the stream would drop it
        # as a duplicate: the relay names it by its bytes instead.
        await publish_wires(url, [("coop.oakley.note.posted", tampered, digest.hex())])

        # The finding names the author the header claims, and says it is only claimed.
        f = await finding(obs, "refused_body_hash_mismatch", "oakley", with_evidence=digest.hex())
        assert f.severity == "warning"
        assert "claiming to be oakley's" in f.title
        assert "claimed author oakley" in f.detail
        await refused_everywhere(nodes, digest, "body_hash_mismatch")
        for n in and_observer(nodes, obs):
            assert await refusals_of(n, digest) == {"body_hash_mismatch"}
            assert await holds(n, note)  # the honest event stands, with its own body
            row = await n.store.event_at("oakley", note.seq)
            assert row is not None and bytes(row[1]) == note.wire
        assert [x for x in await findings(obs) if x.severity == "critical"] == []


async def test_forged_events_beyond_a_head_are_not_buffered_nor_blamed_on_the_author(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """forged-gap-buffer (issue 14): a rogue publishes events claiming to be oakley's, signed
    by a throwaway key, at seqs beyond oakley's head (16 KiB each). No receiver holds them
    (they do not verify under oakley's known key, PROTOCOL.md §6.4); each is counted once as
    `unverifiable_gap`; the audit blames no gap on honest oakley. A genuine gap (zed's own
    event beyond a missing one) is still held, shown, and reported once it stays open."""
    url = nats_server.url
    nodes = await honest(tmp_path, url, "oakley", "elm")
    obs_dir = tmp_path / "observer"
    async with running(*nodes) as (oakley, elm), observing(obs_dir, url) as obs:
        note = await oakley.post(NotePosted(text="the market opens at nine"))
        await wait_until(lambda: holds(obs, note), what="the honest note at the observer")
        await wait_until(lambda: holds(elm, note), what="the honest note at elm")
        key = nacl.signing.SigningKey.generate()
        forged = [
            sign(key, "oakley", seq, bytes(32), PaddedNote(text="not oakley's", pad="x" * 16_000))
            for seq in range(note.seq + 2, note.seq + 102)
        ]
        await publish(url, *forged)

        async def all_counted() -> bool:
            counts = [(await n.status()).rejected.get("unverifiable_gap") for n in nodes]
            counts.append((await all_rejections(obs.store)).get("unverifiable_gap"))
            return counts == [100, 100, 100]

        await wait_until(all_counted, what="every receiver counting 100 unverifiable events")
        for n in nodes:
            status = await n.status()
            assert (status.buffered, status.buffered_bytes) == (0, 0)
        assert obs.chains.missing() == []
        later = await audit(obs.store.db, None, now_ms=obs.clock() + 2 * GAP_GRACE_MS)
        assert [f for f in later if f.severity == "critical"] == []
        (info,) = [f for f in later if f.code == "unverifiable_gap"]
        assert (info.author, info.severity) == ("oakley", "info")
        assert "claiming to be oakley's" in info.title
        # oakley goes on, and everybody stores it.
        after = await oakley.post(NotePosted(text="still here"))
        await wait_until(lambda: holds(obs, after), what="oakley's next note at the observer")

        # A genuine gap: zed's seq 3, signed by zed's key, without seq 2.
        zed = Rogue("zed")
        founded = zed.found()
        two = zed.next(NotePosted(text="two"))
        three = zed.next(NotePosted(text="three"))
        await publish(url, founded, three)

        async def held() -> bool:
            buffer: dict[str, int] = (await summary(obs))["buffer"]
            return buffer == {"events": 1, "bytes": len(three.wire), "dropped": 0}

        await wait_until(held, what="the observer holding zed's seq 3 beyond the gap")
        assert obs.chains.missing() == [("zed", 2, 2)]
        metrics = await metrics_text(obs.store.db, summary=await summary(obs))
        assert "\ncoopnet_gap_buffer_events 1\n" in metrics
        assert f"\ncoopnet_gap_buffer_bytes {len(three.wire)}\n" in metrics
        await wait_until(
            lambda: _reports_gap(obs, "zed"), what="the open gap recorded for the audit"
        )
        await publish(url, two)
        await wait_until(lambda: holds(obs, two, three), what="zed's gap filled")
        assert (await summary(obs))["buffer"] == {"events": 0, "bytes": 0, "dropped": 0}


class PaddedNote(NotePosted, frozen=True, kw_only=True):
    """A note with a field receivers do not know: ignored by them, but carried in the wire
    (and counted in its size)."""

    pad: str = ""


async def _reports_gap(obs: Observer, author: str) -> bool:
    later = await audit(obs.store.db, None, now_ms=obs.clock() + 2 * GAP_GRACE_MS)
    return [(f.code, f.author) for f in later if f.severity == "critical"] == [
        ("unrepaired_gap", author)
    ]


async def test_a_fork_is_critical_with_both_events_as_evidence_and_fails_the_cli(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    zed = Rogue("zed")
    founded = zed.found()
    key = zed.ident.signing_key
    one = sign(key, "zed", 2, founded.id, NotePosted(text="one history"))
    other = sign(key, "zed", 2, founded.id, NotePosted(text="another history"))
    nodes = await honest(tmp_path, url, "oakley", "elm")
    async with running(*nodes), observing(tmp_path / "observer", url) as obs:
        await publish(url, founded, one, other)

        f = await finding(obs, "fork", "zed")
        assert f.severity == "critical"
        assert sorted(f.evidence) == sorted([one.id.hex(), other.id.hex()])

        async def every_node_records_it() -> bool:
            forks = [(await n.status()).forks for n in nodes]
            return all(
                [(x.author, x.seq, {x.held_id, x.other_id}) for x in fs]
                == [("zed", 2, set(f.evidence))]
                for fs in forks
            )

        await wait_until(every_node_records_it, what="every node recording zed's fork")
    code, report = await audit_cli(tmp_path / "observer", url)
    assert code == 1
    assert report["critical"] == 1
    assert isinstance(report["findings"], list)
    assert [(x["code"], x["author"]) for x in report["findings"]] == [("fork", "zed")]


async def test_a_receipt_signed_by_a_third_neighborhood_creates_no_credit(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    zed = Rogue("zed")
    nodes = await honest(tmp_path, url, "oakley", "elm")
    async with running(*nodes) as (oakley, elm), observing(tmp_path / "observer", url) as obs:
        await publish(url, zed.found())
        await oakley.post(eggs(20))
        await wait_until(lambda: converged(oakley, elm), what="the offer at elm")
        await elm.trading.propose("oakley", "eggs-1", 5, trade="t-1")
        await everywhere(nodes, "elm", "t-1", "proposed")
        await oakley.trading.accept("elm", "t-1")
        await oakley.trading.ship("elm", "t-1")
        await everywhere([*nodes, obs], "elm", "t-1", "shipped")
        # One receipt, and the trade would settle: 175 cents from elm to oakley.
        fake = zed.next(TradeReceived(buyer="elm", trade="t-1"))
        await publish(url, fake)

        f = await finding(obs, "wrong_party", "zed", with_evidence=fake.id.hex())
        assert f.severity == "warning"
        await refused_everywhere(nodes, fake.id, "not_authorized")
        all_findings = await findings(obs)
        assert [x for x in all_findings if x.severity == "critical"] == []
        assert "ledger_not_zero" not in {x.code for x in all_findings}
        for n in and_observer(nodes, obs):
            assert await holds(n, fake)  # validly signed: stored, but not the buyer's word
            assert await trade_state(n, "elm", "t-1") == "shipped"
            assert await market.balances(n.store.db) == {}
        hoods = await neighborhoods(obs.store.db, None, obs.clock())
        assert {h["slug"]: h["balance"] for h in hoods} == {"elm": 0, "oakley": 0, "zed": 0}


async def test_a_receipt_signed_by_the_seller_creates_no_credit(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """The one who gains from a fake receipt: the seller signs it in the buyer's trade."""
    url = nats_server.url
    zed = Rogue("zed")
    founded = zed.found()
    offer = zed.next(eggs(20))
    trade = "t-1"
    nodes = await honest(tmp_path, url, "elm", "ash")
    async with running(*nodes) as (elm, _), observing(tmp_path / "observer", url) as obs:
        await publish(url, founded, offer)
        await wait_until(lambda: holds(elm, offer), what="zed's offer at elm")
        await elm.trading.propose("zed", "eggs-1", 4, trade=trade)
        await everywhere([*nodes, obs], "elm", trade, "proposed")
        accepted = zed.next(
            TradeAccepted(buyer="elm", trade=trade, offer="eggs-1", quantity=4, unit_price=35)
        )
        shipped = zed.next(TradeShipped(buyer="elm", trade=trade))
        fake = zed.next(TradeReceived(buyer="elm", trade=trade))
        await publish(url, accepted, shipped, fake)

        # A receipt is the buyer's statement: the seller signing one acts in the wrong role.
        f = await finding(obs, "wrong_party", "zed", with_evidence=fake.id.hex())
        assert f.severity == "warning"
        await refused_everywhere(nodes, fake.id, "not_authorized")
        all_findings = await findings(obs)
        assert [x for x in all_findings if x.severity == "critical"] == []
        assert {x.code for x in all_findings if x.author == "zed"} == {"wrong_party"}
        assert f.evidence == [fake.id.hex()]
        for n in and_observer(nodes, obs):
            assert await trade_state(n, "elm", trade) == "shipped"
            assert await market.balances(n.store.db) == {}


async def test_an_oversell_is_refused_by_the_sellers_own_log(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    zed = Rogue("zed")
    founded = zed.found()
    offer = zed.next(eggs(10))
    nodes = await honest(tmp_path, url, "elm", "ash")
    async with running(*nodes) as (elm, ash), observing(tmp_path / "observer", url) as obs:
        await publish(url, founded, offer)

        async def offered() -> bool:
            return all([await holds(n, offer) for n in nodes])

        await wait_until(offered, what="zed's offer at the buyers")
        for buyer in (elm, ash):  # 6 each: each fits what remains when proposed
            await buyer.trading.propose("zed", "eggs-1", 6, trade=f"t-{buyer.slug}")
        await everywhere([*nodes, obs], "elm", "t-elm", "proposed")
        await everywhere([*nodes, obs], "ash", "t-ash", "proposed")
        first, second = (
            zed.next(
                TradeAccepted(buyer=b, trade=f"t-{b}", offer="eggs-1", quantity=6, unit_price=35)
            )
            for b in ("elm", "ash")
        )
        await publish(url, first, second)  # 12 of 10

        f = await finding(obs, "oversell_attempt", "zed", with_evidence=second.id.hex())
        assert f.severity == "warning"
        assert first.id.hex() not in f.evidence
        await refused_everywhere(nodes, second.id, "not_authorized")
        all_findings = await findings(obs)
        assert [x for x in all_findings if x.severity == "critical"] == []  # no oversold_offer
        assert {x.code for x in all_findings if x.author == "zed"} == {"oversell_attempt"}
        for n in and_observer(nodes, obs):
            assert await trade_state(n, "elm", "t-elm") == "accepted"
            assert await trade_state(n, "ash", "t-ash") == "proposed"
            held = await market.load_offer(n.store.db, "zed", "eggs-1")
            assert held is not None and (held.reserved, held.remaining) == (6, 4)


# -- a chartered federation: members by consent -----------------------------------------------


async def chartered(root: Path, url: str, founders: tuple[str, ...]) -> tuple[Charter, bytes]:
    """Founders under a charter (each with its node), as `federation init` would make them."""
    idents = {s: Identity.generate(s) for s in founders}
    charter = Charter(
        name="Audit Federation",
        founders=[
            Founder(slug=s, display_name=s.title(), area="T1", key=i.public_key.hex())
            for s, i in idents.items()
        ],
        policies=Policies(quorum_percent=50),
    )
    text = dump_charter(charter)
    charter, net = parse_charter(text)
    for slug, ident in idents.items():
        data = root / slug
        data.mkdir(parents=True)
        (data / "charter.json").write_bytes(text)
        await init_node(
            data, slug=slug, display_name=slug.title(), area="T1", net=net, nats_url=url,
            identity=ident, settings={"charter": "charter.json"},
        )  # fmt: skip
    return charter, net


async def test_market_actions_of_a_neighborhood_never_admitted(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    founders = ("ana", "ben", "cai")
    charter, net = await chartered(tmp_path, url, founders)
    dee = Rogue("dee", net)
    founded = dee.found()
    applied = dee.next(
        MembershipApplied(display_name="Dee", area="T1", about="12 households", reason="eggs")
    )
    offer = dee.next(eggs(30, "dee-1"))
    nodes = [Node(tmp_path / s, serve_api=False) for s in founders]
    obs_dir = tmp_path / "observer"
    async with running(*nodes) as (ana, ben, _), observing(obs_dir, url, net=net,
                                                           charter=charter) as obs:  # fmt: skip
        await publish(url, founded, applied, offer)
        await wait_until(lambda: holds(ana, offer), what="dee's offer at ana")
        # Every member refuses to trade with it...
        for n in (ana, ben):
            with pytest.raises(Refused) as refused:
                await n.trading.propose("dee", "dee-1", 2)
            assert refused.value.code == "not_a_member"
        # ...but a member's node that skipped the check proposes anyway, and dee accepts.
        proposal = await ana.post(
            TradeProposed(trade="t-1", seller="dee", offer="dee-1", quantity=2, unit_price=35,
                          expires_at=now_ms() + HOUR_MS)
        )  # fmt: skip
        await wait_until(lambda: holds(obs, proposal), what="the proposal at the observer")
        accepted = dee.next(
            TradeAccepted(buyer="ana", trade="t-1", offer="dee-1", quantity=2, unit_price=35)
        )
        await publish(url, accepted)

        on_offer = await finding(obs, "non_member_action", "dee", with_evidence=offer.id.hex())
        on_trade = await finding(obs, "non_member_action", "dee", with_evidence=accepted.id.hex())
        assert on_offer.severity == on_trade.severity == "warning"
        assert on_offer.evidence == [offer.id.hex()]
        assert on_trade.evidence == [accepted.id.hex()]
        assert "applicant" in on_trade.title
        assert {f.author for f in await findings(obs)} == {"dee"}  # members are not flagged
        for n in nodes:  # the members agree: dee is an applicant, not a member
            assert (await n.governance.standings())["dee"].status == "applicant"


# -- keys: a retired author, a wrong key -------------------------------------------------------


async def test_a_retired_authors_later_event_and_a_wrong_key_are_refused(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    nodes = await honest(tmp_path, url, "oakley", "elm", "ash")
    async with running(*nodes) as (oakley, elm, ash), observing(tmp_path / "observer", url) as obs:
        await ash.governance.retire("merged with elm")
        with anyio.fail_after(30):
            await ash.stopped.wait()  # a retired node stops by itself
        await oakley.post(NotePosted(text="farewell, ash"))
        await wait_until(lambda: converged(oakley, elm), what="the retirement everywhere")
        ash_head, oakley_head = oakley.chains.head_of("ash"), oakley.chains.head_of("oakley")
        assert ash_head is not None and oakley_head is not None
        # A copy of ash's key signs after its last event; an impostor signs as oakley.
        late = sign(
            ash.identity.signing_key, "ash", ash_head.seq + 1, ash_head.id,
            NotePosted(text="back from retirement"),
        )  # fmt: skip
        impostor = nacl.signing.SigningKey.generate()
        forged = sign(
            impostor, "oakley", oakley_head.seq + 1, oakley_head.id, NotePosted(text="not me")
        )
        await publish(url, late, forged)

        retired = await finding(obs, "retired_author", "ash", with_evidence=late.id.hex())
        assert retired.severity == "warning"
        wrong = await finding(obs, "refused_wrong_key", "oakley", with_evidence=forged.id.hex())
        assert wrong.severity == "warning"
        await refused_everywhere([oakley, elm], late.id, "not_authorized")
        await refused_everywhere([oakley, elm], forged.id, "wrong_key")
        for n in and_observer([oakley, elm], obs):
            assert not await holds(n, late) and not await holds(n, forged)
            assert (await n.store.authors())["oakley"].head_seq == oakley_head.seq
        assert [x for x in await findings(obs) if x.severity == "critical"] == []


# -- a healthy federation ---------------------------------------------------------------------


async def test_a_healthy_run_has_no_finding_and_passes_the_cli(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    url = nats_server.url
    nodes = await honest(tmp_path, url, "oakley", "elm", "ash")
    obs_dir = tmp_path / "observer"
    async with running(*nodes) as (oakley, elm, ash), observing(obs_dir, url) as obs:
        await oakley.post(eggs(50))
        for n in nodes:
            await n.post(NotePosted(text=f"hello from {n.slug}"))
        await wait_until(lambda: converged(*nodes), what="the offer everywhere")
        for buyer, qty in ((elm, 5), (ash, 7)):
            trade = f"t-{buyer.slug}"
            await buyer.trading.propose("oakley", "eggs-1", qty, trade=trade)
            await everywhere([oakley], buyer.slug, trade, "proposed")
            await oakley.trading.accept(buyer.slug, trade)
            await oakley.trading.ship(buyer.slug, trade)
            await everywhere([buyer], buyer.slug, trade, "shipped")
            await buyer.trading.receive(buyer.slug, trade)
        await everywhere([*nodes, obs], "elm", "t-elm", "settled")
        await everywhere([*nodes, obs], "ash", "t-ash", "settled")
        await wait_until(lambda: holds_all_of(obs, nodes), what="the observer holding it all")
        assert await findings(obs) == []
        assert await market.balances(obs.store.db) == {"oakley": 420, "elm": -175, "ash": -245}
    code, report = await audit_cli(obs_dir, url)
    assert (code, report) == (
        0,
        {"critical": 0, "findings": [], "pool_ledger_sum": 0, "hours_ledger_sum": 0},
    )


async def test_an_acceptance_of_a_withdrawn_offer_is_a_warning_not_a_broken_projection(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """The seller's offer fold refuses an acceptance for other reasons than an oversell too
    (a withdrawn or expired offer: PROTOCOL.md §10). The audit must judge it as the nodes
    did: a refused statement, and the projection agrees with the rules."""
    url = nats_server.url
    zed = Rogue("zed")
    founded = zed.found()
    offer = zed.next(eggs(10))
    nodes = await honest(tmp_path, url, "elm", "ash")
    async with running(*nodes) as (elm, _), observing(tmp_path / "observer", url) as obs:
        await publish(url, founded, offer)
        await wait_until(lambda: holds(elm, offer), what="zed's offer at elm")
        await elm.trading.propose("zed", "eggs-1", 4, trade="t-1")
        await everywhere([*nodes, obs], "elm", "t-1", "proposed")
        withdrawn = zed.next(OfferWithdrawn(offer="eggs-1"))
        accepted = zed.next(
            TradeAccepted(buyer="elm", trade="t-1", offer="eggs-1", quantity=4, unit_price=35)
        )
        await publish(url, withdrawn, accepted)

        await refused_everywhere(nodes, accepted.id, "not_authorized")
        await wait_until(lambda: holds(obs, accepted), what="the acceptance at the observer")
        assert "not_authorized" in await refusals_of(obs, accepted.id)
        for n in and_observer(nodes, obs):
            assert await trade_state(n, "elm", "t-1") == "proposed"
        critical = [(x.code, x.title) for x in await findings(obs) if x.severity == "critical"]
        assert critical == []
        f = await finding(obs, "trade_rule_refused", "zed", with_evidence=accepted.id.hex())
        assert f.severity == "warning"


async def test_a_retired_founders_past_trades_are_not_flagged(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    """Market events a founder signed while it was a member stay legitimate after it
    retires (PROTOCOL.md §16.5: retiring ends the log; it does not undo it)."""
    url = nats_server.url
    founders = ("ana", "ben", "cai")
    charter, net = await chartered(tmp_path, url, founders)
    nodes = [Node(tmp_path / s, serve_api=False) for s in founders]
    obs_dir = tmp_path / "observer"
    async with running(*nodes) as (ana, ben, cai), observing(obs_dir, url, net=net,
                                                             charter=charter) as obs:  # fmt: skip
        await ana.post(eggs(20))
        await wait_until(lambda: converged(*nodes), what="the offer everywhere")
        await ben.trading.propose("ana", "eggs-1", 2, trade="t-1")
        await everywhere([ana], "ben", "t-1", "proposed")
        await ana.trading.accept("ben", "t-1")
        await ana.trading.ship("ben", "t-1")
        await everywhere([ben], "ben", "t-1", "shipped")
        await ben.trading.receive("ben", "t-1")
        await everywhere([*nodes, obs], "ben", "t-1", "settled")
        # A neighborhood settles its balance to zero before it retires (§16.5): ben, at
        # -70 cents, sells the same back to ana.
        await ben.post(eggs(2, offer="eggs-ben"))
        await wait_until(lambda: converged(*nodes), what="ben's offer everywhere")
        await ana.trading.propose("ben", "eggs-ben", 2, trade="t-2")
        await everywhere([ben], "ana", "t-2", "proposed")
        await ben.trading.accept("ana", "t-2")
        await ben.trading.ship("ana", "t-2")
        await everywhere([ana], "ana", "t-2", "shipped")
        await ana.trading.receive("ana", "t-2")
        await everywhere([*nodes, obs], "ana", "t-2", "settled")
        await ben.governance.retire("merged with cai")
        with anyio.fail_after(30):
            await ben.stopped.wait()  # a retired node stops by itself
        others = (ana, cai)

        async def retired_everywhere() -> bool:
            return all(
                [(await n.governance.standings())["ben"].status == "retired" for n in others]
            )

        await wait_until(retired_everywhere, what="ben retired everywhere")
        await wait_until(lambda: holds_all_of(obs, others), what="the observer holding it all")
        assert await findings(obs) == []
