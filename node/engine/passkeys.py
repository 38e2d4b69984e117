"""Passkeys (WebAuthn): sign in with a phone's or a laptop's authenticator instead of a
password (docs/APP.md, "Passkeys").

The ceremonies are py_webauthn's (Duo Labs), a well-kept library: it builds the options a
browser hands `navigator.credentials`, and verifies what comes back (challenge, origin, RP
ID, signature, counter). We keep the credentials (table `passkeys`, public keys only) and
the open ceremonies (in memory, one use, `CEREMONY_MS`). A passkey is bound to the name the
browser reached the node at (its RP ID: `localhost`, or the node's domain behind a proxy);
browsers refuse an IP address, so the app offers passkeys only at a name.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from coopnet.node.engine.accounts import Accounts, Principal
from coopnet.node.engine.refusals import Refused
from coopnet.node.engine.store_io import fetch_all, fetch_one

CEREMONY_MS = 5 * 60 * 1000  # how long a browser has to answer
MAX_CEREMONIES = 10_000  # open at once; beyond it the oldest are forgotten
PER_CLIENT = 8  # open at once per client address; beyond it that client's oldest end


class Ceremony(msgspec.Struct, frozen=True, kw_only=True):
    kind: Literal["register", "sign-in"]
    challenge: bytes
    account: str  # "" for a sign-in: the passkey says whose it is
    rp_id: str
    origin: str
    expires_at: int  # ms since the epoch
    client: str = ""  # the address that opened it


def rp_of(origin: str) -> str:
    """The RP ID of an origin (`http://localhost:8701` → `localhost`). Raises Refused
    `passkey_needs_a_name` (400) for an IP address, which browsers refuse."""
    host = urlsplit(origin).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    raise Refused(
        "passkey_needs_a_name",
        "passkeys work at a name (localhost, or the node's domain), not at an IP address:"
        f" open the app at http://localhost… or the node's name instead of {host}",
        400,
    )


class Passkeys:
    """The node's passkeys and open ceremonies, beside its `accounts` (docs/APP.md)."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self._ceremonies: dict[str, Ceremony] = {}
        self._by_client: dict[str, list[str]] = {}  # each client's open keys, oldest first

    def _open(self, ceremony: Ceremony) -> str:
        """Keep `ceremony`; return its key. Every ceremony lives as long, so the expired
        ones are the oldest (dicts keep insertion order): dropped from the front. A client
        keeps at most `PER_CLIENT` open, so a flood from one address ends its own."""
        now = self.accounts.clock()
        while self._ceremonies:
            oldest = next(iter(self._ceremonies))
            if self._ceremonies[oldest].expires_at > now and len(self._ceremonies) < MAX_CEREMONIES:
                break
            self._forget(oldest)
        mine = self._by_client.setdefault(ceremony.client, [])
        while len(mine) >= PER_CLIENT:
            self._forget(mine[0])
        key = secrets.token_urlsafe(16)
        self._ceremonies[key] = ceremony
        mine.append(key)
        return key

    def _forget(self, key: str) -> None:
        ceremony = self._ceremonies.pop(key, None)
        if ceremony is None:
            return
        mine = self._by_client.get(ceremony.client, [])
        if key in mine:
            mine.remove(key)
        if not mine:
            self._by_client.pop(ceremony.client, None)

    def _take(self, key: str, kind: str) -> Ceremony:
        ceremony = self._ceremonies.get(key)
        self._forget(key)
        if (
            ceremony is None
            or ceremony.kind != kind
            or ceremony.expires_at <= self.accounts.clock()
        ):
            raise Refused("passkey_not_valid", "this passkey ceremony is unknown or over", 400)
        return ceremony

    async def registration_options(
        self, who: Principal, origin: str, client: str = ""
    ) -> tuple[str, str]:
        """Options for `navigator.credentials.create` (JSON text) and the ceremony's key.
        Raises Refused `passkey_needs_a_name`, `no_account` (the CLI's user has none)."""
        account = await self.accounts.get(who.name)
        if account is None:
            raise Refused("no_account", "only an account can have a passkey", 400)
        rp_id = rp_of(origin)
        known = await fetch_all(
            self.accounts.store.db, "SELECT id FROM passkeys WHERE account = ?", (who.name,)
        )
        options = generate_registration_options(
            rp_id=rp_id,
            rp_name="coopnet",
            user_name=account.name,
            user_id=account.name.encode(),
            user_display_name=account.display_name,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.PREFERRED,
            ),
            exclude_credentials=[PublicKeyCredentialDescriptor(id=bytes(r[0])) for r in known],
        )
        key = self._open(
            Ceremony(kind="register", challenge=options.challenge, account=who.name,
                     rp_id=rp_id, origin=origin, client=client,
                     expires_at=self.accounts.clock() + CEREMONY_MS)
        )  # fmt: skip
        return options_to_json(options), key

    async def register(
        self, who: Principal, key: str, credential: dict[str, Any], label: str
    ) -> str:
        """Verify a new passkey and keep it; returns its id (base64url). Raises Refused
        `passkey_not_valid` (400)."""
        ceremony = self._take(key, "register")
        if ceremony.account != who.name:
            raise Refused("passkey_not_valid", "this ceremony was opened by someone else", 400)
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=ceremony.challenge,
                expected_rp_id=ceremony.rp_id,
                expected_origin=ceremony.origin,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            raise Refused(
                "passkey_not_valid", f"the passkey was not accepted: {exc}", 400
            ) from None
        async with self.accounts.store.transaction() as db:
            taken = await fetch_one(
                db, "SELECT 1 FROM passkeys WHERE id = ?", (verified.credential_id,)
            )
            if taken:
                raise Refused("passkey_not_valid", "this passkey is registered already", 400)
            await db.execute(
                "INSERT INTO passkeys VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (verified.credential_id, who.name, verified.credential_public_key,
                 verified.sign_count, label[:80] or "passkey", self.accounts.clock()),
            )  # fmt: skip
        return bytes_to_base64url(verified.credential_id)

    def sign_in_options(self, origin: str, client: str = "") -> tuple[str, str]:
        """Options for `navigator.credentials.get` (any of this node's passkeys: the browser
        offers those it holds) and the ceremony's key."""
        rp_id = rp_of(origin)
        options = generate_authentication_options(
            rp_id=rp_id, user_verification=UserVerificationRequirement.PREFERRED
        )
        key = self._open(
            Ceremony(kind="sign-in", challenge=options.challenge, account="", rp_id=rp_id,
                     origin=origin, client=client,
                     expires_at=self.accounts.clock() + CEREMONY_MS)
        )  # fmt: skip
        return options_to_json(options), key

    async def sign_in(self, key: str, credential: dict[str, Any]) -> tuple[Principal, str]:
        """Verify a passkey's answer and open a session; returns (principal, session
        secret). Raises Refused `passkey_not_valid` (401)."""
        ceremony = self._take(key, "sign-in")
        refused = Refused("passkey_not_valid", "this passkey does not sign in here", 401)
        raw_id = credential.get("rawId") or credential.get("id")
        if not isinstance(raw_id, str):
            raise refused
        try:
            credential_id = base64url_to_bytes(raw_id)
        except ValueError:
            raise refused from None
        row = await fetch_one(
            self.accounts.store.db,
            "SELECT account, public_key, sign_count FROM passkeys WHERE id = ?",
            (credential_id,),
        )
        if row is None:
            raise refused
        try:
            verified = verify_authentication_response(
                credential=credential,
                expected_challenge=ceremony.challenge,
                expected_rp_id=ceremony.rp_id,
                expected_origin=ceremony.origin,
                credential_public_key=bytes(row[1]),
                credential_current_sign_count=int(row[2]),
            )
        except (WebAuthnException, ValueError, KeyError, TypeError):
            raise refused from None
        async with self.accounts.store.transaction() as db:
            await db.execute(
                "UPDATE passkeys SET sign_count = ?, last_used = ? WHERE id = ?",
                (verified.new_sign_count, self.accounts.clock(), credential_id),
            )
        opened = await self.accounts.open_session(str(row[0]))
        if opened is None:
            raise refused
        return opened

    async def listing(self, account: str) -> list[dict[str, Any]]:
        """An account's passkeys: id (base64url), label, created_at, last_used (ms)."""
        rows = await fetch_all(
            self.accounts.store.db,
            "SELECT id, label, created_at, last_used FROM passkeys WHERE account = ?"
            " ORDER BY created_at",
            (account,),
        )
        return [
            {"id": bytes_to_base64url(bytes(r[0])), "label": r[1], "created_at": r[2],
             "last_used": r[3]}
            for r in rows
        ]  # fmt: skip

    async def remove(self, account: str, passkey_id: str) -> None:
        """Raises Refused `no_such_passkey` (404)."""
        try:
            raw = base64url_to_bytes(passkey_id)
        except ValueError:
            raw = b""
        async with self.accounts.store.transaction() as db:
            cur = await db.execute(
                "DELETE FROM passkeys WHERE id = ? AND account = ?", (raw, account)
            )
            if cur.rowcount == 0:
                raise Refused("no_such_passkey", f"no passkey {passkey_id} of yours", 404)


__all__ = ["Passkeys", "rp_of"]
