"""A node's part in the federation's governance: applying, answering applications,
retiring (settled first: node/membership/settlement.py), and the membership checks trading
relies on (the market's `Members` seam).

Every decision is the pure rule's (`protocol.membership`, docs/PROTOCOL.md §16): this module
checks a statement against it before signing, so a resident hears "no" with a code instead
of publishing an event every node would refuse.
"""

from __future__ import annotations

import logging
from typing import Literal

import anyio

from coopnet.node.engine.context import NodeContext
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store import now_ms
from coopnet.node.engine.store_io import fetch_one
from coopnet.node.membership.projection import standings
from coopnet.node.membership.settlement import unsettled
from coopnet.protocol import Envelope, InvalidEvent
from coopnet.protocol.charter import Charter
from coopnet.protocol.membership import (
    MembershipApplied,
    MembershipConsented,
    MembershipObjected,
    MembershipObjectionWithdrawn,
    MembershipRetired,
    Position,
    Standing,
    is_member,
    position_step,
)

log = logging.getLogger("coopnet.governance")

Answer = Literal["consent", "object", "withdraw"]


class Governance:
    """Membership decisions of this node, each checked by the pure rule before signing;
    refusals raise Refused with a stable code (`not_a_member`, `not_authorized`, …)."""

    def __init__(self, node: NodeContext, charter: Charter | None) -> None:
        self.node = node
        self.charter = charter
        self.lock = anyio.Lock()

    @property
    def founders(self) -> set[str]:
        return {f.slug for f in self.charter.founders} if self.charter else set()

    async def standings(self) -> dict[str, Standing]:
        return await standings(self.node.store.db, self.charter)

    async def require_members(self, *slugs: str) -> None:
        """Refuse (`not_a_member`) unless every slug is a member now (§16.4). Without a
        charter every neighborhood whose `node.founded` this node holds is one, and no
        other: a slug never seen founded here is refused like a non-member."""
        if self.charter is None:
            for slug in slugs:
                if slug != self.node.slug and not await fetch_one(
                    self.node.store.db, "SELECT 1 FROM neighborhoods WHERE author = ?", (slug,)
                ):
                    raise Refused(
                        "not_a_member",
                        f"{slug} is not a member of the federation (not known here):"
                        " no trading with it",
                    )
            return
        now = await self.standings()
        for slug in slugs:
            if not is_member(now, slug):
                status = now[slug].status if slug in now else "not known here"
                raise Refused(
                    "not_a_member",
                    f"{slug} is not a member of the federation ({status}): no trading with it",
                )

    async def application_of(self, slug: str) -> bytes | None:
        row = await fetch_one(
            self.node.store.db, "SELECT id FROM member_applications WHERE applicant = ?", (slug,)
        )
        return bytes(row[0]) if row else None

    async def apply(self, about: str, reason: str) -> Envelope:
        async with self.lock:
            if self.node.slug in self.founders:
                raise Refused("not_authorized", "a founder is a member by the charter")
            if await self.application_of(self.node.slug) is not None:
                raise Refused("not_authorized", "this neighborhood has applied already")
            cfg = self.node.config
            body = MembershipApplied(
                display_name=cfg.display_name, area=cfg.area, about=about, reason=reason
            )
            return await self._sign(body)

    async def apply_if_due(self) -> None:
        """At start: a neighborhood added with an application text applies once."""
        cfg = self.node.config
        due = (
            self.charter is not None
            and cfg.apply_reason
            and self.node.slug not in self.founders
            and await self.application_of(self.node.slug) is None
        )
        if due:
            try:
                env = await self.apply(cfg.apply_about, cfg.apply_reason)
            except Refused as exc:  # e.g. this node may sign nothing more: say so, once
                log.error("%s: cannot apply to join: %s", self.node.slug, exc.message)
                return
            log.info("%s: applied to join the federation (event #%d)", self.node.slug, env.seq)

    async def answer(self, applicant: str, answer: Answer, reason: str = "") -> Envelope:
        async with self.lock:
            application = await self.application_of(applicant)
            if application is None:
                raise Refused("not_found", f"no application from {applicant} here", 404)
            if answer == "consent":
                body: MembershipConsented | MembershipObjected | MembershipObjectionWithdrawn = (
                    MembershipConsented(applicant=applicant, application=application)
                )
            elif answer == "object":
                if not reason:
                    raise Refused("bad_request", "an objection needs a reason", 400)
                body = MembershipObjected(
                    applicant=applicant, application=application, reason=reason
                )
            else:
                body = MembershipObjectionWithdrawn(applicant=applicant, application=application)
            await self.require_members(self.node.slug)  # an outsider's answer would not count
            row = await fetch_one(
                self.node.store.db,
                "SELECT stance, reason FROM member_positions"
                " WHERE voter = ? AND applicant = ? AND application = ?",
                (self.node.slug, applicant, application),
            )
            current = (
                Position(
                    voter=self.node.slug,
                    applicant=applicant,
                    application=application,
                    stance=row[0],
                    reason=row[1],
                )
                if row
                else None
            )
            try:
                position_step(current, self.node.slug, body)
            except InvalidEvent as exc:
                raise Refused(exc.code, exc.message) from None
            return await self._sign(body)

    async def retire(self, reason: str = "") -> Envelope:
        """The last event this node signs (§16.5), once its balance is 0 and no trade of its
        is open; otherwise Refused (`balance_not_settled`, 409) naming the balance (credit
        cents), the open trades, and how to settle them."""
        async with self.lock:
            me = self.node.slug
            left = (await unsettled(self.node.store.reader, [me], now_ms()))[me]
            if not left.settled:
                where = left.describe(self.node.config.currency)
                raise Refused(
                    "balance_not_settled",
                    f"{me} cannot retire yet: {where}. Settle first: "
                    f"{left.how_to_settle()} (PROTOCOL.md §16.5)",
                )
            env = await self._sign(MembershipRetired(reason=reason))
            log.warning("%s: retired from the federation: %s", self.node.slug, reason or "-")
            return env

    async def _sign(self, body: MembershipApplied | MembershipConsented | MembershipObjected
                    | MembershipObjectionWithdrawn | MembershipRetired) -> Envelope:  # fmt: skip
        try:
            return await self.node.post(body)
        except InvalidEvent as exc:
            raise Refused(exc.code, exc.message) from None
