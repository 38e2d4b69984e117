"""A finding of the audit (docs/PROTOCOL.md §17): its stable code, severity and evidence.

Its own module so that each part of the audit (federation/audit.py, federation/
audit_pools_hours.py) builds findings without importing the other.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Severity = Literal["critical", "warning", "info"]
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


class Finding(msgspec.Struct, kw_only=True):
    """One thing the audit found wrong: `code` (§17's table), `severity`, a one-line
    `title`, a `detail` for people, the `author` it concerns ("" for the federation), and
    `evidence`: event ids (or wire hashes), hex."""

    code: str  # stable: what kind of finding
    severity: Severity
    title: str
    detail: str
    author: str = ""
    evidence: list[str] = msgspec.field(default_factory=list)  # event ids (or wire hashes), hex
