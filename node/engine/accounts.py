"""The neighborhood's people: accounts, invitations, sessions and API tokens (docs/APP.md).

Everything here lives in the node's own SQLite file and never goes on the bus. Secrets
handed to people (invitation links, session cookies, API tokens) are 256 random bits; the
node keeps only their SHA-256 digests, so a copy of `node.db` signs no one in. Passwords
are argon2id hashes (node/engine/passwords.py). Time is the node's clock in milliseconds.

Roles are `resident` < `coordinator`; the CLI's token belongs to `OPERATOR`, a coordinator
that is no account (it cannot sign in, be demoted or be disabled).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from typing import Literal

import aiosqlite
import msgspec

from coopnet.node.engine.passwords import check_strength, hash_password, verify_password
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store import Store, now_ms
from coopnet.node.engine.store_io import fetch_all, fetch_one
from coopnet.node.engine.throttle import Throttle
from coopnet.protocol.text import safe_text

Role = Literal["resident", "coordinator"]
ROLES: tuple[Role, ...] = ("resident", "coordinator")
OPERATOR = "@operator"  # the CLI's principal: a coordinator, never an account
HOUR_MS = 3600 * 1000
SESSION_MS = 14 * 24 * HOUR_MS  # a phone stays signed in for two weeks
# Failed sign-ins in 15 minutes before one must wait: for a name from one address (a
# guesser), from one address in all, and for a name from everywhere (a distributed
# guesser: high, so that a stranger cannot lock a coordinator out with five tries).
PER_NAME_AND_CLIENT, PER_CLIENT, PER_NAME = 5, 20, 100
INVITATION_HOURS = 72
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}\Z")


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who a request is from: an account `name` (or `OPERATOR`), its `role`, and how it
    showed it (`via`: session, token or peer); `csrf` is the session's token, if any."""

    name: str
    role: Role
    via: Literal["session", "token", "peer"]
    csrf: str = ""

    def at_least(self, role: Role) -> bool:
        """Whether this principal's role is `role` or above it."""
        return ROLES.index(self.role) >= ROLES.index(role)


class AccountOut(msgspec.Struct, kw_only=True):
    name: str
    display_name: str
    role: Role
    contact: str
    created_at: int  # ms since the epoch
    last_sign_in: int | None
    disabled: bool


class InvitationOut(msgspec.Struct, kw_only=True):
    id: str
    kind: Literal["join", "reset"]
    role: Role
    name: str  # the account a reset is for; "" for a join
    expires_at: int  # ms since the epoch
    created_by: str


class AccountTables:
    """The accounts' tables (`OwnTables`): never derived from the log, never reset."""

    name = "accounts"
    migrations: tuple[tuple[str, ...], ...] = ((
    """CREATE TABLE accounts (
        name TEXT PRIMARY KEY, display_name TEXT NOT NULL, role TEXT NOT NULL,
        password TEXT NOT NULL, contact TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL,
        last_sign_in INTEGER, disabled INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE invitations (
        id TEXT PRIMARY KEY, digest BLOB NOT NULL UNIQUE, kind TEXT NOT NULL,
        role TEXT NOT NULL, account TEXT NOT NULL DEFAULT '', created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, used_at INTEGER,
        revoked INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE sessions (
        digest BLOB PRIMARY KEY, account TEXT NOT NULL, csrf TEXT NOT NULL,
        created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)""",
    """CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY, digest BLOB NOT NULL UNIQUE, account TEXT NOT NULL,
        label TEXT NOT NULL, created_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0)""",
    ), (
    # Passkeys (node/engine/passkeys.py): public keys only.
    """CREATE TABLE passkeys (
        id BLOB PRIMARY KEY, account TEXT NOT NULL, public_key BLOB NOT NULL,
        sign_count INTEGER NOT NULL, label TEXT NOT NULL, created_at INTEGER NOT NULL,
        last_used INTEGER)""",
    ),)  # fmt: skip


def digest(secret: str) -> bytes:
    """The SHA-256 of a secret handed out (an invitation, a session, a token)."""
    return hashlib.sha256(secret.encode()).digest()


def new_secret() -> str:
    """256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def _bad_invitation() -> Refused:
    return Refused(
        "invitation_not_valid",
        "this link is unknown, used, revoked or expired: ask a coordinator for a new one",
        400,
    )


class Accounts:
    """The node's accounts and their credentials, on its `store` (docs/APP.md).

    Resolved credentials are cached in memory (a request costs no query); every change to
    an account, session or token clears the cache. `clock` gives milliseconds (tests
    replace it)."""

    def __init__(self, store: Store, clock: Callable[[], int] = now_ms) -> None:
        self.store = store
        self.clock = clock
        self._cache: dict[bytes, tuple[Principal, int]] = {}
        # Failed sign-ins by name and by client address (in memory: a restart forgets).
        self.failures_by_name_and_client = Throttle(PER_NAME_AND_CLIENT)
        self.failures_by_client = Throttle(PER_CLIENT)
        self.failures_by_name = Throttle(PER_NAME)

    def _changed(self) -> None:
        self._cache.clear()

    # -- accounts ---------------------------------------------------------------------------

    async def get(self, name: str) -> AccountOut | None:
        """One account, or None."""
        row = await fetch_one(
            self.store.db,
            "SELECT name, display_name, role, contact, created_at, last_sign_in, disabled"
            " FROM accounts WHERE name = ?",
            (name,),
        )
        return _account(row) if row else None

    async def listing(self) -> list[AccountOut]:
        """Every account, coordinators first, then by name."""
        rows = await fetch_all(
            self.store.db,
            "SELECT name, display_name, role, contact, created_at, last_sign_in, disabled"
            " FROM accounts ORDER BY role = 'coordinator' DESC, name",
        )
        return [_account(r) for r in rows]

    async def set_role(self, name: str, role: Role) -> None:
        """Raises Refused `no_such_account` (404) or `last_coordinator` (409). A demoted
        coordinator's open invitations end with the role."""
        await self._existing(name)
        async with self.store.transaction() as db:  # the count and the change, atomically
            if role != "coordinator":
                await _keep_a_coordinator(db, name)
                await db.execute(
                    "UPDATE invitations SET revoked = 1 WHERE created_by = ? AND used_at IS NULL",
                    (name,),
                )
            await db.execute("UPDATE accounts SET role = ? WHERE name = ?", (role, name))
        self._changed()

    async def disable(self, name: str) -> None:
        """The account can no longer sign in; its sessions, tokens, passkeys, open reset
        links and the invitations it made end. Raises Refused `no_such_account` (404) or
        `last_coordinator` (409)."""
        await self._existing(name)
        async with self.store.transaction() as db:
            await _keep_a_coordinator(db, name)
            await db.execute("UPDATE accounts SET disabled = 1 WHERE name = ?", (name,))
            await db.execute(
                "UPDATE invitations SET revoked = 1 WHERE (account = ? OR created_by = ?)"
                " AND used_at IS NULL",
                (name, name),
            )
            await _end_credentials(db, name)
        self._changed()

    async def _existing(self, name: str) -> AccountOut:
        account = await self.get(name)
        if account is None:
            raise Refused("no_such_account", f"no account named {name!r} here", 404)
        return account

    # -- invitations and resets -------------------------------------------------------------

    async def invite(
        self, role: Role, by: str, hours: int = INVITATION_HOURS
    ) -> tuple[InvitationOut, str]:
        """A single-use invitation to join as `role`, valid `hours`; returns it and the
        secret for its link (shown once, only its digest is kept)."""
        return await self._invitation("join", role, "", by, hours)

    async def reset_link(self, name: str, by: str, hours: int = 24) -> tuple[InvitationOut, str]:
        """A single-use link that sets a new password for `name`. Raises Refused
        `no_such_account` (404)."""
        account = await self._existing(name)
        return await self._invitation("reset", account.role, name, by, hours)

    async def _invitation(
        self, kind: Literal["join", "reset"], role: Role, name: str, by: str, hours: int
    ) -> tuple[InvitationOut, str]:
        secret, now = new_secret(), self.clock()
        out = InvitationOut(
            id=f"inv-{secrets.token_hex(4)}",
            kind=kind,
            role=role,
            name=name,
            expires_at=now + hours * HOUR_MS,
            created_by=by,
        )
        async with self.store.transaction() as db:
            await db.execute(
                "INSERT INTO invitations (id, digest, kind, role, account, created_by,"
                " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (out.id, digest(secret), kind, role, name, by, now, out.expires_at),
            )
        return out, secret

    async def open_invitations(self) -> list[InvitationOut]:
        """Invitations and reset links not used, revoked or expired, soonest to expire first."""
        rows = await fetch_all(
            self.store.db,
            "SELECT id, kind, role, account, expires_at, created_by FROM invitations"
            " WHERE used_at IS NULL AND revoked = 0 AND expires_at > ? ORDER BY expires_at",
            (self.clock(),),
        )
        return [
            InvitationOut(
                id=r[0], kind=r[1], role=r[2], name=r[3], expires_at=r[4], created_by=r[5]
            )
            for r in rows
        ]

    async def revoke_invitation(self, invitation_id: str) -> None:
        """Raises Refused `no_such_invitation` (404)."""
        async with self.store.transaction() as db:
            cur = await db.execute(
                "UPDATE invitations SET revoked = 1 WHERE id = ? AND used_at IS NULL",
                (invitation_id,),
            )
            if cur.rowcount == 0:
                raise Refused("no_such_invitation", f"no open invitation {invitation_id}", 404)

    async def invitation(self, secret: str) -> InvitationOut:
        """What an unused, unexpired link is for. Raises Refused `invitation_not_valid`."""
        row = await fetch_one(
            self.store.db,
            "SELECT id, kind, role, account, expires_at, created_by FROM invitations"
            " WHERE digest = ? AND used_at IS NULL AND revoked = 0 AND expires_at > ?",
            (digest(secret), self.clock()),
        )
        if row is None:
            raise _bad_invitation()
        return InvitationOut(
            id=row[0], kind=row[1], role=row[2], name=row[3], expires_at=row[4], created_by=row[5]
        )

    async def join(
        self, secret: str, name: str, password: str, display_name: str, contact: str
    ) -> tuple[Principal, str]:
        """Make an account from a join link and sign it in; returns its principal and the
        session secret. Raises Refused `invitation_not_valid` (400), `bad_name` (400),
        `weak_password` (400), `name_taken` (409)."""
        if not NAME.match(name) or name == OPERATOR:
            raise Refused(
                "bad_name",
                "a name is 2-32 lowercase letters, digits, '.', '_' or '-', starting with a"
                " letter or digit",
                400,
            )
        check_strength(password)
        invitation = await self.invitation(secret)
        if invitation.kind != "join":
            raise _bad_invitation()
        hashed = await hash_password(password)
        shown = safe_text(display_name).strip()[:80] or name
        now = self.clock()
        async with self.store.transaction() as db:
            if await fetch_one(db, "SELECT 1 FROM accounts WHERE name = ?", (name,)):
                raise Refused("name_taken", f"the name {name!r} is taken: choose another")
            cur = await db.execute(
                "UPDATE invitations SET used_at = ? WHERE digest = ? AND used_at IS NULL"
                " AND revoked = 0 AND expires_at > ?",
                (now, digest(secret), now),
            )
            if cur.rowcount == 0:  # used by a racing request meanwhile
                raise _bad_invitation()
            await db.execute(
                "INSERT INTO accounts (name, display_name, role, password, contact, created_at,"
                " last_sign_in) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, shown, invitation.role, hashed, safe_text(contact)[:120], now, now),
            )
            session = await _new_session(db, name, now)
        return Principal(name=name, role=invitation.role, via="session", csrf=session[1]), session[
            0
        ]

    async def reset(self, secret: str, password: str) -> tuple[Principal, str]:
        """Set a new password from a reset link; every other session, token and passkey of
        the account ends, and a new session begins. A disabled account's link does nothing.
        Raises Refused `invitation_not_valid`, `weak_password`."""
        check_strength(password)
        invitation = await self.invitation(secret)
        if invitation.kind != "reset":
            raise _bad_invitation()
        hashed = await hash_password(password)
        now, name = self.clock(), invitation.name
        async with self.store.transaction() as db:
            cur = await db.execute(
                "UPDATE invitations SET used_at = ? WHERE digest = ? AND used_at IS NULL"
                " AND revoked = 0 AND expires_at > ? AND kind = 'reset'",
                (now, digest(secret), now),
            )
            if cur.rowcount == 0:
                raise _bad_invitation()
            cur = await db.execute(
                "UPDATE accounts SET password = ?, last_sign_in = ? WHERE name = ?"
                " AND disabled = 0",
                (hashed, now, name),
            )
            if cur.rowcount == 0:  # disabled: a coordinator's reset link does not revive it
                raise _bad_invitation()
            await _end_credentials(db, name)
            session = await _new_session(db, name, now)
        self._changed()
        account = await self._existing(name)
        return Principal(name=name, role=account.role, via="session", csrf=session[1]), session[0]

    # -- sign-in, sessions, passwords ---------------------------------------------------------

    async def sign_in(self, name: str, password: str) -> tuple[Principal, str] | None:
        """A new session for `name` if the password is right and the account enabled;
        None otherwise (in the same time for an unknown name)."""
        row = await fetch_one(
            self.store.db, "SELECT password FROM accounts WHERE name = ?", (name,)
        )
        if not await verify_password(row[0] if row else None, password):
            return None
        return await self.open_session(name)  # None if disabled

    async def open_session(self, name: str) -> tuple[Principal, str] | None:
        """A new session for an enabled account that proved itself (a password, a
        passkey); None if it is disabled or gone."""
        row = await fetch_one(
            self.store.db, "SELECT role, disabled FROM accounts WHERE name = ?", (name,)
        )
        if row is None or row[1]:
            return None
        now = self.clock()
        async with self.store.transaction() as db:
            await db.execute("UPDATE accounts SET last_sign_in = ? WHERE name = ?", (now, name))
            session = await _new_session(db, name, now)
        return Principal(name=name, role=row[0], via="session", csrf=session[1]), session[0]

    async def sign_out(self, session_secret: str) -> None:
        """End one session."""
        async with self.store.transaction() as db:
            await db.execute("DELETE FROM sessions WHERE digest = ?", (digest(session_secret),))
        self._changed()

    async def change_password(
        self, name: str, current: str, new: str, keep_session: str | None
    ) -> None:
        """Raises Refused `bad_credentials` (403) or `weak_password` (400); every session
        but `keep_session` (a secret), every API token and every passkey of the account
        end (whoever stole a session may have made one)."""
        check_strength(new)
        row = await fetch_one(
            self.store.db, "SELECT password FROM accounts WHERE name = ?", (name,)
        )
        if row is None or not await verify_password(row[0], current):
            raise Refused("bad_credentials", "the current password is not right", 403)
        hashed = await hash_password(new)
        kept = digest(keep_session) if keep_session else b""
        async with self.store.transaction() as db:
            await db.execute("UPDATE accounts SET password = ? WHERE name = ?", (hashed, name))
            await db.execute("DELETE FROM sessions WHERE account = ? AND digest != ?", (name, kept))
            # Whoever held a session may have made a token or a passkey with it.
            await db.execute("UPDATE api_tokens SET revoked = 1 WHERE account = ?", (name,))
            await db.execute("DELETE FROM passkeys WHERE account = ?", (name,))
        self._changed()

    async def session(self, secret: str) -> Principal | None:
        """The principal of a live session of an enabled account, or None."""
        key = b"s" + digest(secret)
        now = self.clock()
        cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        row = await fetch_one(
            self.store.db,
            "SELECT s.account, a.role, s.csrf, s.expires_at FROM sessions s"
            " JOIN accounts a ON a.name = s.account"
            " WHERE s.digest = ? AND s.expires_at > ? AND a.disabled = 0",
            (key[1:], now),
        )
        if row is None:
            return None
        principal = Principal(name=row[0], role=row[1], via="session", csrf=row[2])
        self._cache[key] = (principal, int(row[3]))
        return principal

    # -- API tokens -------------------------------------------------------------------------

    async def new_token(self, owner: Principal, label: str) -> tuple[str, str]:
        """A token carrying `owner`'s role; returns (id, secret): the secret is shown once."""
        token_id, secret = f"tok-{secrets.token_hex(4)}", new_secret()
        async with self.store.transaction() as db:
            await db.execute(
                "INSERT INTO api_tokens (id, digest, account, label, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (token_id, digest(secret), owner.name, safe_text(label)[:80], self.clock()),
            )
        return token_id, secret

    async def operator_token(self) -> str:
        """A new token for the CLI (`OPERATOR`, a coordinator); earlier ones end."""
        async with self.store.transaction() as db:
            await db.execute("DELETE FROM api_tokens WHERE account = ?", (OPERATOR,))
        self._changed()
        return (await self.new_token(
            Principal(name=OPERATOR, role="coordinator", via="peer"), "the node's CLI"
        ))[1]  # fmt: skip

    async def tokens(self, owner: str) -> list[dict[str, object]]:
        """`owner`'s live tokens (never their secrets)."""
        rows = await fetch_all(
            self.store.db,
            "SELECT id, label, created_at FROM api_tokens WHERE account = ? AND revoked = 0"
            " ORDER BY created_at",
            (owner,),
        )
        return [{"id": r[0], "label": r[1], "created_at": r[2]} for r in rows]

    async def revoke_token(self, owner: str, token_id: str) -> None:
        """Raises Refused `no_such_token` (404)."""
        async with self.store.transaction() as db:
            cur = await db.execute(
                "UPDATE api_tokens SET revoked = 1 WHERE id = ? AND account = ? AND revoked = 0",
                (token_id, owner),
            )
            if cur.rowcount == 0:
                raise Refused("no_such_token", f"no live token {token_id} of yours", 404)
        self._changed()

    async def token(self, secret: str) -> Principal | None:
        """The principal a live API token speaks for, or None."""
        key = b"t" + digest(secret)
        cached = self._cache.get(key)
        if cached is not None:
            return cached[0]
        row = await fetch_one(
            self.store.db,
            "SELECT t.account, coalesce(a.role, 'coordinator') FROM api_tokens t"
            " LEFT JOIN accounts a ON a.name = t.account"
            " WHERE t.digest = ? AND t.revoked = 0"
            " AND (t.account = ? OR a.disabled = 0)",
            (key[1:], OPERATOR),
        )
        if row is None:
            return None
        principal = Principal(name=row[0], role=row[1], via="token")
        self._cache[key] = (principal, 2**62)
        return principal


async def _new_session(db: aiosqlite.Connection, name: str, now: int) -> tuple[str, str]:
    """Insert a session for `name` (inside a transaction); returns (secret, csrf token)."""
    secret, csrf = new_secret(), new_secret()
    await db.execute(
        "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
        (digest(secret), name, csrf, now, now + SESSION_MS),
    )
    return secret, csrf


async def _keep_a_coordinator(db: aiosqlite.Connection, name: str) -> None:
    """Inside a write transaction: refuse (`last_coordinator`, 409) to take `name` away if
    it is the last enabled coordinator."""
    mine = await fetch_one(
        db,
        "SELECT 1 FROM accounts WHERE name = ? AND role = 'coordinator' AND disabled = 0",
        (name,),
    )
    others = await fetch_one(
        db,
        "SELECT count(*) FROM accounts WHERE role = 'coordinator' AND disabled = 0 AND name != ?",
        (name,),
    )
    if mine and others and int(others[0]) == 0:
        raise Refused(
            "last_coordinator",
            "this is the neighborhood's last coordinator: make another one first",
        )


async def _end_credentials(db: aiosqlite.Connection, name: str) -> None:
    """Every session, API token and passkey of `name` ends (inside a transaction)."""
    await db.execute("DELETE FROM sessions WHERE account = ?", (name,))
    await db.execute("UPDATE api_tokens SET revoked = 1 WHERE account = ?", (name,))
    await db.execute("DELETE FROM passkeys WHERE account = ?", (name,))


def _account(row: tuple[object, ...]) -> AccountOut:
    return AccountOut(
        name=str(row[0]),
        display_name=str(row[1]),
        role=row[2],  # type: ignore[arg-type]
        contact=str(row[3]),
        created_at=int(row[4]),  # type: ignore[call-overload]
        last_sign_in=row[5],  # type: ignore[arg-type]
        disabled=bool(row[6]),
    )


__all__ = [
    "OPERATOR",
    "ROLES",
    "AccountOut",
    "AccountTables",
    "Accounts",
    "InvitationOut",
    "Principal",
    "Role",
]
