"""Neighborhood names as an observer shows them: safe, and flagged when they imitate.

A display name is whatever its founder signed (PROTOCOL.md §8: 1-80 characters), and anyone
on the bus may found a log. What the dashboard, the JSON API, the CLI and the exports show
is the name made safe (`protocol/text.py`: no format or control characters), and a name
that looks like an earlier neighborhood's name or slug (its skeleton: case, width,
accents, homoglyphs, invisible characters aside) is never shown alone: `shown` qualifies it
with its slug, and `imitates` names the neighborhood it looks like (PROTOCOL.md §18).

Precedence, for who imitates whom: members (founders, admitted, retired) before the rest,
then in the order the observer stored their founding events (never by their own clocks,
which a newcomer could set in the past).
"""

from __future__ import annotations

import aiosqlite
import msgspec

from coopnet.node.engine.store_io import fetch_all
from coopnet.node.membership.projection import standings
from coopnet.protocol.charter import Charter
from coopnet.protocol.text import hidden_characters, imitations, safe_text

MEMBER_STATUSES = frozenset({"founder", "admitted", "retired"})


class ShownName(msgspec.Struct, frozen=True, kw_only=True):
    """One neighborhood's name as shown. `name`: the signed display name made safe;
    `shown`: `name`, or `"name (slug)"` when it imitates; `imitates`: the slug it looks
    like, or ""; `hidden`: the characters removed from it (`U+202E RIGHT-TO-LEFT
    OVERRIDE`…); `founding`: the id of its `node.founded` event, hex ("" if not held)."""

    slug: str
    name: str
    shown: str
    imitates: str = ""
    hidden: list[str] = msgspec.field(default_factory=list)
    founding: str = ""

    def warning(self) -> str:
        """What the dashboard says beside the name ("" when nothing is wrong with it)."""
        parts = []
        if self.imitates:
            parts.append(f"looks like the name of {self.imitates}")
        if self.hidden:
            parts.append("invisible characters removed: " + ", ".join(self.hidden))
        return "; ".join(parts)


async def shown_names(db: aiosqlite.Connection, charter: Charter | None) -> dict[str, ShownName]:
    """Every founded neighborhood's `ShownName`, by slug."""
    rows = await fetch_all(
        db,
        "SELECT n.author, n.display_name, e.pos, hex(e.id) FROM neighborhoods n"
        " LEFT JOIN events e ON e.author = n.author AND e.seq = 1",
    )
    members = await standings(db, charter)

    def precedence(row: tuple[object, ...]) -> tuple[int, int, str]:
        s = members.get(str(row[0]))
        ranked = 0 if s is not None and s.status in MEMBER_STATUSES else 1
        return (ranked, int(row[2]) if isinstance(row[2], int) else 2**63, str(row[0]))

    rows.sort(key=precedence)
    charter_slugs = [f.slug for f in charter.founders] if charter is not None else []
    copied = imitations([(str(r[0]), str(r[1])) for r in rows], charter_slugs)
    out: dict[str, ShownName] = {}
    for slug, name, _, founding in rows:
        safe = safe_text(str(name)).strip() or str(slug)
        imitated = copied.get(str(slug), "")
        out[str(slug)] = ShownName(
            slug=str(slug),
            name=safe,
            shown=f"{safe} ({slug})" if imitated else safe,
            imitates=imitated,
            hidden=hidden_characters(str(name)),
            founding=str(founding or "").lower(),
        )
    return out
