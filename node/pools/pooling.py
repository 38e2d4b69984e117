"""What a neighborhood's node decides before it signs a pool event (PROTOCOL.md §19).

The node is the authority for its own statements: as an organizer it opens, turns to box
fill, closes, cancels and delivers only its own pools, each in the state the lifecycle
allows, and closes naming commitments every receiver accepts (the box-fill rule applied);
as a participant it commits only within its credit limit, counting what its other open
trades and pools hold (so it can never overspend), and confirms only a share it was given
of a delivered pool. Checks and signature are made under one lock, so two requests racing
each other are decided one after the other. Refusals here happen before anything is
signed, and carry their own codes (`Refused`). Amounts are credit cents, quantities the
pool's units, times ms since the epoch.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, Protocol, cast

import anyio
import msgspec

from coopnet.node.engine.context import NodeContext
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.terminal import quantity_text
from coopnet.node.pools import projection as pools
from coopnet.protocol import Envelope
from coopnet.protocol.body import Body
from coopnet.protocol.errors import InvalidEvent
from coopnet.protocol.offers import Unit
from coopnet.protocol.pools import (
    MAX_COUNTED,
    PoolBoxFill,
    PoolCancelled,
    PoolClosed,
    PoolCommitted,
    PoolDelivered,
    PoolOpened,
    PoolReceived,
    tie_break_key,
)

log = logging.getLogger("coopnet.pools")


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def checked(body: Body) -> Body:
    """`body` as every receiver decodes it: a field out of its bounds, or an opening that
    names no supplier or two, is refused here (`bad_body`, 400) rather than signed."""
    try:
        return msgspec.msgpack.decode(msgspec.msgpack.encode(body), type=type(body))
    except msgspec.ValidationError as exc:
        raise Refused("bad_body", str(exc), 400) from None


def counted_commitments(
    organizer: str,
    pool: str,
    case_size: int,
    held: list[pools.Commitment],
    box_fill: list[bytes] | None,
) -> list[pools.Commitment]:
    """The commitments a close (or, with `box_fill` None, a box fill) names: each
    participant's latest with a quantity above 0, in its own log order.

    After a box fill (`box_fill`: the ids it named), only its participants count, each with
    its latest commitment that keeps the rule (§19): no less than its box-fill quantity,
    and the counted total at most the box-fill total rounded up to whole cases. Taken in
    tie-break order, a raise that would pass that total falls back to the participant's
    latest commitment that fits (its box-fill one always does), so the close is never
    refused by a receiver.
    """
    by_participant: dict[str, list[pools.Commitment]] = {}
    for c in held:  # sorted by participant, then seq
        by_participant.setdefault(c.participant, []).append(c)
    if box_fill is None:
        latest = [cs[-1] for cs in by_participant.values()]
        return [c for c in latest if c.quantity > 0]
    base = {c.participant: c for c in held if c.id in box_fill}
    q0 = sum(c.quantity for c in base.values())
    room = case_size * -(-q0 // case_size) - q0  # units the raises may add in all
    out = []
    for who in sorted(base, key=lambda p: tie_break_key(organizer, pool, p)):
        floor = base[who].quantity
        for c in reversed(by_participant[who]):
            if c.seq < base[who].seq:
                break  # never earlier than what the box fill named
            if floor <= c.quantity <= floor + room:
                room -= c.quantity - floor
                out.append(c)
                break
    return [c for c in out if c.quantity > 0]


class Members(Protocol):
    """What pools need of membership (node/membership/, whose `Governance` the runtime
    passes in): no pool with a neighborhood that is not a member now (§16.4)."""

    async def require_members(self, *slugs: str) -> None:
        """Raise Refused (`not_a_member`) unless every slug is a member now."""


class Credit(Protocol):
    """What pools need of the market (node/market/, whose `Trading` the runtime passes
    in): the mutual-credit standing a commitment is checked against, offers' prices, and
    the node's one lock under which every check-then-sign that spends credit runs (a trade
    proposal and a pool commitment racing each other are decided one after the other)."""

    @property
    def lock(self) -> anyio.Lock:
        """The lock every check-then-sign that spends this node's credit holds."""

    def limit_of(self, party: str) -> int:
        """`party`'s credit limit (cents, a positive number: it may go this far below 0)."""

    async def standing(self, party: str) -> tuple[int, int]:
        """`party`'s balance and open commitments (cents), trades and pools counted."""

    async def offer_price(self, seller: str, offer: str) -> int | None:
        """The unit price (cents) of `seller`'s offer `offer`, or None if none is held."""

    def check_credit(self, party: str, balance: int, committed: int, amount: int) -> None:
        """Raise Refused (`credit_limit_exceeded`, said in the federation's currency) when
        `amount` cents more would take `party` below minus the credit limit."""


class Pooling:
    """The node's side of every pool (PROTOCOL.md §19): checks, then signs.

    Every step raises Refused (a stable code and an HTTP status) when this node will not
    sign it.
    """

    def __init__(self, node: NodeContext, members: Members, credit: Credit) -> None:
        self.node = node
        self.members = members
        self.credit = credit
        # The market's lock, not one of our own: a pool commitment and a trade proposal
        # checked at once would each see the other's credit as still free.
        self.lock = credit.lock

    @property
    def me(self) -> str:
        return self.node.slug

    async def _sign(self, body: Body) -> Envelope:
        try:
            return await self.node.post(body)
        except InvalidEvent as exc:
            raise Refused(exc.code, exc.message) from None

    async def _pool(self, organizer: str, pool: str) -> dict[str, Any]:
        found = await pools.load_pool(self.node.store.reader, organizer, pool)
        if found is None:
            raise Refused("not_found", f"no pool {organizer}/{pool} here", 404)
        return found

    def _organizer(self, p: dict[str, Any], *states: str) -> None:
        if p["organizer"] != self.me:
            raise Refused(
                "not_authorized", f"only the organizer ({p['organizer']}) may do this", 403
            )
        if p["state"] not in states:
            raise Refused("wrong_state", f"pool is {p['state']}, needs {' or '.join(states)}")

    async def open(
        self,
        *,
        item: str,
        unit: str,
        case_size: int,
        unit_price: int,
        closes_at: int,
        min_cases: int = 1,
        max_cases: int = 0,
        supplier: str = "",
        supplier_name: str = "",
        supplier_offer: str = "",
        single_unit_price: int | None = None,
        pool: str | None = None,
    ) -> Envelope:
        """Open a pool organized by this node. A member supplier must be a member now
        (`not_a_member`), not this node (`not_authorized`), and the offer it names must be
        one of its (`offer_unavailable`); `single_unit_price` defaults to that offer's
        unit price (else 0, not given)."""
        async with self.lock:
            await self.members.require_members(self.me, *([supplier] if supplier else []))
            if supplier == self.me:
                raise Refused("not_authorized", "a co-op does not buy a pool from itself", 403)
            pool = pool or new_id("p")
            if await pools.load_pool(self.node.store.reader, self.me, pool) is not None:
                raise Refused("duplicate", f"pool {pool} exists: choose another id")
            if supplier_offer and not supplier:
                raise Refused(
                    "bad_request",
                    f"supplier_offer {supplier_offer} is an offer of a member supplier:"
                    " name that co-op in supplier too",
                    400,
                )
            if supplier_offer:
                price = await self.credit.offer_price(supplier, supplier_offer)
                if price is None:
                    raise Refused(
                        "offer_unavailable", f"{supplier} has no offer {supplier_offer}", 404
                    )
                if single_unit_price is None:
                    single_unit_price = price
            if closes_at <= self.node.clock():
                raise Refused("bad_request", "closes_at is in the past", 400)
            try:  # the opening's own checks (one supplier, the bounds) run as it is made
                body = PoolOpened(
                    pool=pool, item=item, unit=cast(Unit, unit), case_size=case_size,
                    unit_price=unit_price, min_cases=min_cases, max_cases=max_cases,
                    closes_at=closes_at, supplier=supplier, supplier_offer=supplier_offer,
                    supplier_name=supplier_name, single_unit_price=single_unit_price or 0,
                )  # fmt: skip
            except ValueError as exc:
                raise Refused("bad_body", str(exc), 400) from None
            return await self._sign(checked(body))

    async def commit(
        self, organizer: str, pool: str, quantity: int, tolerance: int = 0
    ) -> Envelope:
        """Commit (or change, or with 0 and 0 withdraw) this node's quantity and tolerance.

        While the pool is open: any; in box fill: only a participant the box fill counted,
        raising its quantity at most to fill the case left open (`box_fill_rule`). Within
        the credit limit counting every open commitment but this pool's earlier one
        (`credit_limit_exceeded`)."""
        async with self.lock:
            p = await self._pool(organizer, pool)
            await self.members.require_members(self.me, organizer)
            if p["state"] not in ("open", "box_fill"):
                raise Refused("wrong_state", f"pool is {p['state']}, needs open or box_fill")
            db = self.node.store.reader
            if p["state"] == "box_fill":
                await self._box_fill_raise(p, quantity)
            total = (quantity + tolerance) * p["unit_price"]
            # The organizer holds nothing for its own commitment (it would pay itself), but
            # with a member supplier it pays the supplier for it on delivery: checked too.
            if total and (self.me != organizer or p["supplier"]):
                balance, committed = await self.credit.standing(self.me)
                held = (await pools.holds_of(db, organizer, pool)).get(self.me, 0)
                self.credit.check_credit(self.me, balance, committed - held, total)
            body = PoolCommitted(
                organizer=organizer, pool=pool, quantity=quantity, tolerance=tolerance
            )
            return await self._sign(checked(body))

    async def _box_fill_raise(self, p: dict[str, Any], quantity: int) -> None:
        db = self.node.store.reader
        _, named = await pools.box_fill(db, p["organizer"], p["pool"])
        held = await pools.commitments(db, p["organizer"], p["pool"])
        base = {c.participant: c.quantity for c in held if c.id in named}
        if self.me not in base:
            raise Refused("box_fill_rule", "in box fill only the counted participants raise")
        latest = {c.participant: c.quantity for c in held if c.participant in base}
        q0 = sum(base.values())
        top = p["case_size"] * -(-q0 // p["case_size"])
        others = sum(q for who, q in latest.items() if who != self.me)
        if quantity < base[self.me]:
            raise Refused(
                "box_fill_rule", f"in box fill a quantity only rises (from {base[self.me]})"
            )
        if others + quantity > top:
            raise Refused(
                "box_fill_rule",
                "box fill fills the open case only: at most"
                f" {quantity_text(top - others, p['unit'])}",
            )

    async def box_fill(self, pool: str) -> Envelope:
        """Turn this node's open pool to box fill, naming each participant's latest
        commitment."""
        async with self.lock:
            p = await self._pool(self.me, pool)
            self._organizer(p, "open")
            held = await pools.commitments(self.node.store.reader, self.me, pool)
            named = counted_commitments(self.me, pool, p["case_size"], held, None)
            _bounded(named)
            return await self._sign(PoolBoxFill(pool=pool, counted=[c.id for c in named]))

    async def close(self, pool: str) -> Envelope:
        """Close this node's pool (open or in box fill), counting each participant's
        latest commitment (`counted_commitments`); the rule then allocates, or cancels a
        pool below its minimum."""
        async with self.lock:
            p = await self._pool(self.me, pool)
            self._organizer(p, "open", "box_fill")
            db = self.node.store.reader
            held = await pools.commitments(db, self.me, pool)
            named: list[bytes] | None = None
            if p["state"] == "box_fill":
                named = (await pools.box_fill(db, self.me, pool))[1]
            counted = await self._within_limits(
                counted_commitments(self.me, pool, p["case_size"], held, named)
            )
            _bounded(counted)
            return await self._sign(PoolClosed(pool=pool, counted=[c.id for c in counted]))

    async def _within_limits(self, counted: list[pools.Commitment]) -> list[pools.Commitment]:
        """The commitments whose author stands within its credit limit as this node sees it
        (its balance less every open commitment, this one's hold included): a rogue's
        commitment beyond its limit (its own node would not have signed it) is left out of
        the close, so the organizer never fronts what nobody can pay (§19)."""
        kept = []
        for c in counted:
            if c.participant != self.me:
                balance, committed = await self.credit.standing(c.participant)
                if balance - committed < -self.credit.limit_of(c.participant):
                    log.warning(
                        "%s: pool close leaves out %s's commitment: beyond its credit limit",
                        self.me,
                        c.participant,
                    )
                    continue
            kept.append(c)
        return kept

    async def cancel(self, pool: str, reason: str = "") -> Envelope:
        async with self.lock:
            p = await self._pool(self.me, pool)
            self._organizer(p, "open", "box_fill", "closing", "closed")
            return await self._sign(PoolCancelled(pool=pool, reason=reason))

    async def deliver(self, pool: str) -> Envelope:
        """The organizer received the cases; a member supplier is paid on this event."""
        async with self.lock:
            p = await self._pool(self.me, pool)
            self._organizer(p, "closed")
            if p["supplier"]:  # the credit moves into the supplier's balance
                await self.members.require_members(self.me, p["supplier"])
                # It pays the supplier for every case; the others' shares are held on their
                # side and come back as they confirm: its own share is what it must afford.
                own = next((s["share"] for s in p["shares"] if s["participant"] == self.me), 0)
                if own * p["unit_price"]:
                    balance, committed = await self.credit.standing(self.me)
                    self.credit.check_credit(self.me, balance, committed, own * p["unit_price"])
            return await self._sign(PoolDelivered(pool=pool))

    async def receive(self, organizer: str, pool: str) -> Envelope:
        """Confirm this node received its share: it pays the organizer share × unit_price.
        Only once the allocation is known (`wrong_state` before), with a share above 0
        (`not_authorized`), of a delivered pool (`wrong_state`), once."""
        async with self.lock:
            p = await self._pool(organizer, pool)
            if p["state"] not in ("closed", "delivered"):
                raise Refused("wrong_state", f"pool is {p['state']}, needs delivered")
            mine = next((s for s in p["shares"] if s["participant"] == self.me), None)
            if mine is None or mine["share"] <= 0:
                raise Refused(
                    "not_authorized", f"{self.me} has no share of {organizer}/{pool}", 403
                )
            if p["state"] != "delivered":
                raise Refused("wrong_state", f"pool is {p['state']}, needs delivered")
            if mine["received"]:
                raise Refused("wrong_state", "its receipt is already confirmed")
            await self.members.require_members(self.me, organizer)
            return await self._sign(PoolReceived(organizer=organizer, pool=pool))


def _bounded(counted: list[pools.Commitment]) -> None:
    if len(counted) > MAX_COUNTED:
        raise Refused("too_many", f"{len(counted)} commitments, a pool counts {MAX_COUNTED}")


__all__ = ["Credit", "Members", "Pooling", "checked", "counted_commitments", "new_id"]
