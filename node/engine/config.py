"""A node's configuration (`node.toml`) and its key files, in its data dir.

DATA/node.toml       slug, display name, area, federation id, NATS URL (and the CA its TLS
                     is checked against), API address, the charter's file name
DATA/node.key        the Ed25519 seed that signs now, as an NKey user seed (mode 0600)
DATA/node.next.key   the seed committed for the next rotation (mode 0600)
DATA/node.db         the SQLite store
"""

from __future__ import annotations

import base64
import hashlib
import os
import tomllib
from pathlib import Path
from typing import Annotated

import msgspec
import nkeys

from coopnet.node.engine.http_doors import split_host
from coopnet.protocol import Identity
from coopnet.protocol.charter import Charter, CharterError, Currency, parse_charter
from coopnet.protocol.envelope import AUTHOR_RE
from coopnet.protocol.ledger import DEFAULT_CREDIT_LIMIT

# Until a federation charter exists (the operators' `federation init`), nodes on one machine
# share this development federation id.
DEV_NET = hashlib.sha256(b"coopnet/dev-federation").digest()[:16]
DEFAULT_API_PORT = 0  # 0: let the OS pick, and record it in the status


class ConfigError(Exception):
    """A data dir, a config or an argument that cannot be used: `str()` says which and why;
    `hint` (may be "") what to do about it. deploy/cli.py prints it as one line, `error:
    <what> (hint: <hint>)`."""

    def __init__(self, what: str, hint: str = "") -> None:
        super().__init__(what)
        self.hint = hint


class TimeBankConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """node.toml's `[time_bank]` section: residents' hours inside the neighborhood
    (node/timebank/, docs/OPERATIONS.md)."""

    # How far below zero a resident's hour balance may go (hours, in quarter-hour steps):
    # a receiver cannot confirm hours that would take them lower (`over_debt_cap`).
    debt_cap_hours: Annotated[float, msgspec.Meta(ge=0, le=10_000)] = 10.0

    @property
    def debt_cap_quarters(self) -> int:
        """The debt cap in quarter hours (read_config has checked it is a quarter step)."""
        return round(self.debt_cap_hours * 4)


class PoolsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """node.toml's `[pools]` section: pooled purchases this node organizes (node/pools/,
    docs/OPERATIONS.md)."""

    # At a pool's closes_at, a pool with a case left open turns to box fill (only raises
    # that fill that case) and closes this many seconds later (node/pools/organizer.py).
    box_fill_s: Annotated[int, msgspec.Meta(ge=0, le=30 * 24 * 3600)] = 600


class NodeConfig(msgspec.Struct, kw_only=True):
    slug: str
    display_name: str
    area: str
    net: str  # hex, 16 bytes
    nats_url: str = ""  # empty: the embedded nats-server
    nats_creds: str = ""  # a NATS credentials file, when the bus requires one
    # The federation's CA certificate (PEM, relative to the data dir) the bus's TLS is
    # checked against (docs/OPERATIONS.md §11); empty: plain text, or the system's CAs for
    # a tls:// URL.
    nats_ca: str = ""
    api_host: str = "127.0.0.1"
    api_port: int = DEFAULT_API_PORT
    # Host names the API answers to beyond 127.0.0.1, localhost, [::1] and api_host (a LAN
    # name, a reverse proxy's): `name` (any port) or `name:port` (OPERATIONS.md §13).
    api_names: list[str] = msgspec.field(default_factory=list)
    # Requests from the node's own OS user over the loopback, with no sign of a browser,
    # act as a coordinator (docs/APP.md, "Who may call what"): the CLI and local scripts.
    api_local_operator: bool = True
    # Browsers reach the app over HTTPS (a TLS proxy in front): session cookies are Secure.
    api_https: bool = False
    # The currency of a node without a charter (a development federation): what it calls
    # the mutual credit, and its code; amounts are in its cents (2 minor units). A node with
    # a charter counts in the charter's currency and ignores these (see `currency`).
    currency_name: str = "credits"
    currency_code: str = "CRD"
    # Until the federation's charter sets it: how far below zero this co-op may go (cents).
    credit_limit: int = DEFAULT_CREDIT_LIMIT
    auto_trade: bool = False  # answer trades automatically within the rules (node/market/policy.py)
    auto_aid: bool = False  # pledge to escalated requests and close own ones (node/aid/policy.py)
    neighbors: list[str] = msgspec.field(default_factory=list)  # areas next to this one
    # How long a local request may stay short of pledges before the federation is asked.
    escalate_critical_s: int = 15 * 60
    escalate_high_s: int = 2 * 3600
    escalate_normal_s: int = 24 * 3600
    # The federation's charter (a path, relative to the data dir): founders and policies.
    # Empty: a development federation where every founded log counts as a member.
    charter: str = ""
    # What this neighborhood tells the members when it applies (not for founders).
    apply_about: str = ""
    apply_reason: str = ""
    # Set by `read_config` from the charter (never read from or written to node.toml):
    # the currency the charter names, or its default when it names none.
    charter_currency: Currency | None = None
    # [time_bank]: residents' hours (written to node.toml only when not the defaults).
    time_bank: TimeBankConfig = msgspec.field(default_factory=TimeBankConfig)
    # [pools]: pooled purchases (written to node.toml only when not the defaults).
    pools: PoolsConfig = msgspec.field(default_factory=PoolsConfig)

    @property
    def net_bytes(self) -> bytes:
        return bytes.fromhex(self.net)

    @property
    def currency(self) -> Currency:
        """What amounts are counted in (docs/PROTOCOL.md §16.1): the charter's currency
        (`Charter.currency_or_default()`) for a node with a charter, else one built from
        node.toml's `currency_code` and `currency_name`, with no symbol and 2 minor units.
        Amounts everywhere are integers of its minor unit (cents, for 2)."""
        if self.charter_currency is not None:
            return self.charter_currency
        return Currency(code=self.currency_code, name=self.currency_name, minor_units=2)


def config_path(data: Path) -> Path:
    return data / "node.toml"


def db_path(data: Path) -> Path:
    return data / "node.db"


def write_config(data: Path, config: NodeConfig) -> None:
    lines, sections = [], []
    for name, value in msgspec.structs.asdict(config).items():
        if name == _FROM_CHARTER:
            continue
        if isinstance(value, msgspec.Struct):  # a [section], after the plain settings,
            if value == type(value)():  # written only when it says more than its defaults
                continue
            sections.append(f"\n[{name}]")
            sections += [
                f"{k} = {_toml_value(v)}" for k, v in msgspec.structs.asdict(value).items()
            ]
        else:
            lines.append(f"{name} = {_toml_value(value)}")
    config_path(data).write_text("\n".join(lines + sections) + "\n", encoding="utf-8")


def _toml_value(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return msgspec.json.encode(str(value)).decode()  # a JSON string is a TOML basic string


# The one NodeConfig field that is not a node.toml setting: read from the charter.
_FROM_CHARTER = "charter_currency"


def _no_node(data: Path) -> ConfigError:
    """Why `data` holds no node, and where the nodes are: a typo (`--data ./oakly`) names
    the node directories beside it that hold a node.toml."""
    if not data.is_dir():
        what = f"no node at {data}: the directory does not exist"
    else:
        what = f"no node at {data}: it holds no {config_path(data).name}"
    parent = data.parent
    try:
        beside = sorted(p for p in parent.iterdir() if p != data and config_path(p).is_file())
    except OSError:
        beside = []
    if beside:
        names = ", ".join(f"--data {p}" for p in beside[:5])
        return ConfigError(what, f"the nodes beside it: {names}")
    return ConfigError(what, f"make one with `coopnet node init --data {data} --name SLUG`")


def read_config(data: Path) -> NodeConfig:
    """DATA/node.toml, checked, with the currency of the charter it names (if any) read
    from that charter (`read_charter`). Raises ConfigError naming the file and the fault."""
    path = config_path(data)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        if _FROM_CHARTER in raw:
            raise ConfigError(
                f"{path}: {_FROM_CHARTER} is not a setting: the currency is the charter's"
            )
        config = msgspec.convert(raw, NodeConfig)
    except FileNotFoundError:
        raise _no_node(data) from None
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not AUTHOR_RE.fullmatch(config.slug):
        raise ConfigError(f"{path}: slug {config.slug!r} is not ^[a-z][a-z0-9-]{{1,31}}$")
    if len(bytes.fromhex(config.net)) != 16:
        raise ConfigError(f"{path}: net must be 16 bytes of hex")
    if config.time_bank.debt_cap_hours * 4 != int(config.time_bank.debt_cap_hours * 4):
        raise ConfigError(
            f"{path}: [time_bank] debt_cap_hours {config.time_bank.debt_cap_hours:g} is not in"
            " quarter-hour steps (e.g. 10, 7.5, 2.25)"
        )
    for name in config.api_names:
        try:
            split_host(name)
        except ValueError as exc:
            raise ConfigError(f"{path}: api_names: {exc}") from None
    charter = read_charter(data, config)
    if charter is not None:
        config = msgspec.structs.replace(config, charter_currency=charter.currency_or_default())
    try:
        config.currency  # noqa: B018  node.toml's currency_name/code obey §16.1 as a charter's do
    except ValueError as exc:
        raise ConfigError(f"{path}: currency: {exc}") from None
    return config


def read_charter(data: Path, config: NodeConfig) -> Charter | None:
    """The charter named by node.toml, checked against the configured `net` (§16.1)."""
    if not config.charter:
        return None
    path = data / config.charter
    try:
        charter, net = parse_charter(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"{path} not found (named by charter in {config_path(data)})") from None
    except CharterError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if net != config.net_bytes:
        raise ConfigError(
            f"{path} hashes to net {net.hex()}, but {config_path(data)} says {config.net}: "
            "this node belongs to another federation, or the charter was changed"
        )
    return charter


def write_secret(path: Path, text: str) -> None:
    """Write a secret readable by the owner only, atomically: a crash leaves the old file or
    the new one, never half of either (written beside, synced, renamed)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def encode_nkey_seed(seed: bytes) -> str:
    """A 32-byte Ed25519 seed as an NKey user seed (`SU…`): the node's NATS identity too.

    58 characters: RFC 4648 base32, padding removed, of the 36 bytes `95 00`, the seed and
    the CRC-16/XMODEM of those 34 bytes, little-endian (docs/OPERATIONS.md, "Key files").
    """
    encoded: bytes = nkeys.encode_seed(seed, nkeys.PREFIX_BYTE_USER)
    return encoded.decode("ascii")


def nkey_public(seed: bytes) -> str:
    """The NATS user public key (`U…`) of a seed: what a node's credentials are issued to."""
    public: bytes = nkeys.from_seed(bytearray(encode_nkey_seed(seed).encode())).public_key
    return public.decode("ascii")


def decode_nkey_public(public: str) -> tuple[int, bytes]:
    """The role byte and the 32-byte Ed25519 key of a public NKey (`U…` a user, `A…` an
    account, `O…` an operator): base32 of the role byte, the key and a CRC-16 (little-endian),
    without padding. Raises ValueError for anything else."""
    raw = base64.b32decode(public + "=" * (-len(public) % 8))
    if len(raw) != 35 or nkeys.crc16(raw[:33]) != int.from_bytes(raw[33:], "little"):
        raise ValueError(f"not a public NKey: {public!r}")
    return raw[0], bytes(raw[1:33])


def decode_nkey_seed(text: str) -> bytes:
    """The 32-byte seed of an NKey user seed (`encode_nkey_seed`), surrounding whitespace
    ignored. Raises ConfigError unless it is exactly that: 58 characters, the user-seed
    prefix, the seed and a checksum that matches (a damaged key file is refused, never read
    as another key)."""
    try:
        stripped = text.strip()
        prefix, raw = nkeys.decode_seed(bytearray(stripped.encode("ascii")))
    except (nkeys.NkeysError, ValueError, UnicodeEncodeError) as exc:
        raise ConfigError(f"not an NKey seed: {exc!r}") from None
    if len(raw) != 32 or prefix != nkeys.PREFIX_BYTE_USER:
        raise ConfigError("not an NKey user seed of a 32-byte key (SU…, 58 characters)")
    if encode_nkey_seed(bytes(raw)) != stripped:  # the checksum, which decode_seed skips
        raise ConfigError("NKey seed checksum does not match: the key file is damaged")
    return bytes(raw)


def write_identity(data: Path, identity: Identity) -> None:
    write_secret(data / "node.key", encode_nkey_seed(identity.seed))
    write_secret(data / "node.next.key", encode_nkey_seed(identity.next_seed))


def read_identity(data: Path, slug: str) -> Identity:
    paths = (data / "node.key", data / "node.next.key")
    seeds = []
    for path in paths:
        try:
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                raise ConfigError(f"{path} is readable by others (mode {mode:o}); chmod 600 it")
            seeds.append(decode_nkey_seed(path.read_text(encoding="ascii")))
        except FileNotFoundError:
            raise ConfigError(f"{path} not found") from None
    return Identity(author=slug, seed=seeds[0], next_seed=seeds[1])


def creds_user_key(path: Path) -> tuple[str, bytes]:
    """The NATS user a credentials file is issued to (the `sub` of its user JWT): its public
    NKey (`U…`) and its 32-byte Ed25519 key. Raises ConfigError for a file that is not NATS
    user credentials (docs/OPERATIONS.md, "Credentials")."""
    try:
        text = path.read_text(encoding="utf-8")
        jwt = text.split("-----BEGIN NATS USER JWT-----")[1].split("------END NATS USER JWT")[0]
        payload = jwt.strip().split(".")[1]
        claims = msgspec.json.decode(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        public = str(claims["sub"])
        role, key = decode_nkey_public(public)
    except (OSError, IndexError, KeyError, TypeError, ValueError, msgspec.DecodeError) as exc:
        raise ConfigError(f"{path} is not NATS user credentials: {exc}") from None
    if role != nkeys.PREFIX_BYTE_USER:
        raise ConfigError(f"{path}: its user {public!r} is not a NATS user public key")
    return public, key
