"""Event text made safe to show, and names that imitate others (docs/PROTOCOL.md §18), pure.

Display names and other free text in events are chosen by whoever signs them, and anyone on
the bus can found a log. What a node or an observer shows (web pages, the terminal, every
export) goes through `safe_text`: format characters (category Cf: bidi overrides and
isolates, zero-width spaces and joiners) are removed, so a name cannot reverse the text
beside it or hide inside another; control characters (Cc: escape sequences, newlines)
become spaces. Events keep their text as signed; only what is shown changes.

Two names *look alike* when their `skeleton`s are equal: Cf removed, NFKC, case folded,
NFD, marks (accents) dropped, each character replaced by the representative of its
confusable class (Unicode's confusables data, as shipped by the `confusable_homoglyphs`
package: the classes are the connected groups of its homoglyph pairs and of each ASCII
letter with its capital, the representative the lowest code point), and every character
that is not a letter or a number dropped. `imitations`
names, among neighborhoods in order of precedence, those whose display name looks like an
earlier one's name or slug.
"""

from __future__ import annotations

import functools
import json
import string
import unicodedata
from collections.abc import Iterable, Sequence
from importlib import resources


def _is_hidden(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf"


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp")


def safe_text(text: str) -> str:
    """`text` fit to show: every Cf character removed, every control (Cc) and line or
    paragraph separator (Zl, Zp) replaced by a space. Idempotent."""
    if text.isascii() and text.isprintable():
        return text  # the common case, at no cost
    return "".join(" " if _is_control(ch) else ch for ch in text if not _is_hidden(ch))


def hidden_characters(text: str) -> list[str]:
    """The distinct characters `safe_text` removes or replaces, as `U+202E RIGHT-TO-LEFT
    OVERRIDE`, in order of first appearance (empty when the text is safe as it is)."""
    seen: dict[str, None] = {}
    for ch in text:
        if _is_hidden(ch) or _is_control(ch):
            seen.setdefault(ch)
    return [f"U+{ord(ch):04X} {unicodedata.name(ch, 'control')}" for ch in seen]


@functools.cache
def _representatives() -> dict[str, str]:
    """Each confusable character's class representative (the lowest code point of the
    connected group of `confusable_homoglyphs`' homoglyph pairs); single characters only."""
    data = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    )
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for key, homoglyphs in data.items():
        a = "".join(ch for ch in key if not _is_hidden(ch))
        for entry in homoglyphs:
            b = "".join(ch for ch in entry["c"] if not _is_hidden(ch))
            if len(a) == 1 and len(b) == 1:
                union(a, b)
    # Case is no disguise either: each ASCII letter and its capital are one class. (Only
    # ASCII: a Greek or Cyrillic pair would chain two Latin letters, as υ ~ u and Υ ~ Y.)
    for ch in string.ascii_lowercase:
        union(ch, ch.upper())
    return {ch: find(ch) for ch in parent}


def _confusable_map(text: str) -> str:
    table = _representatives()
    return "".join(table.get(ch, ch) for ch in text)


def skeleton(text: str) -> str:
    """The form two names share when they look alike (see the module's doc): `"Alpha"`,
    `"ALPHA"`, `"AIpha"` (capital i), `"Аlpha"` (Cyrillic A), `"Ａｌｐｈａ"` and
    `"Al\u200bpha"` all have one skeleton."""
    text = unicodedata.normalize("NFKC", "".join(ch for ch in text if not _is_hidden(ch)))
    text = unicodedata.normalize("NFD", text.casefold())
    text = _confusable_map("".join(ch for ch in text if unicodedata.category(ch)[0] != "M"))
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")


def imitations(names: Sequence[tuple[str, str]], slugs: Iterable[str] = ()) -> dict[str, str]:
    """`{slug: imitated slug}` for every neighborhood whose display name looks like the
    name or the slug of one before it in `names` (`(slug, display_name)` pairs, in order of
    precedence: founders and members first, then by founding). A name whose skeleton is
    empty imitates nobody. `slugs`: more slugs a name must not look like (say, of logs
    with no name known yet); they come before every name."""
    first: dict[str, str] = {}  # skeleton -> the slug that showed it first
    for slug in slugs:
        first.setdefault(skeleton(slug), slug)
    out: dict[str, str] = {}
    for slug, name in names:
        key = skeleton(name)
        if key and first.get(key, slug) != slug:
            out[slug] = first[key]
        else:
            first.setdefault(key, slug)
        first.setdefault(skeleton(slug), slug)
    return out
