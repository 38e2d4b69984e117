"""Hypothesis strategies for the receive-path fuzzer (tests/faults/test_receive_fuzz.py).

Bodies are built from each kind's own type annotations, read through `msgspec.inspect`, so a
kind added to `protocol/kinds.py` is fuzzed without touching this file; a field type it does
not know fails loudly (`values` says which). Every value leans to the edges of its bound:
zero, the minimum, the maximum, one inside each, and for text the longest string of odd
code points (RTL overrides, zero-width joiners, NUL, astral-plane characters, combining
marks). Strings with a pattern are also drawn from `Pools` (the names and ids the honest
events use), so that hostile bodies name real authors, offers and trades.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import msgspec
import msgspec.inspect as mi
from hypothesis import strategies as st

from coopnet.protocol.body import Body, kind_of
from tests.protocol.shared import msgpack_values

B = TypeVar("B", bound=Body)
INT64_MIN = -(2**63)
UINT64_MAX = 2**64 - 1
UNBOUNDED_LIST = 12  # elements drawn for a list without a max_length

# Code points that have broken parsers, terminals, pages and databases: bidirectional
# overrides and isolates, zero-width characters, a BOM, NUL and other controls, a combining
# mark, astral-plane characters (4 UTF-8 bytes, a surrogate pair in UTF-16), the last
# code point, quotes and markup.
ODD_CHARS = (
    "\u202e\u202d\u202a\u202b\u202c\u2066\u2067\u2068\u2069\u200e\u200f"
    "\u200b\u200c\u200d\u2060\ufeff\x00\x01\x1b\x7f\u0085\u2028\u2029\n\r\t"
    "\u0301\u0336\U0001f600\U0001f3f3\ufe0f\U0001d54f\U00010348\U0010fffd\U000e0001"
    "'\"\\<>&%;-"
)
odd_chars = st.sampled_from(ODD_CHARS)
any_chars = st.characters(codec="utf-8")  # every code point UTF-8 can carry (no surrogates)


@dataclass(frozen=True)
class Pools:
    """Values worth reusing in hostile bodies: the slugs, ids and 32-byte values (event
    ids, keys) the honest events carry. A pooled value is drawn only where it fits."""

    strings: tuple[str, ...] = ()
    blobs: tuple[bytes, ...] = ()
    # Also pooled strings with a trailing newline, where the field's validator admits one
    # (msgspec matches a `pattern` with re.search, and `$` matches before a final "\n").
    trailing_newline: bool = True


def edges(lo: int, hi: int) -> list[int]:
    """The values at and next to each end of [lo, hi], and 0 and ±1 when inside."""
    return sorted({v for v in (lo, lo + 1, hi - 1, hi, 0, 1, -1) if lo <= v <= hi})


def int_bounds(t: mi.IntType) -> tuple[int, int]:
    lo = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else INT64_MIN)
    hi = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else UINT64_MAX)
    return lo, hi


def lengths(lo: int | None, hi: int | None, *, cap: int) -> st.SearchStrategy[int]:
    """A length at an edge (min, max, one inside each) or anywhere between."""
    low, high = lo or 0, hi if hi is not None else cap
    return st.sampled_from(edges(low, high)) | st.integers(low, high)


def texts(lo: int | None, hi: int | None) -> st.SearchStrategy[str]:
    """Text of `lo`…`hi` code points: at the edges, of odd code points or any."""

    @st.composite
    def draw_text(draw: st.DrawFn) -> str:
        n = draw(lengths(lo, hi, cap=300))
        how = draw(st.sampled_from(("odd", "mixed", "repeat", "plain")))
        if how == "repeat":  # the longest string of one (possibly 4-byte) code point
            return str(draw(odd_chars | any_chars)) * n
        alphabet = {"odd": odd_chars, "mixed": odd_chars | any_chars, "plain": any_chars}[how]
        return draw(st.text(alphabet=alphabet, min_size=n, max_size=n))

    return draw_text()


def _quantified(pattern: str, which: int) -> str:
    """`pattern` with every `{m,n}` made `{m}` (which=1) or `{n}` (which=2)."""
    return re.sub(r"\{(\d+),(\d+)\}", rf"{{\{which}}}", pattern)


def _fits(t: mi.StrType) -> Callable[[str], bool]:
    """Whether a string passes the constraints of `t`, checked by msgspec itself."""
    meta = msgspec.Meta(min_length=t.min_length, max_length=t.max_length, pattern=t.pattern)
    annotated = Annotated[str, meta]

    def check(value: str) -> bool:
        try:
            msgspec.convert(value, type=annotated)
        except msgspec.ValidationError:
            return False
        return True

    return check


def patterned(t: mi.StrType, pools: Pools) -> st.SearchStrategy[str]:
    """Strings matching `t.pattern`: pooled ones, the shortest, the longest, any, and the
    same with a trailing newline where the validator admits one (`$` before a final \\n)."""
    assert t.pattern is not None
    # The protocol's patterns end `(?!\n)$` (no trailing newline); with fullmatch=True the
    # lookahead says nothing more, and Hypothesis would only filter with it.
    pattern = t.pattern.replace("(?!\\n)", "")
    fits = _fits(t)
    pooled = [s for s in pools.strings if fits(s)]
    options: list[st.SearchStrategy[str]] = [
        st.from_regex(pattern, fullmatch=True),
        st.from_regex(_quantified(pattern, 1), fullmatch=True),
        st.from_regex(_quantified(pattern, 2), fullmatch=True),
    ]
    if pooled:
        options += [st.sampled_from(pooled)] * 3
        if pools.trailing_newline and fits(pooled[0] + "\n"):
            options.append(st.sampled_from(pooled).map(lambda s: s + "\n").filter(fits))
    return st.one_of(options).filter(fits)


def values(t: mi.Type, pools: Pools) -> st.SearchStrategy[Any]:
    """Values of msgspec type `t`, leaning to the edges of its bounds."""
    match t:
        case mi.IntType():
            lo, hi = int_bounds(t)
            if t.multiple_of:
                m = t.multiple_of
                return values(mi.IntType(ge=-(-lo // m), le=hi // m), pools).map(lambda k: k * m)
            return st.sampled_from(edges(lo, hi)) | st.integers(lo, hi)
        case mi.StrType() if t.pattern is not None:
            return patterned(t, pools)
        case mi.StrType():
            return texts(t.min_length, t.max_length)
        case mi.BytesType() | mi.ByteArrayType() | mi.MemoryViewType():
            pooled = [
                b for b in pools.blobs if (t.min_length or 0) <= len(b) <= (t.max_length or len(b))
            ]

            @st.composite
            def blob(draw: st.DrawFn) -> bytes:
                n = draw(lengths(t.min_length, t.max_length, cap=64))
                fill = draw(st.sampled_from((b"\x00", b"\xff", b"")))
                return fill * n if fill else draw(st.binary(min_size=n, max_size=n))

            return st.sampled_from(pooled) | blob() if pooled else blob()
        case mi.BoolType():
            return st.booleans()
        case mi.FloatType():
            return st.floats(
                min_value=t.ge if t.ge is not None else t.gt,
                max_value=t.le if t.le is not None else t.lt,
                exclude_min=t.gt is not None,
                exclude_max=t.lt is not None,
                allow_nan=all(b is None for b in (t.ge, t.gt, t.le, t.lt)),
            )
        case mi.NoneType():
            return st.none()
        case mi.LiteralType():
            return st.sampled_from(t.values)
        case mi.EnumType():
            return st.sampled_from(list(t.cls))
        case mi.UnionType():
            return st.one_of([values(member, pools) for member in t.types])
        case mi.ListType() | mi.VarTupleType() | mi.SetType() | mi.FrozenSetType():
            item = values(t.item_type, pools)
            unique = isinstance(t, mi.SetType | mi.FrozenSetType)
            wrap = {
                mi.ListType: list,
                mi.VarTupleType: tuple,
                mi.SetType: set,
                mi.FrozenSetType: frozenset,
            }[type(t)]

            @st.composite
            def seq(draw: st.DrawFn) -> Any:
                n = draw(lengths(t.min_length, t.max_length, cap=UNBOUNDED_LIST))
                if unique:  # a set may come out shorter when its items run out
                    return wrap(draw(st.lists(item, max_size=n, unique=True)))
                return wrap(draw(st.lists(item, min_size=n, max_size=n)))

            return seq()
        case mi.TupleType():
            return st.tuples(*(values(x, pools) for x in t.item_types))
        case mi.DictType():
            return st.dictionaries(
                values(t.key_type, pools),
                values(t.value_type, pools),
                min_size=t.min_length or 0,
                max_size=t.max_length if t.max_length is not None else UNBOUNDED_LIST,
            )
        case mi.StructType():
            return bodies(t.cls, pools)
        case mi.AnyType():
            return msgpack_values
    raise TypeError(
        f"the receive fuzzer has no strategy for {t!r}: teach tests/faults/fuzz_events.py "
        "`values` this field type"
    )


_OMIT = object()


def bodies(cls: type[msgspec.Struct], pools: Pools) -> st.SearchStrategy[Any]:
    """Instances of struct `cls` (an event body): every field at the edges of its bound;
    an optional field either omitted (its default) or drawn."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for f in info.fields:
        drawn = values(f.type, pools)
        fields[f.name] = drawn if f.required else st.just(_OMIT) | drawn

    def build(kwargs: dict[str, Any]) -> Any:
        try:
            return cls(**{k: v for k, v in kwargs.items() if v is not _OMIT})
        except ValueError:
            # A kind whose shape also compares its fields (PROTOCOL.md §8, pool.opened's
            # one supplier and largest total): such a combination is not a body of it.
            return _OMIT

    return st.fixed_dictionaries(fields).map(build).filter(lambda body: body is not _OMIT)


def body_of(kind_cls: type[B], pools: Pools) -> st.SearchStrategy[B]:
    """Bodies of kind `kind_cls` (`bodies`, typed for the caller)."""
    strategy: st.SearchStrategy[B] = bodies(kind_cls, pools)
    return strategy


class FutureNote(Body, frozen=True, kw_only=True):
    """A kind no coopnet of today knows (docs/PROTOCOL.md §8.1): a newer node's event, to be
    kept in its author's chain opaque and applied by nothing."""

    kind = "zz.future_note"
    text: str
    amount: int
    tags: list[str] = msgspec.field(default_factory=list)


def future_bodies() -> st.SearchStrategy[Body]:
    """Bodies of a kind from tomorrow, with values no bound of today limits."""
    return st.builds(
        FutureNote,
        text=texts(0, 300),
        amount=st.sampled_from((INT64_MIN, -1, 0, 2**63 - 1, UINT64_MAX)),
        tags=st.lists(texts(0, 8), max_size=20),
    )


def describe(body: Body) -> str:
    """A short account of a body for failure messages."""
    text = repr(body)
    return f"{kind_of(body)}: {text[:160]}{'…' if len(text) > 160 else ''}"
