"""The personal-data rule of docs/PROTOCOL.md §13.1, written from the document alone.

It imports nothing of coopnet. `verdict(text)` is "an e-mail address", "a phone number" or
None, as §13.1 defines it; the tests compare it with protocol/vectors/personal_data.json and
with coopnet's own rule on generated texts.
"""

from __future__ import annotations

import re
import unicodedata

# §13.1 step 2: the characters read as a dot, and the spaces beside category Zs.
DOT_CHARS = {0x00B7, 0x2022, 0x2024, 0x2027, 0x2219, 0x22C5, 0x30FB, 0x3002, 0x06D4}
SPACE_CHARS = {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029}

# §13.1 step 3, the patterns as written there.
AT_BRACKETS = re.compile(r" *[\[({<] *(at|@) *[\])}>] *", re.I)
DOT_BRACKETS = re.compile(r" *[\[({<] *(dot|\.) *[\])}>] *", re.I)
AT_SPACES = re.compile(r" *@ *")
AT_WORDS = re.compile(r"(?<=[^ ]) +at +([^ @]+(?: +dot +[^ @.]+)+)", re.I)
DOT_WORD = re.compile(r" +dot +", re.I)
ADDRESS = re.compile(r"[a0!#$%&'*+/=?^_`{|}~.-]@[a0_-]+(?:\.[a0_-]+)*\.aa")

# §13.1 step 4.
RUN = re.compile(r"(?:\+ ?)?[0-9](?:[ ().\-/]{0,3}[0-9])*")
DAY = r"(0?[1-9]|[12][0-9]|3[01])"
MONTH = r"(0?[1-9]|1[0-2])"
YEAR = r"(19[0-9][0-9]|20[0-9][0-9])"
HOUR_MIN = r"([01]?[0-9]|2[0-3])\.[0-5][0-9]"
ORDINARY = [
    re.compile(DAY + r"\." + MONTH + r"\." + YEAR),
    re.compile(DAY + "-" + MONTH + "-" + YEAR),
    re.compile(DAY + "/" + MONTH + "/" + YEAR),
    re.compile(YEAR + r"\." + MONTH + r"\." + DAY),
    re.compile(YEAR + "-" + MONTH + "-" + DAY),
    re.compile(YEAR + "/" + MONTH + "/" + DAY),
    re.compile(HOUR_MIN),
    re.compile(HOUR_MIN + "-" + HOUR_MIN),
    re.compile(YEAR + "[-/]" + YEAR),
    re.compile(r"[0-9]{1,6}\.[0-9][0-9]"),
]


def without_format(text: str) -> str:
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def n_form(text: str) -> str:
    """Steps 1 and 2."""
    text = without_format(unicodedata.normalize("NFKC", without_format(text)))
    mapped = []
    for c in text:
        cat = unicodedata.category(c)
        if cat == "Nd":
            mapped.append("0123456789"[unicodedata.digit(c)])
        elif cat == "Zs" or ord(c) in SPACE_CHARS:
            mapped.append(" ")
        elif cat == "Pd" or c == "\u2212":
            mapped.append("-")
        elif ord(c) in DOT_CHARS:
            mapped.append(".")
        else:
            mapped.append(c)
    return "".join(mapped)


def email_in(n: str) -> bool:
    """Step 3."""
    n = AT_BRACKETS.sub("@", n)
    n = DOT_BRACKETS.sub(".", n)
    n = AT_SPACES.sub("@", n)
    n = AT_WORDS.sub(lambda m: "@" + DOT_WORD.sub(".", m.group(1)), n)
    shaped = ""
    for c in n:
        cat = unicodedata.category(c)
        shaped += "a" if cat[0] in ("L", "M") else "0" if cat[0] == "N" else c
    return ADDRESS.search(shaped) is not None


def phone_in(n: str) -> bool:
    """Step 4."""
    for run in RUN.findall(n):
        if len([c for c in run if c in "0123456789"]) < 7:
            continue
        if run[0] == "+":
            return True
        pieces = [p for p in run.split(" ") if re.search("[0-9]", p)]
        if any(not any(o.fullmatch(p) for o in ORDINARY) for p in pieces):
            return True
    return False


def verdict(text: str) -> str | None:
    n = n_form(text)
    if email_in(n):
        return "an e-mail address"
    if phone_in(n):
        return "a phone number"
    return None
