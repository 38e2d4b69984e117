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
