"""The mutual-aid projection: escalated calls for help, pledges and alerts, from the log.

I/O only: every rule is a pure function in `coopnet.protocol.aid` (PROTOCOL.md §13-14), so
an observer recomputes exactly this. A request is folded again from all its statements
whenever one arrives, so the result does not depend on the order logs arrived in.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
import msgspec

from coopnet.node.engine.projection import record_refusal, refuse
from coopnet.node.engine.store_io import run_in_db, select_all, select_one
from coopnet.protocol import Envelope, InvalidEvent
from coopnet.protocol.aid import (
    AidFulfilled,
    AidPledgeAccepted,
    AidPledged,
    AidPledgeWithdrawn,
    AidRequested,
    AidStatement,
    AidWithdrawn,
    AlertRaised,
    AlertResolved,
    RequestView,
    aid_key,
    check_personal_data,
    fold_request,
)
from coopnet.protocol.kinds import KINDS

_encoder = msgspec.msgpack.Encoder()
_EVENTS_SQL = (
    "SELECT id, author, seq, at, kind, body FROM aid_events WHERE requester = ? AND request = ?"
)
REQUEST_COLUMNS = ("requester", "request", "category", "urgency", "needed_by", "quantity",
                   "area", "description", "raised_at", "escalated_at", "pledged_locally",
                   "requester_state", "closed_at", "accepted", "pledged")  # fmt: skip


class AidProjection:
    """Escalated requests, pledges and alerts, from the log."""

    name = "aid"
    tables: tuple[str, ...] = ("aid_events", "aid_requests", "aid_pledges", "alerts")
    kinds = frozenset(
        cls.kind
        for cls in (
            AidRequested, AidPledged, AidPledgeAccepted, AidPledgeWithdrawn, AidFulfilled,
            AidWithdrawn, AlertRaised, AlertResolved,
        )
    )  # fmt: skip
    migrations: tuple[tuple[str, ...], ...] = ((
        """CREATE TABLE aid_events (
            id BLOB PRIMARY KEY, requester TEXT NOT NULL, request TEXT NOT NULL,
            author TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,
            kind TEXT NOT NULL, body BLOB NOT NULL)""",
        "CREATE INDEX aid_events_request ON aid_events (requester, request)",
        f"""CREATE TABLE aid_requests ({", ".join(REQUEST_COLUMNS)},
            PRIMARY KEY (requester, request))""",
        """CREATE TABLE aid_pledges (
            requester TEXT NOT NULL, request TEXT NOT NULL, pledger TEXT NOT NULL,
            pledge TEXT NOT NULL, what TEXT NOT NULL, quantity INTEGER NOT NULL,
            state TEXT NOT NULL, accepted INTEGER NOT NULL, at INTEGER NOT NULL,
            PRIMARY KEY (pledger, pledge))""",
        """CREATE TABLE alerts (
            author TEXT NOT NULL, alert TEXT NOT NULL, kind TEXT NOT NULL,
            severity TEXT NOT NULL, area TEXT NOT NULL, advice TEXT NOT NULL,
            raised_at INTEGER NOT NULL, resolved_at INTEGER, PRIMARY KEY (author, alert))""",
    ), (
        # A pledge is named within its request (PROTOCOL.md §13): one pledger may use the
        # same pledge id on two requests, and neither replaces the other. The store folds
        # the projection again after this step.
        "DROP TABLE aid_pledges",
        """CREATE TABLE aid_pledges (
            requester TEXT NOT NULL, request TEXT NOT NULL, pledger TEXT NOT NULL,
            pledge TEXT NOT NULL, what TEXT NOT NULL, quantity INTEGER NOT NULL,
            state TEXT NOT NULL, accepted INTEGER NOT NULL, at INTEGER NOT NULL,
            PRIMARY KEY (requester, request, pledger, pledge))""",
    ), (
        # The personal-data rule reads normalized text now (PROTOCOL.md §13.1): the tables
        # stay as they are, but this step makes the store fold the projection again, so
        # what the new rule refuses is refused on an upgraded node too, as on a new one.
        "SELECT 1",
    ))  # fmt: skip

    def apply(self, conn: sqlite3.Connection, events: Sequence[Envelope]) -> None:
        touched: set[tuple[str, str]] = set()
        for env in events:
            body = env.body
            try:
                check_personal_data(body)
            except InvalidEvent as exc:
                refuse(conn, env, exc.code, exc.message)
                continue
            if isinstance(body, AlertRaised):
                raised = "SELECT 1 FROM alerts WHERE author = ? AND alert = ?"
                if select_one(conn, raised, (env.author, body.alert)):
                    reason = f"alert {body.alert} of {env.author} was raised already"
                    refuse(conn, env, "not_authorized", reason)  # §14: an alert id, once
                    continue
                conn.execute(
                    "INSERT OR IGNORE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                    (env.author, body.alert, body.alert_kind, body.severity, body.area,
                     body.advice, env.at),
                )  # fmt: skip
            elif isinstance(body, AlertResolved):
                cur = conn.execute(
                    "UPDATE alerts SET resolved_at = ? WHERE author = ? AND alert = ?"
                    " AND resolved_at IS NULL",
                    (env.at, env.author, body.alert),
                )
                if cur.rowcount == 0:
                    reason = f"no open alert {body.alert} of {env.author}"
                    refuse(conn, env, "not_authorized", reason)
            key = aid_key(env.author, body)
            if key is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO aid_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (env.id, *key, env.author, env.seq, env.at, env.kind, _encoder.encode(body)),
                )
                touched.add(key)
        for requester, request in sorted(touched):
            refold_request(conn, requester, request)

    def reset(self, conn: sqlite3.Connection) -> None:
        for table in self.tables:
            conn.execute(f"DELETE FROM {table}")


def refold_request(conn: sqlite3.Connection, requester: str, request: str) -> RequestView:
    rows = select_all(
        conn,
        _EVENTS_SQL,
        (requester, request),
    )
    statements = _statements(rows)
    view = fold_request(requester, request, statements)
    by_id = {s.id: s for s in statements}
    # The fold decides from the whole set of statements held: a refusal it made while one
    # was missing (an acceptance of a pledge not yet arrived) is taken back, so the rows do
    # not depend on how the events were batched (a rebuild gives the same).
    marks = ",".join("?" * len(by_id))
    conn.execute(f"DELETE FROM domain_rejections WHERE id IN ({marks})", list(by_id))
    for sid, code in view.refused:
        s = by_id[sid]
        reason = f"not allowed on {requester}/{request}"
        record_refusal(conn, s.id, s.author, s.seq, s.body.kind, code, reason)
    if view.requester_state != "none":
        values = [getattr(view, c) for c in REQUEST_COLUMNS]
        marks = ", ".join("?" * len(values))
        conn.execute(f"INSERT OR REPLACE INTO aid_requests VALUES ({marks})", values)
    conn.execute(
        "DELETE FROM aid_pledges WHERE requester = ? AND request = ?", (requester, request)
    )
    conn.executemany(
        "INSERT OR REPLACE INTO aid_pledges VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (requester, request, p.pledger, p.pledge, p.what, p.quantity, p.state,
             int(p.accepted), p.at)
            for p in view.pledges
        ],
    )  # fmt: skip
    return view


def request_view(conn: sqlite3.Connection, requester: str, request: str) -> RequestView:
    """The federation's view of an escalated request (empty view if unknown here)."""
    rows = select_all(
        conn,
        _EVENTS_SQL,
        (requester, request),
    )
    return fold_request(requester, request, _statements(rows))


def _statements(rows: list[tuple[Any, ...]]) -> list[AidStatement]:
    return [
        AidStatement(
            id=bytes(r[0]),
            author=r[1],
            seq=r[2],
            at=r[3],
            body=msgspec.msgpack.decode(r[5], type=KINDS[r[4]]),
        )
        for r in rows
    ]


async def load_request(db: aiosqlite.Connection, requester: str, request: str) -> RequestView:
    """The federation's view of an escalated request (one round trip to the store)."""
    return await run_in_db(db, request_view, requester, request)
