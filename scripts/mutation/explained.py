"""Survivors that no test can kill, each with why: equivalent mutants (the program behaves
the same for every input) and changes outside what `tests/protocol` can observe.

Keyed as `report.key` gives: (file, description without mutmut's mutant number). The
report fills its **why** column from here; a survivor not listed is a test still to write.
Add an entry only with its reason, and only when no test could tell the mutant apart.
"""

from __future__ import annotations

EXPLAINED: dict[tuple[str, str], str] = {}
