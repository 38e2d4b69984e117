"""The audit of pooled purchases (docs/PROTOCOL.md §19) and of the hour ledger (§20).

Like the rest of the audit (federation/audit.py), every check folds the log again with the
protocol's own rules (`fold_pool`, `allocate`, `fold_hours`) and compares with what the
store's projections hold: shares that break the allocation rule, credit settled for a pool
that was not delivered, an hour ledger that does not sum to zero (critical), and hour
balances below minus the charter's hours limit (a warning).
"""

from __future__ import annotations

import json
from collections import defaultdict

import aiosqlite
import msgspec

from coopnet.federation.findings import Finding
from coopnet.node.engine.store_io import fetch_all
from coopnet.protocol import decode_unsealed
from coopnet.protocol.charter import Charter
from coopnet.protocol.hours import (
    DEFAULT_HOURS_LIMIT,
    HourLedger,
    HoursStatement,
    HoursTransferred,
    fold_hours,
    hours_text,
)
from coopnet.protocol.kinds import KINDS
from coopnet.protocol.ledger import Ledger
from coopnet.protocol.pools import PoolStatement, PoolView, allocate, fold_pool

# The pool states in which the allocation is known and stands.
_ALLOCATED = frozenset({"closed", "delivered"})


async def pool_statements(db: aiosqlite.Connection) -> dict[tuple[str, str], list[PoolStatement]]:
    """Every pool's statements as the store keyed them, {(organizer, pool): [statement]}."""
    rows = await fetch_all(
        db, "SELECT organizer, pool, id, author, seq, at, kind, body FROM pool_events"
    )
    grouped: dict[tuple[str, str], list[PoolStatement]] = defaultdict(list)
    for organizer, pool, eid, author, seq, at, kind, body in rows:
        grouped[(organizer, pool)].append(
            PoolStatement(
                id=bytes(eid), author=author, seq=seq, at=at,
                body=msgspec.msgpack.decode(body, type=KINDS[kind]),
            )
        )  # fmt: skip
    return grouped


async def fold_pools(db: aiosqlite.Connection) -> dict[tuple[str, str], PoolView]:
    """Every pool folded again with the protocol's rule (`fold_pool`), by (organizer, pool)."""
    return {
        (organizer, pool): fold_pool(organizer, pool, statements)
        for (organizer, pool), statements in (await pool_statements(db)).items()
    }


def misallocation(view: PoolView) -> str:
    """Why a closed or delivered pool's shares break the allocation rule (PROTOCOL.md §19),
    or "" when they keep it: the rule (`allocate`) run again on the counted commitments
    must give the same cases and shares, the shares must sum to cases × case_size, each
    between 0 and quantity + tolerance, and the cases within min_cases..max_cases."""
    opened = view.opened
    if opened is None or view.state not in _ALLOCATED:
        return ""
    size = opened.case_size
    shares = {x.participant: x.share for x in view.shares if x.share}
    try:
        again = allocate(
            view.organizer, view.pool, size, opened.max_cases,
            [(x.participant, x.quantity, x.tolerance) for x in view.shares],
        )  # fmt: skip
    except ValueError as exc:  # two shares of one participant, a negative quantity
        return f"its counted commitments cannot be allocated: {exc}"
    ruled = {p: n for p, n in again.shares.items() if n}
    if (again.cases, ruled) != (view.cases, shares):
        return (
            f"the rule allocates {again.cases} case(s) as {_shares_text(ruled)}; the pool "
            f"has {view.cases} case(s) as {_shares_text(shares)}"
        )
    if sum(shares.values()) != view.cases * size:
        return f"its shares sum to {sum(shares.values())} units, not {view.cases} × {size}"
    beyond = [x.participant for x in view.shares if not 0 <= x.share <= x.quantity + x.tolerance]
    if beyond:
        return f"shares beyond quantity + tolerance: {', '.join(sorted(beyond))}"
    if view.cases < opened.min_cases or (opened.max_cases and view.cases > opened.max_cases):
        return (
            f"{view.cases} case(s), outside min_cases {opened.min_cases} .. max_cases "
            f"{opened.max_cases or 'none'}"
        )
    return ""


def _shares_text(shares: dict[str, int]) -> str:
    return ", ".join(f"{p} {n}" for p, n in sorted(shares.items())) or "no share"


async def pool_findings(
    db: aiosqlite.Connection, pools: dict[tuple[str, str], PoolView]
) -> list[Finding]:
    """Every pool folded again (`fold_pools`) against the rule and the store: shares that
    break the allocation rule or differ from the store's (`pool_misallocated`), credit
    settled for a pool that was not delivered (`pool_settled_undelivered`), a stored
    state that differs from the fold's (`projection_mismatch`). All critical: the rules
    make each impossible, so the records themselves are in doubt. Pool statements the
    rules refused are reported with the other domain refusals (`refused_<code>`)."""
    stored = {
        (r[0], r[1]): (str(r[2]), int(r[3] or 0))
        for r in await fetch_all(db, "SELECT organizer, pool, state, cases FROM pools")
    }
    stored_shares: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for organizer, pool, participant, share in await fetch_all(
        db, "SELECT organizer, pool, participant, share FROM pool_shares WHERE share > 0"
    ):
        stored_shares[(organizer, pool)][participant] = int(share)
    stored_settled: dict[tuple[str, str], list[tuple[str, str, int]]] = defaultdict(list)
    for organizer, pool, payer, payee, amount in await fetch_all(
        db, "SELECT organizer, pool, payer, payee, amount FROM pool_settlements WHERE amount > 0"
    ):
        stored_settled[(organizer, pool)].append((payer, payee, int(amount)))
    out: list[Finding] = []
    for key in sorted(set(pools) | set(stored_settled)):
        organizer, pool = key
        view = pools.get(key)
        state = view.state if view is not None else "unknown"
        name = f"pool {organizer}/{pool}"
        settled = sorted(stored_settled.get(key, []))
        if view is not None:
            settled = sorted(set(settled) | {s for s in view.settlements() if s[2] > 0})
        if state != "delivered" and settled:
            out.append(
                Finding(
                    code="pool_settled_undelivered",
                    severity="critical",
                    title=f"{name} is {state}, yet {len(settled)} settlement(s) moved credit",
                    detail="credit moves for a pool only once its organizer signed "
                    "`pool.delivered` (PROTOCOL.md §19): "
                    + "; ".join(f"{a} paid {b} {c} cents" for a, b, c in settled[:10]),
                    author=organizer,
                )
            )
        if view is None:
            continue
        wrong = misallocation(view)
        if not wrong and state in _ALLOCATED and key in stored:
            held_cases, held_shares = stored[key][1], stored_shares.get(key, {})
            mine = {x.participant: x.share for x in view.shares if x.share}
            if (held_cases, held_shares) != (view.cases, mine):
                wrong = (
                    f"the store allocates {held_cases} case(s) as {_shares_text(held_shares)}"
                    f"; the rule {view.cases} case(s) as {_shares_text(mine)}"
                )
        if wrong:
            out.append(
                Finding(
                    code="pool_misallocated",
                    severity="critical",
                    title=f"{name}: shares that break the allocation rule",
                    detail=f"{wrong} (PROTOCOL.md §19)",
                    author=organizer,
                )
            )
        held = stored.get(key)
        if state != "unknown" and held is not None and held[0] != state:
            out.append(
                Finding(
                    code="projection_mismatch",
                    severity="critical",
                    title=f"{name}: the store says {held[0]}, the rules say {state}",
                    detail="the projection disagrees with a fold of the log: rebuild it",
                    author=organizer,
                )
            )
    return out


async def hour_ledger(
    db: aiosqlite.Connection,
) -> tuple[HourLedger, set[tuple[str, str, str, int]]]:
    """The federation's hour ledger folded again from the log with the protocol's rule
    (`fold_hours`, PROTOCOL.md §20: each author's transfers in its log order, one to itself
    or reusing a transfer id refused), leaving out the transfers a domain rule refused for
    another reason (a party not a member, or retired: judged as for trades). Returns the
    ledger (quarter hours) and the transfers it kept, as (author, transfer, to, quarters)."""
    refused = {
        bytes(r[0])
        for r in await fetch_all(
            db, "SELECT id FROM domain_rejections WHERE kind = 'hours.transferred'"
        )
    }
    statements = []
    for eid, author, seq, wire in await fetch_all(
        db, "SELECT id, author, seq, wire FROM events WHERE kind = 'hours.transferred'"
    ):
        body = decode_unsealed(bytes(wire)).body  # verified when stored
        if isinstance(body, HoursTransferred):  # else a body of the wrong shape: `bad_body`
            statements.append(HoursStatement(id=bytes(eid), author=author, seq=seq, body=body))
    _, by_rule = fold_hours(statements)
    outside = refused - {i for i, _ in by_rule}  # refused by membership, not by §20's rule
    statements = [x for x in statements if x.id not in outside]
    ledger, by_rule = fold_hours(statements)
    dropped = {i for i, _ in by_rule}
    kept = {
        (x.author, x.body.transfer, x.body.to, x.body.quarters)
        for x in statements
        if x.id not in dropped
    }
    return ledger, kept


async def hour_findings(db: aiosqlite.Connection, charter: Charter | None) -> list[Finding]:
    """The hour ledger folded again (`hour_ledger`): it must sum to zero and agree with the
    store's `hour_transfers` (critical otherwise); a balance below minus the charter's
    hours limit is a warning (`hours_limit_breach`): receivers cannot refuse by it (the
    order across logs is unknowable), the signer should not have signed (§20)."""
    limit = charter.policies.hours_limit if charter else DEFAULT_HOURS_LIMIT
    ledger, kept = await hour_ledger(db)
    held = {
        (str(r[0]), str(r[1]), str(r[2]), int(r[3]))
        for r in await fetch_all(
            db, "SELECT author, transfer, to_slug, quarters FROM hour_transfers"
        )
    }
    out: list[Finding] = []
    names = sorted({a for a, _, _, _ in kept | held} | {t for _, _, t, _ in kept | held})
    if ledger.total() != 0:
        out.append(
            Finding(
                code="hours_ledger_not_zero",
                severity="critical",
                title=f"the hour ledger sums to {ledger.total()} quarter hours, not 0",
                detail=json.dumps({n: ledger.balance_of(n) for n in names}, sort_keys=True),
            )
        )
    for author, transfer, to, quarters in sorted(held ^ kept):
        says = "the store holds" if (author, transfer, to, quarters) in held else "the log has"
        out.append(
            Finding(
                code="projection_mismatch",
                severity="critical",
                title=f"hours {author}/{transfer}: {says} {quarters} quarter hours to {to}, "
                "the other does not",
                detail="the projection disagrees with a fold of the log: rebuild it",
                author=author,
            )
        )
    for name in names:
        balance = ledger.balance_of(name)
        if balance < -limit:
            out.append(
                Finding(
                    code="hours_limit_breach",
                    severity="warning",
                    title=f"{name} is at {hours_text(balance)} ({balance} quarter hours), "
                    f"below its hours limit of -{hours_text(limit)}",
                    detail="a neighborhood must never sign hours over beyond its hours limit "
                    "(PROTOCOL.md §20); the transfers stand, every node counts them",
                    author=name,
                )
            )
    return out


async def ledger_sums(db: aiosqlite.Connection) -> dict[str, int]:
    """`pool_ledger_sum`: the credit cents the delivered pools settled, folded again, summed
    over every balance (part of the credit ledger, always 0); `hours_ledger_sum`: the hour
    ledger folded again, in quarter hours (always 0)."""
    pools = Ledger()
    for view in (await fold_pools(db)).values():
        for payer, payee, cents in view.settlements():
            pools.settle(payer, payee, cents)
    hours, _ = await hour_ledger(db)
    return {"pool_ledger_sum": pools.total(), "hours_ledger_sum": hours.total()}
