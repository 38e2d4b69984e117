"""A time bank in hours between neighborhoods, pure (docs/PROTOCOL.md §20).

Hours are a second unit of account, in their own ledger that sums to zero and is never
converted into credit. An hour is an hour whatever the service. On the wire hours are
integers of quarter hours (1 = 15 minutes). Residents' own time accounts never leave their
node (node/timebank/); on the bus, a neighborhood that received help signs the hours over
to the neighborhood that gave it (`hours.transferred`): the payer's own statement moves
its own hours, as a buyer's receipt moves its credit (§11).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import msgspec

from coopnet.protocol import errors
from coopnet.protocol.body import Body
from coopnet.protocol.offers import LocalId
from coopnet.protocol.pools import OptionalLocalId
from coopnet.protocol.trades import Slug

QUARTERS_PER_HOUR = 4
# One transfer moves at most 10,000 hours.
Quarters = Annotated[int, msgspec.Meta(ge=1, le=10_000 * QUARTERS_PER_HOUR)]


class HoursTransferred(Body, frozen=True, kw_only=True):
    """The signer received `quarters` quarter hours of help from neighborhood `to` and
    signs them over: its hour balance goes down by `quarters`, `to`'s up. `request`: the
    signer's call for help the hours answered (its id in §13), or "" for none."""

    kind = "hours.transferred"
    transfer: LocalId
    to: Slug
    quarters: Quarters
    request: OptionalLocalId = ""


HOURS_KINDS: tuple[type[Body], ...] = (HoursTransferred,)


# Until the charter sets `policies.hours_limit`, a neighborhood may owe this many quarter
# hours (160 = 40 hours; §16.1, §20).
DEFAULT_HOURS_LIMIT = 160


class HourLedger:
    """Hour balances per neighborhood in quarter hours, built from transfers
    (payer, payee, quarters) (§20). Never converted into credit; sums to zero."""

    def __init__(self, transfers: Iterable[tuple[str, str, int]] = ()) -> None:
        self.balances: dict[str, int] = {}
        for payer, payee, quarters in transfers:
            self.transfer(payer, payee, quarters)

    def transfer(self, payer: str, payee: str, quarters: int) -> None:
        """`payer` signs `quarters` quarter hours over to `payee`."""
        if type(quarters) is not int or quarters < 0:
            raise ValueError(f"a transfer moves a non-negative integer, not {quarters!r}")
        self.balances[payer] = self.balances.get(payer, 0) - quarters
        self.balances[payee] = self.balances.get(payee, 0) + quarters

    def balance_of(self, neighborhood: str) -> int:
        return self.balances.get(neighborhood, 0)

    def total(self) -> int:
        """Always 0: the hours one neighborhood signed over, another received."""
        return sum(self.balances.values())


def check_hours_spend(payer: str, balance: int, quarters: int, limit: int) -> None:
    """The signer's rule (§20): `payer` signs a transfer of `quarters` only if its hour
    balance after it, balance - quarters, stays at or above -limit (all in quarter hours).
    Raises NotAuthorized otherwise (the API reports it as `over_hours_limit`). Receivers
    never refuse by the limit: the order of transfers across logs is unknowable."""
    after = balance - quarters
    if after < -limit:
        raise errors.NotAuthorized(
            f"{payer}: hour balance {hours_text(balance)} - {hours_text(quarters)} = "
            f"{hours_text(after)}, below the hours limit of -{hours_text(limit)}"
        )


def hours_breaches(balances: dict[str, int], limit: int) -> list[str]:
    """Neighborhoods whose hour balance is below -limit (quarter hours), for the audit."""
    return sorted(n for n, b in balances.items() if b < -limit)


class HoursStatement(msgspec.Struct, frozen=True, kw_only=True):
    """One `hours.transferred` as the fold needs it."""

    id: bytes
    author: str
    seq: int
    body: HoursTransferred


def hours_refusal(author: str, body: HoursTransferred, used: set[str]) -> str | None:
    """The domain refusal of a transfer by `author`, judged in its own log order, given the
    transfer ids it used before (`used`): `not_authorized` when it signs hours to itself
    or repeats a transfer id; None when it stands (§20). Membership and retirement are
    the caller's, as for trades."""
    if body.to == author or body.transfer in used:
        return "not_authorized"
    return None


def fold_hours(
    statements: Iterable[HoursStatement],
) -> tuple[HourLedger, list[tuple[bytes, str]]]:
    """The hour ledger from every transfer held, and the (event id, code) refused (§20).
    Each author's transfers are judged in its log order; the result does not depend on the
    order they arrived in."""
    ledger = HourLedger()
    refused: list[tuple[bytes, str]] = []
    used: dict[str, set[str]] = {}
    for s in sorted(statements, key=lambda s: (s.author, s.seq, s.id)):
        mine = used.setdefault(s.author, set())
        code = hours_refusal(s.author, s.body, mine)
        mine.add(s.body.transfer)
        if code is not None:
            refused.append((s.id, code))
            continue
        ledger.transfer(s.author, s.body.to, s.body.quarters)
    return ledger, refused


def hours_text(quarters: int) -> str:
    """Quarter hours as people read them, in decimal hours: 6 → "1.5 h", 9 → "2.25 h",
    4 → "1 h", -1 → "-0.25 h" (the same form `parse_hours` reads)."""
    sign = "-" if quarters < 0 else ""
    whole, part = divmod(abs(quarters), QUARTERS_PER_HOUR)
    decimals = {0: "", 1: ".25", 2: ".5", 3: ".75"}[part]
    return f"{sign}{whole}{decimals} h"


def parse_hours(text: str) -> int:
    """Hours typed by people ("1.5", "2.25", "3", optionally ending in "h") → quarter
    hours. Raises ValueError for anything that is not a whole number of quarter hours
    (the API's code `not_quarter_hours`), or is negative."""
    raw = text.strip().removesuffix("h").strip()
    whole, dot, frac = raw.partition(".")
    if dot and not whole and frac:  # ".5" as people write it: half an hour
        whole = "0"
    if not whole.isascii() or not whole.isdigit() or (dot and not frac.isdigit()):
        raise ValueError(f"{text!r} is not a number of hours in quarter steps")
    frac = frac.rstrip("0") if dot else ""
    part = {"": 0, "25": 1, "5": 2, "75": 3}.get(frac)
    if part is None or not frac.isascii():
        raise ValueError(f"{text!r} is not a whole number of quarter hours (.25, .5, .75)")
    return int(whole) * QUARTERS_PER_HOUR + part
