"""The personal-data rule for calls for help and pledges (docs/PROTOCOL.md §13.1), pure.

A request's `description` and a pledge's `what` carry no e-mail address and no phone
number. Signers and receivers apply the same rule (a receiver rule: every node and
observer must reach the same verdict), so it is defined on a normalized form of the text,
step by step, precisely enough for another implementation (§13.1 is the reference; this
module follows it line by line):

1. remove every character of general category Cf (format: zero-width, bidi controls, the
   soft hyphen); apply NFKC; remove Cf again;
2. map, one character at a time: every decimal digit (category Nd) to its ASCII digit;
   every space (category Zs, the ASCII whitespace controls, U+0085, U+2028, U+2029) to
   U+0020; every dash (category Pd, and U+2212 MINUS SIGN) to `-`; every dot of `DOTS`
   to `.`;
3. e-mail: rewrite the spelled-out `@` and `.` (`[at]`, `(dot)`, `ana at example dot
   org`), then look for `local@label.tld` on the text's *shape* (letters and marks as `a`,
   numbers as `0`): any script, any IDN;
4. phone: a run of digits with at most three separators (space ( ) . - /) between two
   digits, optionally after `+`, holding seven digits or more, unless it is only made of
   dates, times, year ranges and prices (`_ORDINARY`).
"""

from __future__ import annotations

import re
import unicodedata

PHONE = "a phone number"
EMAIL = "an e-mail address"

# Characters read as a dot (§13.1 step 2), beside `.` itself.
DOTS = frozenset(
    "\u00b7"  # MIDDLE DOT
    "\u2022"  # BULLET
    "\u2024"  # ONE DOT LEADER (NFKC makes it `.` already)
    "\u2027"  # HYPHENATION POINT
    "\u2219"  # BULLET OPERATOR
    "\u22c5"  # DOT OPERATOR
    "\u30fb"  # KATAKANA MIDDLE DOT (and, by NFKC, U+FF65)
    "\u3002"  # IDEOGRAPHIC FULL STOP (and, by NFKC, U+FF61): IDNA's label separators
    "\u06d4"  # ARABIC FULL STOP
)
_SPACES = frozenset("\t\n\v\f\r\u0085\u2028\u2029")
MINUS_SIGN = "\u2212"


def _is_format(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf"


def normalize(text: str) -> str:
    """Steps 1-2 of §13.1: the text the rule reads (format characters gone, NFKC, every
    digit ASCII, every space U+0020, every dash `-`, every dot `.`)."""
    text = "".join(ch for ch in text if not _is_format(ch))
    text = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Cf":
            continue
        if cat == "Nd":
            out.append(str(unicodedata.decimal(ch)))
        elif cat == "Zs" or ch in _SPACES:
            out.append(" ")
        elif cat == "Pd" or ch == MINUS_SIGN:
            out.append("-")
        elif ch in DOTS:
            out.append(".")
        else:
            out.append(ch)
    return "".join(out)


# -- e-mail (§13.1 step 3) -------------------------------------------------------------------

_BRACKETED_AT = re.compile(r" *[\[({<] *(?:at|@) *[\])}>] *", re.IGNORECASE | re.ASCII)
_BRACKETED_DOT = re.compile(r" *[\[({<] *(?:dot|\.) *[\])}>] *", re.IGNORECASE | re.ASCII)
_SPACED_AT = re.compile(r" *@ *")
# `ana at example dot org`: "at" and "dot" as words, at least one "dot" after the "at".
_WORDS = re.compile(r"(?<=[^ ]) +at +([^ @]+(?: +dot +[^ @.]+)+)", re.IGNORECASE | re.ASCII)
_WORD_DOT = re.compile(r" +dot +", re.IGNORECASE | re.ASCII)
# On the shape: one local character, `@`, labels, a last label starting with two letters.
_EMAIL_SHAPE = re.compile(r"[a0!#$%&'*+/=?^_`{|}~.-]@[a0_-]+(?:\.[a0_-]+)*\.aa")


def _deobfuscate(text: str) -> str:
    text = _BRACKETED_AT.sub("@", text)
    text = _BRACKETED_DOT.sub(".", text)
    text = _SPACED_AT.sub("@", text)
    return _WORDS.sub(lambda m: "@" + _WORD_DOT.sub(".", m.group(1)), text)


def shape(text: str) -> str:
    """Every letter or mark (categories L*, M*) as `a`, every number (N*) as `0`, the rest
    as it is: what the e-mail pattern reads, so that any script's addresses match."""
    out: list[str] = []
    for ch in text:
        major = unicodedata.category(ch)[0]
        out.append("a" if major in "LM" else "0" if major == "N" else ch)
    return "".join(out)


def has_email(normalized: str) -> bool:
    """Step 3 of §13.1 on normalized text."""
    return _EMAIL_SHAPE.search(shape(_deobfuscate(normalized))) is not None


# -- phone numbers (§13.1 step 4) ------------------------------------------------------------

# A candidate: an optional `+`, then digits with at most three separators between two.
_RUN = re.compile(r"(?:\+ ?)?[0-9](?:[ ().\-/]{0,3}[0-9])*", re.ASCII)
_DAY = r"(?:0?[1-9]|[12][0-9]|3[01])"
_MONTH = r"(?:0?[1-9]|1[0-2])"
_YEAR = r"(?:19|20)[0-9]{2}"
_TIME = r"(?:[01]?[0-9]|2[0-3])\.[0-5][0-9]"
# A piece of a run (split at spaces) that is an ordinary quantity, not part of a number:
# a date (D.M.YYYY, D-M-YYYY, D/M/YYYY, YYYY-M-D, YYYY.M.D, YYYY/M/D: one separator, twice),
# a time (H.MM) or a range of times, a range of years, a price with cents (up to 6 digits).
_ORDINARY = re.compile(
    rf"{_DAY}([./-]){_MONTH}\1{_YEAR}|{_YEAR}([./-]){_MONTH}\2{_DAY}"
    rf"|{_TIME}|{_TIME}-{_TIME}|{_YEAR}[-/]{_YEAR}|[0-9]{{1,6}}\.[0-9]{{2}}",
    re.ASCII,
)


def _is_phone(run: str) -> bool:
    if sum(ch.isdigit() for ch in run) < 7:
        return False
    if run.startswith("+"):
        return True
    pieces = [p for p in run.split(" ") if any(ch.isdigit() for ch in p)]
    return not all(_ORDINARY.fullmatch(p) for p in pieces)


def has_phone(normalized: str) -> bool:
    """Step 4 of §13.1 on normalized text."""
    return any(_is_phone(m.group()) for m in _RUN.finditer(normalized))


def personal_data_in(text: str) -> str | None:
    """`"an e-mail address"` or `"a phone number"` if `text` holds one (e-mail checked
    first), else None: the verdict of docs/PROTOCOL.md §13.1, on any str."""
    normalized = normalize(text)
    if has_email(normalized):
        return EMAIL
    if has_phone(normalized):
        return PHONE
    return None
