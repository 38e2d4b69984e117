"""The membership projection: applications, positions and retirements, and who is a member.

I/O only: the tables keep every statement as the log says it; `standings` hands them, with
the charter's founders and quorum, to the pure rule `protocol.membership.decide`, so a node
and an observer holding the same events give the same answer (docs/PROTOCOL.md §16).
Without a charter (a development federation), every neighborhood with a founded log counts
as a founder.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import aiosqlite

from coopnet.node.engine.projection import refuse
from coopnet.node.engine.store_io import fetch_all, select_one
from coopnet.protocol import Envelope, InvalidEvent
from coopnet.protocol.charter import Charter
from coopnet.protocol.errors import NotAuthorized
from coopnet.protocol.membership import (
    Application,
    MembershipApplied,
    MembershipConsented,
    MembershipObjected,
    MembershipObjectionWithdrawn,
    MembershipRetired,
    Position,
    Standing,
    decide,
    position_step,
)

_STATEMENTS = (MembershipConsented, MembershipObjected, MembershipObjectionWithdrawn)


class MembershipProjection:
    """The `member_applications`, `member_positions` and `member_retirements` tables."""

    name = "membership"
    tables: tuple[str, ...] = ("member_applications", "member_positions", "member_retirements")
    kinds = frozenset(cls.kind for cls in (MembershipApplied, *_STATEMENTS, MembershipRetired))
    migrations: tuple[tuple[str, ...], ...] = ((
        """CREATE TABLE member_applications (
            applicant TEXT PRIMARY KEY, id BLOB NOT NULL, display_name TEXT NOT NULL,
            area TEXT NOT NULL, about TEXT NOT NULL, reason TEXT NOT NULL,
            at INTEGER NOT NULL, seq INTEGER NOT NULL)""",
        """CREATE TABLE member_positions (
            voter TEXT NOT NULL, applicant TEXT NOT NULL, application BLOB NOT NULL,
            stance TEXT NOT NULL, reason TEXT NOT NULL, seq INTEGER NOT NULL,
            at INTEGER NOT NULL, PRIMARY KEY (voter, applicant, application))""",
        """CREATE TABLE member_retirements (
            slug TEXT PRIMARY KEY, seq INTEGER NOT NULL, at INTEGER NOT NULL,
            reason TEXT NOT NULL)""",
    ),)  # fmt: skip

    def apply(self, conn: sqlite3.Connection, events: Sequence[Envelope]) -> None:
        for env in events:
            body = env.body
            try:
                if isinstance(body, MembershipApplied):
                    _apply_application(conn, env, body)
                elif isinstance(body, _STATEMENTS):
                    _apply_statement(conn, env)
                elif isinstance(body, MembershipRetired):
                    conn.execute(
                        "INSERT OR IGNORE INTO member_retirements VALUES (?, ?, ?, ?)",
                        (env.author, env.seq, env.at, body.reason),
                    )
            except InvalidEvent as exc:
                refuse(conn, env, exc.code, exc.message)

    def reset(self, conn: sqlite3.Connection) -> None:
        for table in self.tables:
            conn.execute(f"DELETE FROM {table}")


def _apply_application(conn: sqlite3.Connection, env: Envelope, body: MembershipApplied) -> None:
    if select_one(conn, "SELECT 1 FROM member_applications WHERE applicant = ?", (env.author,)):
        raise NotAuthorized(f"{env.author} has applied already: its first application stands")
    conn.execute(
        "INSERT INTO member_applications VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (env.author, env.id, body.display_name, body.area, body.about, body.reason, env.at,
         env.seq),
    )  # fmt: skip


def _apply_statement(conn: sqlite3.Connection, env: Envelope) -> None:
    body = env.body
    assert isinstance(body, _STATEMENTS)
    key = (env.author, body.applicant, body.application)
    row = select_one(
        conn,
        "SELECT stance, reason FROM member_positions"
        " WHERE voter = ? AND applicant = ? AND application = ?",
        key,
    )
    current = (
        Position(voter=key[0], applicant=key[1], application=key[2], stance=row[0], reason=row[1])
        if row
        else None
    )
    after = position_step(current, env.author, body)
    conn.execute(
        "INSERT OR REPLACE INTO member_positions VALUES (?, ?, ?, ?, ?, ?, ?)",
        (*key, after.stance, after.reason, env.seq, env.at),
    )


async def standings(
    db: aiosqlite.Connection, charter: Charter | None, *, ignore_retirements: bool = False
) -> dict[str, Standing]:
    """Every known neighborhood's membership, as the rule decides it from the tables.
    (`ignore_retirements`: as it stood before anyone retired, for judging old events.)"""
    apps = {
        r[0]: Application(
            applicant=r[0],
            id=bytes(r[1]),
            display_name=r[2],
            area=r[3],
            about=r[4],
            reason=r[5],
            at=r[6],
        )
        for r in await fetch_all(db, "SELECT * FROM member_applications")
    }
    positions = [
        Position(voter=r[0], applicant=r[1], application=bytes(r[2]), stance=r[3], reason=r[4])
        for r in await fetch_all(db, "SELECT * FROM member_positions")
    ]
    retired = [r[0] for r in await fetch_all(db, "SELECT slug FROM member_retirements")]
    if ignore_retirements:
        retired = []
    if charter is None:
        founders = [r[0] for r in await fetch_all(db, "SELECT author FROM neighborhoods")]
        quorum = 50
    else:
        founders = [f.slug for f in charter.founders]
        quorum = charter.policies.quorum_percent
    return decide(
        founders=founders,
        applications=apps,
        positions=positions,
        retired=retired,
        quorum_percent=quorum,
    )
