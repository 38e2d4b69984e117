"""coopnet's pool and hour rules (protocol/pools.py, protocol/hours.py) against the ones
written from PROTOCOL.md §19-§20 alone (pools_hours.py), on the allocation, on sets and
orders of a pool's statements, on hour transfers, and on the vectors' history.

The vectors are read with the independent verifier (verifier.py), not with coopnet."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coopnet.protocol import hours as H
from coopnet.protocol import pools as P
from coopnet.protocol.kinds import KINDS

HERE = Path(__file__).resolve().parent
VECTORS_PATH = HERE / ".." / ".." / "protocol" / "vectors" / "envelopes.json"


def _load(name: str, file: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


spec = _load("coopnet_independent_pools_hours", "pools_hours.py")
verifier = _load("coopnet_independent_verifier", "verifier.py")
ORG = "org"
PEOPLE = ("org", "ann", "bob", "cat")
FAST = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)


def ident(n: int) -> bytes:
    return hashlib.sha256(b"pools-hours %d" % n).digest()


# -- the two sides ------------------------------------------------------------------------------


def theirs(organizer: str, pool: str, statements: list[Any]) -> dict[str, Any]:
    """pools_hours.fold_pool, as comparable values."""
    f = spec.fold_pool(organizer, pool, statements)
    return dict(state=f.state, cases=f.cases, shares=f.shares,
                refused=sorted(f.refused.items()), received=sorted(f.received),
                settlements=sorted(f.settlements), holds=f.holds)  # fmt: skip


def ours(organizer: str, pool: str, statements: list[Any]) -> dict[str, Any]:
    """coopnet's fold_pool on the same statements, as comparable values."""
    v = P.fold_pool(organizer, pool, [
        P.PoolStatement(id=s.id, author=s.author, seq=s.seq, at=0, body=KINDS[s.kind](**s.body))
        for s in statements
    ])  # fmt: skip
    return dict(state=v.state, cases=v.cases, shares={s.participant: s.share for s in v.shares},
                refused=sorted(v.refused), received=sorted(v.received),
                settlements=sorted(v.settlements()), holds=v.holds())  # fmt: skip


# -- the allocation -----------------------------------------------------------------------------

commitments = st.lists(
    st.tuples(
        st.from_regex(r"[a-z][a-z0-9-]{1,5}", fullmatch=True),
        st.integers(0, 40),
        st.integers(0, 20),
    ),
    max_size=8,
    unique_by=lambda c: c[0],
)


@FAST
@given(commitments, st.integers(1, 25), st.sampled_from([0, 1, 2, 3, 5]), st.randoms())
def test_the_allocation_is_the_spec_s(
    rows: list[tuple[str, int, int]], case_size: int, max_cases: int, rnd: random.Random
) -> None:
    cases, shares = spec.allocate(ORG, "p1", rows, case_size, max_cases)
    got = P.allocate(ORG, "p1", case_size, max_cases, rows)
    assert (got.cases, got.shares) == (cases, shares)
    rnd.shuffle(rows)
    assert P.allocate(ORG, "p1", case_size, max_cases, rows) == got
    assert sum(shares.values()) == cases * case_size
    assert all(0 <= shares[p] <= q + t for p, q, t in rows)


def test_the_acceptance_example() -> None:
    """§19 worked example: s 10; A 3 + 2, B 4 + 1, C 2 + 0: one case, A's and B's extras
    differ by at most one; A 13 + 0 alone, no cap: 10 units (too little tolerance)."""
    rows = [("A", 3, 2), ("B", 4, 1), ("C", 2, 0)]
    cases, shares = spec.allocate(ORG, "p", rows, 10, 0)
    assert cases == 1 and shares["C"] == 2 and {shares["A"], shares["B"]} <= {3, 4, 5}
    assert sum(shares.values()) == 10 and abs((shares["A"] - 3) - (shares["B"] - 4)) <= 1
    assert spec.allocate(ORG, "p", [("A", 13, 0)], 10, 0) == (1, {"A": 10})
    assert spec.allocate(ORG, "p", [("A", 8, 0), ("B", 3, 0)], 10, 0) == (1, {"A": 7, "B": 3})


# -- sets and orders of a pool's statements -----------------------------------------------------


@st.composite
def pool_statements(draw: st.DrawFn) -> list[Any]:
    """The organizer's and participants' logs about pool (org, p1), anything the shapes
    allow: statements in any order of kinds, closes and box fills naming commitments, other
    statements or ids held nowhere; some participants' statements not held (yet); shuffled."""
    n = iter(range(1, 10_000))
    case_size = draw(st.integers(1, 12))
    min_cases = draw(st.integers(1, 3))
    opened: dict[str, Any] = dict(
        pool="p1", item="rice", unit="kilogram", case_size=case_size, min_cases=min_cases,
        max_cases=draw(st.sampled_from([0, min_cases, min_cases + 2])),
        unit_price=draw(st.sampled_from([0, 1, 3, 50])), closes_at=0)  # fmt: skip
    supplier = draw(st.sampled_from(["", "sup", "ann", ORG]))
    opened |= {"supplier": supplier} if supplier else {"supplier_name": "Wholesale Ltd"}
    logs: dict[str, list[tuple[bytes, str, dict[str, Any]]]] = {p: [] for p in PEOPLE}
    commits: list[bytes] = []
    for p in PEOPLE:
        for _ in range(draw(st.integers(0, 3))):
            body = dict(organizer=ORG, pool="p1", quantity=draw(st.integers(0, 15)),
                        tolerance=draw(st.integers(0, 8)))  # fmt: skip
            logs[p].append((ident(next(n)), "pool.committed", body))
            commits.append(logs[p][-1][0])
        for _ in range(draw(st.integers(0, 2))):
            logs[p].append((ident(next(n)), "pool.received", dict(organizer=ORG, pool="p1")))
    others = [i for p in PEOPLE for i, k, _ in logs[p] if k != "pool.committed"]
    kinds = draw(st.lists(st.sampled_from(sorted(spec.ORGANIZER_KINDS)), max_size=6))
    if draw(st.booleans()):
        kinds.insert(0, "pool.opened")
    for kind in kinds:
        i = ident(next(n))
        if kind == "pool.opened":
            body = dict(opened)
        elif kind in ("pool.box_fill", "pool.closed"):
            choices = [*commits, *others[:2], ident(99_999)]
            body = dict(pool="p1", counted=draw(st.lists(st.sampled_from(choices), max_size=6)))
            others.append(i)
        else:
            body = dict(pool="p1")
            others.append(i)
        logs[ORG].insert(draw(st.integers(0, len(logs[ORG]))), (i, kind, body))
    out = []
    for p, log in logs.items():
        seq = 0
        for i, kind, body in log:
            seq += draw(st.integers(1, 2))
            if p == ORG or draw(st.integers(0, 9)):
                out.append(spec.Statement(i, p, seq, kind, body))
    return list(draw(st.permutations(out)))


@st.composite
def pool_lifecycles(draw: st.DrawFn) -> list[Any]:
    """Mostly well-formed lifecycles (commit, box fill and raises, close, deliver or
    cancel, receipts), with a few mistakes, some statements not held, shuffled."""
    n = iter(range(1, 10_000))
    logs: dict[str, list[tuple[bytes, str, dict[str, Any]]]] = {p: [] for p in PEOPLE}

    def add(p: str, kind: str, body: dict[str, Any]) -> bytes:
        logs[p].append((ident(next(n)), kind, body))
        return logs[p][-1][0]

    min_cases = draw(st.integers(1, 2))
    add(ORG, "pool.opened", dict(
        pool="p1", item="rice", unit="kilogram", case_size=draw(st.integers(1, 10)),
        unit_price=draw(st.sampled_from([0, 1, 30])), min_cases=min_cases, closes_at=0,
        max_cases=draw(st.sampled_from([0, min_cases, min_cases + 1])),
        supplier="sup"))  # fmt: skip

    def commit(p: str, quantity: int) -> None:
        latest[p] = (add(p, "pool.committed", dict(organizer=ORG, pool="p1", quantity=quantity,
                         tolerance=draw(st.integers(0, 6)))), quantity)  # fmt: skip

    latest: dict[str, tuple[bytes, int]] = {}
    for p in PEOPLE:
        for _ in range(draw(st.integers(0, 2))):
            commit(p, draw(st.integers(0, 12)))
    stage = draw(st.sampled_from(["open", "close", "deliver", "deliver", "cancel"]))
    if stage != "open" and draw(st.booleans()):
        add(ORG, "pool.box_fill", dict(pool="p1", counted=[i for i, _ in latest.values()]))
        for p in list(latest):
            if draw(st.booleans()):
                commit(p, max(latest[p][1] + draw(st.integers(-1, 4)), 0))
    if stage != "open":
        counted = [i for i, _ in latest.values()]
        if counted and draw(st.integers(0, 5)) == 0:
            counted.pop()
        add(ORG, "pool.closed", dict(pool="p1", counted=counted))
    if stage == "deliver":
        add(ORG, "pool.delivered", dict(pool="p1"))
    if stage == "cancel":
        add(ORG, "pool.cancelled", dict(pool="p1"))
    for p in PEOPLE:
        for _ in range(draw(st.sampled_from([0, 1, 1, 2]))):
            add(p, "pool.received", dict(organizer=ORG, pool="p1"))
    out = [spec.Statement(i, p, seq, kind, body)
           for p, log in logs.items() for seq, (i, kind, body) in enumerate(log, 1)
           if p == ORG or draw(st.integers(0, 15))]  # fmt: skip
    return list(draw(st.permutations(out)))


@settings(FAST, max_examples=400)
@given(st.one_of(pool_statements(), pool_lifecycles()), st.randoms())
def test_a_pool_folds_as_the_spec_says_in_any_order(
    statements: list[Any], rnd: random.Random
) -> None:
    expected = theirs(ORG, "p1", statements)
    assert ours(ORG, "p1", statements) == expected
    rnd.shuffle(statements)
    assert ours(ORG, "p1", statements) == expected


# -- hours -------------------------------------------------------------------------------------


@st.composite
def transfers(draw: st.DrawFn) -> list[Any]:
    out: list[Any] = []
    for author in ("aa", "bb", "cc"):
        seq = 0
        for _ in range(draw(st.integers(0, 6))):
            seq += draw(st.integers(1, 3))
            body = dict(transfer=draw(st.sampled_from(["t1", "t2", "t3"])),
                        to=draw(st.sampled_from(["aa", "bb", "cc", "dd"])),
                        quarters=draw(st.integers(1, 40_000)))  # fmt: skip
            out.append(spec.Statement(ident(len(out)), author, seq, "hours.transferred", body))
    return list(draw(st.permutations(out)))


def our_hours(statements: list[Any]) -> tuple[dict[str, int], dict[bytes, str]]:
    ledger, refused = H.fold_hours([
        H.HoursStatement(id=s.id, author=s.author, seq=s.seq, body=H.HoursTransferred(**s.body))
        for s in statements
    ])  # fmt: skip
    assert ledger.total() == 0
    return {k: v for k, v in ledger.balances.items() if v}, dict(refused)


@settings(FAST, max_examples=300)
@given(transfers())
def test_hour_transfers_fold_as_the_spec_says(statements: list[Any]) -> None:
    assert our_hours(statements) == spec.fold_hours(statements)


@settings(FAST, max_examples=300)
@given(st.integers(-(10**6), 10**6), st.integers(1, 1000), st.integers(0, 1000))
def test_hours_for_people_and_the_signer_s_limit(quarters: int, spend: int, limit: int) -> None:
    assert H.hours_text(quarters) == spec.hours_text(quarters)
    if quarters >= 0:
        assert H.parse_hours(H.hours_text(quarters)) == quarters
    try:
        H.check_hours_spend("aa", quarters, spend, limit)
        signed = True
    except Exception:
        signed = False
    assert signed == spec.may_sign(quarters, spend, limit)


# -- the vectors' history -----------------------------------------------------------------------


def _value(buf: bytes, pos: int) -> tuple[Any, int]:
    """One body field's value, read with the verifier's reader: a scalar, or an array of
    them (`counted`)."""
    tok = verifier.read_token(buf, pos)
    if tok.kind == verifier.ARRAY:
        items, at = [], tok.end
        for _ in range(tok.integer):
            item, at = _value(buf, at)
            items.append(item)
        return items, at
    value = {verifier.INT: tok.integer, verifier.STR: tok.text, verifier.BIN: tok.raw}[tok.kind]
    return value, tok.end


def vector_statements() -> list[Any]:
    """The vectors' valid pool and hours events whose bodies are not refused, as statements."""
    with VECTORS_PATH.open(encoding="utf-8") as fh:
        vectors = json.load(fh)
    out = []
    for v in vectors:
        if not v["valid"] or v.get("refused") or not v["kind"].startswith(("pool.", "hours.")):
            continue
        wire, net = bytes.fromhex(v["wire"]), bytes.fromhex(v["net"])
        event_id, header, _ = verifier.unseal(wire, net)
        body_bytes = verifier.split_wire(wire).body
        top = verifier.read_token(body_bytes, 0)
        body, pos = {}, top.end
        for _ in range(top.integer):
            key = verifier.read_token(body_bytes, pos)
            body[key.text], pos = _value(body_bytes, key.end)
        out.append(spec.Statement(event_id, header["author"].text, header["seq"].integer,
                                  header["kind"].text, body))  # fmt: skip
    return out


def test_the_vectors_history_folds_as_the_spec_says() -> None:
    statements = vector_statements()
    pools: dict[tuple[str, str], list[Any]] = {}
    for s in statements:
        if s.kind.startswith("pool."):
            organizer = s.body.get("organizer", s.author)
            pools.setdefault((organizer, s.body["pool"]), []).append(s)
    assert pools
    for (organizer, pool), held in pools.items():
        assert ours(organizer, pool, held) == theirs(organizer, pool, held)
    hours = [s for s in statements if s.kind == "hours.transferred"]
    assert hours and our_hours(hours) == spec.fold_hours(hours)
