"""Event text in the terminal: made safe, and never read as Rich markup.

What the CLI prints in its tables comes, in part, from events other neighborhoods signed
(display names, descriptions, advice, reasons). Rich reads `[...]` in a plain string as
markup (`[link=…]`, `[blink]`), and a terminal obeys escape sequences and bidi controls:
`cell` gives Rich a `Text` (never parsed as markup) of the text made safe
(protocol/text.py, PROTOCOL.md §18).
"""

from __future__ import annotations

from rich.text import Text

from coopnet.protocol.text import safe_text


def cell(value: object, style: str = "") -> Text:
    """`value` (any object, shown with `str`) as a table cell: safe text, in `style`."""
    return Text(safe_text(str(value)), style=style)
