"""The demo's neighborhoods trade hours (docs/PROTOCOL.md §20).

Hours move between neighborhoods when residents of one help another, signed by the
neighborhood that received the help (`hours.transferred`, in quarter hours):

- a call for help answered: once a neighborhood's escalated call is fulfilled, it signs an
  hour per unit pledged (at most `AID_MAX_HOURS`) over to each neighborhood whose pledge it
  accepted, naming the call (once within its hours limit, if it is beyond it then);
- a service booked: now and then a neighborhood's residents book a service from another
  neighborhood's (`SERVICES`) and it signs the hours over.

As `demo_market.Economy` does with credit, every hour balance is steered back toward zero:
a neighborhood in surplus books more services, and buys them from neighborhoods in hour
debt; none signs beyond half its hours limit (the node itself refuses the limit,
`over_hours_limit`). When the demo stops, a neighborhood still pays the hours of its calls
for help fulfilled meanwhile (at most FINISH_S), then stops.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
from collections.abc import Sequence
from typing import Any

import aiosqlite
import anyio

from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store_io import fetch_all
from coopnet.node.runtime import Node
from coopnet.node.timebank.bank import TimeBank
from coopnet.node.timebank.projection import hour_balances, hour_ledger
from coopnet.protocol import InvalidEvent
from coopnet.protocol.hours import QUARTERS_PER_HOUR

log = logging.getLogger("coopnet.demo")

AID_MAX_HOURS = 4  # a call for help answered is worth an hour per unit pledged, at most this
FINISH_S = 30.0  # at the end, how long a neighborhood waits to pay for its calls in flight
COMFORT_PERCENT = 50  # a neighborhood signs hours only down to -50 % of its hours limit
# (service, quarter hours): what residents book from another neighborhood's residents.
SERVICES: list[tuple[str, int]] = [
    ("bicycle repair workshop", 6),
    ("translation at the clinic", 4),
    ("tax-form help", 8),
    ("garden work", 12),
    ("computer repair", 5),
    ("sewing repairs", 3),
    ("moving furniture", 10),
    ("homework help", 4),
]


def time_bank(node: Node) -> TimeBank:
    """The node's time bank service (the `timebank` domain's)."""
    for domain in node.domains:
        bank = domain.services.get("timebank")
        if isinstance(bank, TimeBank):
            return bank
    raise LookupError(f"{node.slug} runs no time bank")


class HourSteer:
    """How a neighborhood leans its hour balance back toward zero (pure), as
    `demo_market.Economy` leans credit: `limit` is the hours limit in quarters."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.scale = max(1, limit // 4)

    def lean(self, balance: int) -> float:
        """-1 (deep in hour debt) … 0 … +1 (in surplus), from a balance in quarters."""
        return math.tanh(balance / self.scale)

    def book_chance(self, balance: int) -> float:
        """The chance a neighborhood books a service when it looks: 0.1 … 0.9."""
        return 0.5 + 0.4 * self.lean(balance)

    def giver_weight(self, balance: int) -> float:
        """How much a neighborhood's residents are chosen to give: more when in debt."""
        return math.exp(-2.0 * self.lean(balance))

    def may_sign(self, balance: int, quarters: int) -> bool:
        """Whether signing `quarters` keeps the balance above the comfort floor."""
        return balance - quarters >= -self.limit * COMFORT_PERCENT // 100


async def hours_trader(
    node: Node, rng: random.Random, rate_per_s: float, stop: anyio.Event
) -> dict[str, int]:
    """One neighborhood's hours until `stop`, then (at most FINISH_S) until its calls for
    help are closed and paid: about `rate_per_s` times a second it pays the hours of its
    answered calls and maybe books a service (`HourSteer`). Returns counts of transfers
    signed: `for_aid` and `for_services`."""
    done = {"for_aid": 0, "for_services": 0}
    bank = time_bank(node)
    steer = HourSteer(bank.hours_limit)
    await node.ready.wait()
    while not stop.is_set():
        with anyio.move_on_after(rng.expovariate(rate_per_s)):
            await stop.wait()
        if stop.is_set():
            break
        try:
            done["for_aid"] += await pay_for_aid(node, bank)
            done["for_services"] += await book_service(node, bank, steer, rng)
        except (Refused, InvalidEvent) as exc:
            log.debug("%s: hours refused: %s", node.slug, exc)
    with anyio.move_on_after(FINISH_S):
        while True:
            closed = not await _calls_in_flight(node)
            try:
                done["for_aid"] += await pay_for_aid(node, bank)
            except (Refused, InvalidEvent) as exc:
                log.debug("%s: hours refused: %s", node.slug, exc)
            if closed:
                break
            await anyio.sleep(0.2)  # the calls escalate, are pledged and fulfilled
    return done


async def pay_for_aid(node: Node, bank: TimeBank) -> int:
    """Sign the hours of this neighborhood's fulfilled calls for help over to each
    neighborhood whose pledge it accepted (once: the transfer id names the call and the
    pledger); return how many it signed."""
    rows = await fetch_all(
        node.store.db,
        "SELECT p.request, p.pledger, SUM(p.quantity) FROM aid_pledges p JOIN aid_requests r"
        " ON r.requester = p.requester AND r.request = p.request"
        " WHERE p.requester = ? AND r.requester_state = 'fulfilled' AND p.accepted = 1"
        " AND p.pledger != ? GROUP BY p.request, p.pledger ORDER BY p.request, p.pledger",
        (node.slug, node.slug),
    )
    signed = 0
    for request, pledger, quantity in rows:
        transfer = _aid_transfer_id(str(request), str(pledger))
        if await _used(node, transfer):
            continue
        quarters = min(int(quantity), AID_MAX_HOURS) * QUARTERS_PER_HOUR
        try:
            await bank.transfer(str(pledger), quarters, request=str(request), transfer=transfer)
        except Refused as exc:  # over its hours limit: it pays once services bring hours in
            log.debug("%s: hours for %s refused: %s", node.slug, request, exc.message)
            continue
        signed += 1
    return signed


def _aid_transfer_id(request: str, pledger: str) -> str:
    """The transfer id for the hours of one call for help to one pledger (a LocalId)."""
    return "aid-" + hashlib.sha256(f"{request}/{pledger}".encode()).hexdigest()[:16]


async def _used(node: Node, transfer: str) -> bool:
    rows = await fetch_all(
        node.store.db,
        "SELECT 1 FROM hour_transfer_ids WHERE author = ? AND transfer = ?",
        (node.slug, transfer),
    )
    return bool(rows)


async def _calls_in_flight(node: Node) -> bool:
    """Whether this neighborhood has calls for help neither fulfilled nor withdrawn."""
    rows = await fetch_all(
        node.store.db, "SELECT 1 FROM local_aid WHERE state IN ('open', 'escalated') LIMIT 1"
    )
    return bool(rows)


async def book_service(node: Node, bank: TimeBank, steer: HourSteer, rng: random.Random) -> int:
    """Maybe book a service from another neighborhood (chosen by its hour debt) and sign
    its hours over; return 1 if it did."""
    balances = hour_balances(await hour_ledger(node.store.db))
    mine = balances.get(node.slug, 0)
    if rng.random() >= steer.book_chance(mine):
        return 0
    others = sorted(
        str(r[0])
        for r in await fetch_all(
            node.store.db, "SELECT author FROM authors WHERE author != ? AND retired_seq = 0",
            (node.slug,),
        )
    )  # fmt: skip
    if not others:
        return 0
    giver = rng.choices(others, [steer.giver_weight(balances.get(s, 0)) for s in others])[0]
    what, quarters = rng.choice(SERVICES)
    if not steer.may_sign(mine, quarters):
        return 0
    await bank.transfer(giver, quarters)
    log.debug("%s: %s from %s, %d quarter hours", node.slug, what, giver, quarters)
    return 1


async def hours_summary(db: aiosqlite.Connection, slugs: Sequence[str]) -> dict[str, Any]:
    """Hours as one node holds them (every node holds the same once converged):

    - `hours_moved`: hours signed over between neighborhoods (a number of hours, in
      quarter steps) and `hours_moved_quarters` (the same in quarter hours, an integer);
    - `hours_transfers`, and `hours_for_aid` (those naming a call for help);
    - `hours_ledger_sum`: the sum of every neighborhood's hour balance (0);
    - `hours_by_neighborhood`: per slug, quarter hours its residents `given_quarters`
      (signed over to it), the help it `received_quarters` (signed over by it) and its
      `balance_quarters` (given - received).
    """
    ledger = await hour_ledger(db)
    balances = hour_balances(ledger)
    rows = await fetch_all(
        db,
        "SELECT COUNT(*), COALESCE(SUM(quarters), 0), COALESCE(SUM(request != ''), 0)"
        " FROM hour_transfers",
    )
    count, quarters, for_aid = (int(v) for v in rows[0])
    hoods = {
        slug: {
            "given_quarters": ledger.get(slug, (0, 0))[0],
            "received_quarters": ledger.get(slug, (0, 0))[1],
            "balance_quarters": balances.get(slug, 0),
        }
        for slug in sorted({*slugs, *ledger})
    }
    return {
        "hours_moved": quarters / QUARTERS_PER_HOUR,
        "hours_moved_quarters": quarters,
        "hours_transfers": count,
        "hours_for_aid": for_aid,
        "hours_ledger_sum": sum(balances.values()),
        "hours_by_neighborhood": hoods,
    }
