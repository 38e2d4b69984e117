"""Event text in the terminal: made safe, and never read as Rich markup.

What the CLI prints in its tables comes, in part, from events other neighborhoods signed
(display names, descriptions, advice, reasons). Rich reads `[...]` in a plain string as
markup (`[link=…]`, `[blink]`), and a terminal obeys escape sequences and bidi controls:
`cell` gives Rich a `Text` (never parsed as markup) of the text made safe
(protocol/text.py, PROTOCOL.md §18).
"""

from __future__ import annotations

from collections.abc import Collection

from rich.table import Table
from rich.text import Text

from coopnet.protocol.text import safe_text


def cell(value: object, style: str = "") -> Text:
    """`value` (any object, shown with `str`) as a table cell: safe text, in `style`."""
    return Text(safe_text(str(value)), style=style)


def stacked(*values: object) -> Text:
    """Several values in one table cell, one a line, each made safe as by `cell`."""
    return Text("\n").join(cell(v) for v in values)


# Units as people say them: one piece, 40 pieces, 3 dozen (PROTOCOL.md §10 units).
_PLURALS = {"dozen": "dozen"}


def unit_text(unit: str, quantity: int = 1) -> str:
    """The unit's name for `quantity` of it: `unit_text("piece", 40) == "pieces"`,
    `unit_text("dozen", 3) == "dozen"`, `unit_text("hour", 1) == "hour"`."""
    if quantity == 1:
        return unit
    return _PLURALS.get(unit, unit + "s")


def quantity_text(quantity: int, unit: str) -> str:
    """`quantity` of `unit` for people: "40 pieces", "3 dozen", "2 hours", "1 litre"."""
    return f"{quantity} {unit_text(unit, quantity)}"


def goods_text(quantity: int, unit: str, item: str) -> str:
    """`quantity` of `unit` of an item, as said: "40 pieces of sourdough loaves",
    "3 dozen eggs", "2 hours of childcare"."""
    joint = " " if unit == "dozen" else " of "
    return f"{quantity_text(quantity, unit)}{joint}{item}"


_STEPS = ((86_400_000, "d"), (3_600_000, "h"), (60_000, "min"))


def span_text(ms: int) -> str:
    """A length of time (milliseconds, 0 or more) in its two largest units: "1 d",
    "2 h 5 min", "15 min" (to the nearest minute); under half a minute, "<1 min"."""
    parts: list[str] = []
    left = (ms + 30_000) // 60_000 * 60_000
    for size, name in _STEPS:
        count, left = divmod(left, size)
        if count or parts:
            parts.append(f"{count} {name}")
        if len(parts) == 2:
            break
    parts = [p for p in parts if not p.startswith("0 ")]
    return " ".join(parts) or "<1 min"


def relative_time(at_ms: int, now_ms: int) -> str:
    """When `at_ms` is, seen from `now_ms` (both milliseconds since the epoch): "in 1 d",
    "in 2 h 5 min", "15 min ago", or "now" within the minute."""
    delta = at_ms - now_ms
    if abs(delta) < 60_000:
        return "now"
    return f"in {span_text(delta)}" if delta > 0 else f"{span_text(-delta)} ago"


def table(title: str, *columns: str, whole: Collection[str] = ()) -> Table:
    """A table for the terminal, titled `title`, with `columns` named. The columns named in
    `whole` (ids and slugs people copy into their next command, amounts) are never wrapped
    or cut, whatever the terminal's width; the others wrap, folding a word too long for
    them, rather than cutting it."""
    out = Table(title=title, title_justify="left")
    for name in columns:
        if name in whole:
            out.add_column(name, no_wrap=True, overflow="ignore")
        else:
            out.add_column(name, overflow="fold")
    return out
