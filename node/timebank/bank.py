"""What a node does for the time bank: its residents' hours, and hours on the bus.

Inside the neighborhood (never on the bus: residents are never on the bus), a resident
records the hours they gave another resident (`pending`); only the receiver confirms
(balances move: the giver's up, the receiver's down, the receiver's staying at or above
-debt cap, node.toml `[time_bank] debt_cap_hours`) or declines. A coordinator credits a
resident from the co-op's own account, `@coop` (hours the resident gave the co-op or, for
it, another neighborhood). Between neighborhoods, a coordinator signs `hours.transferred`
(docs/PROTOCOL.md §20) to the neighborhood that gave help, within the charter's
`policies.hours_limit` (the signer's rule).

Every amount is in quarter hours (1 = 15 minutes). Every refusal raises Refused with a
stable code: `no_such_account`, `not_yours`, `not_found`, `wrong_state`, `over_debt_cap`,
`not_authorized`, `not_a_member`, `duplicate`, `over_hours_limit`.
"""

from __future__ import annotations

import secrets
from typing import Any, Protocol

import aiosqlite
import anyio

from coopnet.node.engine.context import NodeContext
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store_io import fetch_all, fetch_one
from coopnet.node.timebank.projection import (
    COOP,
    ENTRY_COLUMNS,
    entry_balances_sql,
    hour_balance,
    hour_balances,
    hour_ledger,
    transfer_id_used,
    transfers,
)
from coopnet.protocol import Envelope, InvalidEvent
from coopnet.protocol.charter import Charter
from coopnet.protocol.hours import (
    DEFAULT_HOURS_LIMIT,
    HoursTransferred,
    check_hours_spend,
    hours_breaches,
    hours_text,
)


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def hours_limit_of(charter: Charter | None) -> int:
    """The charter's hours limit (quarter hours), or the default without a charter."""
    return charter.policies.hours_limit if charter is not None else DEFAULT_HOURS_LIMIT


class Members(Protocol):
    """What the time bank needs of membership (node/membership/'s `Governance`, which the
    runtime passes in): no hours to or from a neighborhood that is not a member now."""

    async def require_members(self, *slugs: str) -> None:
        """Raise Refused (`not_a_member`) unless every slug is a member now (§16.4)."""


class TimeBank:
    """The node's time bank: residents' entries (private) and transfers (signed)."""

    def __init__(self, node: NodeContext, members: Members, charter: Charter | None) -> None:
        self.node = node
        self.members = members
        self.hours_limit = hours_limit_of(charter)
        self.debt_cap = node.config.time_bank.debt_cap_quarters
        self.lock = anyio.Lock()  # transfers: the balance check and the signature together

    @property
    def db(self) -> aiosqlite.Connection:
        return self.node.store.db

    @property
    def me(self) -> str:
        return self.node.slug

    # -- residents' hours (private) -----------------------------------------------------------

    async def _account(self, name: str) -> None:
        """Refuse (`no_such_account`, 404) unless `name` is an enabled account here."""
        row = await fetch_one(self.db, "SELECT disabled FROM accounts WHERE name = ?", (name,))
        if row is None or row[0]:
            raise Refused("no_such_account", f"no resident named {name!r} here", 404)

    async def balance(self, name: str) -> int:
        """`name`'s hour balance (quarters): hours given minus hours received, confirmed."""
        row = await fetch_one(self.db, entry_balances_sql("WHERE name = ?"), (name,))
        return int(row[1]) if row else 0

    async def entry(self, entry_id: str) -> dict[str, Any]:
        """One entry; Refused `not_found` (404) when there is none."""
        cols = ", ".join(ENTRY_COLUMNS)
        row = await fetch_one(self.db, f"SELECT {cols} FROM time_entries WHERE id = ?", (entry_id,))
        if row is None:
            raise Refused("not_found", f"no time entry {entry_id} here", 404)
        return dict(zip(ENTRY_COLUMNS, row, strict=True))

    async def entries_of(self, name: str) -> list[dict[str, Any]]:
        """The entries `name` gave or received, newest first."""
        cols = ", ".join(ENTRY_COLUMNS)
        rows = await fetch_all(
            self.db,
            f"SELECT {cols} FROM time_entries WHERE giver = ? OR receiver = ?"
            " ORDER BY created_at DESC, id",
            (name, name),
        )
        return [dict(zip(ENTRY_COLUMNS, r, strict=True)) for r in rows]

    async def record(
        self, *, giver: str, receiver: str, quarters: int, what: str, by: str, entry: str | None
    ) -> dict[str, Any]:
        """`giver` gave `quarters` of their time to `receiver`: a pending entry, until the
        receiver confirms or declines it (`by`: the account that recorded it)."""
        if giver == receiver:
            raise Refused("not_authorized", "hours go from one resident to another", 400)
        await self._account(giver)
        await self._account(receiver)
        entry_id = entry or new_id("h")
        async with self.node.store.transaction() as db:
            if await fetch_one(db, "SELECT 1 FROM time_entries WHERE id = ?", (entry_id,)):
                raise Refused("duplicate", f"time entry {entry_id} exists: choose another id")
            await db.execute(
                "INSERT INTO time_entries VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, NULL)",
                (entry_id, giver, receiver, quarters, what, by, self.node.clock()),
            )
        return await self.entry(entry_id)

    async def decide(self, entry_id: str, by: str, *, confirm: bool) -> dict[str, Any]:
        """The receiver (`by`) confirms or declines a pending entry. Confirming moves the
        balances, unless the receiver's balance would fall below -debt cap (`over_debt_cap`)."""
        async with self.node.store.transaction() as db:  # the check and the change, atomically
            cols = ", ".join(ENTRY_COLUMNS)
            row = await fetch_one(db, f"SELECT {cols} FROM time_entries WHERE id = ?", (entry_id,))
            if row is None:
                raise Refused("not_found", f"no time entry {entry_id} here", 404)
            e = dict(zip(ENTRY_COLUMNS, row, strict=True))
            if e["receiver"] != by:
                raise Refused(
                    "not_yours", f"only {e['receiver']}, who received the hours, decides", 403
                )
            if e["state"] != "pending":
                raise Refused("wrong_state", f"time entry {entry_id} is {e['state']}")
            if confirm:
                found = await fetch_one(db, entry_balances_sql("WHERE name = ?"), (by,))
                balance = int(found[1]) if found else 0
                if balance - e["quarters"] < -self.debt_cap:
                    raise Refused(
                        "over_debt_cap",
                        f"{by}: balance {hours_text(balance)} - {hours_text(e['quarters'])}"
                        f" would be below the debt cap of -{hours_text(self.debt_cap)}",
                    )
            await db.execute(
                "UPDATE time_entries SET state = ?, decided_at = ? WHERE id = ?",
                ("confirmed" if confirm else "declined", self.node.clock(), entry_id),
            )
        return await self.entry(entry_id)

    async def credit(
        self, *, resident: str, quarters: int, what: str, by: str, entry: str | None
    ) -> dict[str, Any]:
        """A coordinator (`by`) credits `resident` from the co-op (`@coop`): confirmed at
        once; the co-op has no debt cap (its hours are the neighborhood's)."""
        await self._account(resident)
        entry_id = entry or new_id("h")
        async with self.node.store.transaction() as db:
            if await fetch_one(db, "SELECT 1 FROM time_entries WHERE id = ?", (entry_id,)):
                raise Refused("duplicate", f"time entry {entry_id} exists: choose another id")
            now = self.node.clock()
            await db.execute(
                "INSERT INTO time_entries VALUES (?, ?, ?, ?, ?, 'confirmed', ?, ?, ?)",
                (entry_id, resident, COOP, quarters, what, by, now, now),
            )
        return await self.entry(entry_id)

    async def residents(self) -> list[dict[str, Any]]:
        """Every account's hours (and the co-op's), by name: balance, given and received
        (quarters, confirmed entries); the balances sum to 0."""
        sums = {
            str(r[0]): (int(r[1]), int(r[2]), int(r[3]))
            for r in await fetch_all(self.db, entry_balances_sql())
        }
        names = {
            str(r[0]): (str(r[1]), bool(r[2]))
            for r in await fetch_all(self.db, "SELECT name, display_name, disabled FROM accounts")
        }
        out = []
        for name in sorted(set(names) | set(sums) | {COOP}):
            balance, given, received = sums.get(name, (0, 0, 0))
            shown, disabled = names.get(name, ("the co-op" if name == COOP else name, False))
            out.append({"name": name, "display_name": shown, "disabled": disabled,
                        "balance": balance, "given": given, "received": received})  # fmt: skip
        return out

    # -- hours between neighborhoods (on the bus) --------------------------------------------

    async def transfer(
        self, to: str, quarters: int, *, request: str = "", transfer: str | None = None
    ) -> Envelope:
        """Sign `quarters` over to neighborhood `to`, which gave this one help (answering
        this neighborhood's call for help `request`, if named)."""
        async with self.lock:
            if to == self.me:
                raise Refused("not_authorized", "a neighborhood does not transfer hours to itself")
            await self._known(to)
            await self.members.require_members(self.me, to)
            transfer_id = transfer or new_id("x")
            if await transfer_id_used(self.db, self.me, transfer_id):
                raise Refused("duplicate", f"transfer {transfer_id} exists: choose another id")
            if request and not await fetch_one(
                self.db,
                "SELECT 1 FROM aid_requests WHERE requester = ? AND request = ?",
                (self.me, request),
            ):
                raise Refused(
                    "not_found", f"{self.me} has no call for help {request} on the bus", 404
                )
            balance = await hour_balance(self.db, self.me)
            try:
                check_hours_spend(self.me, balance, quarters, self.hours_limit)
            except InvalidEvent as exc:
                raise Refused("over_hours_limit", exc.message) from None
            body = HoursTransferred(transfer=transfer_id, to=to, quarters=quarters, request=request)
            try:
                return await self.node.post(body)
            except InvalidEvent as exc:
                raise Refused(exc.code, exc.message) from None

    async def _known(self, slug: str) -> None:
        """Refuse (`not_a_member`) a neighborhood whose log this node does not hold."""
        if not await fetch_one(self.db, "SELECT 1 FROM authors WHERE author = ?", (slug,)):
            raise Refused(
                "not_a_member",
                f"{slug} is not a member of the federation (not known here): no hours to it",
            )

    async def neighborhoods(self) -> dict[str, Any]:
        """The federation's hour ledger as this node holds it: per neighborhood its balance,
        the hours it gave (its residents' help, signed over to it) and received (quarters)."""
        ledger = await hour_ledger(self.db)
        balances = hour_balances(ledger)
        rows = [
            {"neighborhood": slug, "balance": balances[slug], "given": gave, "received": got}
            for slug, (gave, got) in sorted(ledger.items())
        ]
        return {
            "neighborhood": self.me,
            "balance": balances.get(self.me, 0),
            "hours_limit": self.hours_limit,
            "available": balances.get(self.me, 0) + self.hours_limit,
            "neighborhoods": rows,
            "ledger_sum": sum(balances.values()),
            "breaches": hours_breaches(balances, self.hours_limit),
            "transfers": await transfers(self.db, self.me),
        }


__all__ = ["TimeBank", "hours_limit_of", "new_id"]
