"""The receive path fuzzed (issue 14, item 8; docs/PROTOCOL.md §4-8, §7.1 the log invariant).

Hypothesis builds a federation's worth of events: honest authors (founders named by the
charter) posting notes, offers, trades and a call for help with one another; members whose
chains are whole but whose bodies sit at the edges of every bound of every registered kind
(read from the kinds' own annotations: tests/faults/fuzz_events.py), a trade of 10^12 units
at 10^12 cents among them, a kind from tomorrow; a member that breaks the rules of its own
log (founding twice, a rotation to a key it did not commit to, signing with a rotated-out
key, equivocating, posting after retiring); events claiming other authors' names signed by
other keys; authors never founded; tampered, truncated, oversized and other-network copies.
All of it, with duplicates, reaches a real `Chains` over a real SQLite store with every
domain's projections in random order and random batch sizes, then once more in one batch.

Properties: nothing raises out of `receive`; the gap buffer never holds an event that
follows its author's head; every honest event and every event of a well-chained member is
stored, and nothing forged or of an author never founded is; every stored log is a chain
from a founding; no honest author is forked or left with a gap; the engine's memory equals
what a restart reads back; the ledger sums to zero and the honest trades come out as their
parties signed them; the projections equal a rebuild from the log; the observer's audit of
the store finds no defect and accuses no honest event. The seed is printed (rerun with
COOPNET_TEST_SEED=…; COOPNET_FUZZ_EXAMPLES=… for a longer run, COOPNET_FUZZ_SHRINK=1 to
shrink a failing example).

Every edge body of every kind also passes the independent verifier (tests/independent), and
what the fuzzer found is kept below as small tests. A shorter run goes through two real
nodes and an observer over a real nats-server: a rogue publishes generated hostile events
straight into the stream among honest posts; then the nodes restart over that stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import random
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import hypothesis
import msgspec
import msgspec.inspect
import nats
import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from coopnet.federation.audit import audit
from coopnet.federation.observer import open_observer_store
from coopnet.node.engine.chains import Chains
from coopnet.node.engine.config import db_path
from coopnet.node.engine.nats_server import NatsServer
from coopnet.node.engine.store import Store, now_ms
from coopnet.node.market import projection as market
from coopnet.node.runtime import Node
from coopnet.protocol import (
    KINDS,
    MAX_WIRE_BYTES,
    Body,
    Envelope,
    Identity,
    NodeFounded,
    NodeKeyRotated,
    NotePosted,
    Opaque,
    decode_unsealed,
    key_digest,
    seal_envelope,
    unseal,
)
from coopnet.protocol.aid import AidFulfilled, AidPledgeAccepted, AidPledged, AidRequested
from coopnet.protocol.history import MAX_CLOCK_SKEW_MS
from coopnet.protocol.membership import MembershipRetired
from coopnet.protocol.offers import OfferPosted
from coopnet.protocol.trades import TradeAccepted, TradeProposed, TradeReceived, TradeShipped
from tests.conftest import NET, make_node, running, wait_until
from tests.faults.fuzz_events import Pools, body_of, describe, future_bodies
from tests.federation.test_audit import observing
from tests.independent import verifier as independent
from tests.stores import open_node_store

pytestmark = pytest.mark.timeout(240)

NOW = 1_800_000_000_000
DAY = 86_400_000
MAX_SEQ = 2**63 - 1
OTHER_NET = hashlib.sha256(b"another federation").digest()[:16]
HONEST = ("oakley", "elm", "ash")  # founders: the charter names their keys (§5.4)
MEMBERS = ("rook", "crow")  # founded in the stream: hostile values, whole chains
ROGUE = "jay"  # founded, then breaks the rules of its own log
GHOSTS = ("ghost", "g" + "9" * 31)  # never founded
EVERYONE = (*HONEST, *MEMBERS, ROGUE, *GHOSTS)
IDS = {a: Identity.from_passphrase(a, "receive fuzz") for a in EVERYONE}
CHARTER = {a: IDS[a].public_key for a in HONEST}
KEY_LOG_KINDS = frozenset({"node.founded", "node.key_rotated", "membership.retired"})
EXAMPLES = int(os.environ.get("COOPNET_FUZZ_EXAMPLES", "0")) or 30
# A failing example is reported whole (every event, the order, the batches) and not shrunk:
# shrinking re-runs a federation hundreds of times. COOPNET_FUZZ_SHRINK=1 shrinks it.
PHASES = (
    tuple(Phase)
    if os.environ.get("COOPNET_FUZZ_SHRINK") == "1"
    else (Phase.explicit, Phase.reuse, Phase.generate, Phase.target)
)

T = TypeVar("T")


# -- building events --------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One wire handed to the receiver, with what it is (for failure reports)."""

    wire: bytes
    role: str  # honest | member | rogue | forged | ghost | tampered
    what: str
    id: bytes | None = None


def sent(env: Envelope, role: str, signer: str | None = None) -> Sent:
    by = f" signed by {signer}'s key" if signer else ""
    what = f"{env.author}#{env.seq} at={env.at}{by} {describe(env.body)}"
    return Sent(env.wire, role, what, env.id)


class Log:
    """One author's chain as its author signs it."""

    def __init__(self, ident: Identity, *, net: bytes = NET, now: int = NOW) -> None:
        self.ident = ident
        self.net = net
        self.now = now  # the receiver's clock: events are stamped from a day before it
        self.events: list[Envelope] = []

    def seal_next(self, body: Body, *, at: int, signer: Identity | None = None) -> Envelope:
        """The author's next event, not appended (a rule-breaking one, say)."""
        return seal_envelope(
            signing_key=(signer or self.ident).signing_key,
            net=self.net,
            author=self.ident.author,
            seq=len(self.events) + 1,
            prev=self.events[-1].id if self.events else None,
            at=at,
            body=body,
        )

    def add(self, body: Body, *, at: int | None = None) -> Envelope:
        env = self.seal_next(body, at=self.now - DAY + len(self.events) if at is None else at)
        self.events.append(env)
        return env

    def rotate(self, *, at: int) -> Envelope:
        """A valid rotation (§5.2): reveals the committed key, signed by it."""
        following = hashlib.sha256(f"{self.ident.author}/{len(self.events)}".encode()).digest()
        after, body = self.ident.rotated(following_seed=following)
        self.ident = after
        return self.add(body, at=at)


def founding(ident: Identity, drawn: NodeFounded) -> NodeFounded:
    """A drawn founding body (edge display name and area) carrying `ident`'s keys."""
    return msgspec.structs.replace(
        drawn, key=ident.public_key, next_key_digest=key_digest(ident.next_public_key)
    )


def times(now: int) -> st.SearchStrategy[int]:
    """An event's `at` a receiver at `now` must accept (§6.3): 0 to the edge of the skew."""
    return st.sampled_from((0, 1, now - 1, now, now + MAX_CLOCK_SKEW_MS)) | st.integers(0, now)


def any_body(pools: Pools, exclude: frozenset[str] = frozenset()) -> st.SearchStrategy[Body]:
    """A body of any registered kind not in `exclude`, or of a kind from tomorrow."""
    kinds = sorted(k for k in KINDS if k not in exclude)
    registered = st.sampled_from(kinds).flatmap(lambda k: body_of(KINDS[k], pools))
    return registered | future_bodies()


# -- the honest federation --------------------------------------------------------------------


@dataclass
class Honest:
    logs: dict[str, Log]
    trades: dict[tuple[str, str], str] = field(default_factory=dict)  # (buyer, trade): state
    balances: dict[str, int] = field(default_factory=dict)

    def pools(self) -> Pools:
        strings: set[str] = set(EVERYONE) | {"big", "r1", "p1"}
        blobs: set[bytes] = {IDS[a].public_key for a in EVERYONE}
        for log in self.logs.values():
            for env in log.events:
                blobs.add(env.id)
                for name in ("offer", "trade", "request", "pledge", "need", "alert"):
                    value = getattr(env.body, name, None)
                    if isinstance(value, str):
                        strings.add(value)
        return Pools(strings=tuple(sorted(strings)), blobs=tuple(sorted(blobs)))


STATES = {1: "proposed", 2: "accepted", 3: "shipped", 4: "settled"}


@st.composite
def honest_federation(draw: st.DrawFn) -> Honest:
    """Founders posting notes (odd text is honest text too), an offer each, trades between
    them carried to a drawn stage, and a call for help answered and fulfilled."""
    fed = Honest(logs={a: Log(IDS[a]) for a in HONEST})
    empty = Pools()
    for a, log in fed.logs.items():
        log.add(founding(IDS[a], draw(body_of(NodeFounded, empty))))
    for log in fed.logs.values():
        for _ in range(draw(st.integers(0, 2))):
            log.add(draw(body_of(NotePosted, empty)))
    prices = {a: draw(st.sampled_from((0, 1, 35, 999))) for a in HONEST}
    for a, log in fed.logs.items():
        log.add(
            OfferPosted(
                offer=f"{a}-o1", item="bread", category="bakery", quantity=100, unit="piece",
                unit_price=prices[a], available_until=NOW + DAY, area="T1",
            )
        )  # fmt: skip
    fed.balances = dict.fromkeys(HONEST, 0)
    pairs = st.permutations(HONEST).map(lambda p: (p[0], p[1]))
    for i, (buyer, seller) in enumerate(draw(st.lists(pairs, max_size=4))):
        trade, quantity, stage = f"t{i}", draw(st.integers(1, 5)), draw(st.integers(1, 4))
        price, offer = prices[seller], f"{seller}-o1"
        fed.logs[buyer].add(
            TradeProposed(
                trade=trade, seller=seller, offer=offer, quantity=quantity, unit_price=price,
                expires_at=NOW + DAY,
            )
        )  # fmt: skip
        if stage >= 2:
            fed.logs[seller].add(
                TradeAccepted(
                    buyer=buyer, trade=trade, offer=offer, quantity=quantity, unit_price=price
                )
            )
        if stage >= 3:
            fed.logs[seller].add(TradeShipped(buyer=buyer, trade=trade))
        if stage >= 4:
            fed.logs[buyer].add(TradeReceived(buyer=buyer, trade=trade))
            fed.balances[seller] += quantity * price
            fed.balances[buyer] -= quantity * price
        fed.trades[(buyer, trade)] = STATES[stage]
    if draw(st.booleans()):
        requester, pledger = draw(pairs)
        fed.logs[requester].add(
            AidRequested(
                request="r1", category="food", urgency="high", needed_by=NOW + DAY, quantity=3,
                area="T1", description="bread for the shelter", raised_at=NOW - DAY,
            )
        )  # fmt: skip
        fed.logs[pledger].add(
            AidPledged(requester=requester, request="r1", pledge="p1", what="loaves", quantity=3)
        )
        fed.logs[requester].add(
            AidPledgeAccepted(request="r1", pledger=pledger, pledge="p1", quantity=3)
        )
        fed.logs[requester].add(AidFulfilled(request="r1", pledges=[(pledger, "p1")]))
    return fed


# -- the hostile ones -------------------------------------------------------------------------


@dataclass
class Hostile:
    sent: list[Sent] = field(default_factory=list)
    members: dict[str, Log] = field(default_factory=dict)


@st.composite
def hostile_events(
    draw: st.DrawFn, held: Mapping[str, Sequence[Envelope]], pools: Pools, now: int
) -> Hostile:
    """Hostile events against the honest chains `held` (author: events from seq 1), for a
    receiver whose clock reads `now`."""
    out = Hostile()
    ats = times(now)
    # Members whose logs are whole: every event must be stored, whatever its body means.
    for m in MEMBERS:
        log = out.members[m] = Log(IDS[m], now=now)
        log.add(founding(IDS[m], draw(body_of(NodeFounded, pools))))
    if draw(st.booleans()):  # two members trading at the very edge: 10^12 × 10^12
        rook, crow = out.members["rook"], out.members["crow"]
        q = draw(st.sampled_from((10**12, 10**12 - 1, 10**6 + 1, 1)))
        p = draw(st.sampled_from((10**12, 10**12 - 1, 10**6 + 1, 0)))
        rook.add(
            OfferPosted(
                offer="big", item="everything", category="other", quantity=q, unit="gram",
                unit_price=p, available_until=MAX_SEQ, area="T1",
            )
        )  # fmt: skip
        crow.add(
            TradeProposed(
                trade="big", seller="rook", offer="big", quantity=q, unit_price=p,
                expires_at=MAX_SEQ,
            )
        )  # fmt: skip
        rook.add(TradeAccepted(buyer="crow", trade="big", offer="big", quantity=q, unit_price=p))
        rook.add(TradeShipped(buyer="crow", trade="big"))
        crow.add(TradeReceived(buyer="crow", trade="big"))
    for log in out.members.values():
        for _ in range(draw(st.integers(0, 6))):
            if draw(st.integers(0, 9)) == 0:
                log.rotate(at=draw(ats))
            log.add(draw(any_body(pools, KEY_LOG_KINDS)), at=draw(ats))
        if draw(st.integers(0, 3)) == 0:
            log.add(draw(body_of(MembershipRetired, pools)), at=draw(ats))
    for log in out.members.values():
        out.sent += [sent(e, "member") for e in log.events]

    # A member that breaks the rules of its own log.
    jay = Log(IDS[ROGUE], now=now)
    jay.add(founding(IDS[ROGUE], draw(body_of(NodeFounded, pools))))
    for _ in range(draw(st.integers(0, 2))):
        jay.add(draw(any_body(pools, KEY_LOG_KINDS)), at=draw(ats))
    misdeeds = draw(
        st.lists(
            st.sampled_from(("refound", "bad_rotation", "equivocate", "old_key")),
            max_size=3,
            unique=True,
        )
    )
    rogue: list[Envelope] = []
    for misdeed in misdeeds:
        if misdeed == "refound":
            rogue.append(jay.seal_next(jay.events[0].body, at=draw(ats)))
        elif misdeed == "bad_rotation":
            rogue.append(jay.seal_next(draw(body_of(NodeKeyRotated, pools)), at=draw(ats)))
        elif misdeed == "equivocate" and len(jay.events) >= 2:
            other = Log(jay.ident, now=now)
            other.events = jay.events[:-1]
            rogue.append(other.seal_next(draw(any_body(pools, KEY_LOG_KINDS)), at=draw(ats)))
        elif misdeed == "old_key":
            old = jay.ident
            jay.rotate(at=draw(ats))
            rogue.append(jay.seal_next(draw(any_body(pools, KEY_LOG_KINDS)), at=now, signer=old))
    if draw(st.booleans()):  # retires, then posts again
        jay.add(draw(body_of(MembershipRetired, pools)), at=draw(ats))
        rogue.append(jay.seal_next(draw(any_body(pools, KEY_LOG_KINDS)), at=now))
    out.sent += [sent(e, "rogue") for e in [*jay.events, *rogue]]

    # Other authors' names, other keys: at seq 1, at held seqs, at the head, beyond it.
    chains: dict[str, Sequence[Envelope]] = {**held, **{m: out.members[m].events for m in MEMBERS}}
    for _ in range(draw(st.integers(0, 6))):
        target = draw(st.sampled_from(sorted(chains)))
        chain = chains[target]
        seqs = sorted({1, 2, len(chain), len(chain) + 1, len(chain) + 2, MAX_SEQ})
        seq = draw(st.sampled_from(seqs) | st.integers(1, len(chain) + 2))
        prev: bytes | None = None
        if seq > 1:
            real = [chain[seq - 2].id] if seq - 2 < len(chain) else []
            prev = draw(st.sampled_from(real) | st.binary(min_size=32, max_size=32) if real
                        else st.binary(min_size=32, max_size=32))  # fmt: skip
        signer = IDS[draw(st.sampled_from([a for a in EVERYONE if a != target]))]
        body: Body
        if seq == 1 and target in CHARTER and draw(st.booleans()):
            body = founding(signer, draw(body_of(NodeFounded, pools)))
        else:
            # A non-founder's name can be claimed first by anyone (§5.4): not a forgery.
            body = draw(any_body(pools, frozenset({"node.founded"}) if seq == 1 else frozenset()))
        env = seal_envelope(
            signing_key=signer.signing_key, net=NET, author=target, seq=seq, prev=prev,
            at=draw(ats), body=body,
        )  # fmt: skip
        out.sent.append(sent(env, "forged", signer.author))

    # Authors never founded.
    for _ in range(draw(st.integers(0, 4))):
        ghost = draw(st.sampled_from(GHOSTS))
        seq = draw(st.sampled_from((1, 2, 3, MAX_SEQ)) | st.integers(1, 6))
        env = seal_envelope(
            signing_key=IDS[ghost].signing_key, net=NET, author=ghost, seq=seq,
            prev=None if seq == 1 else draw(st.binary(min_size=32, max_size=32)),
            at=draw(ats), body=draw(any_body(pools, frozenset({"node.founded"}))),
        )  # fmt: skip
        out.sent.append(sent(env, "ghost"))

    # Copies of honest events, spoiled.
    honest = [e for chain in held.values() for e in chain]
    for _ in range(draw(st.integers(0, 3)) if honest else 0):
        e = draw(st.sampled_from(honest))
        how = draw(st.sampled_from(("flip", "truncate", "extend", "oversize", "other_net")))
        if how == "other_net":
            if not isinstance(e.body, Opaque):
                env = seal_envelope(
                    signing_key=IDS[e.author].signing_key, net=OTHER_NET, author=e.author,
                    seq=e.seq, prev=e.prev, at=e.at, body=e.body,
                )  # fmt: skip
                out.sent.append(Sent(env.wire, "tampered", f"{e.author}#{e.seq} other net"))
            continue
        wire = bytearray(e.wire)
        i = draw(st.integers(0, len(wire) - 1))
        if how == "flip":
            wire[i] ^= draw(st.integers(1, 255))
        elif how == "truncate":
            del wire[i:]
        elif how == "extend":
            wire += draw(st.binary(min_size=1, max_size=8))
        else:
            wire += bytes(MAX_WIRE_BYTES)
        out.sent.append(Sent(bytes(wire), "tampered", f"{e.author}#{e.seq} {how} at {i}"))
    return out


# -- one federation's worth of deliveries -------------------------------------------------------


@dataclass(repr=False)
class Scenario:
    sent: list[Sent]
    order: list[int]  # indices into `sent`, duplicates included
    batches: list[int]  # sizes
    again: list[int]  # the last delivery: everything once more, in one batch
    trades: dict[tuple[str, str], str]
    balances: dict[str, int]

    def __repr__(self) -> str:
        lines = [f"{i:3} {s.role:8} {s.what[:150]}" for i, s in enumerate(self.sent)]
        order = f"order={self.order}\nbatches={self.batches}\nagain={self.again}"
        return "Scenario(\n" + "\n".join(lines) + f"\n{order})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # what Hypothesis prints of a failing example

    def ids(self, *roles: str) -> dict[bytes, str]:
        return {s.id: s.what for s in self.sent if s.role in roles and s.id is not None}


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    fed = draw(honest_federation())
    held = {a: log.events for a, log in fed.logs.items()}
    hostile = draw(hostile_events(held, fed.pools(), NOW))
    everything = [sent(e, "honest") for chain in held.values() for e in chain] + hostile.sent
    rng = draw(st.randoms(use_true_random=False))
    order = list(range(len(everything)))
    order += rng.sample(order, rng.randint(0, len(order) // 3))  # duplicates
    rng.shuffle(order)
    batches: list[int] = []
    while sum(batches) < len(order):
        batches.append(rng.choice((1, 1, 2, 3, 5, 8, 13, 40)))
    again = rng.sample(range(len(everything)), len(everything))
    return Scenario(everything, order, batches, again, fed.trades, fed.balances)


async def receive_all(chains: Chains, sc: Scenario) -> None:
    """Deliver the scenario as a bus would: in its order and batch sizes, then everything
    once more in one batch (what a catch-up over sync would bring)."""
    at = 0
    for size in sc.batches:
        picked = sc.order[at : at + size]
        at += size
        note(f"receive {picked}")
        await chains.receive([sc.sent[i].wire for i in picked], source="bus")
        assert_buffer_is_a_gap(chains, picked)
    note(f"receive (everything again) {sc.again}")
    await chains.receive([sc.sent[i].wire for i in sc.again], source="sync")
    assert_buffer_is_a_gap(chains, sc.again)


def assert_buffer_is_a_gap(chains: Chains, picked: list[int]) -> None:
    """An event held beyond a gap never follows its author's head directly: it would wait
    for a range no peer can send (`missing` would name an empty one)."""
    for author, held in chains.buffer.items():
        head = chains.head_of(author)
        top = head.seq if head else 0
        assert min(held) > top + 1, (
            f"after receiving {picked}: {author}'s event at seq {min(held)} is held in the gap "
            f"buffer though the head is at {top}; missing() = {chains.missing()}"
        )


async def check_store(chains: Chains, sc: Scenario) -> None:
    store = chains.store
    stored = await store.event_ids()
    lost = [what for i, what in sc.ids("honest", "member").items() if i not in stored]
    assert not lost, "not stored:\n" + "\n".join(lost)
    leaked = [what for i, what in sc.ids("forged", "ghost").items() if i in stored]
    assert not leaked, "stored though forged or of an author never founded:\n" + "\n".join(leaked)
    await assert_logs_are_chains(store)
    whole = (*HONEST, *MEMBERS)
    forks = [(f.author, f.seq) for f in await store.forks() if f.author in whole]
    assert not forks, f"honest authors reported forked: {forks}"
    assert not [a for a in whole if a in chains.buffer], f"buffer: {dict(chains.buffer)}"
    assert not [g for g in chains.missing() if g[0] in whole], chains.missing()
    # Memory follows the store: a restart reads back the same heads and fork status.
    rows = await store.authors()
    for author, state in chains.states.items():
        row = rows[author]
        assert state.head is not None and (state.head.seq, state.head.id) == (
            row.head_seq,
            row.head_id,
        ), author
        assert state.forked_seq == row.forked_seq, author
    # The ledger sums to zero, and the honest trades are what their parties signed.
    ledger = await market.balances(store.db)
    assert sum(ledger.values()) == 0, ledger
    assert {a: ledger.get(a, 0) for a in HONEST} == sc.balances, ledger
    for (buyer, trade), signed in sc.trades.items():
        held = await market.load_trade(store.db, buyer, trade)
        assert held is not None and held["state"] == signed, (buyer, trade, held, signed)
    await assert_rebuild_equals_fold(store)
    await assert_audit_clears(store, set(sc.ids("honest")), NOW)


async def assert_audit_clears(store: Store, honest: set[bytes], now: int) -> None:
    """The observer's audit (federation/audit.py) of the same store: no finding that can
    only come from a defect, no honest event as evidence of a warning or worse, and no
    fork but the rogue's. Display-name warnings are left out: they are about how a name
    reads (its hidden characters, an imitation), which the fuzzer's names do by design,
    not about the log (PROTOCOL.md §18)."""
    findings = await audit(store.db, None, now_ms=now)
    findings = [f for f in findings if not f.code.startswith("display_name_")]
    honest_hex = {i.hex() for i in honest}
    wrong = [
        f
        for f in findings
        if f.code in ("projection_mismatch", "ledger_not_zero", "oversold_offer")
        or (f.code == "fork" and f.author != ROGUE)
        or (f.severity != "info" and honest_hex & set(f.evidence))
    ]
    assert not wrong, "audit findings:\n" + "\n".join(
        f"{f.severity} {f.code} {f.author}: {f.title} ({f.detail[:200]})" for f in wrong
    )


async def assert_logs_are_chains(store: Store) -> None:
    """Every author's stored log runs from its founding at seq 1, each event naming the
    one before it."""
    rows = await store.all("SELECT author, seq, id, wire FROM events ORDER BY author, seq")
    last: dict[str, tuple[int, bytes]] = {}
    for author, seq, event_id, wire in rows:
        env = decode_unsealed(bytes(wire))
        if author not in last:
            assert (seq, env.kind) == (1, "node.founded"), f"{author}'s log starts at {seq}"
        else:
            assert (seq, env.prev) == (last[author][0] + 1, last[author][1]), f"{author}#{seq}"
        last[author] = (seq, bytes(event_id))


async def assert_rebuild_equals_fold(store: Store) -> None:
    folded = await store.projection_rows()
    await store.rebuild_projections()
    rebuilt = await store.projection_rows()
    diff = {
        table: (sorted(set(rows) - set(again))[:3], sorted(set(again) - set(rows))[:3])
        for table, rows in folded.items()
        if rows != (again := rebuilt.get(table, []))
    }
    assert not diff, f"folded rows differ from a rebuild (folded only, rebuilt only): {diff}"


def fuzz_seed(request: pytest.FixtureRequest) -> int:
    """Hypothesis's seed, derived from the test's printed random seed (tests/conftest.py)."""
    seed = random.getrandbits(64)
    test_seed = dict(request.node.user_properties).get("random_seed")
    print(f"hypothesis seed: {seed} (from the random seed {test_seed})")
    return seed


def draw_largest(
    strategy: st.SearchStrategy[T], size: Callable[[T], int], seed: int, *, of: int = 20
) -> T:
    """Of `of` values of `strategy` drawn from `seed`, the largest by `size` (Hypothesis
    starts with the simplest); for a test that is not itself @given."""
    drawn: list[T] = []

    @hypothesis.seed(seed)
    @settings(
        max_examples=of,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(strategy)
    def draw(value: T) -> None:
        drawn.append(value)

    draw()
    return max(drawn, key=size)


# -- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_edge_bodies_of_every_kind_seal_and_agree_with_the_independent_verifier(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """The generator covers every registered kind; each edge body passes coopnet's own
    checks and those of the verifier written from PROTOCOL.md alone (tests/independent)."""
    ident = IDS["oakley"]

    pools = Pools(strings=EVERYONE, blobs=(ident.public_key,), trailing_newline=False)

    @hypothesis.seed(fuzz_seed(request))
    @settings(
        max_examples=25,
        phases=PHASES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body_of(KINDS[kind], pools))
    def check(body: Body) -> None:
        env = seal_envelope(
            signing_key=ident.signing_key, net=NET, author="oakley", seq=2, prev=bytes(32),
            at=NOW, body=body,
        )  # fmt: skip
        assert unseal(env.wire, net=NET).body == body
        assert independent.verify(env.wire, NET) == ("valid", env.id), describe(body)

    check()


def test_a_pattern_field_never_admits_a_trailing_newline(request: pytest.FixtureRequest) -> None:
    """PROTOCOL.md §8: a slug, an id or an area *matches* its pattern, whole (the
    independent verifier applies fullmatch). msgspec matches a `pattern` with re.search,
    where `$` also matches before a final newline: "elm\n" passed as a slug, so coopnet
    stored and relayed events every conforming implementation refuses as `bad_body` (and
    "elm\n" named a party that looks like elm and is not)."""
    admitted = []
    seed, pools = fuzz_seed(request), Pools(strings=EVERYONE, trailing_newline=False)
    for kind, cls in sorted(KINDS.items()):
        body = draw_largest(body_of(cls, pools), lambda _: 0, seed, of=3)
        info = msgspec.inspect.type_info(cls)
        assert isinstance(info, msgspec.inspect.StructType)
        for f in info.fields:
            types = f.type.types if isinstance(f.type, msgspec.inspect.UnionType) else (f.type,)
            value = getattr(body, f.name)
            patterned = any(
                isinstance(t, msgspec.inspect.StrType) and t.pattern is not None for t in types
            )
            if not patterned or not isinstance(value, str):
                continue
            # Encoded from a dict: a body whose own checks compare fields (`pool.opened`,
            # §8) may refuse to be built with the spoiled value at all.
            fields = msgspec.structs.asdict(body) | {f.name: value + "\n"}
            spoiled = msgspec.msgpack.encode(fields)
            try:
                msgspec.msgpack.decode(spoiled, type=cls)
            except msgspec.ValidationError:
                continue
            admitted.append(f"{kind}.{f.name} = {value + chr(10)!r}")
    assert not admitted, "a trailing newline passes the pattern of:\n" + "\n".join(admitted)


def test_the_receive_path_keeps_every_honest_event_whatever_else_arrives(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Hostile events of every kind, at the edges of every bound, in any order and batching,
    never cost an honest event, never raise, and leave projections a rebuild reproduces."""
    examples = itertools.count()

    @hypothesis.seed(fuzz_seed(request))
    @settings(
        max_examples=EXAMPLES,
        phases=PHASES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(scenarios())
    def fuzz(sc: Scenario) -> None:
        note(repr(sc))  # printed for a failing example (Hypothesis prints no value here)
        path = tmp_path / f"node-{next(examples)}.db"
        try:
            anyio.run(deliver_and_check, sc, path)
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

    fuzz()


async def deliver_and_check(sc: Scenario, path: Path) -> None:
    store = await open_node_store(path, NET)
    try:
        chains = Chains(store, NET, clock=lambda: NOW, charter_keys=CHARTER)
        await chains.load()
        await receive_all(chains, sc)
        await check_store(chains, sc)
    finally:
        await store.close()


# -- what the fuzzer found, reduced ------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_chains(path: Path) -> AsyncIterator[Chains]:
    store = await open_node_store(path, NET)
    try:
        chains = Chains(store, NET, clock=lambda: NOW, charter_keys=CHARTER)
        await chains.load()
        yield chains
    finally:
        await store.close()


async def test_a_forgery_at_the_next_seq_does_not_strand_the_events_after_it(
    tmp_path: Path,
) -> None:
    """One batch holds a forgery of oakley's seq 2 (another key, the right prev) ahead of
    oakley's own seq 2 and seq 3. The forgery is refused and seq 2 stored; seq 3 must be
    stored too, not left in the gap buffer behind a gap that does not exist."""
    oak = Log(IDS["oakley"])
    oak.add(IDS["oakley"].founding_body("Oakley", "T1"))
    forged = oak.seal_next(NotePosted(text="forged"), at=NOW, signer=IDS["ghost"])
    two, three = oak.add(NotePosted(text="two")), oak.add(NotePosted(text="three"))
    async with fresh_chains(tmp_path / "node.db") as chains:
        await chains.receive([oak.events[0].wire], source="bus")
        report = await chains.receive([forged.wire, two.wire, three.wire], source="bus")
        assert report.rejected == {"wrong_key": 1}
        head = chains.head_of("oakley")
        assert head is not None and head.seq == 3, (head, dict(chains.buffer), chains.missing())
        assert not chains.buffer and chains.missing() == []


async def test_a_pledge_accepted_before_the_pledge_arrives_leaves_no_refusal(
    tmp_path: Path,
) -> None:
    """The requester's log (request, acceptance of ash's pledge, fulfilment) arrives before
    the pledger's. Once both are in, the acceptance is valid: no domain refusal may stay
    behind, and the projections must equal a rebuild from the log."""
    oak, ash = Log(IDS["oakley"]), Log(IDS["ash"])
    oak.add(IDS["oakley"].founding_body("Oakley", "T1"))
    ash.add(IDS["ash"].founding_body("Ash", "T1"))
    oak.add(
        AidRequested(
            request="r1", category="food", urgency="high", needed_by=NOW + DAY, quantity=3,
            area="T1", description="bread for the shelter", raised_at=NOW - DAY,
        )
    )  # fmt: skip
    ash.add(AidPledged(requester="oakley", request="r1", pledge="p1", what="loaves", quantity=3))
    oak.add(AidPledgeAccepted(request="r1", pledger="ash", pledge="p1", quantity=3))
    oak.add(AidFulfilled(request="r1", pledges=[("ash", "p1")]))
    async with fresh_chains(tmp_path / "node.db") as chains:
        await chains.receive([e.wire for e in oak.events], source="bus")
        await chains.receive([e.wire for e in ash.events], source="bus")
        refused = await chains.store.all("SELECT author, seq, kind, reason FROM domain_rejections")
        assert refused == []
        await assert_rebuild_equals_fold(chains.store)


async def test_a_pledge_id_used_twice_folds_the_same_in_any_batching(tmp_path: Path) -> None:
    """A member pledges twice under one pledge id, to two requests. Whatever the rules make
    of it, one event per batch and the whole log at once must give the same tables."""
    jay = Log(IDS[ROGUE])
    jay.add(IDS[ROGUE].founding_body("Jay", "T1"))
    jay.add(AidPledged(requester="bbb", request="r", pledge="p", what="one", quantity=1))
    jay.add(AidPledged(requester="aaa", request="r", pledge="p", what="two", quantity=2))
    async with fresh_chains(tmp_path / "node.db") as chains:
        for e in jay.events:
            await chains.receive([e.wire], source="bus")
        await assert_rebuild_equals_fold(chains.store)


# -- over a real nats-server ------------------------------------------------------------------


async def publish_raw(url: str, wires: Sequence[tuple[str, bytes]]) -> None:
    """Publish bytes straight into the stream, as a rogue client would."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for subject, wire in wires:
            await js.publish(subject, wire)
    finally:
        await nc.close()


def subject_for(s: Sent) -> str:
    try:
        h = independent.header_summary(s.wire)
    except Exception:  # a spoiled copy: any subject a rogue may publish on
        return "coop.oakley.note.posted"
    subject = f"coop.{h['author']}.{h['kind']}"
    # A tampered header can name an author or kind that is no NATS subject (a space, an
    # empty token): the rogue then publishes it on a subject it may use, as above.
    if not re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", subject):
        return "coop.oakley.note.posted"
    return subject


async def stored_chain(store: Store, author: str) -> list[Envelope]:
    rows = await store.all("SELECT wire FROM events WHERE author = ? ORDER BY seq", (author,))
    return [decode_unsealed(bytes(r[0])) for r in rows]


async def holding(stores: Sequence[Store], ids: Callable[[], set[bytes]]) -> bool:
    return all([ids() <= await s.event_ids() for s in stores])


async def test_hostile_events_in_the_stream_leave_nodes_and_observer_whole(
    tmp_path: Path, nats_server: NatsServer, request: pytest.FixtureRequest
) -> None:
    url = nats_server.url
    datas = [await make_node(tmp_path, a, url, identity=IDS[a]) for a in ("oakley", "elm")]
    oak, elm = nodes = [Node(d, serve_api=False) for d in datas]
    async with running(*nodes), observing(tmp_path / "observer", url) as obs:
        stores = [oak.store, elm.store, obs.store]
        honest: set[bytes] = set()

        def honest_ids() -> set[bytes]:
            return honest

        async def post(node: Node, body: Body) -> None:
            honest.add((await node.post(body)).id)

        await post(oak, NotePosted(text="\u202e\U0001f600 before \x00"))
        await post(oak, OfferPosted(
            offer="bread", item="bread", category="bakery", quantity=50, unit="piece",
            unit_price=35, available_until=2**62, area="T1",
        ))  # fmt: skip
        await wait_until(lambda: holding(stores, honest_ids), what="the offer spreads")
        honest.add((await elm.trading.propose("oakley", "bread", 3, trade="t-1")).id)

        async def trade_is(state: str) -> bool:
            rows = [await market.load_trade(s.db, "elm", "t-1") for s in stores]
            return all(r is not None and r["state"] == state for r in rows)

        await wait_until(lambda: trade_is("proposed"), what="proposed everywhere")
        honest.add((await oak.trading.accept("elm", "t-1")).id)
        await wait_until(lambda: trade_is("accepted"), what="accepted everywhere")

        held = {a: await stored_chain(oak.store, a) for a in ("oakley", "elm")}
        pools = Pools(
            strings=(*EVERYONE, "bread", "t-1"),
            blobs=tuple(e.id for chain in held.values() for e in chain),
        )
        hostile = draw_largest(
            hostile_events(held, pools, now_ms()), lambda h: len(h.sent), fuzz_seed(request)
        )
        note_all = "\n".join(f"{s.role:8} {s.what}" for s in hostile.sent)
        print(f"published by the rogue:\n{note_all}")
        # Shuffled, but a member's events in the order its node would publish them: an
        # event beyond a gap whose author's key is not known yet is not held (§6.4) and is
        # fetched from peers, and no peer serves an author that runs no node.
        shuffled = random.sample(hostile.sent, len(hostile.sent))
        in_order = iter(s for s in hostile.sent if s.role == "member")
        ordered = [next(in_order) if s.role == "member" else s for s in shuffled]
        wires = [(subject_for(s), s.wire) for s in ordered]
        half = len(wires) // 2
        await publish_raw(url, wires[:half])
        honest.add((await oak.trading.ship("elm", "t-1")).id)
        await post(elm, NotePosted(text="in between " + "\u200d" * 100))
        await publish_raw(url, wires[half:])
        await wait_until(lambda: trade_is("shipped"), what="shipped everywhere")
        honest.add((await elm.trading.receive("elm", "t-1")).id)
        await post(oak, NotePosted(text="after"))
        await post(elm, NotePosted(text="after"))

        members = {s.id for s in hostile.sent if s.role == "member" and s.id is not None}

        def expected() -> set[bytes]:
            return honest | members

        with contextlib.suppress(AssertionError):  # then say what is missing where
            await wait_until(lambda: holding(stores, expected), within=30, what="everything")
        whats = {s.id: s.what for s in hostile.sent if s.id is not None}
        for name, store in zip(("oakley", "elm", "observer"), stores, strict=True):
            lost = [whats.get(i, i.hex()) for i in expected() - await store.event_ids()]
            assert not lost, f"{name} lacks:\n" + "\n".join(lost)
        await wait_until(lambda: trade_is("settled"), what="settled everywhere")
        for n in nodes:
            assert n.internal_errors == 0
        assert obs.internal_errors == 0
        heads = {n.slug: n.chains.head_of(n.slug) for n in nodes}

    # Each store, once its node or observer has stopped (nothing arrives any more).
    never = {s.id for s in hostile.sent if s.role in ("forged", "ghost") and s.id}
    for store in [
        *[await open_node_store(db_path(d), NET) for d in datas],
        await open_observer_store(tmp_path / "observer" / "observer.db", NET),
    ]:
        try:
            assert expected() <= await store.event_ids()
            assert not never & await store.event_ids()
            await assert_logs_are_chains(store)
            assert [f.author for f in await store.forks() if f.author != ROGUE] == []
            ledger = await market.balances(store.db)
            assert sum(ledger.values()) == 0 and ledger.get("oakley") == 3 * 35, ledger
            await assert_rebuild_equals_fold(store)
            await assert_audit_clears(store, honest, now_ms())
        finally:
            await store.close()

    # Restarted over a stream that holds forgeries of their names (at their next seq and
    # far beyond it), the nodes recover their own heads and sign the next seq, not a fork.
    async with running(*(Node(d, serve_api=False) for d in datas)) as again:
        posted = [await n.post(NotePosted(text="after a restart")) for n in again]
        for n, env in zip(again, posted, strict=True):
            head = heads[n.slug]
            assert head is not None and (env.seq, env.prev) == (head.seq + 1, head.id)
        await wait_until(
            lambda: holding([n.store for n in again], lambda: {e.id for e in posted}),
            what="the posts after the restart spread",
        )
        for n in again:
            assert [f.author for f in await n.store.forks() if f.author != ROGUE] == []
