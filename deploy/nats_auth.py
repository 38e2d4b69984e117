"""Decentralized NATS auth, minted here: the federation's keys, JWTs, creds and revocations.

NATS "decentralized JWT" auth has three levels: an operator, whose JWT the servers trust;
accounts, whose JWTs the operator signs; users, whose JWTs an account signs and whom no
server needs to know in advance. We mint these JWTs ourselves, in the format of
nats-io/jwt v2 (a few fields of JSON, signed with an NKey), rather than depend on the one
Python library, which calls itself not well-tested and in development. One operator, two
accounts: `COOP` (every node, observer and the operator's admin user; JetStream on) and
`SYS` (the system account, through which account JWTs are pushed to running servers).
Accounts and users are signed with the operator's and the account's own keys (no signing
keys), so no JWT carries `signing_keys` or `issuer_account`.

A node's signing seed IS its NATS identity (its NKey user seed), so a node's events and its
bus connection have the same public key, and revoking a node revokes both.

The permission sets, one function each; each user has its own inbox prefix
(`_INBOX.<slug>`, `_INBOX.observer-<name>`, nats-py's `inbox_prefix`) and may subscribe
under it only, so nobody reads another user's replies:

* a node publishes only its own events (`coop.<slug>.>`), sync requests under its own
  name (`coopsync.*.<slug>`) and sync answers under its own name to any requester
  (`coopreply.*.*.<slug>`, PROTOCOL.md §9), and the JetStream API calls that read its own
  durable consumer `node-<slug>` (info, next batch, ack) and the stream (info, one message);
  it can never create, delete, purge or update the stream, nor create, delete, reset or
  change any consumer, its own included (deny wins over allow): the operator makes
  `node-<slug>` (deploy/streams.py), since its maker chooses where it delivers. It
  subscribes to sync requests (`coopsync.*.*`), its own sync answers (`coopreply.<slug>.>`)
  and its own inbox. nats-server checks a SUBSCRIBE subject against
  the allow list as if it were literal (`*` in the list matches even a `>` token): so the
  answers live under their own root, where no wildcard passes the literal `<slug>` token.
  It has no `resp` (allow_responses), no publish right into inboxes, and does not subscribe
  to `coop.>` (it reads the stream through its consumer): with these, seeing another
  node's publish would let it answer with a forged JetStream ack before the server does.
  A node may answer any requester with a fake sync answer, under its own name; that is
  harmless, every event in it is verified and a claimed head counts for nothing.
* an observer is "subscribe-only" in the sense that matters: it cannot publish an event
  (`coop.>` denied) nor change the stream. Reading a JetStream stream is not a plain
  subscription, though: a consumer is created, and every batch fetched, by *requests* to
  the JetStream API (`…CONSUMER.CREATE…`, `…CONSUMER.MSG.NEXT…`) and acknowledged by
  publishing to `$JS.ACK…`. So the observer may publish exactly the read-side calls of its
  own durable consumer `observer-<name>`, which the operator makes like the nodes' (it may
  not create, delete or reset it), any stream's info, sync requests under its own name
  (`coopsync.*.observer-<name>`), and nothing else; it answers no one.
* the admin (the operator's own user) may do everything: it creates the streams and every
  reader's consumer.

nats-server checks the subject of a publish against these lists, never its reply subject:
a JetStream request's answer (a batch of `CONSUMER.MSG.NEXT`, a `STREAM.MSG.GET` message)
goes wherever its reply subject says. What a user can aim that way is bounded by what it
may ask, not refused: see docs/OPERATIONS.md §1, "Credentials and what they allow".

Behind a leaf server (deploy/nats_config.py) a node reaches the hub's JetStream through the
domain prefix `$JS.coop.API` (see `JS_DOMAIN`), and the leaf link has the node's own
permissions. Sync answers are plain publishes on `coopreply.…` rather than
allow_responses, which nats-server does not carry across a leaf link (issue #2949): so a
node behind a leaf answers sync requests like any other.

Limits: `Authority.limits` (a `BusLimits`, sized by deploy/quotas.py from the federation's
quotas and saved in `limits.json`) go into the COOP account JWT (disk, streams, consumers,
connections, payload, `max_bytes_required`) and, passed to `user_creds`, into node and
observer user JWTs (subscriptions, payload); docs/OPERATIONS.md §12 says which nats-server
enforces. An Authority without a `limits.json` (a federation made before quotas) mints no
limit, as before.

Revocation: `Authority.revoke` adds the user's public key to the COOP account JWT's
`revocations` (every user JWT of that key issued up to that second is refused) and
`push_account` sends the new account JWT to the running servers on
`$SYS.REQ.CLAIMS.UPDATE`. A server then closes the user's open connections ("User
Authentication Revoked") and refuses new ones. A `full` resolver stores the pushed JWT in
its `dir`, so it survives a restart even though the config's `resolver_preload` holds an
older copy: at start, a preloaded JWT replaces a stored one only if it is newer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import msgspec
import nacl.exceptions
import nacl.signing
import nats
import nats.errors
import nkeys

from coopnet.node.engine.bus import STREAM
from coopnet.node.engine.config import decode_nkey_public, encode_nkey_seed
from coopnet.protocol.envelope import AUTHOR_RE

ACCOUNT = "COOP"
SYSTEM_ACCOUNT = "SYS"
OPERATOR = "coopnet"
# The hubs' JetStream domain. A hub refuses `$JS.API.>` over every leafnode link (its
# default isolation of JetStream); the domain's API prefix `$JS.coop.API` crosses the link
# instead, and a leaf maps its clients' `$JS.API.>` onto it (deploy/nats_config.py). The
# leaf checks the user's permissions after that mapping, so every JetStream call a user may
# make is allowed under both prefixes.
JS_DOMAIN = "coop"
JS_APIS = ("$JS.API", f"$JS.{JS_DOMAIN}.API")
CLAIMS_UPDATE = "$SYS.REQ.CLAIMS.UPDATE"
PUSH_TIMEOUT_S = 5.0
NO_LIMIT = -1

_HEADER = b'{"typ":"JWT","alg":"ed25519-nkey"}'
_JWT_VERSION = 2


class Permission(msgspec.Struct, frozen=True, omit_defaults=True):
    """Subjects a user may publish (or subscribe to): deny wins over allow."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


class ResponsePermission(msgspec.Struct, frozen=True):
    """allow_responses: up to `max` replies to each request received, within `ttl`."""

    max: int
    ttl: int  # nanoseconds: a Go time.Duration in nats-io/jwt


class Permissions(msgspec.Struct, frozen=True, omit_defaults=True):
    pub: Permission = Permission()
    sub: Permission = Permission()
    resp: ResponsePermission | None = None


# --- claims: field names and order of nats-io/jwt v2; zero values are omitted, as in Go ---


class _OperatorNats(msgspec.Struct, kw_only=True, omit_defaults=True):
    system_account: str = ""
    type: str
    version: int


class _Limits(msgspec.Struct, kw_only=True, omit_defaults=True):
    subs: int = 0
    data: int = 0
    payload: int = 0
    imports: int = 0
    exports: int = 0
    wildcards: bool = False
    conn: int = 0
    leaf: int = 0
    mem_storage: int = 0
    disk_storage: int = 0
    streams: int = 0
    consumer: int = 0
    max_bytes_required: bool = False


class AccountLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The COOP account's limits (deploy/quotas.py sizes them; OPERATIONS.md §12 says which
    nats-server enforces). Counts and bytes; NO_LIMIT (-1) is none. `subs` and `payload`
    apply to each connection; `conn` and `leaf` to the account's connections; the rest to
    its JetStream: disk bytes (stream max_bytes are reserved against it), streams,
    consumers, and whether a stream must have a max_bytes."""

    conn: int = NO_LIMIT
    leaf: int = NO_LIMIT
    subs: int = NO_LIMIT
    payload: int = NO_LIMIT
    disk_storage: int = NO_LIMIT
    mem_storage: int = NO_LIMIT
    streams: int = NO_LIMIT
    consumer: int = NO_LIMIT
    max_bytes_required: bool = False


class UserLimits(msgspec.Struct, frozen=True, kw_only=True):
    """A user JWT's limits: subscriptions at once, bytes per message (payload and
    headers), and `data` (bytes; nats-server 2.15 does not enforce it)."""

    subs: int = NO_LIMIT
    payload: int = NO_LIMIT
    data: int = NO_LIMIT


NO_USER_LIMITS = UserLimits()


class BusLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The limits an `Authority` mints into the COOP account JWT and its users' JWTs
    (the admin user has none). The default is no limit at all."""

    account: AccountLimits = AccountLimits()
    node: UserLimits = UserLimits()
    observer: UserLimits = UserLimits()


class _AccountNats(msgspec.Struct, kw_only=True, omit_defaults=True):
    limits: _Limits
    revocations: dict[str, int] = {}
    default_permissions: Permissions = Permissions()
    type: str
    version: int


class _UserNats(msgspec.Struct, kw_only=True, omit_defaults=True):
    pub: Permission
    sub: Permission
    resp: ResponsePermission | None = None
    subs: int = 0  # 0 is omitted, as in Go, and would mean "none": always pass NO_LIMIT
    data: int = 0
    payload: int = 0
    type: str
    version: int


class _ClaimsData(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What the `jti` hashes: the standard claims, with `jti` itself empty (so omitted)."""

    jti: str = ""
    iat: int = 0
    iss: str = ""
    name: str = ""
    sub: str


class _Claims(_ClaimsData, kw_only=True, omit_defaults=True):
    """The standard claims (their order kept: inherited fields come first) and `nats`."""

    nats: _OperatorNats | _AccountNats | _UserNats


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(dict[str, Any])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _keypair(seed: str) -> Any:
    return nkeys.from_seed(bytearray(seed.encode("ascii")))


def public_key(seed: str) -> str:
    """The public NKey (`O…`, `A…`, `U…`) of an encoded seed (`SO…`, `SA…`, `SU…`)."""
    key: bytes = _keypair(seed).public_key
    return key.decode("ascii")


def new_seed(prefix: int) -> str:
    """A fresh encoded NKey seed for a role (`nkeys.PREFIX_BYTE_OPERATOR`, …)."""
    encoded: bytes = nkeys.encode_seed(os.urandom(32), prefix)
    return encoded.decode("ascii")


def _encode_jwt(
    nats_claims: _OperatorNats | _AccountNats | _UserNats,
    *,
    subject: str,
    name: str,
    issuer_seed: str,
) -> str:
    """Sign claims the way nats-io/jwt v2 does: `jti` is the base32 (no padding) of the
    SHA-512/256 of the standard claims with `jti` empty; the signature is Ed25519 by the
    issuer over `header_b64 "." payload_b64`, all base64url without padding."""
    issuer = _keypair(issuer_seed)
    iss = issuer.public_key.decode("ascii")
    iat = int(time.time())
    hashed = _encoder.encode(_ClaimsData(iat=iat, iss=iss, name=name, sub=subject))
    digest = hashlib.new("sha512_256", hashed).digest()
    jti = base64.b32encode(digest).rstrip(b"=").decode("ascii")
    claims = _Claims(jti=jti, iat=iat, iss=iss, name=name, sub=subject, nats=nats_claims)
    signed = f"{_b64(_HEADER)}.{_b64(_encoder.encode(claims))}"
    signature: bytes = issuer.sign(signed.encode("ascii"))
    return f"{signed}.{_b64(signature)}"


class InvalidJwt(ValueError):
    """Not a JWT, or its signature does not verify against its issuer."""


def decode_jwt(token: str) -> dict[str, Any]:
    """The claims of a JWT, after checking its header and its issuer's signature."""
    try:
        header_b64, payload_b64, signature_b64 = token.strip().split(".")
        header = _decoder.decode(_unb64(header_b64))
        claims = _decoder.decode(_unb64(payload_b64))
        signature = _unb64(signature_b64)
    except (ValueError, msgspec.DecodeError) as exc:
        raise InvalidJwt(f"not a JWT: {exc}") from None
    if header.get("alg") != "ed25519-nkey" or str(header.get("typ")).upper() != "JWT":
        raise InvalidJwt(f"unsupported header {header}")
    try:
        verify_key = _verify_key(str(claims["iss"]))
        verify_key.verify(f"{header_b64}.{payload_b64}".encode("ascii"), signature)
    except (KeyError, ValueError, nacl.exceptions.BadSignatureError) as exc:
        raise InvalidJwt(f"bad signature or issuer: {exc!r}") from None
    return claims


def _verify_key(public: str) -> nacl.signing.VerifyKey:
    """A public NKey: base32 of a role byte, the 32-byte Ed25519 key and a CRC-16."""
    return nacl.signing.VerifyKey(decode_nkey_public(public)[1])


# --- permission sets ---


def _jetstream_consumer_calls(consumer: str) -> tuple[str, ...]:
    """The JetStream API calls that read one named consumer on COOP and the stream, under
    both API prefixes (see `JS_DOMAIN`), and the acks of its messages: the consumer's info
    (`CONSUMER.INFO`), its batches (`CONSUMER.MSG.NEXT`), the account's limits and use
    (`INFO`: a member sees the quota it is under), the stream's info and one message by
    sequence or last subject (`STREAM.MSG.GET`: `last_event_of`, recovery's scan, the
    re-read window of node/engine/bus.py). Never the consumer's creation, deletion or reset:
    the operator makes it (deploy/streams.py `ensure_consumers`, PROTOCOL.md §9), since a
    user that may create its consumer may create it as a push consumer delivering the
    whole stream on any subject (`coopsync.x.y`: every node), and one that may delete or
    reset it may do so again and again."""
    calls = (
        "INFO",  # the account's limits and use, read-only: a member sees the quota it is under
        f"STREAM.INFO.{STREAM}",
        f"STREAM.MSG.GET.{STREAM}",
        f"CONSUMER.INFO.{STREAM}.{consumer}",
        f"CONSUMER.MSG.NEXT.{STREAM}.{consumer}",
    )
    return (
        *(f"{api}.{call}" for api in JS_APIS for call in calls),
        f"$JS.ACK.{STREAM}.{consumer}.>",
    )


# Never allowed to a node or an observer, whatever an allow list says (deny wins): the
# consumers are the operator's (deploy/streams.py), and so is every change of one.
CONSUMER_CHANGES = tuple(
    f"{api}.CONSUMER.{change}.>"
    for api in ("$JS.API", "$JS.*.API")
    for change in (
        "CREATE", "DURABLE.CREATE", "DELETE", "RESET", "PAUSE", "UNPIN", "LEADER.STEPDOWN"
    )
)  # fmt: skip
# Never allowed to a node or an observer, whatever an allow list says (deny wins).
STREAM_CHANGES = tuple(
    f"{api}.STREAM.{change}.>"
    for api in ("$JS.API", "$JS.*.API")
    for change in ("CREATE", "DELETE", "PURGE", "UPDATE", "MSG.DELETE")
)
# Sync (PROTOCOL.md §9, node/engine/sync.py): requests `coopsync.<author>.<requester>`, answers
# `coopreply.<requester>.<token>.<responder>`. Each names its publisher last, so a user may
# publish them under its own name only; answers have their own root, so that no wildcard
# subscription the request rule lets through (`coopsync.*.>`: `*` matches the token `>`)
# reaches them.
# Any stream's config and state, read-only: the observer reports each member stream's use
# of its quota (deploy/quotas.py, federation/quotas.py).
STREAM_INFOS = tuple(f"{api}.STREAM.INFO.*" for api in JS_APIS)
SYNC_ROOT = "coopsync"
REPLY_ROOT = "coopreply"
SYNC_SUBSCRIBE = f"{SYNC_ROOT}.*.*"  # every request (none is secret)


def sync_requests(user: str) -> str:
    """The sync requests a user may publish: its own, `coopsync.<author or _heads>.<user>`."""
    return f"{SYNC_ROOT}.*.{user}"


def sync_answers(user: str) -> str:
    """The sync answers a node may publish: its own, to any requester."""
    return f"{REPLY_ROOT}.*.*.{user}"


def inbox_prefix(user: str) -> str:
    """The `inbox_prefix` a user connects with: its replies arrive under it only."""
    return f"_INBOX.{user}"


def sync_replies(user: str) -> str:
    """Where the answers to a user's sync requests arrive (node/engine/sync.py
    `reply_subject`): a literal prefix, so that only this user's subscriptions match it."""
    return f"{REPLY_ROOT}.{user}.>"


def _subject_token(name: str) -> str:
    """A slug or an observer's name goes into subjects: one plain token, never `*`, `>`
    or a dot (docs/PROTOCOL.md §2.1's author pattern)."""
    if not AUTHOR_RE.fullmatch(name):
        raise ValueError(f"{name!r} is not ^[a-z][a-z0-9-]{{1,31}}$")
    return name


def node_permissions(slug: str) -> Permissions:
    """A node: its own events, sync requests and answers under its own name, its own
    durable consumer `node-<slug>`; it subscribes to sync requests, its own answers and its
    own inbox (see the module docstring, PROTOCOL.md §9 "Who may publish what")."""
    slug = _subject_token(slug)
    return Permissions(
        pub=Permission(
            allow=(
                f"coop.{slug}.>",
                sync_requests(slug),
                sync_answers(slug),
                *_jetstream_consumer_calls(f"node-{slug}"),
            ),
            deny=(*STREAM_CHANGES, *CONSUMER_CHANGES),
        ),
        sub=Permission(allow=(SYNC_SUBSCRIBE, sync_replies(slug), f"{inbox_prefix(slug)}.>")),
    )


def observer_permissions(name: str) -> Permissions:
    """An observer: reads the stream through its own consumer `observer-<name>`; never
    publishes an event nor changes the stream (see the module docstring)."""
    user = f"observer-{_subject_token(name)}"
    return Permissions(
        pub=Permission(
            allow=(sync_requests(user), *_jetstream_consumer_calls(user), *STREAM_INFOS),
            deny=("coop.>", *STREAM_CHANGES, *CONSUMER_CHANGES),
        ),
        sub=Permission(allow=(sync_replies(user), f"{inbox_prefix(user)}.>")),
    )


def admin_permissions() -> Permissions:
    """The operator's own user: everything (it creates the stream)."""
    return Permissions(pub=Permission(allow=(">",)), sub=Permission(allow=(">",)))


def _nothing() -> Permissions:
    """The account's default for a user JWT that names no permissions: nothing at all."""
    return Permissions(pub=Permission(deny=(">",)), sub=Permission(deny=(">",)))


# --- creds ---


@dataclass(frozen=True)
class UserCreds:
    """A user's JWT and seed, and the creds file text nats-py reads (`user_credentials`)."""

    name: str
    public_key: str
    jwt: str
    seed: str

    @property
    def text(self) -> str:
        return (
            "-----BEGIN NATS USER JWT-----\n"
            f"{self.jwt}\n"
            "------END NATS USER JWT------\n"
            "\n"
            "************************* IMPORTANT *************************\n"
            "NKEY Seed printed below can be used to sign and prove identity.\n"
            "NKEYs are sensitive and should be treated as secrets.\n"
            "\n"
            "-----BEGIN USER NKEY SEED-----\n"
            f"{self.seed}\n"
            "------END USER NKEY SEED------\n"
            "\n"
            "*************************************************************\n"
        )

    def write(self, path: Path) -> Path:
        """Write the creds file, readable by its owner only (it holds the seed)."""
        _write_secret(path, self.text)
        return path


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text)
    os.chmod(path, 0o600)


def _mint_user(
    account_seed: str,
    name: str,
    permissions: Permissions,
    seed: str | None,
    limits: UserLimits = NO_USER_LIMITS,
) -> UserCreds:
    seed = seed or new_seed(nkeys.PREFIX_BYTE_USER)
    subject = public_key(seed)
    if not subject.startswith("U"):
        raise ValueError("a user seed must be an NKey user seed (SU…)")
    claims = _UserNats(
        pub=permissions.pub,
        sub=permissions.sub,
        resp=permissions.resp,
        subs=limits.subs,
        data=limits.data,
        payload=limits.payload,
        type="user",
        version=_JWT_VERSION,
    )
    token = _encode_jwt(claims, subject=subject, name=name, issuer_seed=account_seed)
    return UserCreds(name=name, public_key=subject, jwt=token, seed=seed)


# --- the authority ---


def _unlimited(*, jetstream: bool) -> _Limits:
    js = NO_LIMIT if jetstream else 0
    return _Limits(
        subs=NO_LIMIT,
        data=NO_LIMIT,
        payload=NO_LIMIT,
        imports=NO_LIMIT,
        exports=NO_LIMIT,
        wildcards=True,
        conn=NO_LIMIT,
        leaf=NO_LIMIT,
        mem_storage=js,
        disk_storage=js,
        streams=js,
        consumer=js,
    )


def _account_limits(limits: AccountLimits) -> _Limits:
    return _Limits(
        subs=limits.subs,
        data=NO_LIMIT,
        payload=limits.payload,
        imports=NO_LIMIT,
        exports=NO_LIMIT,
        wildcards=True,
        conn=limits.conn,
        leaf=limits.leaf,
        mem_storage=limits.mem_storage,
        disk_storage=limits.disk_storage,
        streams=limits.streams,
        consumer=limits.consumer,
        max_bytes_required=limits.max_bytes_required,
    )


_SEED_FILES = {"operator": "operator.nk", "account": "coop.nk", "system": "sys.nk"}
REVOCATIONS_FILE = "revocations.json"
LIMITS_FILE = "limits.json"


@dataclass
class Authority:
    """The operator's keys: the operator, the COOP account and the SYS account.

    Saved in `DIR/nats/`: the seeds (`operator.nk`, `coop.nk`, `sys.nk`, mode 0600), the
    JWTs beside them (`operator.jwt`, `COOP.jwt`, `SYS.jwt`), the revocations
    (`revocations.json`), the bus limits (`limits.json`, deploy/quotas.py) and the system
    user's creds (`sys.creds`, mode 0600).
    """

    operator_seed: str
    account_seed: str
    system_seed: str
    revocations: dict[str, int] = field(default_factory=dict)
    # Minted into the COOP account JWT and, through `node_limits`/`observer_limits`, into
    # users' JWTs. Saved with the keys, so that a JWT minted again (a revocation) keeps them.
    limits: BusLimits = field(default_factory=BusLimits)
    home: Path | None = None  # DIR/nats once saved or loaded: revocations are written there

    @classmethod
    def generate(cls) -> Authority:
        return cls(
            operator_seed=new_seed(nkeys.PREFIX_BYTE_OPERATOR),
            account_seed=new_seed(nkeys.PREFIX_BYTE_ACCOUNT),
            system_seed=new_seed(nkeys.PREFIX_BYTE_ACCOUNT),
        )

    @classmethod
    def load(cls, data: Path) -> Authority:
        """The authority saved in `data/nats/`."""
        home = data / "nats"
        seeds = {role: (home / name).read_text().strip() for role, name in _SEED_FILES.items()}
        revocations_path = home / REVOCATIONS_FILE
        revocations = (
            {str(k): int(v) for k, v in json.loads(revocations_path.read_text()).items()}
            if revocations_path.exists()
            else {}
        )
        limits_path = home / LIMITS_FILE
        limits = (
            msgspec.json.decode(limits_path.read_bytes(), type=BusLimits)
            if limits_path.exists()
            else BusLimits()
        )
        return cls(
            operator_seed=seeds["operator"],
            account_seed=seeds["account"],
            system_seed=seeds["system"],
            revocations=revocations,
            limits=limits,
            home=home,
        )

    def save(self, data: Path) -> Path:
        """Write everything to `data/nats/`; return that folder."""
        home = data / "nats"
        home.mkdir(parents=True, exist_ok=True)
        seeds = {
            "operator": self.operator_seed,
            "account": self.account_seed,
            "system": self.system_seed,
        }
        for role, name in _SEED_FILES.items():
            _write_secret(home / name, seeds[role] + "\n")
        (home / "operator.jwt").write_text(self.operator_jwt() + "\n")
        (home / "SYS.jwt").write_text(self.system_account_jwt() + "\n")
        self.system_creds().write(home / "sys.creds")
        self.home = home
        self._save_account()
        return home

    def _save_account(self) -> None:
        if self.home is None:
            return
        revocations = json.dumps(self.revocations, indent=1, sort_keys=True)
        (self.home / REVOCATIONS_FILE).write_text(revocations + "\n")
        limits = msgspec.json.format(msgspec.json.encode(self.limits), indent=1)
        (self.home / LIMITS_FILE).write_bytes(limits + b"\n")
        (self.home / f"{ACCOUNT}.jwt").write_text(self.account_jwt() + "\n")

    @property
    def operator_public_key(self) -> str:
        return public_key(self.operator_seed)

    @property
    def account_public_key(self) -> str:
        return public_key(self.account_seed)

    @property
    def system_public_key(self) -> str:
        return public_key(self.system_seed)

    def operator_jwt(self) -> str:
        claims = _OperatorNats(
            system_account=self.system_public_key, type="operator", version=_JWT_VERSION
        )
        return _encode_jwt(
            claims,
            subject=self.operator_public_key,
            name=OPERATOR,
            issuer_seed=self.operator_seed,
        )

    def account_jwt(self) -> str:
        """The COOP account: JetStream on, within `limits.account`, with the revocations
        so far."""
        claims = _AccountNats(
            limits=_account_limits(self.limits.account),
            revocations=dict(self.revocations),
            default_permissions=_nothing(),
            type="account",
            version=_JWT_VERSION,
        )
        return _encode_jwt(
            claims,
            subject=self.account_public_key,
            name=ACCOUNT,
            issuer_seed=self.operator_seed,
        )

    def system_account_jwt(self) -> str:
        claims = _AccountNats(
            limits=_unlimited(jetstream=False), type="account", version=_JWT_VERSION
        )
        return _encode_jwt(
            claims,
            subject=self.system_public_key,
            name=SYSTEM_ACCOUNT,
            issuer_seed=self.operator_seed,
        )

    def account_jwts(self) -> dict[str, str]:
        """Every account JWT by account public key: what a resolver is preloaded with."""
        return {
            self.account_public_key: self.account_jwt(),
            self.system_public_key: self.system_account_jwt(),
        }

    def user_creds(
        self,
        name: str,
        permissions: Permissions,
        *,
        seed: bytes | str | None = None,
        limits: UserLimits = NO_USER_LIMITS,
    ) -> UserCreds:
        """A COOP user. `seed`: a node's 32-byte signing seed (its NATS identity too), an
        encoded user seed (`SU…`), or None for a fresh one. `limits`: the user's own
        (`self.limits.node` for a node, `.observer` for an observer; none by default)."""
        encoded = encode_nkey_seed(seed) if isinstance(seed, bytes) else seed
        return _mint_user(self.account_seed, name, permissions, encoded, limits)

    def system_creds(self) -> UserCreds:
        """A user of the system account, for `push_account`."""
        return _mint_user(self.system_seed, "sys", admin_permissions(), None)

    def revoke(self, user_public_key: str, *, at: int | None = None) -> str:
        """Revoke every JWT of a user issued up to `at` (now); return the new COOP account
        JWT, to push to the servers. Saved when the authority lives in a folder."""
        if not user_public_key.startswith("U"):
            raise ValueError(f"not a user public key: {user_public_key!r}")
        when = int(time.time()) if at is None else at
        self.revocations[user_public_key] = max(when, self.revocations.get(user_public_key, 0))
        self._save_account()
        return self.account_jwt()


# --- pushing an account JWT to running servers ---


class ClaimsUpdateError(RuntimeError):
    """A server did not confirm an account JWT update."""


class _UpdateStatus(msgspec.Struct):
    code: int = 0
    message: str = ""
    description: str = ""
    account: str = ""


class _UpdateReply(msgspec.Struct):
    server: dict[str, Any] = {}
    data: _UpdateStatus | None = None
    error: _UpdateStatus | None = None


_reply_decoder = msgspec.json.Decoder(_UpdateReply)


async def push_account(
    urls: Iterable[str], sys_creds: Path, account_jwt: str, *, tls: ssl.SSLContext | None = None
) -> list[str]:
    """Send an account JWT to each server on `$SYS.REQ.CLAIMS.UPDATE` (as the system
    user) and check its reply; return the names of the servers that stored it.

    A server's "jwt updated" does not mean it will trust the JWT: it stores an account JWT
    of another operator as readily, and then refuses every user of that account until the
    right one is pushed. So push only what this operator's `Authority` minted; here the JWT
    is checked to be a validly signed account JWT before any server sees it. `tls`: the
    context that checks TLS hubs' certificates (`federation.client_tls`)."""
    try:
        claims = decode_jwt(account_jwt)
    except InvalidJwt as exc:
        raise ClaimsUpdateError(f"not pushed: {exc}") from None
    if claims.get("nats", {}).get("type") != "account":
        raise ClaimsUpdateError("not pushed: not an account JWT")
    if not await anyio.Path(sys_creds).is_file():  # nats-py would leak its socket
        raise ClaimsUpdateError(f"no system user creds at {sys_creds}")
    return [await _push_one(url, sys_creds, account_jwt, tls) for url in urls]


async def _push_one(url: str, sys_creds: Path, account_jwt: str, tls: ssl.SSLContext | None) -> str:
    try:
        nc = await nats.connect(
            url,
            user_credentials=str(sys_creds),
            tls=tls,
            allow_reconnect=False,
            connect_timeout=PUSH_TIMEOUT_S,
        )
    except (nats.errors.Error, OSError) as exc:
        raise ClaimsUpdateError(f"{url}: cannot connect as the system user: {exc!r}") from None
    try:
        msg = await nc.request(CLAIMS_UPDATE, account_jwt.encode("ascii"), timeout=PUSH_TIMEOUT_S)
    except nats.errors.Error as exc:
        raise ClaimsUpdateError(f"{url}: no reply to {CLAIMS_UPDATE}: {exc!r}") from None
    finally:
        await nc.close()
    return parse_update_reply(url, msg.data)


def parse_update_reply(url: str, data: bytes) -> str:
    """The name of the server that stored the JWT, from its reply to a claims update
    (`{"server": {...}, "data": {"code": 200, "message": "jwt updated"}}`); a
    ClaimsUpdateError for `{"error": {"code": 500, "description": ...}}` or anything else."""
    try:
        reply = _reply_decoder.decode(data)
    except msgspec.DecodeError:
        raise ClaimsUpdateError(f"{url}: unreadable reply {data[:200]!r}") from None
    if reply.error is not None or reply.data is None or reply.data.code != 200:
        problem = reply.error.description if reply.error else data[:200].decode(errors="replace")
        raise ClaimsUpdateError(f"{url}: update refused: {problem}")
    return str(reply.server.get("name", url))
