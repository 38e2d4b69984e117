"""An independent verifier of coopnet envelopes, written from docs/PROTOCOL.md alone.

It imports nothing of coopnet and no MessagePack library: the reader below implements only the
MessagePack families the protocol needs and refuses everything else. `verify(wire, net)` runs
the stateless checks of PROTOCOL.md §4 in order, including the body checks of §8. A kind it
does not know is not an error (§4 step 12, §8.1): its body must be one strict map, and the
event is valid with an opaque body (`is_opaque`). A known kind's body must be one strict map
too; one that does not fit the kind's shape is refused (`bad_body`) for the key log's kinds,
and for every other kind the event is valid with a refused body (§4 step 13, §7.1: stored,
and refused by the domain with `bad_body`; `body_refused`).
"""

from __future__ import annotations

import hashlib
import re
import struct
import unicodedata
from collections.abc import Callable
from typing import NamedTuple

from nacl.bindings import crypto_sign_open
from nacl.exceptions import CryptoError

MAX_WIRE = 65_536  # §2
DOMAIN = b"coopnet/v1\x00"  # §3: 636f6f706e65742f763100
MAX_I63 = 2**63 - 1  # §2.1 upper bound of seq and at

AUTHOR_RE = re.compile(r"[a-z][a-z0-9-]{1,31}")  # §2.1, applied with fullmatch
KIND_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")  # §2.1, fullmatch
AREA_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")  # §8, fullmatch
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")  # §8 *id*, fullmatch
SLUG_RE = re.compile(r"[a-z][a-z0-9-]{1,31}")  # §8 *slug*, fullmatch

# Token kinds produced by the reader.
NIL = "nil"
BOOL = "bool"
INT = "int"
FLOAT = "float"
STR = "str"
BIN = "bin"
ARRAY = "array"
MAP = "map"


class MsgpackError(Exception):
    """The bytes are not a MessagePack value this reader can read."""


class Token(NamedTuple):
    """One MessagePack item: for containers only their head (the element count)."""

    fmt: int  # the format byte
    kind: str
    start: int  # offset of the format byte
    end: int  # offset after the item (for array/map: after the head only)
    integer: int = 0  # int or bool value, or the element count of an array / map
    raw: bytes = b""  # payload of a str or bin
    text: str = ""  # decoded str
    real: float = 0.0  # float value


def _take(buf: bytes, pos: int, n: int) -> bytes:
    if n < 0 or pos + n > len(buf):
        raise MsgpackError("truncated")
    return buf[pos : pos + n]


def _uint(buf: bytes, pos: int, n: int) -> int:
    return int.from_bytes(_take(buf, pos, n), "big", signed=False)


def _sint(buf: bytes, pos: int, n: int) -> int:
    return int.from_bytes(_take(buf, pos, n), "big", signed=True)


def _str_token(buf: bytes, fmt: int, start: int, data_at: int, n: int) -> Token:
    raw = _take(buf, data_at, n)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MsgpackError("invalid UTF-8 in str") from exc
    return Token(fmt, STR, start, data_at + n, raw=raw, text=text)


def _bin_token(buf: bytes, fmt: int, start: int, data_at: int, n: int) -> Token:
    raw = _take(buf, data_at, n)
    return Token(fmt, BIN, start, data_at + n, raw=raw)


_UINT_SIZES = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
_SINT_SIZES = {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
_STR_LEN_SIZES = {0xD9: 1, 0xDA: 2, 0xDB: 4}
_BIN_LEN_SIZES = {0xC4: 1, 0xC5: 2, 0xC6: 4}
_ARRAY_LEN_SIZES = {0xDC: 2, 0xDD: 4}
_MAP_LEN_SIZES = {0xDE: 2, 0xDF: 4}


def read_token(buf: bytes, pos: int) -> Token:
    """Read one item at `pos`; raise MsgpackError for anything not readable (ext, 0xc1, ...)."""
    fmt = _uint(buf, pos, 1)
    at = pos + 1
    if fmt <= 0x7F:
        return Token(fmt, INT, pos, at, integer=fmt)
    if fmt >= 0xE0:
        return Token(fmt, INT, pos, at, integer=fmt - 0x100)
    if 0x80 <= fmt <= 0x8F:
        return Token(fmt, MAP, pos, at, integer=fmt & 0x0F)
    if 0x90 <= fmt <= 0x9F:
        return Token(fmt, ARRAY, pos, at, integer=fmt & 0x0F)
    if 0xA0 <= fmt <= 0xBF:
        return _str_token(buf, fmt, pos, at, fmt & 0x1F)
    if fmt == 0xC0:
        return Token(fmt, NIL, pos, at)
    if fmt in (0xC2, 0xC3):
        return Token(fmt, BOOL, pos, at, integer=int(fmt == 0xC3))
    if fmt in _UINT_SIZES:
        n = _UINT_SIZES[fmt]
        return Token(fmt, INT, pos, at + n, integer=_uint(buf, at, n))
    if fmt in _SINT_SIZES:
        n = _SINT_SIZES[fmt]
        return Token(fmt, INT, pos, at + n, integer=_sint(buf, at, n))
    if fmt == 0xCA:
        data = _take(buf, at, 4)
        return Token(fmt, FLOAT, pos, at + 4, real=_unpack_float(data))
    if fmt == 0xCB:
        data = _take(buf, at, 8)
        return Token(fmt, FLOAT, pos, at + 8, real=_unpack_float(data))
    if fmt in _STR_LEN_SIZES:
        n = _STR_LEN_SIZES[fmt]
        return _str_token(buf, fmt, pos, at + n, _uint(buf, at, n))
    if fmt in _BIN_LEN_SIZES:
        n = _BIN_LEN_SIZES[fmt]
        return _bin_token(buf, fmt, pos, at + n, _uint(buf, at, n))
    if fmt in _ARRAY_LEN_SIZES:
        n = _ARRAY_LEN_SIZES[fmt]
        return Token(fmt, ARRAY, pos, at + n, integer=_uint(buf, at, n))
    if fmt in _MAP_LEN_SIZES:
        n = _MAP_LEN_SIZES[fmt]
        return Token(fmt, MAP, pos, at + n, integer=_uint(buf, at, n))
    # 0xc1 (never used) and the ext families (0xc7-0xc9, 0xd4-0xd8) are not read.
    raise MsgpackError(f"unsupported format byte 0x{fmt:02x}")


def _unpack_float(data: bytes) -> float:
    fmt = ">f" if len(data) == 4 else ">d"
    value: float = struct.unpack(fmt, data)[0]
    return value


MAX_DEPTH = 32  # §2.3: at most 32 arrays and maps nested, the outermost counting as one


def skip_value(buf: bytes, pos: int, enclosing: int = 0) -> int:
    """Return the offset after the complete value at `pos`, reading (and so checking) all of it.

    Checks §2.3 on the way: map keys are distinct strs in every map, and no more than
    MAX_DEPTH containers are nested (`enclosing` containers already hold this value).
    Iterative, so that deep nesting cannot exhaust the Python stack.
    """
    # One frame per open container: items left, and the keys seen (maps) or None (arrays).
    stack: list[tuple[list[int], set[str] | None]] = []
    while True:
        frame = stack[-1] if stack else None
        tok = read_token(buf, pos)
        pos = tok.end
        if frame is not None and frame[1] is not None and frame[0][0] % 2 == 0:
            if tok.kind != STR or tok.text in frame[1]:
                raise MsgpackError("map key not a str, or repeated")
            frame[1].add(tok.text)
        if tok.kind in (ARRAY, MAP) and tok.integer > 0:
            if enclosing + len(stack) + 1 > MAX_DEPTH:
                raise MsgpackError("nested too deep")
            is_map = tok.kind == MAP
            stack.append(([tok.integer * (2 if is_map else 1)], set() if is_map else None))
            continue
        while stack:
            stack[-1][0][0] -= 1
            if stack[-1][0][0] > 0:
                break
            stack.pop()
        if not stack:
            return pos


# Canonical encoders (§2.2) for the values that can appear in the header and the wire.


def enc_int(n: int) -> bytes:
    if n >= 0:
        if n <= 0x7F:
            return bytes([n])
        if n <= 0xFF:
            return b"\xcc" + n.to_bytes(1, "big")
        if n <= 0xFFFF:
            return b"\xcd" + n.to_bytes(2, "big")
        if n <= 0xFFFF_FFFF:
            return b"\xce" + n.to_bytes(4, "big")
        return b"\xcf" + n.to_bytes(8, "big")
    # §2.2 does not define negative integers; use the shortest signed form.
    if n >= -32:
        return bytes([n & 0xFF])
    if n >= -(2**7):
        return b"\xd0" + n.to_bytes(1, "big", signed=True)
    if n >= -(2**15):
        return b"\xd1" + n.to_bytes(2, "big", signed=True)
    if n >= -(2**31):
        return b"\xd2" + n.to_bytes(4, "big", signed=True)
    return b"\xd3" + n.to_bytes(8, "big", signed=True)


def enc_str(s: str) -> bytes:
    raw = s.encode("utf-8")
    n = len(raw)
    if n <= 31:
        return bytes([0xA0 | n]) + raw
    if n <= 0xFF:
        return b"\xd9" + n.to_bytes(1, "big") + raw
    if n <= 0xFFFF:
        return b"\xda" + n.to_bytes(2, "big") + raw
    return b"\xdb" + n.to_bytes(4, "big") + raw


def enc_bin(b: bytes) -> bytes:
    n = len(b)
    if n <= 0xFF:
        return b"\xc4" + n.to_bytes(1, "big") + b
    if n <= 0xFFFF:
        return b"\xc5" + n.to_bytes(2, "big") + b
    return b"\xc6" + n.to_bytes(4, "big") + b


def enc_fixarray_head(n: int) -> bytes:
    assert 0 <= n <= 15
    return bytes([0x90 | n])


def enc_token(tok: Token) -> bytes:
    """Canonical encoding of a scalar header token."""
    if tok.kind == INT:
        return enc_int(tok.integer)
    if tok.kind == STR:
        return enc_str(tok.text)
    if tok.kind == BIN:
        return enc_bin(tok.raw)
    if tok.kind == NIL:
        return b"\xc0"
    raise ValueError(f"no canonical encoding for {tok.kind}")  # unreachable after step 4


# §2.1: the MessagePack type(s) of each header field, in order.
HEADER_FIELDS: tuple[tuple[str, frozenset[str]], ...] = (
    ("v", frozenset({INT})),
    ("net", frozenset({BIN})),
    ("author", frozenset({STR})),
    ("key", frozenset({BIN})),
    ("seq", frozenset({INT})),
    ("prev", frozenset({BIN, NIL})),
    ("at", frozenset({INT})),
    ("kind", frozenset({STR})),
    ("body_hash", frozenset({BIN})),
)


class Rejected(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Split(NamedTuple):
    header: bytes
    signature: bytes
    body: bytes


def split_wire(wire: bytes) -> Split:
    """§4.2: one array of exactly three bin elements, nothing after it."""
    try:
        top = read_token(wire, 0)
        if top.kind != ARRAY or top.integer != 3:
            raise Rejected("malformed")
        parts: list[bytes] = []
        pos = top.end
        for _ in range(3):
            tok = read_token(wire, pos)
            if tok.kind != BIN:
                raise Rejected("malformed")
            parts.append(tok.raw)
            pos = tok.end
    except MsgpackError as exc:
        raise Rejected("malformed") from exc
    if pos != len(wire):
        raise Rejected("malformed")
    return Split(parts[0], parts[1], parts[2])


def decode_header(header: bytes) -> dict[str, Token]:
    """§4.4-4.6: decode the nine fields, check the version and the canonical encoding."""
    try:
        top = read_token(header, 0)
        if top.kind != ARRAY:
            raise Rejected("malformed")
        elems: list[Token] = []
        pos = top.end
        for _ in range(top.integer):
            elems.append(read_token(header, pos))
            pos = skip_value(header, pos)
    except MsgpackError as exc:
        raise Rejected("malformed") from exc
    if pos != len(header):
        raise Rejected("malformed")
    shape_ok = len(elems) == len(HEADER_FIELDS) and all(
        tok.kind in kinds for tok, (_, kinds) in zip(elems, HEADER_FIELDS, strict=True)
    )
    if not shape_ok:
        if elems and elems[0].kind == INT and elems[0].integer != 1:
            raise Rejected("bad_version")
        raise Rejected("malformed")
    fields = {name: tok for tok, (name, _) in zip(elems, HEADER_FIELDS, strict=True)}
    if fields["v"].integer != 1:  # §4.5
        raise Rejected("bad_version")
    canonical = enc_fixarray_head(len(elems)) + b"".join(enc_token(t) for t in elems)
    if canonical != header:  # §4.6
        raise Rejected("non_canonical")
    return fields


def check_header_constraints(f: dict[str, Token]) -> None:
    """§4.8: the field constraints of §2.1."""
    seq = f["seq"].integer
    prev = f["prev"]
    kind = f["kind"].text
    ok = (
        len(f["net"].raw) == 16
        and AUTHOR_RE.fullmatch(f["author"].text) is not None
        and len(f["key"].raw) == 32
        and 1 <= seq <= MAX_I63
        and (prev.kind == NIL) == (seq == 1)
        and (prev.kind == NIL or len(prev.raw) == 32)
        and 0 <= f["at"].integer <= MAX_I63
        and len(kind) <= 64
        and KIND_RE.fullmatch(kind) is not None
        and len(f["body_hash"].raw) == 32
    )
    if not ok:
        raise Rejected("malformed")


# §8 field checks: a scalar check takes the value token and says whether it is acceptable; a
# value check takes the body and the offset of the value, so that it can read a whole array.
FieldCheck = Callable[[Token], bool]
ValueCheck = Callable[[bytes, int], bool]


def _str_check(lo: int, hi: int) -> FieldCheck:
    def check(tok: Token) -> bool:
        return tok.kind == STR and lo <= len(tok.text) <= hi  # code points

    return check


def _pattern_check(pattern: re.Pattern[str]) -> FieldCheck:
    def check(tok: Token) -> bool:
        return tok.kind == STR and pattern.fullmatch(tok.text) is not None  # §2.3: whole string

    return check


def _enum_check(*choices: str) -> FieldCheck:
    allowed = frozenset(choices)

    def check(tok: Token) -> bool:
        return tok.kind == STR and tok.text in allowed

    return check


def _int_check(lo: int, hi: int) -> FieldCheck:
    def check(tok: Token) -> bool:
        # The reader gives bools and floats their own token kinds: neither is ever an int (§8).
        return tok.kind == INT and lo <= tok.integer <= hi

    return check


def _bin32_check(tok: Token) -> bool:
    return tok.kind == BIN and len(tok.raw) == 32


def _bin64_check(tok: Token) -> bool:
    return tok.kind == BIN and len(tok.raw) == 64


_area_check = _pattern_check(AREA_RE)
_id_check = _pattern_check(ID_RE)
_slug_check = _pattern_check(SLUG_RE)
_qty_check = _int_check(1, 10**12)
_cents_check = _int_check(0, 10**12)
_ms_check = _int_check(0, MAX_I63)
_category_check = _enum_check(
    "produce",
    "bakery",
    "dairy-eggs",
    "prepared-food",
    "household-goods",
    "repair",
    "transport",
    "care",
    "skills",
    "other",
)
_unit_check = _enum_check(  # §8, §10
    "gram", "millilitre", "piece", "minute", "dozen", "kilogram", "litre", "hour"
)
_delivery_check = _enum_check("pickup", "delivery", "either")
_reason_check = _str_check(0, 280)


def _scalar(check: FieldCheck) -> ValueCheck:
    """A value check that reads one token and applies a scalar check to it."""

    def value_check(buf: bytes, pos: int) -> bool:
        return check(read_token(buf, pos))

    return value_check


def _array_check(max_len: int, element: ValueCheck) -> ValueCheck:
    """An array of 0 to `max_len` elements, each passing `element`."""

    def value_check(buf: bytes, pos: int) -> bool:
        head = read_token(buf, pos)
        if head.kind != ARRAY or head.integer > max_len:
            return False
        pos = head.end
        for _ in range(head.integer):
            if not element(buf, pos):
                return False
            pos = skip_value(buf, pos)
        return True

    return value_check


def _tuple_check(*items: FieldCheck) -> ValueCheck:
    """An array of exactly len(items) scalars, the i-th passing items[i]."""

    def value_check(buf: bytes, pos: int) -> bool:
        head = read_token(buf, pos)
        if head.kind != ARRAY or head.integer != len(items):
            return False
        pos = head.end
        for item in items:
            tok = read_token(buf, pos)
            if not item(tok):  # a container never passes a scalar check, so tok.end is safe
                return False
            pos = tok.end
        return True

    return value_check


# Mutual-aid and alert kinds (§8, rules in §13-14).
_count_check = _int_check(1, 1_000_000)  # §8 *count*
_aid_category_check = _enum_check(
    "food",
    "shelter",
    "transport",
    "medical-supplies",
    "childcare",
    "eldercare",
    "safety",
    "utilities",
    "repair",
    "other",
)
_urgency_check = _enum_check("critical", "high", "normal", "low")
_alert_kind_check = _enum_check(
    "storm", "outage", "flood", "heat", "cold", "fire", "water", "other"
)
_severity_check = _enum_check("info", "warning", "danger")
# aid.fulfilled `pledges`: at most 100 elements, each an array of exactly 2: [slug, id].
_pledges_check = _array_check(100, _tuple_check(_slug_check, _id_check))


# Pool and hours kinds (§8, rules in §19-20).
_units_check = _int_check(0, 10**9)  # a commitment's quantity or tolerance, units
_case_size_check = _int_check(1, 1_000_000)
_case_count_check = _int_check(1, 1_000_000)
_capacity_check = _int_check(0, 1_000_000)  # max_cases; 0: no cap
_quarters_check = _int_check(1, 40_000)  # quarter hours: at most 10,000 hours
_OPT_SLUG_RE = re.compile(r"([a-z][a-z0-9-]{1,31})?")  # "" or a slug, fullmatch
_OPT_ID_RE = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.-]{0,39})?")  # "" or an id, fullmatch
_opt_slug_check = _pattern_check(_OPT_SLUG_RE)
_opt_id_check = _pattern_check(_OPT_ID_RE)
# box fill's and close's `counted`: at most 256 event ids, each a bin of 32 bytes.
_counted_check = _array_check(256, lambda buf, pos: _bin32_check(read_token(buf, pos)))


class Field(NamedTuple):
    """One §8 body field: its check, whether it may be absent (then `default`), and nil."""

    check: ValueCheck
    required: bool = True
    default: object = None  # the value an absent optional field takes (§8 `= value`)
    nil_ok: bool = False  # §8 `or nil`


def _req(check: FieldCheck) -> Field:
    return Field(_scalar(check))


def _opt(check: FieldCheck, default: object) -> Field:
    return Field(_scalar(check), required=False, default=default)


def _opt_nil(check: FieldCheck) -> Field:
    """`<type> or nil`, `= nil`: optional, nil admitted, nil when absent."""
    return Field(_scalar(check), required=False, default=None, nil_ok=True)


# Fields shared by offer.posted and need.posted (§8: "as in offer.posted").
_ITEM = _req(_str_check(1, 80))
_CATEGORY = _req(_category_check)
_QUANTITY = _req(_qty_check)
_UNIT = _req(_unit_check)
_AREA = _req(_area_check)
# The trade name carried by every seller statement and the buyer's later statements.
_TRADE_NAME: dict[str, Field] = {"buyer": _req(_slug_check), "trade": _req(_id_check)}

# What every answer to a membership application names (§8 "as in membership.consented").
_ANSWER: dict[str, Field] = {"applicant": _req(_slug_check), "application": _req(_bin32_check)}

KINDS: dict[str, dict[str, Field]] = {
    "node.founded": {
        "display_name": _req(_str_check(1, 80)),
        "area": _AREA,
        "key": _req(_bin32_check),
        "next_key_digest": _req(_bin32_check),
        "ticket": _opt_nil(_bin64_check),  # §16.6
    },
    "node.key_rotated": {
        "key": _req(_bin32_check),
        "next_key_digest": _req(_bin32_check),
    },
    "note.posted": {
        "text": _req(_str_check(1, 2000)),
    },
    # Market kinds (§8, rules in §10-12).
    "offer.posted": {
        "offer": _req(_id_check),
        "item": _ITEM,
        "category": _CATEGORY,
        "quantity": _QUANTITY,
        "unit": _UNIT,
        "unit_price": _req(_cents_check),
        "min_order": _opt(_qty_check, 1),
        "available_until": _req(_ms_check),
        "delivery": _opt(_delivery_check, "pickup"),
        "terms": _opt(_str_check(0, 280), ""),
        "area": _AREA,
    },
    "offer.revised": {
        "offer": _req(_id_check),
        "quantity": _opt_nil(_qty_check),
        "unit_price": _opt_nil(_cents_check),
        "min_order": _opt_nil(_qty_check),
        "available_until": _opt_nil(_ms_check),
    },
    "offer.withdrawn": {
        "offer": _req(_id_check),
    },
    "need.posted": {
        "need": _req(_id_check),
        "item": _ITEM,
        "category": _CATEGORY,
        "quantity": _QUANTITY,
        "unit": _UNIT,
        "area": _AREA,
        "max_unit_price": _opt_nil(_cents_check),
        "needed_by": _req(_ms_check),
    },
    "need.withdrawn": {
        "need": _req(_id_check),
    },
    "trade.proposed": {
        "trade": _req(_id_check),
        "seller": _req(_slug_check),
        "offer": _req(_id_check),
        "quantity": _req(_qty_check),
        "unit_price": _req(_cents_check),
        "expires_at": _req(_ms_check),
    },
    "trade.accepted": {
        **_TRADE_NAME,
        "offer": _req(_id_check),
        "quantity": _req(_qty_check),
        "unit_price": _req(_cents_check),
    },
    "trade.declined": {**_TRADE_NAME, "reason": _opt(_reason_check, "")},
    "trade.shipped": {**_TRADE_NAME},
    "trade.received": {**_TRADE_NAME},
    "trade.cancelled": {**_TRADE_NAME, "reason": _opt(_reason_check, "")},
    "trade.disputed": {**_TRADE_NAME, "reason": _req(_str_check(1, 280))},
    # Mutual-aid and alert kinds (§8, rules in §13-14).
    "aid.requested": {
        "request": _req(_id_check),
        "category": _req(_aid_category_check),
        "urgency": _req(_urgency_check),
        "needed_by": _req(_ms_check),
        "quantity": _req(_count_check),
        "area": _AREA,
        # The "no phone number or e-mail address" rule is the node's API refusal
        # `personal_data` (§13), not a body bound: unseal checks only type and length.
        "description": _req(_str_check(1, 280)),
        "raised_at": _req(_ms_check),
        "pledged_locally": _opt(_int_check(0, 1_000_000), 0),
        "reason": _opt(_str_check(0, 140), ""),
    },
    "aid.pledged": {
        "requester": _req(_slug_check),
        "request": _req(_id_check),
        "pledge": _req(_id_check),
        "what": _req(_str_check(1, 140)),
        "quantity": _req(_count_check),
    },
    "aid.pledge_accepted": {
        "request": _req(_id_check),
        "pledger": _req(_slug_check),
        "pledge": _req(_id_check),
        "quantity": _req(_count_check),
    },
    "aid.fulfilled": {
        "request": _req(_id_check),
        "pledges": Field(_pledges_check, required=False, default=()),  # `= []`, never nil
    },
    "aid.withdrawn": {
        "request": _req(_id_check),
    },
    "aid.pledge_withdrawn": {
        "requester": _req(_slug_check),
        "request": _req(_id_check),
        "pledge": _req(_id_check),
    },
    "alert.raised": {
        "alert": _req(_id_check),
        "alert_kind": _req(_alert_kind_check),
        "severity": _req(_severity_check),
        "area": _AREA,
        "advice": _opt(_str_check(0, 1000), ""),
    },
    "alert.resolved": {
        "alert": _req(_id_check),
    },
    # Membership kinds (§8, rules in §16). *reason* 1–280 characters, *about* 0–280.
    "membership.applied": {
        "display_name": _req(_str_check(1, 80)),
        "area": _AREA,
        "about": _req(_str_check(0, 280)),
        "reason": _req(_str_check(1, 280)),
    },
    "membership.consented": _ANSWER,
    "membership.objected": {**_ANSWER, "reason": _req(_str_check(1, 280))},
    "membership.objection_withdrawn": _ANSWER,
    "membership.retired": {
        "reason": _opt(_str_check(0, 280), ""),
    },
    # Pool kinds (§8, rules in §19). pool.opened also compares its fields (`_pool_opened_ok`).
    "pool.opened": {
        "pool": _req(_id_check),
        "item": _ITEM,
        "unit": _UNIT,
        "case_size": _req(_case_size_check),
        "unit_price": _req(_cents_check),
        "min_cases": _opt(_case_count_check, 1),
        "max_cases": _opt(_capacity_check, 0),
        "closes_at": _req(_ms_check),
        "supplier": _opt(_opt_slug_check, ""),
        "supplier_offer": _opt(_opt_id_check, ""),
        "supplier_name": _opt(_str_check(0, 80), ""),
        "single_unit_price": _opt(_cents_check, 0),
    },
    "pool.committed": {
        "organizer": _req(_slug_check),
        "pool": _req(_id_check),
        "quantity": _req(_units_check),
        "tolerance": _opt(_units_check, 0),
    },
    "pool.box_fill": {"pool": _req(_id_check), "counted": Field(_counted_check)},
    "pool.closed": {"pool": _req(_id_check), "counted": Field(_counted_check)},
    "pool.cancelled": {"pool": _req(_id_check), "reason": _opt(_reason_check, "")},
    "pool.delivered": {"pool": _req(_id_check)},
    "pool.received": {"organizer": _req(_slug_check), "pool": _req(_id_check)},
    # The hours kind (§8, rules in §20).
    "hours.transferred": {
        "transfer": _req(_id_check),
        "to": _req(_slug_check),
        "quarters": _req(_quarters_check),
        "request": _opt(_opt_id_check, ""),
    },
}


def _scalars(body: bytes) -> dict[str, Token]:
    """The body's top-level fields whose values are scalars, by name (for the checks that
    compare fields)."""
    top = read_token(body, 0)
    pos, out = top.end, {}
    for _ in range(top.integer):
        key = read_token(body, pos)
        value = read_token(body, key.end)
        if value.kind not in (ARRAY, MAP):
            out[key.text] = value
        pos = skip_value(body, key.end, enclosing=1)
    return out


def _blank(text: str) -> bool:
    """§8: white space only (Unicode category Zs, or bidirectional class WS, B or S)."""
    return all(
        unicodedata.category(c) == "Zs" or unicodedata.bidirectional(c) in ("WS", "B", "S")
        for c in text
    )


def _pool_opened_ok(body: bytes) -> bool:
    """§8 pool.opened, on a body whose fields each fit: exactly one supplier (`supplier`, or
    a `supplier_name` that is not blank); `supplier_offer` only with `supplier`; `max_cases`
    0 or at least `min_cases`; (max_cases or 1,000,000) × case_size × unit_price at most
    10^12 cents."""
    f = _scalars(body)
    supplier = f["supplier"].text if "supplier" in f else ""
    name = f["supplier_name"].text if "supplier_name" in f else ""
    offer = f["supplier_offer"].text if "supplier_offer" in f else ""
    min_cases = f["min_cases"].integer if "min_cases" in f else 1
    max_cases = f["max_cases"].integer if "max_cases" in f else 0
    if bool(supplier) == (not _blank(name)):
        return False
    if offer and not supplier:
        return False
    if max_cases and max_cases < min_cases:
        return False
    top = (max_cases or 1_000_000) * f["case_size"].integer * f["unit_price"].integer
    return top <= 10**12


# §8: the kinds whose shape also compares fields, checked once each field fits.
CROSS_CHECKS: dict[str, Callable[[bytes], bool]] = {"pool.opened": _pool_opened_ok}


def _field_ok(spec: Field, buf: bytes, pos: int) -> bool:
    if read_token(buf, pos).kind == NIL:
        return spec.nil_ok  # nil only where §8 says `or nil`, even for optional fields
    return spec.check(buf, pos)


# §4 step 13: the kinds whose body of the wrong shape is refused from the log (§5 reads them).
KEY_LOG_KINDS = frozenset({"node.founded", "node.key_rotated", "membership.retired"})


def check_strict_map(body: bytes) -> None:
    """§4.12-13: the body is one strict MessagePack map (§2.3), whatever its kind; else
    Rejected("bad_body")."""
    seen: set[str] = set()
    try:
        top = read_token(body, 0)
        if top.kind != MAP:
            raise Rejected("bad_body")
        pos = top.end
        for _ in range(top.integer):
            key = read_token(body, pos)
            if key.kind != STR or key.text in seen:
                raise Rejected("bad_body")
            seen.add(key.text)
            pos = skip_value(body, key.end, enclosing=1)
    except MsgpackError as exc:
        raise Rejected("bad_body") from exc
    if pos != len(body):
        raise Rejected("bad_body")


def fits_kind(body: bytes, fields: dict[str, Field]) -> bool:
    """§4.13, on a body `check_strict_map` passed: every required field present, each
    present field of its type and within its bound. Optional fields may be absent (they then
    take their default); unknown fields are ignored."""
    top = read_token(body, 0)
    pos, seen = top.end, set()
    for _ in range(top.integer):
        key = read_token(body, pos)
        seen.add(key.text)
        spec = fields.get(key.text)
        if spec is not None and not _field_ok(spec, body, key.end):
            return False
        pos = skip_value(body, key.end, enclosing=1)
    return seen.issuperset(name for name, spec in fields.items() if spec.required)


def unseal(wire: bytes, net: bytes) -> tuple[bytes, dict[str, Token], bool]:
    """Run §4 in order; return (id, header fields, whether the body is refused by its
    known kind's shape: stored, a domain refusal `bad_body`), or raise Rejected."""
    if len(wire) > MAX_WIRE:  # 1
        raise Rejected("too_large")
    parts = split_wire(wire)  # 2
    if len(parts.signature) != 64:  # 3
        raise Rejected("malformed")
    fields = decode_header(parts.header)  # 4, 5, 6
    canonical_wire = (
        enc_fixarray_head(3)
        + enc_bin(parts.header)
        + enc_bin(parts.signature)
        + enc_bin(parts.body)
    )
    if canonical_wire != wire:  # 7
        raise Rejected("non_canonical")
    check_header_constraints(fields)  # 8
    if fields["net"].raw != net:  # 9
        raise Rejected("wrong_network")
    try:  # 10
        crypto_sign_open(parts.signature + DOMAIN + parts.header, fields["key"].raw)
    except (CryptoError, ValueError, TypeError) as exc:
        raise Rejected("bad_signature") from exc
    if hashlib.sha256(parts.body).digest() != fields["body_hash"].raw:  # 11
        raise Rejected("body_hash_mismatch")
    kind = fields["kind"].text
    check_strict_map(parts.body)  # 12 (opaque: a kind with no fields, §8.1), 13
    kind_fields = KINDS.get(kind)
    refused = kind_fields is not None and not fits_kind(parts.body, kind_fields)
    if kind_fields is not None and not refused and kind in CROSS_CHECKS:
        refused = not CROSS_CHECKS[kind](parts.body)
    if refused and kind in KEY_LOG_KINDS:  # 13: the key log cannot read it
        raise Rejected("bad_body")
    return hashlib.sha256(parts.header).digest(), fields, refused


def is_opaque(wire: bytes) -> bool:
    """Whether a valid event's kind is one this verifier does not know (§8.1): it is valid,
    to be stored, and its body is read by no rule."""
    return header_summary(wire)["kind"] not in KINDS


def verify(wire: bytes, net: bytes) -> tuple[str, bytes | None]:
    """("valid", event id) or (error code, None), per PROTOCOL.md §4. A valid event may
    still have a refused body (`body_refused`): it is stored all the same."""
    try:
        event_id, _, _ = unseal(wire, net)
    except Rejected as rej:
        return rej.code, None
    return "valid", event_id


def body_refused(wire: bytes, net: bytes) -> str | None:
    """For a valid event: "bad_body" when its known kind's shape refuses its body (§4 step
    13, §7.1: stored, refused by the domain, read by no rule), else None."""
    _, _, refused = unseal(wire, net)
    return "bad_body" if refused else None


TICKET_CONTEXT = b"coopnet/admission/v1\x00"  # §16.6


def check_admission(wire: bytes, net: bytes, admission_key: bytes) -> str:
    """§16.6 for a valid `node.founded` of a neighborhood the charter does not name:
    "admitted" if its `ticket` is the admission key's signature of context || net || key ||
    slug, else "wrong_key" (no ticket, nil, or a signature of anything else)."""
    _, fields, _ = unseal(wire, net)
    body = split_wire(wire).body
    top = read_token(body, 0)
    pos, ticket = top.end, b""
    for _ in range(top.integer):
        key = read_token(body, pos)
        value = read_token(body, key.end)
        if key.text == "ticket" and value.kind == BIN:
            ticket = value.raw
        pos = skip_value(body, key.end, enclosing=1)
    if len(ticket) != 64:
        return "wrong_key"
    message = TICKET_CONTEXT + net + fields["key"].raw + fields["author"].text.encode()
    try:
        crypto_sign_open(ticket + message, admission_key)
    except (CryptoError, ValueError, TypeError):
        return "wrong_key"
    return "admitted"


def header_summary(wire: bytes) -> dict[str, object]:
    """Header fields of a structurally sound wire (for tests): key, author, seq, kind."""
    fields = decode_header(split_wire(wire).header)
    return {
        "key": fields["key"].raw,
        "author": fields["author"].text,
        "seq": fields["seq"].integer,
        "kind": fields["kind"].text,
    }
