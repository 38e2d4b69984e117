"""Survivors that no test can kill, each with why: equivalent mutants (the program behaves
the same for every input) and changes outside what `tests/protocol` can observe.

Keyed as `report.key` gives: (file, description without mutmut's mutant number). The
report fills its **why** column from here; a survivor not listed is a test still to write.
Add an entry only with its reason, and only when no test could tell the mutant apart.
"""

from __future__ import annotations

_CACHE = (
    "a cache bypassed: a new msgspec Decoder of the same type is made for every body, which "
    "decodes the same values (only slower)"
)
_TYPE_ONLY = (
    "a type annotation only: the Struct is built by the code, never decoded or validated, so "
    "the Literal's values are not checked at run time (mypy checks them)"
)
_ALWAYS_SET = "a default the only constructor call always overrides with a computed value"
_ZIP_EQUAL = (
    "zip over two lists of equal length by construction (one built from the other, item by "
    "item): strict=True never raises, so dropping it changes nothing"
)
_BELOW_MINIMUM_FIRST = (
    "the first value is read (by `_state`) only in organizer state closed or delivered with "
    "the allocation not computed; such a state needs an accepted close, which sets `counted`, "
    "so the allocation is pending and the state is closing before it is read"
)

EXPLAINED: dict[tuple[str, str], str] = {
    # -- mutmut, inside functions ---------------------------------------------------------
    ("protocol/envelope.py", "_decoder: `decoder = None`"): _CACHE,
    ("protocol/envelope.py", "_decoder: `decoder = _body_decoders.get(None)`"): _CACHE,
    ("protocol/aid.py", 'check_personal_data: `else "XXXX"`'): (
        'the text checked for a body that is neither a request nor a pledge: "XXXX" holds no '
        'personal data, so nothing is raised, as for ""'
    ),
    (
        "protocol/aid.py",
        "check_personal_data: `found = personal_data_in(text) if (text) or True else None`",
    ): 'personal_data_in("") is None: checking the empty text finds nothing, as skipping it does',
    (
        "protocol/charter.py",
        'canonical_bytes: `return json.dumps(value, sort_keys=True, separators=(",", ":"), '
        "ensure_ascii=None).encode()`",
    ): "ensure_ascii=None is falsy: json.dumps reads it as False",
    (
        "protocol/charter.py",
        'dump_charter: `return json.dumps(value, indent=2, ensure_ascii=None).encode() + b"\\n"`',
    ): "ensure_ascii=None is falsy: json.dumps reads it as False",
    ("protocol/offers.py", "match: `score = 4.0 if same_item else 1.0`"): (
        "the score starts at 0.0 on the line before: `score = x` and `score += x` give the same"
    ),
    ("protocol/charter.py", 'parse_charter: `data.decode("UTF-8"),`'): (
        "codec names are case-insensitive: the same UTF-8 codec"
    ),
    ("protocol/strict_msgpack.py", 'check_strict: `text = data[pos:end].decode("UTF-8")`'): (
        "codec names are case-insensitive: the same UTF-8 codec"
    ),
    ("protocol/strict_msgpack.py", "check_strict: `if lead <= 128 or lead >= 0xE0:`"): (
        "0x80 is the empty fixmap: read as a scalar it is still one complete value holding "
        "nothing, and as a map key both are refused as not a str"
    ),
    ("protocol/strict_msgpack.py", "check_strict: `elif lead <= 144:`"): (
        "0x90 (the empty fixarray) read as a fixmap of length 0x90 & 0x0F = 0: an empty "
        "container either way, complete at once"
    ),
    ("protocol/strict_msgpack.py", "check_strict: `if lead <= 192:`"): (
        "reached only for lead <= 0xBF or 0xD9..0xDB, which `<= 0xBF` and `<= 192` split the "
        "same way"
    ),
    (
        "protocol/strict_msgpack.py",
        "check_strict: `assert frame is not None or frame[1] is not None`",
    ): "an assert that holds wherever it is reached (a key is expected only in a map's frame)",
    ("protocol/strict_msgpack.py", "check_strict: `expecting_key = None`"): (
        "None and False are both falsy, and expecting_key is only tested for truth"
    ),
    ("protocol/strict_msgpack.py", "_read_len: `return int.from_bytes(data[pos:end], ), end`"): (
        "int.from_bytes reads big-endian by default since Python 3.11 (the oldest we support)"
    ),
    (
        "protocol/text.py",
        'skeleton: `return "".join(ch for ch in text if unicodedata.category(ch)[0] in "XXLNXX")`',
    ): "no Unicode general category starts with X: the same characters are kept",
    # -- ours, outside functions ----------------------------------------------------------
    (
        "protocol/envelope.py",
        "element removed: ValueError in `_DECODE_ERRORS = (msgspec.MsgspecError, ValueError)`",
    ): (
        "every error msgspec raises while decoding (DecodeError, ValidationError) is both a "
        "MsgspecError and a ValueError: either element alone catches it"
    ),
    (
        "protocol/envelope.py",
        "element removed: msgspec.MsgspecError in `_DECODE_ERRORS = (msgspec.MsgspecError, "
        "ValueError)`",
    ): (
        "every error msgspec raises while decoding (DecodeError, ValidationError) is both a "
        "MsgspecError and a ValueError: either element alone catches it"
    ),
    (
        "protocol/charter.py",
        'element removed: "Nd" in `SYMBOL_REFUSED_CATEGORIES = frozenset({"Nd", "Pd", "Zs", '
        '"Zl", "Zp", "Cc", "C...`',
    ): (
        "a decimal digit of any script is also caught by the NFKC test of `_misreads`, which "
        "refuses every character whose NFKC form holds an Nd digit (an Nd digit's own)"
    ),
    **{
        ("protocol/membership.py", f'Literal value removed: "{v}" in `{line}`'): _TYPE_ONLY
        for line, values in (
            ('Stance = Literal["none", "consent", "object"]', ("none", "consent", "object")),
            (
                'Status = Literal["founder", "admitted", "applicant", "retired", "outsider"]',
                ("founder", "admitted", "applicant", "retired", "outsider"),
            ),
        )
        for v in values
    },
    ("protocol/membership.py", 'field default "" -> "x" in `reason: str = ""`'): _ALWAYS_SET,
    ("protocol/aid.py", "number 0 -> 1 in `at: int = 0`"): _ALWAYS_SET,
    ("protocol/aid.py", "number 0 -> -1 in `at: int = 0`"): _ALWAYS_SET,
    (
        "protocol/membership.py",
        "number 0 -> -1 in `needed: int = 0  # consents the rule needs from those members`",
    ): _ALWAYS_SET,
    (
        "protocol/membership.py",
        "number 0 -> 1 in `needed: int = 0  # consents the rule needs from those members`",
    ): _ALWAYS_SET,
    # -- mutmut, protocol/pools.py and protocol/hours.py ----------------------------------
    (
        "protocol/hours.py",
        'parse_hours: `frac = frac.rstrip("0") if (dot) or True else ""`',
    ): 'without a dot, str.partition gives frac = "", and "".rstrip("0") is "" as well',
    ("protocol/hours.py", 'parse_hours: `frac = frac.rstrip("XX0XX") if dot else ""`'): (
        "rstrip takes a set of characters: {X, 0}; frac passed isdigit on the line before, so it "
        "holds no X and the same trailing zeros are stripped"
    ),
    (
        "protocol/pools.py",
        "_water_fill: `low, high = 0, max(caps, default=1)  # filled(low) <= "
        "amount; find the largest such level`",
    ): ("the default is used only when caps is empty, where the result is [] whatever the level"),
    ("protocol/pools.py", "_water_fill: `mid = (low + high + 2) // 2`"): (
        "for low < high the midpoint stays in (low, high], so the binary search over the "
        "monotone filled() still ends at the same largest level"
    ),
    ("protocol/pools.py", "_water_fill: `if filled(mid) < amount:`"): (
        "when amount is exactly filled(L) the search stops at L - 1 instead of L; the R = "
        "filled(L) - filled(L - 1) units left are then one each for exactly the caps >= L, "
        "which is level L again (test_pools_edges: the water fill at its edges)"
    ),
    ("protocol/pools.py", "allocate: `if units > q_sum:`"): (
        "at units == q_sum both branches give each participant its quantity: 0 extra over the "
        "tolerances, or q_sum water-filled over the quantities (level max(q))"
    ),
    **{
        ("protocol/pools.py", f"allocate: `{line}`"): _ZIP_EQUAL
        for strict in ("strict=None", "", "strict=False")
        for line in (
            f"got = [c[1] + e for c, e in zip(commitments, extra, {strict})]",
            f"return Allocation(cases=cases, shares=dict(zip(names, got, {strict})))",
        )
    },
    ("protocol/pools.py", 'fold_pool: `counted: list[bytes] | None = ""`'): (
        "counted is read before a close only as `counted is not None` (pending), which `_state` "
        "reads only in organizer state closed or delivered, reached only by an accepted close "
        "that sets counted"
    ),
    ("protocol/pools.py", "fold_pool: `below_minimum = None`"): _BELOW_MINIMUM_FIRST,
    ("protocol/pools.py", "fold_pool: `below_minimum = True`"): _BELOW_MINIMUM_FIRST,
    ("protocol/pools.py", "_judge_receipts: `first[s.author] = None`"): (
        "only whether an author is a key of `first` is read, never the value"
    ),
}
