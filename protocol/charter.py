"""The federation's charter and the `net` id that commits to it (docs/PROTOCOL.md §16).

A charter names the federation, its founding neighborhoods with the public keys they sign
with, and its policies. `net`, the 16-byte federation id in every envelope, is the first 16
bytes of SHA-256 of the charter's *canonical bytes*: the JSON value with object keys sorted,
no insignificant whitespace, UTF-8. Charters hold only objects, arrays, strings without
control characters, integers and booleans, so this is exactly RFC 8785 (JCS) for them, and
another implementation reproduces `net` from the file. A signature made in one federation
is therefore valid in no other, and changing a policy makes a different federation.

Pure: bytes in, values out. Reading and writing the file is the caller's business.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from typing import Annotated, Any, Literal

import msgspec

from coopnet.protocol.body import AreaCode, DisplayName
from coopnet.protocol.hours import DEFAULT_HOURS_LIMIT
from coopnet.protocol.ledger import DEFAULT_CREDIT_LIMIT
from coopnet.protocol.trades import Slug

HexKey = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}(?!\n)$")]
CurrencyCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}(?!\n)$")]
Seconds = Annotated[int, msgspec.Meta(ge=0, le=10 * 365 * 24 * 3600)]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class CharterError(ValueError):
    """A charter that cannot be used, and why."""


class Founder(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A founding neighborhood: a member from the start, known by the key it signs with."""

    slug: Slug
    display_name: DisplayName
    area: AreaCode
    key: HexKey  # the Ed25519 public key its `node.founded` must carry (§16.2)


class Currency(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the federation counts its mutual credit in (docs/PROTOCOL.md §16.1).

    Every amount on the wire, in the store and in the API is an integer number of the
    currency's minor unit: with `minor_units` 2 (the default) 450 means 4.50 (cents); with 0
    it means 450. `code`: three capital letters (ISO 4217, or a community code such as
    "CRD"); `name`: what people call it ("credits", "Riverside pounds"), 1-40 characters,
    not blank; `symbol`: written before amounts ("£"; "" for none), 0-8 characters. Neither
    may make a typed or shown amount read as another (§16.1): `symbol` holds no character of
    `SYMBOL_REFUSED` nor of a Unicode general category in `SYMBOL_REFUSED_CATEGORIES`
    (digits of any script, dashes, spaces, format and control characters), and `name` none of
    `NAME_REFUSED_CATEGORIES`. Formatting and parsing amounts for people is
    node/engine/money.py's.
    """

    code: CurrencyCode
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    symbol: Annotated[str, msgspec.Meta(max_length=8)] = ""
    minor_units: Annotated[int, msgspec.Meta(ge=0, le=4)] = 2

    def __post_init__(self) -> None:
        # Raised inside msgspec.convert, a ValueError becomes a ValidationError naming the
        # path (`$.currency`), which parse_charter turns into a CharterError.
        for char in self.symbol:
            if _misreads(char):
                raise ValueError(
                    f"currency symbol {self.symbol!r} holds {_char_name(char)}: a symbol holds "
                    "no digits, '.', ',', '+', dashes or minus signs, spaces, format or control "
                    "characters (nor their compatibility forms, such as '．'), so an "
                    "amount typed or shown with it reads as one number (PROTOCOL.md §16.1)"
                )
        for char in self.name:
            if unicodedata.category(char) in NAME_REFUSED_CATEGORIES:
                raise ValueError(
                    f"currency name {self.name!r} holds {_char_name(char)}: a name holds no "
                    "format, control or line-separator characters (PROTOCOL.md §16.1)"
                )
        if all(unicodedata.category(char) == "Zs" for char in self.name):
            raise ValueError(
                f"currency name {self.name!r} is blank: name it with at least one letter, "
                "digit or sign people read (PROTOCOL.md §16.1)"
            )


# What a currency's `symbol` and `name` may not hold (§16.1), by Unicode general category
# (Python's `unicodedata.category`): Nd decimal digits of any script; Pd dashes; Zs, Zl, Zp
# spaces and line/paragraph separators; Cc control characters (C0, DEL and C1,
# U+0080-U+009F); Cf format characters (U+200B zero-width space, U+202E right-to-left
# override, U+FEFF); Cs surrogates. A symbol also holds no character whose NFKC form holds
# one of SYMBOL_REFUSED or an Nd digit ("．" is ".", "＋" is "+", "²" is "2"): an amount is
# written symbol-then-number, and the app writes negatives with U+2212.
SYMBOL_REFUSED = frozenset(".,-+\u2212")
SYMBOL_REFUSED_CATEGORIES = frozenset({"Nd", "Pd", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs"})
NAME_REFUSED_CATEGORIES = frozenset({"Zl", "Zp", "Cc", "Cf", "Cs"})


def _misreads(char: str) -> bool:
    """Whether `char` in a symbol could be read as part of the number after it (§16.1)."""
    if unicodedata.category(char) in SYMBOL_REFUSED_CATEGORIES:
        return True
    return any(
        c in SYMBOL_REFUSED or unicodedata.category(c) == "Nd"
        for c in unicodedata.normalize("NFKC", char)
    )


def _char_name(char: str) -> str:
    """`char` for an error message: 'U+202E (RIGHT-TO-LEFT OVERRIDE)'."""
    return f"U+{ord(char):04X} ({unicodedata.name(char, unicodedata.category(char))})"


# What a charter without `currency` means (§16.1): what coopnet showed before charters
# named one.
DEFAULT_CURRENCY = Currency(code="CRD", name="credits", symbol="", minor_units=2)


class Policies(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the founders agreed; every node and observer applies the same values."""

    credit_limit: Annotated[int, msgspec.Meta(ge=0, le=10**12)] = DEFAULT_CREDIT_LIMIT
    # How long members are asked to answer an application (advisory: the admission rule
    # itself reads no clock, so every node computes the same answer; §16.4).
    consent_window_s: Seconds = 7 * 24 * 3600
    # Admission needs consents from more than this percentage of the members (§16.4).
    quorum_percent: Annotated[int, msgspec.Meta(ge=0, le=100)] = 50
    escalate_critical_s: Seconds = 15 * 60
    escalate_high_s: Seconds = 2 * 3600
    escalate_normal_s: Seconds = 24 * 3600
    # How many quarter hours a neighborhood may owe in the hour ledger (§16.1, §20): its
    # signer's rule, as credit_limit is for credit. Default 160 (40 hours); at most a
    # million hours. Omitted from the file when it is the default, so charters made before
    # it keep their `net` (and older nodes, which refuse unknown fields, still read them).
    hours_limit: Annotated[int, msgspec.Meta(ge=0, le=4_000_000)] = DEFAULT_HOURS_LIMIT


class Charter(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: Literal[1] = 1
    name: DisplayName
    founders: Annotated[list[Founder], msgspec.Meta(min_length=1, max_length=256)]
    policies: Policies = Policies()
    created: Annotated[str, msgspec.Meta(max_length=40)] = ""  # ISO 8601, for people
    # The operator's Ed25519 public key whose tickets admit keys of neighborhoods that are
    # not founders (§16.6); "" (or absent, in charters made before tickets): no ticket needed.
    admission_key: Annotated[str, msgspec.Meta(pattern=r"^([0-9a-f]{64})?(?!\n)$")] = ""
    # What amounts are counted in (§16.1); None (absent, in charters made before it):
    # DEFAULT_CURRENCY. Read it with `currency_or_default()`.
    currency: Currency | None = None

    def founder_keys(self) -> dict[str, bytes]:
        return {f.slug: bytes.fromhex(f.key) for f in self.founders}

    def admission_public_key(self) -> bytes | None:
        """The admission key's 32 bytes, or None if this federation asks for no tickets."""
        return bytes.fromhex(self.admission_key) if self.admission_key else None

    def currency_or_default(self) -> Currency:
        """The currency the charter names, or DEFAULT_CURRENCY (credits, CRD, 2 decimals)."""
        return self.currency if self.currency is not None else DEFAULT_CURRENCY


def canonical_bytes(value: Any) -> bytes:
    """The canonical bytes of a JSON value: sorted keys, compact, UTF-8 (§16.1)."""
    _check_value(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def charter_net(value: Any) -> bytes:
    """The federation id: the first 16 bytes of SHA-256 of the canonical bytes."""
    return hashlib.sha256(canonical_bytes(value)).digest()[:16]


def parse_charter(data: bytes) -> tuple[Charter, bytes]:
    """A charter file's contents → (charter, net). Raises CharterError saying why not."""
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicate_keys,
            parse_float=_no_float,
            parse_constant=_no_float,
        )
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CharterError(f"not JSON: {exc}") from None
    if isinstance(value, dict) and "currency" in value and value["currency"] is None:
        raise CharterError("currency is an object {code, name, symbol, minor_units}, not null")
    try:
        charter = msgspec.convert(value, Charter)
    except msgspec.ValidationError as exc:
        raise CharterError(str(exc)) from None
    slugs = [f.slug for f in charter.founders]
    keys = [f.key for f in charter.founders]
    if len(set(slugs)) != len(slugs) or len(set(keys)) != len(keys):
        raise CharterError("founders must have distinct slugs and distinct keys")
    return charter, charter_net(value)


def dump_charter(charter: Charter) -> bytes:
    """The charter as people read it (indented JSON). `net` is computed from its value, so
    the layout of the file does not matter, only what it says."""
    value = msgspec.to_builtins(charter)
    if not charter.admission_key:
        del value["admission_key"]  # a charter without tickets reads as it did before them
    if charter.currency is None:
        del value["currency"]  # nor does one without a currency
    if charter.policies.hours_limit == DEFAULT_HOURS_LIMIT:
        del value["policies"]["hours_limit"]  # nor one with the default hours limit
    _check_value(value)
    return json.dumps(value, indent=2, ensure_ascii=False).encode() + b"\n"


def _check_value(value: Any) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _check_value(k)
            _check_value(v)
    elif isinstance(value, list):
        for v in value:
            _check_value(v)
    elif isinstance(value, str):
        if _CONTROL.search(value):
            raise CharterError(f"control characters are not allowed in a charter: {value!r}")
    elif not isinstance(value, int | None):  # bool is an int
        raise CharterError(f"a charter holds no {type(value).__name__} values")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise CharterError(f"duplicate key {key!r}: a charter must say one thing")
        out[key] = value
    return out


def _no_float(text: str) -> Any:
    raise CharterError(f"{text} is not an integer: a charter holds no fractions")
