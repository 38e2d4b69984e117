"""Every bound of every body field (docs/PROTOCOL.md §8), on both sides, through `unseal`.

The table below is §8's, written from the spec: each field's type (id, slug, area, qty,
cents, ms, count, a string of so many characters, a binary of so many bytes, one of a list
of values), whether it may be nil and its default when absent. Every case signs a body
that differs from a valid one in one field only: the value at each bound is accepted and
decodes to itself, one beyond is refused with `bad_body` (§4 step 13) by a message that
names the field and, for a number or a length, the bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
import msgspec.inspect
import pytest

from coopnet.protocol import KEY_LOG_KINDS, KINDS, Opaque
from tests.protocol.edges_support import accepted, body_of, refused, signed_wire

REQUIRED = "required"


@dataclass(frozen=True)
class T:
    """A field type of §8: `name` and its parameters."""

    name: str
    lo: int = 0
    hi: int = 0
    values: tuple[str, ...] = ()


ID = T("id")  # ^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$
SLUG = T("slug")  # ^[a-z][a-z0-9-]{1,31}$
AREA = T("area")  # ^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$
QTY = T("int", 1, 10**12)
CENTS = T("int", 0, 10**12)
MS = T("int", 0, 2**63 - 1)
COUNT = T("int", 1, 1_000_000)
PLEDGED_LOCALLY = T("int", 0, 1_000_000)
PLEDGES = T("pledges", 0, 100)  # at most 100 arrays of exactly [slug, id]
OPT_ID = T("optional id")  # "" or an id
OPT_SLUG = T("optional slug")  # "" or a slug
UNITS_COMMITTED = T("int", 0, 10**9)  # a commitment's quantity or tolerance (§19)
CASE_SIZE = T("int", 1, 1_000_000)
CAPACITY = T("int", 0, 1_000_000)
QUARTERS = T("int", 1, 40_000)  # quarter hours (§20)
COUNTED = T("ids", 0, 256)  # at most 256 event ids of 32 bytes


def text(lo: int, hi: int) -> T:
    return T("text", lo, hi)


def binary(n: int) -> T:
    return T("bin", n, n)


def one_of(*values: str) -> T:
    return T("enum", values=values)


CATEGORIES = one_of("produce", "bakery", "dairy-eggs", "prepared-food", "household-goods",
                    "repair", "transport", "care", "skills", "other")  # fmt: skip
UNITS = one_of("gram", "millilitre", "piece", "minute", "dozen", "kilogram", "litre", "hour")
AID_CATEGORIES = one_of("food", "shelter", "transport", "medical-supplies", "childcare",
                        "eldercare", "safety", "utilities", "repair", "other")  # fmt: skip


@dataclass(frozen=True)
class F:
    name: str
    type: T
    default: Any = REQUIRED
    nil: bool = False  # "or nil": an explicit nil is a valid value
    # Its validity also depends on another field (§8 pool.opened's supplier): tested by
    # the cases of its own below, not by the field-by-field ones.
    compared: bool = False


NAME = text(1, 80)
REASON = text(1, 280)
ABOUT = text(0, 280)
# PROTOCOL.md §8, kind by kind, field by field.
SPEC: dict[str, list[F]] = {
    "node.founded": [F("display_name", NAME), F("area", AREA), F("key", binary(32)),
                     F("next_key_digest", binary(32)),
                     F("ticket", binary(64), default=None, nil=True)],
    "node.key_rotated": [F("key", binary(32)), F("next_key_digest", binary(32))],
    "note.posted": [F("text", text(1, 2000))],
    "offer.posted": [F("offer", ID), F("item", NAME), F("category", CATEGORIES),
                     F("quantity", QTY), F("unit", UNITS), F("unit_price", CENTS),
                     F("min_order", QTY, default=1), F("available_until", MS),
                     F("delivery", one_of("pickup", "delivery", "either"), default="pickup"),
                     F("terms", text(0, 280), default=""), F("area", AREA)],
    "offer.revised": [F("offer", ID), F("quantity", QTY, default=None, nil=True),
                      F("unit_price", CENTS, default=None, nil=True),
                      F("min_order", QTY, default=None, nil=True),
                      F("available_until", MS, default=None, nil=True)],
    "offer.withdrawn": [F("offer", ID)],
    "need.posted": [F("need", ID), F("item", NAME), F("category", CATEGORIES),
                    F("quantity", QTY), F("unit", UNITS), F("area", AREA),
                    F("max_unit_price", CENTS, default=None, nil=True), F("needed_by", MS)],
    "need.withdrawn": [F("need", ID)],
    "trade.proposed": [F("trade", ID), F("seller", SLUG), F("offer", ID), F("quantity", QTY),
                       F("unit_price", CENTS), F("expires_at", MS)],
    "trade.accepted": [F("buyer", SLUG), F("trade", ID), F("offer", ID), F("quantity", QTY),
                       F("unit_price", CENTS)],
    "trade.declined": [F("buyer", SLUG), F("trade", ID), F("reason", text(0, 280), default="")],
    "trade.shipped": [F("buyer", SLUG), F("trade", ID)],
    "trade.received": [F("buyer", SLUG), F("trade", ID)],
    "trade.cancelled": [F("buyer", SLUG), F("trade", ID),
                        F("reason", text(0, 280), default="")],
    "trade.disputed": [F("buyer", SLUG), F("trade", ID), F("reason", REASON)],
    "aid.requested": [F("request", ID), F("category", AID_CATEGORIES),
                      F("urgency", one_of("critical", "high", "normal", "low")),
                      F("needed_by", MS), F("quantity", COUNT), F("area", AREA),
                      F("description", text(1, 280)), F("raised_at", MS),
                      F("pledged_locally", PLEDGED_LOCALLY, default=0),
                      F("reason", text(0, 140), default="")],
    "aid.pledged": [F("requester", SLUG), F("request", ID), F("pledge", ID),
                    F("what", text(1, 140)), F("quantity", COUNT)],
    "aid.pledge_accepted": [F("request", ID), F("pledger", SLUG), F("pledge", ID),
                            F("quantity", COUNT)],
    "aid.fulfilled": [F("request", ID), F("pledges", PLEDGES, default=[])],
    "aid.withdrawn": [F("request", ID)],
    "aid.pledge_withdrawn": [F("requester", SLUG), F("request", ID), F("pledge", ID)],
    "alert.raised": [F("alert", ID),
                     F("alert_kind", one_of("storm", "outage", "flood", "heat", "cold", "fire",
                                            "water", "other")),
                     F("severity", one_of("info", "warning", "danger")), F("area", AREA),
                     F("advice", text(0, 1000), default="")],
    "alert.resolved": [F("alert", ID)],
    "membership.applied": [F("display_name", NAME), F("area", AREA), F("about", ABOUT),
                           F("reason", REASON)],
    "membership.consented": [F("applicant", SLUG), F("application", binary(32))],
    "membership.objected": [F("applicant", SLUG), F("application", binary(32)),
                            F("reason", REASON)],
    "membership.objection_withdrawn": [F("applicant", SLUG), F("application", binary(32))],
    "membership.retired": [F("reason", ABOUT, default="")],
    "pool.opened": [F("pool", ID), F("item", NAME), F("unit", UNITS), F("case_size", CASE_SIZE),
                    F("unit_price", CENTS), F("min_cases", COUNT, default=1),
                    F("max_cases", CAPACITY, default=0), F("closes_at", MS),
                    F("supplier", OPT_SLUG, default="", compared=True),
                    F("supplier_offer", OPT_ID, default=""),
                    F("supplier_name", text(0, 80), default="", compared=True),
                    F("single_unit_price", CENTS, default=0)],
    "pool.committed": [F("organizer", SLUG), F("pool", ID), F("quantity", UNITS_COMMITTED),
                       F("tolerance", UNITS_COMMITTED, default=0)],
    "pool.box_fill": [F("pool", ID), F("counted", COUNTED)],
    "pool.closed": [F("pool", ID), F("counted", COUNTED)],
    "pool.cancelled": [F("pool", ID), F("reason", text(0, 280), default="")],
    "pool.delivered": [F("pool", ID)],
    "pool.received": [F("organizer", SLUG), F("pool", ID)],
    "hours.transferred": [F("transfer", ID), F("to", SLUG), F("quarters", QUARTERS),
                          F("request", OPT_ID, default="")],
}  # fmt: skip
# A valid pool.opened names one supplier; the fields a bound case sets apart from the
# typical ones keep its largest total, (max_cases or 10^6) × case_size × unit_price, within
# 10^12 cents (§8), so that the case tests the field's own bound.
BASE_EXTRA: dict[str, dict[str, Any]] = {"pool.opened": {"supplier": "elm"}}
CONTEXT: dict[tuple[str, str], dict[str, Any]] = {
    ("pool.opened", "case_size"): {"max_cases": 1},
    ("pool.opened", "unit_price"): {"max_cases": 1, "case_size": 1},
}


def typical(t: T) -> Any:
    """A valid value of type `t`, away from its bounds."""
    return {
        "id": "r1", "slug": "elm", "area": "N1", "int": t.lo + 2, "pledges": [["elm", "p1"]],
        "text": "x" * max(t.lo, 2), "bin": b"\x07" * t.lo, "enum": t.values[-1] if t.values else "",
        "optional id": "r1", "optional slug": "elm", "ids": [b"\x07" * 32],
    }[t.name]  # fmt: skip


def base(kind: str) -> dict[str, Any]:
    """A valid body of `kind`: its required fields only (and pool.opened's supplier)."""
    fields = {f.name: typical(f.type) for f in SPEC[kind] if f.default == REQUIRED}
    return {**fields, **BASE_EXTRA.get(kind, {})}


# (label, value, accepted, the bound a refusal's message names or None)
Case = tuple[str, Any, bool, int | None]


def cases(t: T) -> list[Case]:
    no = None
    if t.name == "id":
        return [
            ("1 char", "a", True, no),
            ("40 chars", "A" + "z9_.-" * 7 + "b_.-", True, no),
            ("41 chars", "a" * 41, False, no),
            ("empty", "", False, no),
            ("starts with _", "_a", False, no),
            ("starts with -", "-a", False, no),
            ("starts with .", ".a", False, no),
            ("a space", "a b", False, no),
            ("a slash", "a/b", False, no),
            ("non-ASCII", "é", False, no),
            ("a final newline", "a\n", False, no),
        ]
    if t.name == "slug":
        return [
            ("2 chars", "ab", True, no),
            ("32 chars", "a" + "0-" * 15 + "z", True, no),
            ("1 char", "a", False, no),
            ("33 chars", "a" * 33, False, no),
            ("a capital", "aB", False, no),
            ("starts with a digit", "1a", False, no),
            ("starts with -", "-a", False, no),
            ("an underscore", "a_b", False, no),
            ("a dot", "a.b", False, no),
            ("a final newline", "ab\n", False, no),
        ]
    if t.name == "area":
        return [
            ("1 char", "N", True, no),
            ("32 chars", "N" + "1_.-" * 7 + "abc", True, no),
            ("33 chars", "N" * 33, False, no),
            ("empty", "", False, no),
            ("starts with _", "_N", False, no),
            ("starts with .", ".N", False, no),
            ("a space", "N 1", False, no),
            ("a final newline", "N1\n", False, no),
        ]
    if t.name == "int":
        return [
            ("lowest", t.lo, True, no),
            ("highest", t.hi, True, no),
            ("below", t.lo - 1, False, t.lo),
            ("above", t.hi + 1, False, t.hi),
            ("a float", float(t.lo + 1), False, no),
            ("a bool", True, False, no),
            ("a string", str(t.lo + 1), False, no),
        ]
    if t.name == "text":
        out: list[Case] = [
            ("shortest", "x" * t.lo, True, no),
            ("longest", "x" * t.hi, True, no),
            ("longest in 2-byte characters", "é" * t.hi, True, no),
            ("longest in 4-byte characters", "🌱" * t.hi, True, no),
            ("one too long", "x" * (t.hi + 1), False, t.hi),
            ("one too long in 2-byte characters", "é" * (t.hi + 1), False, t.hi),
            ("bytes", b"x", False, no),
        ]
        if t.lo > 0:
            out.append(("one too short", "x" * (t.lo - 1), False, t.lo))
        return out
    if t.name == "bin":
        return [
            ("exact", b"\x05" * t.lo, True, no),
            ("one short", b"\x05" * (t.lo - 1), False, t.lo),
            ("one long", b"\x05" * (t.lo + 1), False, t.lo),
            ("a string", "x" * t.lo, False, no),
        ]
    if t.name == "enum":
        v = t.values[0]
        return [
            *((f"'{value}'", value, True, no) for value in t.values),
            ("capitalised", v.capitalize(), False, no),
            ("padded", f"{v} ", False, no),
            ("empty", "", False, no),
            ("unlisted", "nope", False, no),
        ]
    if t.name in ("optional id", "optional slug"):
        # "" or a value of the plain type: its cases, with the empty string accepted.
        inner = cases(T(t.name.removeprefix("optional ")))
        return [("empty", "", True, no), *(c for c in inner if c[0] != "empty")]
    if t.name == "ids":
        digest = b"\x05" * 32
        return [
            ("empty", [], True, no),
            ("256", [digest] * 256, True, no),
            ("257", [digest] * 257, False, 256),
            ("an id of 31 bytes", [digest[:31]], False, 32),
            ("an id of 33 bytes", [digest + b"\x05"], False, 32),
            ("a string", ["x" * 32], False, no),
        ]
    assert t.name == "pledges"
    one = ["elm", "p1"]
    return [
        ("empty", [], True, no),
        ("100", [one] * 100, True, no),
        ("101", [one] * 101, False, 100),
        ("an element of 3", [[*one, "x"]], False, 2),
        ("an element of 1", [["elm"]], False, 2),
        ("a bad slug", [["E", "p1"]], False, no),
        ("a bad id", [["elm", "_"]], False, no),
        ("a map", [{"elm": "p1"}], False, no),
    ]


def _params() -> list[Any]:
    out = []
    for kind, fields in SPEC.items():
        for f in fields:
            if f.compared:
                continue
            for label, value, ok, bound in cases(f.type):
                out.append(
                    pytest.param(kind, f.name, value, ok, bound, id=f"{kind}.{f.name}: {label}")
                )
            out.append(pytest.param(kind, f.name, None, f.nil, None, id=f"{kind}.{f.name}: nil"))
    return out


def _builtins(value: Any) -> Any:
    return msgspec.json.decode(msgspec.json.encode(value))  # tuples and lists alike


@pytest.mark.parametrize(("kind", "field", "value", "ok", "bound"), _params())
def test_each_field_at_and_beyond_its_bounds(
    kind: str, field: str, value: Any, ok: bool, bound: int | None
) -> None:
    body = {**base(kind), **CONTEXT.get((kind, field), {}), field: value}
    wire = signed_wire(body_of(body), kind=kind)
    if ok:
        env = accepted(wire)
        assert env.kind == kind
        assert _builtins(getattr(env.body, field)) == _builtins(value)
    else:
        message = shape_refused(wire, kind)
        assert kind in message and f"`$.{field}" in message, message
        if bound is not None:
            assert str(bound) in message, message


@pytest.mark.parametrize(
    ("kind", "field"), [(k, f.name) for k, fs in SPEC.items() for f in fs if f.default == REQUIRED]
)
def test_a_required_field_missing_is_refused(kind: str, field: str) -> None:
    body = base(kind)
    del body[field]
    message = shape_refused(signed_wire(body_of(body), kind=kind), kind)
    assert kind in message and f"`{field}`" in message, message


@pytest.mark.parametrize(
    ("kind", "field", "default"),
    [
        (k, f.name, f.default)
        for k, fs in SPEC.items()
        for f in fs
        if f.default != REQUIRED and not f.compared
    ],
)
def test_an_optional_field_absent_takes_its_default(kind: str, field: str, default: Any) -> None:
    env = accepted(signed_wire(body_of(base(kind)), kind=kind))
    assert getattr(env.body, field) == default


def test_body_checks_never_compare_fields() -> None:
    """§8: `min_order > quantity` is a valid body; the rules of §10-12 judge it."""
    body = {**base("offer.posted"), "quantity": 1, "min_order": 10**12}
    env = accepted(signed_wire(body_of(body), kind="offer.posted"))
    assert (env.body.quantity, env.body.min_order) == (1, 10**12)  # type: ignore[attr-defined]


def test_fields_a_kind_does_not_define_are_ignored() -> None:
    """§4 step 13: forward compatibility."""
    body = {**base("note.posted"), "colour": "red", "count": 2**64 - 1}
    assert (
        accepted(signed_wire(body_of(body))).body
        == accepted(signed_wire(body_of(base("note.posted")))).body
    )


def test_every_kind_of_the_spec_is_tested() -> None:
    assert set(SPEC) == set(KINDS)


@pytest.mark.parametrize(
    ("kind", "field", "values"),
    [(k, f.name, f.type.values) for k, fs in SPEC.items() for f in fs if f.type.name == "enum"],
)
def test_each_list_of_values_is_the_specs_and_no_more(
    kind: str, field: str, values: tuple[str, ...]
) -> None:
    """A value added to a list would pass every case above: compare the lists themselves."""
    cls = KINDS[kind]
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    (typ,) = [f.type for f in info.fields if f.name == field]
    assert isinstance(typ, msgspec.inspect.LiteralType)
    assert set(typ.values) == set(values)


def shape_refused(wire: bytes, kind: str) -> str:
    """PROTOCOL.md §4 step 13: the key log's kinds are refused `bad_body`; any other kind's
    event is accepted with a refused body (stored, refused by the domain): the reason."""
    if kind in KEY_LOG_KINDS:
        return refused(wire, "bad_body").message
    body = accepted(wire).body
    assert isinstance(body, Opaque) and body.refused, body
    return body.refused


# §8 pool.opened compares its fields: exactly one supplier, a member's (`supplier`, with
# optionally its `supplier_offer`) or one outside the federation (`supplier_name`, not
# blank); `max_cases` 0 or not below `min_cases`; its largest total bounded.
POOL = {"pool": "p1", "item": "rye", "unit": "kilogram", "case_size": 25, "unit_price": 180,
        "closes_at": 1}  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "ok"),
    [
        ({"supplier": "elm"}, True),
        ({"supplier": "elm", "supplier_offer": "rye-25"}, True),
        ({"supplier_name": "Mill Lane Farm"}, True),
        ({"supplier_name": "x" * 80}, True),
        ({"supplier": "", "supplier_name": "Mill Lane Farm"}, True),
        ({}, False),  # no supplier
        ({"supplier": "", "supplier_name": ""}, False),
        ({"supplier_name": " \u3000\t"}, False),  # blank: white space only
        ({"supplier": "elm", "supplier_name": "Mill Lane Farm"}, False),  # two
        ({"supplier_name": "Mill Lane Farm", "supplier_offer": "rye-25"}, False),
        ({"supplier": "elm", "min_cases": 3, "max_cases": 3}, True),
        ({"supplier": "elm", "min_cases": 3, "max_cases": 2}, False),
        ({"supplier": "elm", "min_cases": 3, "max_cases": 0}, True),  # 0: no cap
        # 10^6 cases × 25 × 40,000 = 10^12 cents: at the bound; 40,001 beyond it.
        ({"supplier": "elm", "unit_price": 40_000}, True),
        ({"supplier": "elm", "unit_price": 40_001}, False),
        ({"supplier": "elm", "unit_price": 10**12, "case_size": 1, "max_cases": 1}, True),
        ({"supplier": "elm", "unit_price": 10**12, "case_size": 1, "max_cases": 2}, False),
    ],
    ids=repr,
)
def test_pool_opened_compares_its_fields(fields: dict[str, Any], ok: bool) -> None:
    wire = signed_wire(body_of({**POOL, **fields}), kind="pool.opened")
    if ok:
        assert accepted(wire).kind == "pool.opened"
        assert not isinstance(accepted(wire).body, Opaque)
    else:
        message = shape_refused(wire, "pool.opened")
        assert "pool.opened" in message, message


def test_pool_opened_without_a_supplier_defaults_to_no_member() -> None:
    """The optional supplier fields absent take their defaults ("")."""
    env = accepted(signed_wire(body_of({**POOL, "supplier_name": "Farm"}), kind="pool.opened"))
    assert (env.body.supplier, env.body.supplier_offer) == ("", "")  # type: ignore[attr-defined]
    env = accepted(signed_wire(body_of({**POOL, "supplier": "elm"}), kind="pool.opened"))
    assert env.body.supplier_name == ""  # type: ignore[attr-defined]
