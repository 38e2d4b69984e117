"""Pooled purchases (§19) and hours (§20) as docs/PROTOCOL.md states them, written from the
spec alone (it began as an outside reviewer's implementation).

It imports nothing of coopnet: statements are plain values (`Statement`, a body as a dict
of its fields, `counted` as a list of 32-byte ids), so the differential tests
(test_pools_hours.py) can hold coopnet's rules against it. Amounts: units of the pool's
item, credit cents, quarter hours.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_CASES = 1_000_000  # §19 allocation, step 2
ORGANIZER_KINDS = frozenset({"pool.opened", "pool.box_fill", "pool.closed", "pool.cancelled",
                             "pool.delivered"})  # fmt: skip
# §19, the organizer's table: (state, kind) -> next state; None is "none".
ORGANIZER_TABLE: dict[tuple[str | None, str], str] = {
    (None, "pool.opened"): "open",
    ("open", "pool.box_fill"): "box_fill",
    ("open", "pool.closed"): "closed",
    ("open", "pool.cancelled"): "cancelled",
    ("box_fill", "pool.closed"): "closed",
    ("box_fill", "pool.cancelled"): "cancelled",
    ("closed", "pool.cancelled"): "cancelled",
    ("closed", "pool.delivered"): "delivered",
}


@dataclass(frozen=True)
class Statement:
    """One event about a pool, or one `hours.transferred`: id, author, seq in its log,
    kind and body fields (defaults not filled in)."""

    id: bytes
    author: str
    seq: int
    kind: str
    body: dict[str, Any]


def tie_key(organizer: str, pool: str, participant: str) -> bytes:
    """§19 step 6: SHA-256 of UTF-8 "<organizer>/<pool>/<participant>", ascending."""
    return hashlib.sha256(f"{organizer}/{pool}/{participant}".encode()).digest()


def water_fill(amount: int, caps: dict[str, int], order: Sequence[str]) -> dict[str, int]:
    """§19 step 5: the largest level L with sum(min(x, L)) <= amount, then one each to the
    first R participants above L in `order`."""
    assert 0 <= amount <= sum(caps.values())
    low, high = 0, max(caps.values(), default=0)
    while low < high:
        mid = (low + high + 1) // 2
        if sum(min(x, mid) for x in caps.values()) <= amount:
            low = mid
        else:
            high = mid - 1
    out = {p: min(x, low) for p, x in caps.items()}
    left = amount - sum(out.values())
    for p in order:
        if left == 0:
            break
        if caps[p] > low:
            out[p] += 1
            left -= 1
    assert left == 0
    return out


def allocate(
    organizer: str,
    pool: str,
    commitments: Sequence[tuple[str, int, int]],
    case_size: int,
    max_cases: int,
) -> tuple[int, dict[str, int]]:
    """§19 allocation: (cases, participant -> units) from (participant, q, t)."""
    q_sum = sum(q for _, q, _ in commitments)
    t_sum = sum(t for _, _, t in commitments)
    cases = min((q_sum + t_sum) // case_size, -(-q_sum // case_size))
    if max_cases:
        cases = min(cases, max_cases)
    cases = min(cases, MAX_CASES)
    units = cases * case_size
    order = sorted((p for p, _, _ in commitments), key=lambda p: tie_key(organizer, pool, p))
    if units >= q_sum:
        extra = water_fill(units - q_sum, {p: t for p, _, t in commitments}, order)
        return cases, {p: q + extra[p] for p, q, _ in commitments}
    return cases, water_fill(units, {p: q for p, q, _ in commitments}, order)


@dataclass
class Pool:
    """What §19 says of one pool: its state, cases and shares (empty unless closed or
    delivered), refusals (id -> code), receipts counted, settlements (payer, payee, cents;
    no zero entries) and holds (participant -> cents; no zero holds)."""

    state: str = "unknown"
    organizer_state: str | None = None
    cases: int = 0
    shares: dict[str, int] = field(default_factory=dict)
    refused: dict[bytes, str] = field(default_factory=dict)
    received: set[str] = field(default_factory=set)
    settlements: list[tuple[str, str, int]] = field(default_factory=list)
    holds: dict[str, int] = field(default_factory=dict)


def fold_pool(organizer: str, pool: str, statements: Iterable[Statement]) -> Pool:
    """§19 from every statement held about pool (organizer, pool), in any order."""
    held = list(statements)
    by_id = {s.id: s for s in held}
    commits = {s.id: s for s in held if s.kind == "pool.committed"}
    out = Pool()
    opened: dict[str, Any] | None = None
    box: list[bytes] | None = None
    allocation: tuple[int, dict[str, int]] | None = None

    def rule1(ids: list[bytes]) -> bool:
        """The close check's rule 1 (and the box fill's): True when it passes."""
        if len(set(ids)) != len(ids):
            return False
        authors: set[str] = set()
        for i in ids:
            if i in by_id:
                if by_id[i].kind != "pool.committed" or by_id[i].author in authors:
                    return False
                authors.add(by_id[i].author)
        return True

    def all_held(ids: Iterable[bytes]) -> bool:
        return all(i in commits for i in ids)

    def quantity(i: bytes) -> int:
        return int(commits[i].body["quantity"])

    for s in sorted(held, key=lambda s: (s.author, s.seq)):
        if s.kind not in ORGANIZER_KINDS:
            continue
        nxt = ORGANIZER_TABLE.get((out.organizer_state, s.kind))
        if s.author != organizer or nxt is None:
            out.refused[s.id] = "not_authorized"
            continue
        if s.kind == "pool.opened":
            if s.body.get("supplier", "") == organizer:
                out.refused[s.id] = "not_authorized"
                continue
            opened = s.body
        elif s.kind == "pool.box_fill":
            if not rule1(list(s.body["counted"])):
                out.refused[s.id] = "not_authorized"
                continue
            box = list(s.body["counted"])
        elif s.kind == "pool.closed":
            assert opened is not None
            ids = list(s.body["counted"])
            if not rule1(ids):
                out.refused[s.id] = "not_authorized"
                continue
            if box is not None and all_held(ids) and all_held(box):  # rule 3
                before = {commits[i].author: quantity(i) for i in box}
                q0 = sum(before.values())
                top = opened["case_size"] * -(-q0 // opened["case_size"])
                raised = all(
                    commits[i].author in before and quantity(i) >= before[commits[i].author]
                    for i in ids
                )
                if not raised or sum(quantity(i) for i in ids) > top:
                    out.refused[s.id] = "not_authorized"
                    continue
            if all_held(ids) and all_held(box or []):
                rows = [(commits[i].author, quantity(i), int(commits[i].body.get("tolerance", 0)))
                        for i in ids]  # fmt: skip
                allocation = allocate(organizer, pool, rows, opened["case_size"],
                                      opened.get("max_cases", 0))  # fmt: skip
        elif s.kind == "pool.delivered":
            assert opened is not None
            if allocation is not None and allocation[0] < opened.get("min_cases", 1):
                out.refused[s.id] = "not_authorized"
                continue
        out.organizer_state = nxt

    known = allocation is not None
    below = (
        allocation is not None and opened is not None and allocation[0] < opened.get("min_cases", 1)
    )
    if opened is None:
        out.state = "unknown"
    elif out.organizer_state == "cancelled" or below:
        out.state = "cancelled"
    elif out.organizer_state in ("closed", "delivered") and not known:
        out.state = "closing"
    else:
        assert out.organizer_state is not None
        out.state = out.organizer_state
    if allocation is not None and out.state in ("closed", "delivered"):
        out.cases, out.shares = allocation

    receipts = sorted(
        (s for s in held if s.kind == "pool.received"), key=lambda s: (s.author, s.seq)
    )
    seen: set[str] = set()
    for s in receipts:
        zero = known and out.shares.get(s.author, 0) == 0
        if s.author in seen or out.state == "cancelled" or zero:
            out.refused[s.id] = "not_authorized"
        elif out.state == "delivered":
            out.received.add(s.author)
        seen.add(s.author)

    if opened is None:
        return out
    price = int(opened["unit_price"])
    if out.state == "delivered":
        supplier = opened.get("supplier", "")
        total = out.cases * opened["case_size"] * price
        if supplier and total:
            out.settlements.append((organizer, supplier, total))
        for who in sorted(out.received):
            if who != organizer and out.shares[who] * price:
                out.settlements.append((who, organizer, out.shares[who] * price))
    if out.state in ("open", "box_fill", "closing"):
        most = (opened.get("max_cases", 0) or MAX_CASES) * opened["case_size"]
        latest: dict[str, Statement] = {}
        for c in commits.values():
            if c.author not in latest or c.seq > latest[c.author].seq:
                latest[c.author] = c
        for who, c in latest.items():
            units = min(int(c.body["quantity"]) + int(c.body.get("tolerance", 0)), most)
            if who != organizer and units * price:
                out.holds[who] = units * price
    elif out.state in ("closed", "delivered"):
        for who, share in out.shares.items():
            if who != organizer and who not in out.received and share * price:
                out.holds[who] = share * price
    return out


# -- hours (§20) --------------------------------------------------------------------------------


def fold_hours(statements: Iterable[Statement]) -> tuple[dict[str, int], dict[bytes, str]]:
    """§20: hour balances (quarter hours; zero balances left out) and refusals (id -> code)
    from every `hours.transferred` held, in any order."""
    balances: dict[str, int] = {}
    refused: dict[bytes, str] = {}
    used: dict[str, set[str]] = {}
    for s in sorted(statements, key=lambda s: (s.author, s.seq)):
        mine = used.setdefault(s.author, set())
        again = s.body["transfer"] in mine
        mine.add(s.body["transfer"])
        if s.body["to"] == s.author or again:
            refused[s.id] = "not_authorized"
            continue
        balances[s.author] = balances.get(s.author, 0) - s.body["quarters"]
        balances[s.body["to"]] = balances.get(s.body["to"], 0) + s.body["quarters"]
    return {k: v for k, v in balances.items() if v}, refused


def may_sign(balance: int, quarters: int, limit: int) -> bool:
    """§20, the signer's rule: balance - quarters stays at or above -limit."""
    return balance - quarters >= -limit


def hours_text(quarters: int) -> str:
    """§20, for people: decimal hours, "1.5 h", "1 h", "-0.25 h"."""
    sign = "-" if quarters < 0 else ""
    whole, part = divmod(abs(quarters), 4)
    return f"{sign}{whole}{['', '.25', '.5', '.75'][part]} h"
