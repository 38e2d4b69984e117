"""The audit: what an observer finds wrong in the federation's records, with evidence.

Every check recomputes from the log with the protocol's own pure rules (the trade fold, the
ledger, the membership rule), so it does not merely trust the projections it reads beside.
Severity says what is at stake:

- critical: the records themselves are in doubt: an author signed two histories (fork), a
  ledger that does not sum to zero (the credit ledger, pooled purchases' settlements
  included, or the hour ledger), a balance below minus its credit limit, an offer
  accepted beyond its quantity, a pool whose shares break the allocation rule or that
  settled credit without being delivered, a projection that disagrees with the rules, a
  gap that stayed unrepaired after events the author's known key signed;
- warning: an attempt the rules refused (forged, tampered or malformed events; a party
  acting outside its role; an action by a non-member or a retired key). The records are
  intact, but someone tried.
  A neighborhood whose display name looks like an earlier one's, or hides invisible
  characters, is a warning too (PROTOCOL.md §18), and so is a neighborhood that retired
  without settling (PROTOCOL.md §16.5): the ledger still sums to zero, but a balance is
  frozen that the members must decide how to absorb; and so is an hour balance below minus
  the charter's hours limit (§20: receivers cannot refuse by it, the signer should not
  have signed); and so is a neighborhood whose open commitments (open trades as buyer,
  pool commitments' holds) would take it below minus its credit limit, a pool left
  `closing` past a grace period by a close naming a commitment that never arrived, and
  credit or hours paid to a neighborhood never admitted or after its retirement;
- info: worth knowing, proving nothing (events beyond a gap that no known key signed: forged,
  or signed after rotations the observer has not received yet).

`coopnet audit` exits non-zero when any finding is critical.
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import Iterable

import aiosqlite
import msgspec

from coopnet.federation.audit_pools_hours import (
    PoolStatements,
    closing_findings,
    fold_all,
    hold_evidence,
    hour_findings,
    hour_ledger,
    payment_findings,
    pool_findings,
    pool_payments,
    pool_statements,
    sums_of,
)
from coopnet.federation.audit_pools_hours import ledger_sums as ledger_sums
from coopnet.federation.findings import SEVERITY_ORDER, Finding, Severity
from coopnet.federation.names import shown_names
from coopnet.node.engine.gaps import UnverifiableGap
from coopnet.node.engine.store_io import fetch_all
from coopnet.node.membership.projection import standings
from coopnet.node.membership.settlement import unsettled
from coopnet.protocol import Envelope, InvalidEvent, decode_unsealed
from coopnet.protocol.charter import Charter
from coopnet.protocol.kinds import KINDS
from coopnet.protocol.ledger import DEFAULT_CREDIT_LIMIT, Ledger
from coopnet.protocol.membership import is_member
from coopnet.protocol.offers import (
    OPEN,
    Offer,
    OfferPosted,
    OfferRevised,
    OfferWithdrawn,
    offer_step,
    release,
    reserve,
)
from coopnet.protocol.pools import PoolView
from coopnet.protocol.text import safe_text
from coopnet.protocol.trades import (
    BUYER_TABLE,
    OPEN_STATES,
    SELLER_TABLE,
    Statement,
    TradeAccepted,
    TradeCancelled,
    fold_trade,
)

GAPS_META = "open_gaps"  # the observer writes [[author, first, last, since_ms], …] here
GAP_GRACE_MS = 60_000  # a gap open longer than this is a finding
_UNSEAL_CODES = frozenset({"too_large", "malformed", "non_canonical", "bad_version",
                           "wrong_network", "bad_signature", "body_hash_mismatch",
                           "unknown_kind", "bad_body"})  # fmt: skip
UNVERIFIABLE_GAP = UnverifiableGap.code  # an event not held beyond a gap (PROTOCOL.md §6.4)


class AuditReport(msgspec.Struct, kw_only=True):
    """Every finding, the most severe first, and the two ledger sums folded again on the
    way (`pool_ledger_sum` in credit cents, `hours_ledger_sum` in quarter hours: always 0)."""

    findings: list[Finding]
    pool_ledger_sum: int
    hours_ledger_sum: int


async def audit(db: aiosqlite.Connection, charter: Charter | None, *, now_ms: int) -> list[Finding]:
    """Every finding, the most severe first."""
    return (await audit_report(db, charter, now_ms=now_ms)).findings


async def audit_report(
    db: aiosqlite.Connection, charter: Charter | None, *, now_ms: int
) -> AuditReport:
    """`audit`'s findings and the ledger sums, from one fold of the pools and hours."""
    findings: list[Finding] = []
    oversell = await oversell_attempts(db)
    statements = await pool_statements(db)
    pools = fold_all(statements)
    hours = await hour_ledger(db)
    findings += await _refused_events(db)
    findings += await _domain_refusals(db, oversell)
    findings += await _forks(db)
    findings += await _ledger(db, charter, oversell, pools, statements, now_ms)
    findings += await pool_findings(db, pools)
    findings += closing_findings(pools, statements, now_ms=now_ms, grace_ms=GAP_GRACE_MS)
    findings += await hour_findings(db, charter, hours)
    findings += await payment_findings(db, charter, pool_payments(pools, statements))
    findings += await _oversold(db)
    findings += await _non_members(db, charter)
    findings += await _retired_unsettled(db, now_ms)
    findings += await _gaps(db, now_ms)
    findings += await _names(db, charter)
    findings.sort(key=lambda f: (SEVERITY_ORDER[f.severity], f.code, f.author))
    # Titles and details quote what events said (reasons, names): shown safe (§18).
    shown = [
        msgspec.structs.replace(f, title=safe_text(f.title), detail=safe_text(f.detail))
        for f in findings
    ]
    return AuditReport(findings=shown, **sums_of(pools, hours[0]))


def critical_count(findings: list[Finding]) -> int:
    return sum(1 for f in findings if f.severity == "critical")


async def _refused_events(db: aiosqlite.Connection) -> list[Finding]:
    # `retired`: the events were refused past the author's retirement (its key log says so).
    rows = await fetch_all(
        db,
        "SELECT r.code, r.author, COUNT(*), group_concat(hex(r.evidence)), MIN(r.reason),"
        " MIN(r.source), MIN(r.seq) > COALESCE(MAX(a.retired_seq), 0) AND MAX(a.retired_seq) > 0"
        " FROM rejected_events r LEFT JOIN authors a ON a.author = r.author"
        " GROUP BY r.code, r.author ORDER BY r.code, r.author",
    )
    out = []
    for code, author, count, ids, reason, source, retired in rows:
        if code == "fork":
            continue  # the forks table holds the evidence: see _forks
        who = author or "an unverifiable sender"
        name = f"refused_{code}"
        severity: Severity = "warning"
        detail = f"e.g. {reason} (received from {source})"
        if code in _UNSEAL_CODES:
            # `author` is what the header claims (node/engine/evidence.py `claimed`): the
            # event was refused before anything proved who signed it.
            claim = f" claiming to be {author}'s" if author else ""
            title = f"{count} event(s){claim} refused before verification ({code})"
            if author:
                detail += f"; the claimed author {author} is named by the header, unproven"
        elif code == UNVERIFIABLE_GAP:
            name, severity = UNVERIFIABLE_GAP, "info"  # proves nothing: see the detail
            title = (
                f"{count} event(s) claiming to be {author}'s beyond a gap, not signed by a key "
                f"of {author}'s known key log: not buffered"
            )
            detail += (
                "; forged, or signed after key rotations not yet received: the range is "
                "fetched from peers (PROTOCOL.md §6.4)"
            )
        elif code == "not_authorized" and retired:
            name, title = "retired_author", f"{count} event(s) signed after {author} retired"
        else:
            title = f"{count} event(s) of {who} refused ({code})"
        out.append(
            Finding(
                code=name,
                severity=severity,
                title=title,
                detail=detail,
                author=author,
                evidence=_ids(ids),
            )
        )
    return out


async def _domain_refusals(db: aiosqlite.Connection, oversell: dict[bytes, str]) -> list[Finding]:
    """Events stored but refused by the domain rules, told apart by their code and kind,
    never by their reason (it quotes what the event said). Trade statements the market
    folded are judged again, with their parties, in `_ledger`; one it never folded (a body
    of the wrong shape, `bad_body`) is reported here, like any other kind's."""
    rows = await fetch_all(
        db,
        "SELECT author, kind, code, COUNT(*), group_concat(hex(id)), MIN(reason)"
        " FROM domain_rejections"
        " WHERE kind NOT LIKE 'trade.%' OR id NOT IN (SELECT id FROM trade_events)"
        " GROUP BY author, kind, code ORDER BY author, kind, code",
    )
    out = [
        Finding(
            code=f"refused_{code}",
            severity="warning",
            title=f"{count} {kind} event(s) of {author} refused ({count} event(s), {code})",
            detail=reason,
            author=author,
            evidence=_ids(ids),
        )
        for author, kind, code, count, ids, reason in rows
    ]
    by_seller: dict[str, list[str]] = defaultdict(list)
    for event_id, seller in oversell.items():
        by_seller[seller].append(event_id.hex())
    for seller, ids in sorted(by_seller.items()):
        out.append(
            Finding(
                code="oversell_attempt",
                severity="warning",
                title=f"{seller} accepted beyond an offer's quantity "
                f"({len(ids)} event(s), not_authorized)",
                detail="more asked than the offer had left, by a fold of the seller's own log "
                "(PROTOCOL.md §10): refused by every node",
                author=seller,
                evidence=ids[:20],
            )
        )
    return out


# The kinds that move a seller's offers (PROTOCOL.md §10): its offer events, and its own
# acceptances and cancellations of trades.
_BOOK_KINDS = ("offer.posted", "offer.revised", "offer.withdrawn", "trade.accepted",
               "trade.cancelled")  # fmt: skip


async def oversell_attempts(db: aiosqlite.Connection) -> dict[bytes, str]:
    """{event id: seller} of the `trade.accepted` refused `not_authorized` because the
    seller's open offer did not have their quantity left: each such seller's log is folded
    again with the protocol's offer rules (`offer_step`, `reserve`, `release`), as the
    market folds it (node/market/projection.py `_seller_books`)."""
    refused = await fetch_all(
        db,
        "SELECT id, author FROM domain_rejections"
        " WHERE kind = 'trade.accepted' AND code = 'not_authorized'",
    )
    ids = {bytes(r[0]) for r in refused}
    marks = ",".join("?" * len(_BOOK_KINDS))
    out: dict[bytes, str] = {}
    for seller in sorted({str(r[1]) for r in refused}):
        rows = await fetch_all(
            db,
            f"SELECT wire FROM events WHERE author = ? AND kind IN ({marks}) ORDER BY seq",
            (seller, *_BOOK_KINDS),
        )
        envs = (decode_unsealed(bytes(r[0])) for r in rows)  # verified when stored
        out.update((i, seller) for i in beyond_quantity(seller, envs) if i in ids)
    return out


def beyond_quantity(seller: str, events: Iterable[Envelope]) -> list[bytes]:
    """The ids of the seller's acceptances that asked more than its open, still available
    offer had left, folding its events (oldest first) as its offers' books."""
    offers: dict[str, Offer] = {}
    taken: set[tuple[str, str]] = set()  # (buyer, trade) the seller reserved for, ever
    held: dict[tuple[str, str], tuple[str, int]] = {}  # unreleased: (offer, quantity)
    out: list[bytes] = []
    for env in events:
        body = env.body
        if isinstance(body, OfferPosted | OfferRevised | OfferWithdrawn):
            current = offers.get(body.offer)
            if isinstance(body, OfferPosted) and current is not None:
                continue  # posted twice: refused
            with contextlib.suppress(InvalidEvent):  # refused: the offer is unchanged
                offers[body.offer] = offer_step(current, seller, body)
        elif isinstance(body, TradeAccepted) and body.buyer != seller:
            key, offer = (body.buyer, body.trade), offers.get(body.offer)
            if offer is None or key in taken:
                continue
            try:
                offers[body.offer] = reserve(offer, body.quantity, env.at)
            except InvalidEvent:
                still_open = offer.state == OPEN and env.at <= offer.available_until
                if still_open and body.quantity > offer.remaining:
                    out.append(env.id)
                continue
            taken.add(key)
            held[key] = (body.offer, body.quantity)
        elif isinstance(body, TradeCancelled) and body.buyer != seller:
            kept = held.pop((body.buyer, body.trade), None)
            if kept is not None and kept[0] in offers:
                offers[kept[0]] = release(offers[kept[0]], kept[1])
    return out


def _ids(concatenated: object) -> list[str]:
    return [i.lower() for i in str(concatenated).split(",") if i][:20]


async def _forks(db: aiosqlite.Connection) -> list[Finding]:
    rows = await fetch_all(db, "SELECT author, seq, held_id, other_id FROM forks ORDER BY author")
    return [
        Finding(
            code="fork",
            severity="critical",
            title=f"{author} signed two histories at seq {seq}",
            detail="equivocation: both events are kept as evidence; nothing newer of this "
            "author is accepted (PROTOCOL.md §6.2)",
            author=author,
            evidence=[bytes(held).hex(), bytes(other).hex()],
        )
        for author, seq, held, other in rows
    ]


async def trade_statements(db: aiosqlite.Connection) -> dict[tuple[str, str], list[Statement]]:
    rows = await fetch_all(
        db, "SELECT buyer, trade, id, author, seq, at, kind, body FROM trade_events"
    )
    grouped: dict[tuple[str, str], list[Statement]] = defaultdict(list)
    for buyer, trade, eid, author, seq, at, kind, body in rows:
        grouped[(buyer, trade)].append(
            Statement(
                id=bytes(eid), author=author, seq=seq, at=at,
                body=msgspec.msgpack.decode(body, type=KINDS[kind]),
            )
        )  # fmt: skip
    return grouped


async def _ledger(
    db: aiosqlite.Connection,
    charter: Charter | None,
    oversell: dict[bytes, str],
    pools: dict[tuple[str, str], PoolView],
    statements: PoolStatements,
    now_ms: int,
) -> list[Finding]:
    """Every trade folded again with the protocol's rule: who may say what, the ledger it
    settles, and whether the store's projection agrees. The `oversell` attempts are
    reported in `_domain_refusals`. The delivered pools' settlements (`pools`, folded
    again from `statements`, PROTOCOL.md §19) are part of the same ledger. Open
    commitments (§12: a buyer's trades still open at `now_ms`, and the credit its pool
    commitments hold, `PoolView.holds`) count against the credit limit as the signer
    counts them: `credit_commitments_over_limit` (a warning: nothing moved yet) when they
    take a balance within its limit below it."""
    limit = charter.policies.credit_limit if charter else DEFAULT_CREDIT_LIMIT
    held = {
        (r[0], r[1]): r[2] for r in await fetch_all(db, "SELECT buyer, trade, state FROM trades")
    }
    # Acceptances the seller's offer rules refused (withdrawn, expired, no such offer, or
    # beyond its quantity): the trade fold must not count them (as market.refold_trade).
    acceptances = {
        bytes(r[0])
        for r in await fetch_all(
            db, "SELECT id FROM domain_rejections WHERE kind = 'trade.accepted'"
        )
    }
    ledger = Ledger()
    committed: dict[str, int] = defaultdict(int)  # credit cents held by open commitments
    commitment_ids: dict[str, list[bytes]] = defaultdict(list)
    out: list[Finding] = []
    outsiders: dict[str, list[str]] = defaultdict(list)
    broken: dict[str, list[str]] = defaultdict(list)
    for (buyer, trade), said in (await trade_statements(db)).items():
        refused = frozenset(s.id for s in said if s.id in acceptances)
        view = fold_trade(buyer, trade, said, refused)
        by_id = {s.id: s for s in said}
        for sid, _code in view.refused:
            s = by_id[sid]
            if sid in oversell:
                continue  # reported as an oversell attempt
            if view.seller and not _may_say(s, buyer, view.seller):
                outsiders[s.author].append(sid.hex())
            else:
                broken[s.author].append(sid.hex())
        if view.state == "settled":
            ledger.settle(buyer, view.seller, view.quantity * view.unit_price)
        elif view.state_at(now_ms) in OPEN_STATES and view.seller:
            committed[buyer] += view.total
            proposals = [s for s in said if s.author == buyer and s.body.kind == "trade.proposed"]
            if proposals:
                commitment_ids[buyer].append(min(proposals, key=lambda s: s.seq).id)
        if view.state != "unknown" and held.get((buyer, trade)) not in (None, view.state):
            out.append(
                Finding(
                    code="projection_mismatch",
                    severity="critical",
                    title=f"trade {buyer}/{trade}: the store says {held[(buyer, trade)]}, "
                    f"the rules say {view.state}",
                    detail="the projection disagrees with a fold of the log: rebuild it",
                    author=buyer,
                )
            )
    for author, ids in sorted(outsiders.items()):
        out.append(
            Finding(
                code="wrong_party",
                severity="warning",
                title=f"{author} signed {len(ids)} trade statement(s) its role may not make",
                detail="only the buyer signs a buyer's statements and only the seller a "
                "seller's (PROTOCOL.md §11): a receipt by anyone but the buyer could create "
                "credit; refused by every node",
                author=author,
                evidence=ids[:20],
            )
        )
    for author, ids in sorted(broken.items()):
        out.append(
            Finding(
                code="trade_rule_refused",
                severity="warning",
                title=f"{len(ids)} trade statement(s) of {author} out of turn or on other terms",
                detail="refused by the trade tables (PROTOCOL.md §11)",
                author=author,
                evidence=ids[:20],
            )
        )
    # What the participants of a delivered pool still owe its organizer (their unreceived
    # shares, held on their side): the organizer fronted it to the supplier (§19).
    receivable: dict[str, int] = defaultdict(int)
    for key, pool in sorted(pools.items()):
        for payer, payee, cents in pool.settlements():
            ledger.settle(payer, payee, cents)
        if pool.state == "delivered":
            receivable[pool.organizer] += sum(pool.holds().values())
        behind = hold_evidence(pool, statements.get(key, []))
        for who, cents in pool.holds().items():
            committed[who] += cents
            if who in behind:
                commitment_ids[who].append(behind[who])
    if ledger.total() != 0:
        out.append(
            Finding(
                code="ledger_not_zero",
                severity="critical",
                title=f"the ledger sums to {ledger.total()}, not 0",
                detail=json.dumps(ledger.balances, sort_keys=True),
            )
        )
    for name, balance in sorted(ledger.balances.items()):
        if balance + receivable[name] < -limit:
            owed = f" ({receivable[name]} cents of it owed back by its pools' participants)"
            out.append(
                Finding(
                    code="credit_limit_breach",
                    severity="critical",
                    title=f"{name} is at {balance} cents, below its limit of -{limit}"
                    + (owed if receivable[name] else ""),
                    detail="a buyer must never sign a proposal beyond its credit limit, nor an "
                    "organizer deliver a pool beyond it (PROTOCOL.md §12, §19)",
                    author=name,
                )
            )
    for name, holding in sorted(committed.items()):
        balance = ledger.balances.get(name, 0)
        if balance >= -limit and balance - holding < -limit:
            out.append(
                Finding(
                    code="credit_commitments_over_limit",
                    severity="warning",
                    title=f"{name}'s open commitments hold {holding} cents: its balance of "
                    f"{balance} cents less them is below its limit of -{limit}",
                    detail="a neighborhood signs a proposal or a pool commitment only while "
                    "its balance less its open commitments stays within its credit limit "
                    "(PROTOCOL.md §12, §19); nothing has moved yet: settling them would "
                    "breach the limit",
                    author=name,
                    evidence=[i.hex() for i in commitment_ids[name]][:20],
                )
            )
    return out


_BUYER_KINDS = frozenset(k for row in BUYER_TABLE.values() for k in row)
_SELLER_KINDS = frozenset(k for row in SELLER_TABLE.values() for k in row)


def _may_say(s: Statement, buyer: str, seller: str) -> bool:
    """Whether the author's role in the trade allows this kind of statement at all."""
    if s.author == buyer:
        return s.body.kind in _BUYER_KINDS
    if s.author == seller:
        return s.body.kind in _SELLER_KINDS
    return False


async def _oversold(db: aiosqlite.Connection) -> list[Finding]:
    """Accepted, unreleased quantities beyond an offer's quantity (the seller's rules should
    have made that impossible)."""
    rows = await fetch_all(
        db,
        "SELECT o.author, o.offer, o.quantity, SUM(r.quantity) FROM offers o"
        " JOIN reservations r ON r.seller = o.author AND r.offer = o.offer AND r.released = 0"
        " GROUP BY o.author, o.offer HAVING SUM(r.quantity) > o.quantity",
    )
    return [
        Finding(
            code="oversold_offer",
            severity="critical",
            title=f"offer {seller}/{offer}: {reserved} accepted of {quantity}",
            detail="the seller accepted more than its offer holds",
            author=seller,
        )
        for seller, offer, quantity, reserved in rows
    ]


async def _non_members(db: aiosqlite.Connection, charter: Charter | None) -> list[Finding]:
    if charter is None:
        return []  # a development federation: every founded log is a member
    members = await standings(db, charter)
    # A retired neighborhood's log ends at its retirement: what it signed before, it signed
    # as a member (PROTOCOL.md §16.5).
    before = await standings(db, charter, ignore_retirements=True)
    rows = await fetch_all(
        db,
        "SELECT author, kind, COUNT(*), group_concat(hex(id)) FROM events"
        " WHERE kind LIKE 'offer.%' OR kind LIKE 'need.%' OR kind LIKE 'trade.%'"
        " OR kind LIKE 'pool.%' OR kind LIKE 'hours.%'"
        " GROUP BY author, kind",
    )
    out = []
    for author, kind, count, ids in rows:
        if is_member(members, author) or is_member(before, author):
            continue
        status = members[author].status if author in members else "not a member"
        out.append(
            Finding(
                code="non_member_action",
                severity="warning",
                title=f"{count} {kind} event(s) by {author} ({status})",
                detail="nobody may trade with a neighborhood the federation has not admitted",
                author=author,
                evidence=_ids(ids),
            )
        )
    return out


async def _retired_unsettled(db: aiosqlite.Connection, now_ms: int) -> list[Finding]:
    """Retired members whose balance is not zero or whose trades are still open (§16.5).
    A warning, not critical: the records are intact and the ledger sums to zero; the
    balance is frozen on the ledger, and nothing this federation's software does can
    change it (a critical finding would fail every audit from then on)."""
    retired = {
        str(r[0]): bytes(r[1])
        for r in await fetch_all(
            db,
            "SELECT r.slug, e.id FROM member_retirements r"
            " JOIN events e ON e.author = r.slug AND e.seq = r.seq",
        )
    }
    out = []
    for slug, left in (await unsettled(db, retired, now_ms)).items():
        if left.settled:
            continue
        out.append(
            Finding(
                code="retired_unsettled",
                severity="warning",
                title=f"{slug} retired with a balance of {left.balance} cents and "
                f"{len(left.open_trades)} open trade(s)"
                + (f" and {len(left.open_pools)} open pool(s)" if left.open_pools else ""),
                detail=f"{left.describe()}. The balance stays on the ledger as {slug}'s, "
                "frozen (nobody trades with a retired neighborhood); the members decide how "
                "to absorb it",
                author=slug,
                evidence=[retired[slug].hex(), *(t.proposal for t in left.open_trades)][:20],
            )
        )
    return out


async def _gaps(db: aiosqlite.Connection, now_ms: int) -> list[Finding]:
    rows = await fetch_all(db, "SELECT value FROM meta WHERE key = ?", (GAPS_META,))
    gaps = json.loads(rows[0][0]) if rows else []
    return [
        Finding(
            code="unrepaired_gap",
            severity="critical",
            title=f"{author}: events {first}..{last} missing for {(now_ms - since) // 1000} s",
            detail="later events, signed by the author's known key, are held beyond the gap, "
            "but it was not repaired from the stream or any peer",
            author=author,
        )
        for author, first, last, since in gaps
        if now_ms - since > GAP_GRACE_MS
    ]


async def _names(db: aiosqlite.Connection, charter: Charter | None) -> list[Finding]:
    """Display names that imitate another neighborhood's, or carry invisible characters."""
    out = []
    for name in (await shown_names(db, charter)).values():
        evidence = [name.founding] if name.founding else []
        if name.imitates:
            out.append(
                Finding(
                    code="display_name_imitation",
                    severity="warning",
                    title=f"{name.slug} is named {name.name!r}, like {name.imitates}",
                    detail="its display name looks like another neighborhood's name or slug"
                    " (case, width, accents, homoglyphs and invisible characters aside);"
                    " it is shown with its slug",
                    author=name.slug,
                    evidence=evidence,
                )
            )
        if name.hidden:
            out.append(
                Finding(
                    code="display_name_hidden_characters",
                    severity="warning",
                    title=f"{name.slug}'s display name hides {', '.join(name.hidden)}",
                    detail="format or control characters (bidi overrides, zero-width"
                    " characters) can reverse or hide the text beside them; they are removed"
                    " wherever the name is shown",
                    author=name.slug,
                    evidence=evidence,
                )
            )
    return out
