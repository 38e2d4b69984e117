"""The audit of pooled purchases (docs/PROTOCOL.md §19) and of the hour ledger (§20).

Like the rest of the audit (federation/audit.py), every check folds the log again with the
protocol's own rules (`fold_pool`, `allocate`, `fold_hours`) and compares with what the
store's projections hold: shares that break the allocation rule, credit settled for a pool
that was not delivered, an hour ledger that does not sum to zero (critical); and, as
warnings: hour balances below minus the charter's hours limit, a pool left `closing` (a
close naming a commitment that never arrived) while it holds its participants' credit,
and credit or hours paid to a neighborhood never admitted or after its retirement.
"""

from __future__ import annotations

import json
from collections import defaultdict

import aiosqlite
import msgspec

from coopnet.federation.findings import Finding
from coopnet.node.engine.store_io import fetch_all
from coopnet.node.membership.projection import standings
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
from coopnet.protocol.membership import is_member
from coopnet.protocol.pools import (
    PoolBoxFill,
    PoolClosed,
    PoolCommitted,
    PoolDelivered,
    PoolReceived,
    PoolStatement,
    PoolView,
    allocate,
    fold_pool,
)

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


PoolStatements = dict[tuple[str, str], list[PoolStatement]]


async def fold_pools(db: aiosqlite.Connection) -> dict[tuple[str, str], PoolView]:
    """Every pool folded again with the protocol's rule (`fold_pool`), by (organizer, pool)."""
    return fold_all(await pool_statements(db))


def fold_all(statements: PoolStatements) -> dict[tuple[str, str], PoolView]:
    """`fold_pool` over statements grouped as `pool_statements` returns them."""
    return {
        (organizer, pool): fold_pool(organizer, pool, held)
        for (organizer, pool), held in statements.items()
    }


def hold_evidence(view: PoolView, statements: list[PoolStatement]) -> dict[str, bytes]:
    """Participant → the id of the commitment behind its hold (`PoolView.holds`, §19): the
    counted one once the allocation is known, else its latest in its own log order."""
    if view.shares:
        return {x.participant: x.commitment for x in view.shares}
    latest: dict[str, PoolStatement] = {}
    for s in sorted(statements, key=lambda s: (s.author, s.seq)):
        if isinstance(s.body, PoolCommitted):
            latest[s.author] = s
    return {who: s.id for who, s in latest.items()}


def closing_findings(
    pools: dict[tuple[str, str], PoolView],
    statements: PoolStatements,
    *,
    now_ms: int,
    grace_ms: int,
) -> list[Finding]:
    """Pools `closing` for longer than `grace_ms` (`pool_closing_stalled`, a warning, §19):
    the organizer's close (or its box fill) names commitments by id that were never
    received, so the allocation stays pending and every participant's commitment keeps
    holding its credit. The rules refuse nothing (the commitment may still arrive, as an
    event beyond a gap may): the time is the close's own `at` (ms, signed by the organizer).
    Evidence: the close, then each missing id."""
    out: list[Finding] = []
    for key, view in sorted(pools.items()):
        if view.state != "closing":
            continue
        organizer, pool = key
        held = statements.get(key, [])
        refused = {i for i, _ in view.refused}
        ids = {s.id for s in held}
        fills = [s for s in held if isinstance(s.body, PoolBoxFill) and s.id not in refused]
        close = next(
            (s for s in held if isinstance(s.body, PoolClosed) and s.id not in refused), None
        )
        if close is None or now_ms - close.at <= grace_ms:
            continue
        named = [i for s in [*fills, close] for i in s.body.counted]  # type: ignore[attr-defined]
        missing = list(dict.fromkeys(i for i in named if i not in ids))
        holds = view.holds()
        out.append(
            Finding(
                code="pool_closing_stalled",
                severity="warning",
                title=f"pool {organizer}/{pool} has been closing for "
                f"{(now_ms - close.at) // 1000} s: {len(missing)} counted commitment(s) never "
                f"arrived, {sum(holds.values())} cents of credit held",
                detail="its allocation waits for every commitment its close names "
                "(PROTOCOL.md §19); missing: "
                + ", ".join(i.hex() for i in missing[:10])
                + "; held: "
                + (", ".join(f"{p} {c} cents" for p, c in sorted(holds.items())) or "nothing")
                + ". A close naming an id no participant signed leaves the pool closing for "
                "ever: its organizer cancels it",
                author=organizer,
                evidence=[close.id.hex(), *(i.hex() for i in missing)][:20],
            )
        )
    return out


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


class Payment(msgspec.Struct, frozen=True, kw_only=True):
    """Credit (cents) or hours (quarter hours) that count for `payee`, by the event `id`
    its payer signed at `at` (ms): a pool's delivery (the organizer pays a member
    supplier), a participant's receipt (it pays the organizer), an hour transfer."""

    payer: str
    payee: str
    cents: int = 0
    quarters: int = 0
    id: bytes
    at: int


def pool_payments(
    pools: dict[tuple[str, str], PoolView], statements: PoolStatements
) -> list[Payment]:
    """The payments the delivered pools settle (`PoolView.settlements`, §19), each with the
    statement that made it: the organizer's `pool.delivered` for the supplier's, the
    participant's counted `pool.received` for the organizer's."""
    out: list[Payment] = []
    for key, view in sorted(pools.items()):
        refused = {i for i, _ in view.refused}
        made: dict[tuple[str, str], PoolStatement] = {}
        for s in sorted(statements.get(key, []), key=lambda s: (s.author, s.seq)):
            if s.id in refused:
                continue
            if isinstance(s.body, PoolDelivered) and s.author == view.organizer:
                made.setdefault((s.author, "delivered"), s)
            elif isinstance(s.body, PoolReceived):
                made.setdefault((s.author, "received"), s)
        for payer, payee, cents in view.settlements():
            step = "delivered" if payer == view.organizer else "received"
            signed = made.get((payer, step))
            if signed is not None:
                out.append(
                    Payment(payer=payer, payee=payee, cents=cents, id=signed.id, at=signed.at)
                )
    return out


async def payment_findings(
    db: aiosqlite.Connection, charter: Charter | None, pools: list[Payment]
) -> list[Finding]:
    """Credit or hours that count for a neighborhood outside the federation (§16.4-16.5),
    warnings, by payee: `payment_to_non_member` when it was never admitted (a pool's member
    `supplier`, an hours `to`; with no charter, a slug whose log no one founded);
    `payment_to_retired` when the payment was signed after its retirement (by the
    signers' clocks: `at`, ms). Receivers cannot refuse either, as for trades (the order
    of admission or retirement across logs is unknowable); the signer refuses
    (`not_a_member`). `pools` are the pool payments (`pool_payments`); the hour transfers
    that count (`hour_ledger`) are added here. Evidence: the paying events."""
    _, kept = await _hours_kept(db)
    at = {
        bytes(r[0]): int(r[1])
        for r in await fetch_all(db, "SELECT id, at FROM events WHERE kind = 'hours.transferred'")
    }
    payments = [
        *pools,
        *(
            Payment(payer=x.author, payee=x.body.to, quarters=x.body.quarters, id=x.id,
                    at=at.get(x.id, 0))
            for x in kept
        ),
    ]  # fmt: skip
    members = await standings(db, charter)
    before = await standings(db, charter, ignore_retirements=True)
    retired_at = {
        str(r[0]): int(r[1]) for r in await fetch_all(db, "SELECT slug, at FROM member_retirements")
    }
    grouped: dict[tuple[str, str], list[Payment]] = defaultdict(list)
    for p in payments:
        if p.payee in retired_at and p.at > retired_at[p.payee]:
            grouped[("payment_to_retired", p.payee)].append(p)
        elif not (is_member(members, p.payee) or is_member(before, p.payee)):
            grouped[("payment_to_non_member", p.payee)].append(p)
    out: list[Finding] = []
    for (code, payee), paid in sorted(grouped.items()):
        cents, quarters = sum(p.cents for p in paid), sum(p.quarters for p in paid)
        amounts = " and ".join(
            x
            for x in (f"{cents} cents" if cents else "", hours_text(quarters) if quarters else "")
            if x
        )
        payers = ", ".join(sorted({p.payer for p in paid}))
        if code == "payment_to_retired":
            status = f"after it retired (at {retired_at[payee]} ms)"
            why = "its balance is frozen on retiring (§16.5)"
        else:
            status = members[payee].status if payee in members else "not a member"
            status = f"({status})"
            why = "the federation never admitted it (§16.4)"
        out.append(
            Finding(
                code=code,
                severity="warning",
                title=f"{len(paid)} payment(s) of {amounts} to {payee} {status}",
                detail=f"signed by {payers}: nobody pays a neighborhood outside the "
                f"federation, {why}; the payments count on every node (receivers cannot "
                "know the order across logs), the signer should have refused (not_a_member)",
                author=payee,
                evidence=[p.id.hex() for p in paid][:20],
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
    ledger, kept = await _hours_kept(db)
    return ledger, {(x.author, x.body.transfer, x.body.to, x.body.quarters) for x in kept}


async def _hours_kept(db: aiosqlite.Connection) -> tuple[HourLedger, list[HoursStatement]]:
    """`hour_ledger`'s fold: the ledger and the statements it kept."""
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
    return ledger, [x for x in statements if x.id not in dropped]


async def hour_findings(
    db: aiosqlite.Connection,
    charter: Charter | None,
    folded: tuple[HourLedger, set[tuple[str, str, str, int]]],
) -> list[Finding]:
    """The hour ledger folded again (`folded`, from `hour_ledger`): it must sum to zero and
    agree with the store's `hour_transfers` (critical otherwise); a balance below minus the
    charter's hours limit is a warning (`hours_limit_breach`): receivers cannot refuse by it
    (the order across logs is unknowable), the signer should not have signed (§20)."""
    limit = charter.policies.hours_limit if charter else DEFAULT_HOURS_LIMIT
    ledger, kept = folded
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
    """`sums_of` the pools and the hour ledger folded again from `db` (the audit's own
    report, `audit.audit_report`, gives the same from the folds it makes anyway)."""
    return sums_of(await fold_pools(db), (await hour_ledger(db))[0])


def sums_of(pools: dict[tuple[str, str], PoolView], hours: HourLedger) -> dict[str, int]:
    """`pool_ledger_sum`: the credit cents the delivered `pools` settled, summed over every
    balance (part of the credit ledger, always 0); `hours_ledger_sum`: the hour ledger's
    total, in quarter hours (always 0)."""
    settled = Ledger()
    for view in pools.values():
        for payer, payee, cents in view.settlements():
            settled.settle(payer, payee, cents)
    return {"pool_ledger_sum": settled.total(), "hours_ledger_sum": hours.total()}
