"""Pooled purchases across co-ops (order cycles), pure (docs/PROTOCOL.md §19).

A pool is named by `(organizer, pool)`. The organizer opens it for one product from one
supplier (a member neighborhood, or a supplier outside the federation named in the pool),
sold by the case; other co-ops commit a quantity and a tolerance, and change or withdraw
while it is open; the organizer may turn it to box fill (only raises that fill the open
case), then closes it naming exactly which commitments it counted, so every node computes
the same allocation from the same events (`allocate`). A closed pool is delivered by the
organizer (paying a member supplier) and each participant confirms its share (paying the
organizer): credit moves only on the payer's own statement, as with trades (§11).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Annotated

import msgspec

from coopnet.protocol.body import Body, Digest, ShortText
from coopnet.protocol.offers import Cents, ItemName, LocalId, Millis, Unit
from coopnet.protocol.trades import Slug

# Bounds (§19): a case holds at most a million units and a pool buys at most a million
# cases; a commitment's quantity and tolerance are each at most 10^9 units. A pool's
# largest total, max cases × case size × unit price, is bounded by MAX_POOL_TOTAL_CENTS
# (checked by the opening's shape, so an out-of-bound pool is `bad_body`).
MAX_POOL_TOTAL_CENTS = 10**12
MAX_COUNTED = 256
CaseSize = Annotated[int, msgspec.Meta(ge=1, le=10**6)]
CaseCount = Annotated[int, msgspec.Meta(ge=1, le=10**6)]
Capacity = Annotated[int, msgspec.Meta(ge=0, le=10**6)]  # 0: no capacity
Units = Annotated[int, msgspec.Meta(ge=0, le=10**9)]
OptionalSlug = Annotated[str, msgspec.Meta(pattern=r"^([a-z][a-z0-9-]{1,31})?(?!\n)$")]
OptionalLocalId = Annotated[
    str, msgspec.Meta(pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,39})?(?!\n)$")
]
SupplierName = Annotated[str, msgspec.Meta(max_length=80)]


class PoolOpened(Body, frozen=True, kw_only=True):
    """The organizer opens a pool: `item` in `unit`, bought by the case of `case_size`
    units at `unit_price` credit cents per unit (so a case costs case_size × unit_price).

    The supplier is a member (`supplier`, and optionally the offer it sells from,
    `supplier_offer`) or a business outside the federation (`supplier_name`): exactly one
    of the two. `single_unit_price` is what the supplier charges for one unit bought alone
    (0: not given), for the savings the observer reports. The pool buys at least
    `min_cases` cases or is cancelled; `max_cases` caps it (0: no cap). Commitments are
    taken until `closes_at` (ms since the epoch, advisory: the closing event decides).
    """

    kind = "pool.opened"
    pool: LocalId
    item: ItemName
    unit: Unit
    case_size: CaseSize
    unit_price: Cents
    min_cases: CaseCount = 1
    max_cases: Capacity = 0
    closes_at: Millis
    supplier: OptionalSlug = ""
    supplier_offer: OptionalLocalId = ""
    supplier_name: SupplierName = ""
    single_unit_price: Cents = 0

    def __post_init__(self) -> None:
        # Raised while decoding, these make the body's shape refuse it: `bad_body` (§7.1).
        if bool(self.supplier) == bool(self.supplier_name.strip()):
            raise ValueError("a pool names exactly one supplier: `supplier` or `supplier_name`")
        if self.supplier_offer and not self.supplier:
            raise ValueError("`supplier_offer` is a member supplier's offer: name `supplier`")
        if self.max_cases and self.max_cases < self.min_cases:
            raise ValueError(f"max_cases {self.max_cases} is below min_cases {self.min_cases}")
        top = (self.max_cases or 10**6) * self.case_size * self.unit_price
        if top > MAX_POOL_TOTAL_CENTS:
            raise ValueError(
                f"a pool of up to {self.max_cases or 10**6} cases of {self.case_size} at "
                f"{self.unit_price} cents could total {top} cents, beyond the bound of "
                f"{MAX_POOL_TOTAL_CENTS} (set max_cases)"
            )


class PoolCommitted(Body, frozen=True, kw_only=True):
    """A participant commits `quantity` units, and would take up to `tolerance` more to
    fill a case. Its latest commitment replaces the earlier ones; 0 and 0 withdraws."""

    kind = "pool.committed"
    organizer: Slug
    pool: LocalId
    quantity: Units
    tolerance: Units = 0


class PoolBoxFill(Body, frozen=True, kw_only=True):
    """The organizer ends taking new commitments, naming by event id the commitments that
    stand (at most one per participant): from now on only those participants may raise
    their quantity, and only to fill the case left open (§19, box fill)."""

    kind = "pool.box_fill"
    pool: LocalId
    counted: Annotated[list[Digest], msgspec.Meta(max_length=MAX_COUNTED)]


class PoolClosed(Body, frozen=True, kw_only=True):
    """The organizer closes the pool, naming by event id each commitment it counted (at
    most one per participant). The allocation follows from those alone (`allocate`)."""

    kind = "pool.closed"
    pool: LocalId
    counted: Annotated[list[Digest], msgspec.Meta(max_length=MAX_COUNTED)]


class PoolCancelled(Body, frozen=True, kw_only=True):
    """The organizer cancels a pool before delivery: nothing settles."""

    kind = "pool.cancelled"
    pool: LocalId
    reason: ShortText = ""


class PoolDelivered(Body, frozen=True, kw_only=True):
    """The organizer received the cases: a member supplier is paid cases × case_size ×
    unit_price by the organizer."""

    kind = "pool.delivered"
    pool: LocalId


class PoolReceived(Body, frozen=True, kw_only=True):
    """A participant confirms it received its share: it pays the organizer share ×
    unit_price."""

    kind = "pool.received"
    organizer: Slug
    pool: LocalId


POOL_KINDS: tuple[type[Body], ...] = (
    PoolOpened,
    PoolCommitted,
    PoolBoxFill,
    PoolClosed,
    PoolCancelled,
    PoolDelivered,
    PoolReceived,
)

# -- the lifecycle: the organizer's table, the allocation, the fold -------------------------

NONE = "none"
# What the organizer may sign about its pool, in its own log order:
# {organizer state: {event kind: next organizer state}}. Anything else it signs about the
# pool is refused `not_authorized` (§19).
ORGANIZER_TABLE: dict[str, dict[str, str]] = {
    NONE: {"pool.opened": "open"},
    "open": {
        "pool.box_fill": "box_fill",
        "pool.closed": "closed",
        "pool.cancelled": "cancelled",
    },
    "box_fill": {"pool.closed": "closed", "pool.cancelled": "cancelled"},
    "closed": {"pool.cancelled": "cancelled", "pool.delivered": "delivered"},
    "cancelled": {},
    "delivered": {},
}
ORGANIZER_KINDS = frozenset({"pool.opened", "pool.box_fill", "pool.closed", "pool.cancelled",
                             "pool.delivered"})  # fmt: skip
# The pool's state, from the organizer's and the allocation: "unknown" (statements held, the
# opening not yet), "closing" (closed, some counted commitment not held yet: allocation
# pending), "cancelled" also for a pool closed below its minimum.
STATES = ("unknown", "open", "box_fill", "closing", "closed", "cancelled", "delivered")
# A pool buys at most this many cases, whatever its max_cases (the bound of CaseCount).
MAX_CASES = 10**6


class PoolStatement(msgspec.Struct, frozen=True, kw_only=True):
    """One pool event as the fold needs it: its id, author, seq in the author's log,
    timestamp (ms) and decoded body."""

    id: bytes
    author: str
    seq: int
    at: int
    body: Body


class Share(msgspec.Struct, kw_only=True):
    """A counted commitment and what the allocation gave it: `quantity` and `tolerance`
    (units) as committed, `share` (units) allocated, `commitment` the counted event's id."""

    participant: str
    quantity: int
    tolerance: int
    share: int
    commitment: bytes


class Allocation(msgspec.Struct, kw_only=True):
    """The allocation's result: whole `cases` bought, and each participant's share in units
    (every participant given, 0 included); the shares sum to cases × case_size."""

    cases: int
    shares: dict[str, int]


def tie_break_key(organizer: str, pool: str, participant: str) -> bytes:
    """A participant's place in the tie-break order (§19): SHA-256 of the UTF-8 bytes of
    "<organizer>/<pool>/<participant>", compared as bytes, ascending first."""
    return hashlib.sha256(f"{organizer}/{pool}/{participant}".encode()).digest()


def _water_fill(amount: int, caps: list[int], order: list[int]) -> list[int]:
    """Spread `amount` units over `caps` as evenly as possible (§19): each gets min(cap, L)
    for the largest level L with sum(min(cap, L)) <= amount, then the R units left go one
    each to the first R (in `order`, indices into caps) whose cap is above L.
    Requires 0 <= amount <= sum(caps)."""
    if not 0 <= amount <= sum(caps):
        raise ValueError(f"cannot spread {amount} units over capacities {caps}")

    def filled(level: int) -> int:
        return sum(min(cap, level) for cap in caps)

    low, high = 0, max(caps, default=0)  # filled(low) <= amount; find the largest such level
    while low < high:
        mid = (low + high + 1) // 2
        if filled(mid) <= amount:
            low = mid
        else:
            high = mid - 1
    out = [min(cap, low) for cap in caps]
    left = amount - sum(out)
    for i in order:
        if left == 0:
            break
        if caps[i] > low:
            out[i] += 1
            left -= 1
    return out


def allocate(
    organizer: str,
    pool: str,
    case_size: int,
    max_cases: int,
    commitments: Sequence[tuple[str, int, int]],
) -> Allocation:
    """The allocation rule (§19), pure and independent of the commitments' order.

    `commitments`: the counted ones as (participant, quantity, tolerance), units, one per
    participant. With Q the quantities' sum and T the tolerances': cases
    c = min(floor((Q + T) / s), ceil(Q / s)), at most `max_cases` when set (0: none) and at
    most MAX_CASES; N = c × s units. If N >= Q each participant gets its quantity plus a
    water-filled part of E = N - Q over the tolerances; else N is water-filled over the
    quantities. Ties go by `tie_break_key`. Whether c reaches the pool's minimum is the
    fold's business, not this function's.
    """
    if case_size < 1:
        raise ValueError(f"case size {case_size} is below 1")
    names = [c[0] for c in commitments]
    if len(set(names)) != len(names):
        raise ValueError("at most one commitment per participant")
    for name, q, t in commitments:
        if q < 0 or t < 0:
            raise ValueError(f"{name}: quantity {q} and tolerance {t} must be >= 0")
    q_sum = sum(c[1] for c in commitments)
    t_sum = sum(c[2] for c in commitments)
    cases = min((q_sum + t_sum) // case_size, -(-q_sum // case_size), max_cases or MAX_CASES)
    cases = min(cases, MAX_CASES)
    units = cases * case_size
    order = sorted(range(len(names)), key=lambda i: tie_break_key(organizer, pool, names[i]))
    if units >= q_sum:
        extra = _water_fill(units - q_sum, [c[2] for c in commitments], order)
        got = [c[1] + e for c, e in zip(commitments, extra, strict=True)]
    else:
        got = _water_fill(units, [c[1] for c in commitments], order)
    return Allocation(cases=cases, shares=dict(zip(names, got, strict=True)))


class PoolView(msgspec.Struct, kw_only=True):
    """Pool `(organizer, pool)` as every node computes it from the same statements (§19).

    `latest`: participant → (quantity, tolerance) of its latest commitment (its own log
    order); `shares`: the counted commitments and their allocation, by participant, empty
    until the allocation is known; `received`: participants whose receipt counted;
    `refused`: (event id, code) of the statements that broke a rule.
    """

    organizer: str
    pool: str
    opened: PoolOpened | None = None
    organizer_state: str = NONE
    state: str = "unknown"
    cases: int = 0
    shares: list[Share] = msgspec.field(default_factory=list)
    latest: dict[str, tuple[int, int]] = msgspec.field(default_factory=dict)
    received: set[str] = msgspec.field(default_factory=set)
    refused: list[tuple[bytes, str]] = msgspec.field(default_factory=list)
    opened_at: int = 0

    def share_of(self, participant: str) -> int:
        """`participant`'s allocated units (0 if none, or before the allocation)."""
        return next((s.share for s in self.shares if s.participant == participant), 0)

    def settlements(self) -> list[tuple[str, str, int]]:
        """(payer, payee, credit cents) the pool settles (§19): none until delivered; then
        the organizer pays a member supplier cases × case_size × unit_price, and each
        participant whose receipt counted pays the organizer share × unit_price (no entry
        for the organizer itself, nor for a zero amount)."""
        if self.state != "delivered" or self.opened is None:
            return []
        price = self.opened.unit_price
        out: list[tuple[str, str, int]] = []
        supplier = self.opened.supplier
        total = self.cases * self.opened.case_size * price
        if supplier and supplier != self.organizer and total > 0:
            out.append((self.organizer, supplier, total))
        for s in self.shares:
            amount = s.share * price
            if s.participant in self.received and s.participant != self.organizer and amount:
                out.append((s.participant, self.organizer, amount))
        return out

    def holds(self) -> dict[str, int]:
        """Participant → credit cents its open commitment holds (§19): while the pool is
        open, in box fill or closing, (quantity + tolerance) × unit_price of its latest
        commitment (units capped at the most the pool can buy); once closed (or delivered),
        share × unit_price until its receipt counts; cancelled or unknown: nothing. The
        organizer holds nothing for its own commitment; zero holds are left out."""
        if self.opened is None:
            return {}
        price = self.opened.unit_price
        out: dict[str, int] = {}
        if self.state in ("open", "box_fill", "closing"):
            cap = (self.opened.max_cases or MAX_CASES) * self.opened.case_size
            for who, (q, t) in self.latest.items():
                if who != self.organizer and min(q + t, cap) * price:
                    out[who] = min(q + t, cap) * price
        elif self.state in ("closed", "delivered"):
            for s in self.shares:
                mine = s.participant in self.received or s.participant == self.organizer
                if not mine and s.share * price:
                    out[s.participant] = s.share * price
        return out


def _counted_refusal(
    counted: Sequence[bytes], commitments: dict[bytes, PoolStatement], others: set[bytes]
) -> tuple[bool, list[PoolStatement]]:
    """Check a box fill's or close's `counted` ids: (refused, the named commitments held).
    Refused if an id repeats, names another statement of this pool, or two held commitments
    have the same author; ids not held yet leave it pending (fewer are returned)."""
    if len(set(counted)) != len(counted) or any(i in others for i in counted):
        return True, []
    held = [commitments[i] for i in counted if i in commitments]
    authors = [s.author for s in held]
    return len(set(authors)) != len(authors), held


def _close_refused(
    opened: PoolOpened,
    counted: Sequence[bytes],
    box_fill: list[bytes] | None,
    commitments: dict[bytes, PoolStatement],
    others: set[bytes],
) -> bool:
    """Whether a close is refused (§19, close check): its ids repeat none and name no other
    statement of the pool, at most one commitment per author. After a box fill, once every
    commitment the two name is held: every counted author was counted by the box fill, with
    no less than its box-fill quantity, and the counted total is at most the box-fill total
    Q0 rounded up to whole cases, case_size × ceil(Q0 / case_size)."""
    bad, held = _counted_refusal(counted, commitments, others)
    if bad or box_fill is None:
        return bad
    if len(held) != len(counted) or not all(i in commitments for i in box_fill):
        return False  # pending: judged once every named commitment is held
    before = {commitments[i].author: _quantity(commitments[i]) for i in box_fill}
    q0 = sum(before.values())
    for s in held:
        if s.author not in before or _quantity(s) < before[s.author]:
            return True
    top = opened.case_size * -(-q0 // opened.case_size)
    return sum(_quantity(s) for s in held) > top


def _quantity(s: PoolStatement) -> int:
    assert isinstance(s.body, PoolCommitted)
    return s.body.quantity


def _allocation(
    organizer: str,
    pool: str,
    opened: PoolOpened,
    counted: list[bytes],
    commitments: dict[bytes, PoolStatement],
) -> Allocation:
    """The allocation of a close whose counted commitments are all held."""
    rows = []
    for i in counted:
        body = commitments[i].body
        assert isinstance(body, PoolCommitted)
        rows.append((commitments[i].author, body.quantity, body.tolerance))
    return allocate(organizer, pool, opened.case_size, opened.max_cases, rows)


def fold_pool(organizer: str, pool: str, statements: Iterable[PoolStatement]) -> PoolView:
    """The state of pool `(organizer, pool)` from every statement held about it (§19).

    The organizer's statements are judged in its log order against ORGANIZER_TABLE; each
    participant's in its own log order; the pool's state follows from the whole set, so it
    does not depend on the order the statements arrived in.
    """
    view = PoolView(organizer=organizer, pool=pool)
    ordered = sorted(statements, key=lambda s: (s.author, s.seq, s.id))
    commitments = {s.id: s for s in ordered if isinstance(s.body, PoolCommitted)}
    others = {s.id for s in ordered if not isinstance(s.body, PoolCommitted)}
    for s in ordered:
        if isinstance(s.body, PoolCommitted):
            view.latest[s.author] = (s.body.quantity, s.body.tolerance)
    box_fill: list[bytes] | None = None
    counted: list[bytes] | None = None
    alloc: Allocation | None = None
    for s in ordered:
        body = s.body
        if body.kind not in ORGANIZER_KINDS:
            continue
        nxt = ORGANIZER_TABLE[view.organizer_state].get(body.kind)
        if s.author != organizer or nxt is None:
            view.refused.append((s.id, "not_authorized"))
            continue
        if isinstance(body, PoolOpened):
            if body.supplier == organizer:
                view.refused.append((s.id, "not_authorized"))  # it cannot buy from itself
                continue
            view.opened, view.opened_at = body, s.at
        elif isinstance(body, PoolBoxFill):
            if _counted_refusal(body.counted, commitments, others)[0]:
                view.refused.append((s.id, "not_authorized"))
                continue
            box_fill = list(body.counted)
        elif isinstance(body, PoolClosed):
            assert view.opened is not None
            if _close_refused(view.opened, body.counted, box_fill, commitments, others):
                view.refused.append((s.id, "not_authorized"))
                continue
            counted = list(body.counted)
            # Known once every commitment the close and its box fill name is held.
            if all(i in commitments for i in [*counted, *(box_fill or [])]):
                alloc = _allocation(organizer, pool, view.opened, counted, commitments)
        elif isinstance(body, PoolDelivered):
            assert view.opened is not None
            if alloc is not None and alloc.cases < view.opened.min_cases:
                view.refused.append((s.id, "not_authorized"))  # closed below its minimum
                continue
        view.organizer_state = nxt
    below_minimum = False
    if alloc is not None and counted is not None and view.organizer_state != "cancelled":
        assert view.opened is not None
        below_minimum = alloc.cases < view.opened.min_cases
        if not below_minimum:
            view.cases = alloc.cases
            for i in counted:
                s = commitments[i]
                assert isinstance(s.body, PoolCommitted)
                view.shares.append(
                    Share(
                        participant=s.author,
                        quantity=s.body.quantity,
                        tolerance=s.body.tolerance,
                        share=alloc.shares[s.author],
                        commitment=s.id,
                    )
                )
            view.shares.sort(key=lambda x: x.participant)
    view.state = _state(view.organizer_state, counted is not None and alloc is None, below_minimum)
    _judge_receipts(view, ordered, allocation_known=alloc is not None)
    return view


def _state(organizer_state: str, pending: bool, below_minimum: bool) -> str:
    """The pool's state from the organizer's, whether the allocation is pending, and
    whether it fell below the minimum (§19)."""
    if organizer_state == NONE:
        return "unknown"
    if organizer_state in ("closed", "delivered"):
        if pending:
            return "closing"
        if below_minimum:
            return "cancelled"
    return organizer_state


def _judge_receipts(view: PoolView, ordered: list[PoolStatement], allocation_known: bool) -> None:
    """Each participant's `pool.received`, in its own log order (§19): the first counts
    when the pool is delivered and its share is above 0; it is refused when the pool is
    cancelled (or closed below its minimum), or when its share is 0 once the allocation is
    known; otherwise it is held, neither counted nor refused. A second one is refused."""
    first: dict[str, PoolStatement] = {}
    for s in ordered:
        if not isinstance(s.body, PoolReceived):
            continue
        if s.author in first:
            view.refused.append((s.id, "not_authorized"))
            continue
        first[s.author] = s
        if view.state == "cancelled" or (allocation_known and view.share_of(s.author) == 0):
            view.refused.append((s.id, "not_authorized"))
        elif view.state == "delivered":
            view.received.add(s.author)


def pool_key(author: str, body: Body) -> tuple[str, str] | None:
    """`(organizer, pool)` of a pool event, or None for other kinds."""
    if isinstance(body, PoolCommitted | PoolReceived):
        return body.organizer, body.pool
    if isinstance(body, POOL_KINDS):
        return author, body.pool  # type: ignore[attr-defined]
    return None
