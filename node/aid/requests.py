"""Mutual aid on a node: private local requests, escalation, the federation's requests.

Local first (PROTOCOL.md §13): a resident's request lives in this node's own tables
(`local_aid`, `local_pledges`), never in the log, and neighbors pledge through this node's
API. `escalate_due` publishes what was not fully pledged within its urgency's window as
`aid.requested`; from then on the request and its pledges are events, folded by the pure
rules in `coopnet.protocol.aid` (node/aid/projection.py). Time comes from the node's clock,
which tests replace.
"""

from __future__ import annotations

import logging
import secrets
import statistics
from collections.abc import Callable
from typing import Any

import aiosqlite
import anyio
import msgspec

from coopnet.node.aid.projection import load_request
from coopnet.node.engine.context import NodeContext
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store_io import fetch_all, fetch_one
from coopnet.protocol import Envelope, InvalidEvent
from coopnet.protocol.aid import (
    AidFulfilled,
    AidPledgeAccepted,
    AidPledged,
    AidPledgeWithdrawn,
    AidRequested,
    AidWithdrawn,
    AlertRaised,
    AlertResolved,
    area_distance,
    due_for_escalation,
    personal_data_in,
    pledge_allowed,
    rank_key,
)
from coopnet.protocol.body import Body

log = logging.getLogger("coopnet.aid")
_encoder = msgspec.msgpack.Encoder()
MINUTE_MS = 60_000
ESCALATION_CHECK_S = 1.0


class LocalRequests:
    """The node's own, private tables of calls for help and pledges (`OwnTables`: not a
    projection, they are not derived from the log and never leave the node)."""

    name = "aid_local"
    migrations: tuple[tuple[str, ...], ...] = ((
    """CREATE TABLE local_aid (
        request TEXT PRIMARY KEY, category TEXT NOT NULL, urgency TEXT NOT NULL,
        needed_by INTEGER NOT NULL, quantity INTEGER NOT NULL, area TEXT NOT NULL,
        description TEXT NOT NULL, raised_at INTEGER NOT NULL, state TEXT NOT NULL,
        escalated_at INTEGER, closed_at INTEGER)""",
    """CREATE TABLE local_pledges (
        request TEXT NOT NULL, pledge TEXT NOT NULL, what TEXT NOT NULL,
        quantity INTEGER NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (request, pledge))""",
    ), (
    # Which account asked (pledge '') or pledged, for requests and pledges made through
    # this node: shown to its coordinators only (docs/APP.md), never on the bus.
    """CREATE TABLE IF NOT EXISTS aid_people (
        requester TEXT NOT NULL, request TEXT NOT NULL, pledge TEXT NOT NULL,
        account TEXT NOT NULL, PRIMARY KEY (requester, request, pledge))""",
    ),)  # fmt: skip


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


class Aid:
    """What a node does for mutual aid: its residents' requests and its pledges."""

    def __init__(self, node: NodeContext) -> None:
        self.node = node
        # Told when the private tables change (no event is stored then): the app's live
        # updates (node/engine/live.py); the runtime sets it.
        self.on_local_change: Callable[[], None] = lambda: None
        c = node.config
        self.windows: dict[str, int | None] = {
            "critical": c.escalate_critical_s,
            "high": c.escalate_high_s,
            "normal": c.escalate_normal_s,
            "low": None,
        }

    @property
    def db(self) -> aiosqlite.Connection:
        return self.node.store.db

    @property
    def me(self) -> str:
        return self.node.slug

    def now(self) -> int:
        return self.node.clock()

    async def _sign(self, body: Body) -> Envelope:
        try:
            return await self.node.post(body)
        except InvalidEvent as exc:
            raise Refused(exc.code, exc.message) from None

    # -- the neighborhood's own requests (private until escalated) ----------------------------

    async def request(
        self,
        *,
        category: str,
        urgency: str,
        needed_in_min: int,
        quantity: int,
        description: str,
        area: str | None = None,
        escalate_now: bool = False,
        request: str | None = None,
        by: str = "",
    ) -> str:
        """Keep a resident's call for help in this node (`by`: the account that asked);
        returns its id. Raises Refused `personal_data` (400), `duplicate` (409)."""
        found = personal_data_in(description)
        if found:
            raise Refused(
                "personal_data",
                f"the description contains {found}: requests carry no personal data "
                "(say where and how to reach you through your co-op, not here)",
                400,
            )
        rid = request or new_id("r")
        if await fetch_one(self.db, "SELECT 1 FROM local_aid WHERE request = ?", (rid,)):
            raise Refused("duplicate", f"request {rid} exists: choose another id")
        now = self.now()
        async with self.node.store.transaction() as db:
            await db.execute(
                "INSERT INTO local_aid VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', NULL, NULL)",
                (rid, category, urgency, now + needed_in_min * MINUTE_MS, quantity,
                 area or self.node.config.area, description, now),
            )  # fmt: skip
            if by:
                await db.execute(
                    "INSERT OR REPLACE INTO aid_people VALUES (?, ?, '', ?)", (self.me, rid, by)
                )
        log.info("%s: aid request %s (%s, %s) kept local", self.me, rid, category, urgency)
        self.on_local_change()
        if escalate_now:
            await self.escalate(rid, reason="the resident asked for the federation at once")
        return rid

    async def _local(self, request: str) -> dict[str, Any]:
        cols = ("request", "category", "urgency", "needed_by", "quantity", "area",
                "description", "raised_at", "state", "escalated_at", "closed_at")  # fmt: skip
        row = await fetch_one(
            self.db,
            f"SELECT {', '.join(cols)} FROM local_aid WHERE request = ?",
            (request,),
        )
        if row is None:
            raise Refused("not_found", f"no request {request} in {self.me}", 404)
        local = dict(zip(cols, row, strict=True))
        pledged = await fetch_one(
            self.db,
            "SELECT COALESCE(SUM(quantity), 0) FROM local_pledges WHERE request = ?",
            (request,),
        )
        local["pledged_locally"] = int(pledged[0]) if pledged else 0
        return local

    async def escalate(self, request: str, *, reason: str) -> Envelope:
        local = await self._local(request)
        if local["state"] != "open":
            raise Refused("wrong_state", f"request {request} is {local['state']}")
        env = await self._sign(
            AidRequested(
                request=request,
                category=local["category"],
                urgency=local["urgency"],
                needed_by=local["needed_by"],
                quantity=local["quantity"],
                area=local["area"],
                description=local["description"],
                raised_at=local["raised_at"],
                pledged_locally=min(local["pledged_locally"], local["quantity"]),
                reason=reason[:140],
            )
        )
        async with self.node.store.transaction() as db:
            await db.execute(
                "UPDATE local_aid SET state = 'escalated', escalated_at = ? WHERE request = ?",
                (env.at, request),
            )
        log.info("%s: aid request %s escalated to the federation: %s", self.me, request, reason)
        return env

    async def escalate_forever(self) -> None:
        """Check for due escalations every ESCALATION_CHECK_S seconds, for as long as the
        node runs (a node that may sign nothing more says so and checks less often)."""
        while True:
            try:
                await self.escalate_due()
            except InvalidEvent as exc:  # this node may sign nothing (a fork on record, retired)
                log.error("%s: cannot escalate calls for help: %s", self.me, exc)
                await anyio.sleep(60 * ESCALATION_CHECK_S)
            await anyio.sleep(ESCALATION_CHECK_S)

    async def escalate_due(self) -> list[str]:
        """Escalate every local request whose window passed without enough pledges."""
        now = self.now()
        rows = await fetch_all(
            self.db,
            "SELECT a.request, a.urgency, a.raised_at, a.quantity, a.needed_by,"
            " COALESCE((SELECT SUM(quantity) FROM local_pledges p WHERE p.request = a.request), 0)"
            " FROM local_aid a WHERE a.state = 'open'",
        )
        done = []
        for request, urgency, raised_at, quantity, needed_by, pledged in rows:
            if now > needed_by:
                continue
            if due_for_escalation(urgency, raised_at, now, pledged, quantity, self.windows):
                window = self.windows[urgency]
                await self.escalate(
                    request, reason=f"not fully pledged within {window}s ({urgency})"
                )
                done.append(str(request))
        return done

    # -- pledges ------------------------------------------------------------------------------

    async def pledge(
        self,
        requester: str,
        request: str,
        what: str,
        quantity: int,
        pledge: str | None = None,
        by: str = "",
    ) -> str:
        """Pledge to a request of this neighborhood (kept here) or an escalated one (signed);
        `by` is the account that pledged. Returns the pledge's id; raises Refused."""
        found = personal_data_in(what)
        if found:
            raise Refused("personal_data", f"the pledge contains {found}", 400)
        pid = pledge or new_id("p")
        if requester == self.me:  # a neighbor answers locally, through this node
            local = await self._local(request)
            if local["state"] not in ("open", "escalated"):
                raise Refused("request_closed", f"request {request} is {local['state']}")
            if local["state"] == "open" and local["pledged_locally"] >= local["quantity"]:
                raise Refused("fully_pledged", f"request {request} is fully pledged")
            taken = "SELECT 1 FROM local_pledges WHERE request = ? AND pledge = ?"
            if await fetch_one(self.db, taken, (request, pid)):
                raise Refused("duplicate", f"pledge {pid} exists: choose another id")
            async with self.node.store.transaction() as db:
                await db.execute(
                    "INSERT INTO local_pledges VALUES (?, ?, ?, ?, ?)",
                    (request, pid, what, quantity, self.now()),
                )
                await self._remember(db, requester, request, pid, by)
            self.on_local_change()
            return pid
        view = await load_request(self.db, requester, request)
        if view.requester_state == "none":
            raise Refused("not_found", f"no escalated request {requester}/{request} here", 404)
        if any((p.pledger, p.pledge) == (self.me, pid) for p in view.pledges):
            raise Refused("duplicate", f"pledge {pid} exists: choose another id")
        why = pledge_allowed(view, self.me, self.now())
        if why is not None:
            words = {
                "not_authorized": "a neighborhood answers its own calls locally, not by pledge",
                "request_closed": "this call for help is closed or past its time",
                "fully_pledged": "this call for help already has all the pledges it needs",
            }
            raise Refused(why, f"{words.get(why, why)} ({requester}/{request})")
        await self._sign(
            AidPledged(
                requester=requester, request=request, pledge=pid, what=what, quantity=quantity
            )
        )
        if by:
            async with self.node.store.transaction() as db:
                await self._remember(db, requester, request, pid, by)
        return pid

    async def _remember(
        self, db: aiosqlite.Connection, requester: str, request: str, pledge: str, by: str
    ) -> None:
        if by:
            await db.execute(
                "INSERT OR REPLACE INTO aid_people VALUES (?, ?, ?, ?)",
                (requester, request, pledge, by),
            )

    async def made_by(self, requester: str, request: str, pledge: str = "") -> str:
        """The account that asked (`pledge` "") or pledged through this node; "" if none
        (made by the CLI, a policy, or before accounts)."""
        row = await fetch_one(
            self.db,
            "SELECT account FROM aid_people WHERE requester = ? AND request = ? AND pledge = ?",
            (requester, request, pledge),
        )
        return str(row[0]) if row else ""

    async def _people(self) -> dict[tuple[str, str, str], str]:
        rows = await fetch_all(
            self.db, "SELECT requester, request, pledge, account FROM aid_people"
        )
        return {(str(r[0]), str(r[1]), str(r[2])): str(r[3]) for r in rows}

    async def accept(self, request: str, pledger: str, pledge: str) -> Envelope:
        view = await load_request(self.db, self.me, request)
        p = next((p for p in view.pledges if (p.pledger, p.pledge) == (pledger, pledge)), None)
        if p is None or p.state != "pledged":
            raise Refused("not_found", f"no live pledge {pledger}/{pledge} on {request}", 404)
        if p.accepted:
            raise Refused("wrong_state", "already accepted")
        if view.accepted + p.quantity > view.quantity:
            raise Refused("over_pledged", f"{view.quantity - view.accepted} still needed")
        return await self._sign(
            AidPledgeAccepted(request=request, pledger=pledger, pledge=pledge, quantity=p.quantity)
        )

    async def withdraw_pledge(self, requester: str, request: str, pledge: str) -> Envelope:
        view = await load_request(self.db, requester, request)
        mine = [p for p in view.pledges if p.pledger == self.me and p.pledge == pledge]
        if not mine or mine[0].state != "pledged":
            raise Refused("not_authorized", f"{self.me} has no live pledge {pledge} here", 403)
        return await self._sign(
            AidPledgeWithdrawn(requester=requester, request=request, pledge=pledge)
        )

    # -- closing ------------------------------------------------------------------------------

    async def fulfil(self, request: str) -> None:
        local = await self._local(request)
        if local["state"] == "open":
            await self._close_local(request, "fulfilled")
            return
        if local["state"] != "escalated":
            raise Refused("request_closed", f"request {request} is {local['state']}")
        view = await load_request(self.db, self.me, request)
        named = [(p.pledger, p.pledge) for p in view.pledges if p.accepted and p.state == "pledged"]
        await self._sign(AidFulfilled(request=request, pledges=named))
        await self._close_local(request, "fulfilled")

    async def withdraw(self, request: str) -> None:
        local = await self._local(request)
        if local["state"] == "escalated":
            await self._sign(AidWithdrawn(request=request))
        elif local["state"] != "open":
            raise Refused("request_closed", f"request {request} is {local['state']}")
        await self._close_local(request, "withdrawn")

    async def _close_local(self, request: str, state: str) -> None:
        async with self.node.store.transaction() as db:
            await db.execute(
                "UPDATE local_aid SET state = ?, closed_at = ? WHERE request = ?",
                (state, self.now(), request),
            )
        self.on_local_change()

    # -- reading ------------------------------------------------------------------------------

    async def listing(
        self, *, include_closed: bool = False, viewer: str = "", coordinator: bool = True
    ) -> list[dict[str, Any]]:
        """This neighborhood's requests and the federation's escalated ones, ranked: open
        first, by urgency, needed-by and distance (area adjacency from node.toml).

        Each says whether the `viewer` (an account) asked it (`mine`) and, per pledge,
        whether they made it; a `coordinator` also sees which account asked (`asked_by`)
        and pledged (`pledged_by`) through this node, "" where none did."""
        now = self.now()
        out: list[dict[str, Any]] = []
        people = await self._people()
        for r in await fetch_all(self.db, "SELECT request, state FROM local_aid"):
            local = await self._local(str(r[0]))
            if local["state"] == "escalated" or local["escalated_at"] is not None:
                continue  # shown from the federation's view below (closed ones too)
            state = local["state"]
            if state == "open":
                pledged = local["pledged_locally"]
                state = (
                    "expired" if now > local["needed_by"]
                    else "pledged" if pledged >= local["quantity"]
                    else "partly_pledged" if pledged else "open"
                )  # fmt: skip
            pledges = [
                {"pledger": self.me, "pledge": row[0], "what": row[1], "quantity": row[2],
                 "state": "pledged", "accepted": False}
                for row in await fetch_all(
                    self.db,
                    "SELECT pledge, what, quantity FROM local_pledges WHERE request = ?"
                    " ORDER BY at",
                    (local["request"],),
                )
            ]  # fmt: skip
            out.append({**local, "requester": self.me, "state": state, "escalated": False,
                        "pledged": local["pledged_locally"], "pledges": pledges})  # fmt: skip
        for requester, request in await fetch_all(
            self.db, "SELECT requester, request FROM aid_requests"
        ):
            view = await load_request(self.db, str(requester), str(request))
            out.append({
                "requester": view.requester, "request": view.request,
                "category": view.category, "urgency": view.urgency,
                "needed_by": view.needed_by, "quantity": view.quantity, "area": view.area,
                "description": view.description, "raised_at": view.raised_at,
                "state": view.state_at(now), "escalated": True,
                "escalated_at": view.escalated_at, "closed_at": view.closed_at or None,
                "pledged": view.pledged, "accepted": view.accepted,
                "pledges": [msgspec.structs.asdict(p) for p in view.pledges],
            })  # fmt: skip
        if not include_closed:
            out = [r for r in out if r["state"] in ("open", "partly_pledged", "pledged")]
        for shown in out:
            asker = people.get((shown["requester"], shown["request"], ""), "")
            shown["mine"] = bool(viewer) and asker == viewer
            if coordinator:
                shown["asked_by"] = asker
            for made in shown["pledges"]:
                pledger = people.get((shown["requester"], shown["request"], made["pledge"]), "")
                if made["pledger"] != self.me:
                    pledger = ""
                made["mine"] = bool(viewer) and pledger == viewer
                if coordinator:
                    made["pledged_by"] = pledger
        near = self.node.config.neighbors
        mine = self.node.config.area

        def key(r: dict[str, Any]) -> tuple[int, int, int, int]:
            closed = r["state"] not in ("open", "partly_pledged", "pledged")
            return (int(closed), *rank_key(r["urgency"], r["needed_by"],
                                           area_distance(mine, r["area"], near)))  # fmt: skip

        out.sort(key=key)
        return out

    async def raise_alert(
        self, kind: str, severity: str, area: str | None, advice: str, alert: str | None = None
    ) -> str:
        aid = alert or new_id("a")
        taken = "SELECT 1 FROM alerts WHERE author = ? AND alert = ?"
        if await fetch_one(self.db, taken, (self.me, aid)):
            raise Refused("duplicate", f"alert {aid} exists: choose another id")
        await self._sign(
            AlertRaised(alert=aid, alert_kind=kind, severity=severity,  # type: ignore[arg-type]
                        area=area or self.node.config.area, advice=advice)
        )  # fmt: skip
        return aid

    async def resolve_alert(self, alert: str) -> None:
        row = await fetch_one(
            self.db,
            "SELECT resolved_at FROM alerts WHERE author = ? AND alert = ?",
            (self.me, alert),
        )
        if row is None or row[0] is not None:
            raise Refused("not_found", f"no open alert {alert} of {self.me}", 404)
        await self._sign(AlertResolved(alert=alert))

    async def alerts(self, *, include_resolved: bool = False) -> list[dict[str, Any]]:
        cols = ("author", "alert", "kind", "severity", "area", "advice", "raised_at", "resolved_at")
        sql = f"SELECT {', '.join(cols)} FROM alerts"
        if not include_resolved:
            sql += " WHERE resolved_at IS NULL"
        order = {"danger": 0, "warning": 1, "info": 2}
        rows = [dict(zip(cols, r, strict=True)) for r in await fetch_all(self.db, sql)]
        rows.sort(key=lambda a: (a["resolved_at"] is not None, order.get(a["severity"], 3),
                                 -a["raised_at"]))  # fmt: skip
        return rows


async def aid_summary(
    federation: aiosqlite.Connection, locals_: list[aiosqlite.Connection]
) -> dict[str, Any]:
    """Demo and audit figures: requests raised (in every neighborhood), escalated (seen by
    the federation), fulfilled, and the median minutes from a resident's ask to fulfilment."""
    requests = fulfilled = 0
    minutes: list[float] = []
    for local in locals_:
        for state, raised_at, closed_at in await fetch_all(
            local, "SELECT state, raised_at, closed_at FROM local_aid"
        ):
            requests += 1
            if state == "fulfilled" and closed_at is not None:
                fulfilled += 1
                minutes.append((closed_at - raised_at) / MINUTE_MS)
    escalated = await fetch_one(federation, "SELECT COUNT(*) FROM aid_requests")
    return {
        "aid_requests": requests,
        "aid_escalated": int(escalated[0]) if escalated else 0,
        "aid_fulfilled": fulfilled,
        "aid_median_minutes_to_fulfil": round(statistics.median(minutes), 2) if minutes else None,
    }
