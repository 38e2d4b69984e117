"""The report: mutation-report/summary.json (the counts and scores per tool) and
mutation-report/survivors.md (every mutant no test killed, with its diff and a "why" to
fill in: an equivalent mutant, or the test that would kill it)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from scripts.mutation.explained import EXPLAINED


@dataclass(frozen=True)
class Row:
    """One survivor, from either tool."""

    tool: str
    path: str
    line: int
    status: str
    what: str  # our mutator's description, or mutmut's mutant name
    diff: str


def key(row: Row) -> tuple[str, str]:
    """How a survivor is looked up in `explained.EXPLAINED`: its file and its description
    without mutmut's mutant number (`Ledger.settle #6: ...` -> `Ledger.settle: ...`), which
    shifts whenever the function changes."""
    return row.path, re.sub(r" #\d+:", ":", row.what, count=1)


def why(row: Row, explained: Mapping[tuple[str, str], str] = EXPLAINED) -> str:
    """The recorded reason a survivor stays (an equivalent mutant), or "" if none is."""
    return explained.get(key(row), "")


def score(killed: int, timeout: int, total: int) -> float:
    """Per cent of mutants killed; a timeout counts as killed (the tests noticed)."""
    return round(100.0 * (killed + timeout) / total, 1) if total else 100.0


def write(
    folder: Path,
    summary: dict[str, dict[str, object]],
    rows: Sequence[Row],
    *,
    command: str,
    when: str,
    left_out: Sequence[str],
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": command,
        "when": when,
        **summary,
        "survivors_explained": sum(bool(why(r)) for r in rows),
        "survivors_unexplained": sum(not why(r) for r in rows),
        "tests_left_out_as_failing_unmutated": list(left_out),
    }
    (folder / "summary.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    markdown = _markdown(summary, rows, command, when, left_out)
    (folder / "survivors.md").write_text(markdown, encoding="utf-8")


def _markdown(
    summary: dict[str, dict[str, object]],
    rows: Sequence[Row],
    command: str,
    when: str,
    left_out: Sequence[str],
) -> str:
    out = [
        "# Mutation survivors in protocol/",
        "",
        f"`{command}`, {when}. Each survivor is a change to protocol/ that no test in",
        "tests/protocol noticed. **why** is filled from scripts/mutation/explained.py (an",
        "equivalent mutant: no behaviour changes, and why); an empty one is a test to write.",
        "",
        "| tool | total | killed | timeout | survived | score |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for tool, counts in summary.items():
        out.append(
            f"| {tool} | {counts['total']} | {counts['killed']} | {counts['timeout']} "
            f"| {counts['survived']} | {counts['score']} % |"
        )
    out.append("")
    if left_out:
        out += ["Left out of every run, as they failed on the unmutated tree:", ""]
        out += [f"- `{nodeid}`" for nodeid in left_out]
        out.append("")
    by_file: dict[str, list[Row]] = {}
    for row in sorted(rows, key=lambda r: (r.path, r.line, r.tool, r.what)):
        by_file.setdefault(row.path, []).append(row)
    tools = sorted({row.tool for row in rows})
    out += ["| file | " + " | ".join(tools) + " |", "| --- |" + " --- |" * len(tools)]
    for path, file_rows in by_file.items():
        per_tool = [str(sum(r.tool == tool for r in file_rows)) for tool in tools]
        out.append(f"| [{path}](#{_anchor(path, len(file_rows))}) | " + " | ".join(per_tool) + " |")
    out.append("")
    for path, file_rows in by_file.items():
        out += [f"## {path} ({len(file_rows)})", ""]
        out += ["| line | tool | status | mutant | why |", "| --- | --- | --- | --- | --- |"]
        for number, row in enumerate(file_rows, 1):
            what = row.what.replace("|", "\\|")
            reason = why(row).replace("|", "\\|")
            out.append(f"| {row.line} | {row.tool} | {row.status} | [{number}] {what} | {reason} |")
        out.append("")
        for number, row in enumerate(file_rows, 1):
            out += [f"[{number}] line {row.line}, {row.tool}: {row.what}", "", "```diff"]
            out += [row.diff.rstrip("\n"), "```", ""]
    return "\n".join(out)


def _anchor(path: str, count: int) -> str:
    """GitHub's anchor for the heading `## {path} ({count})`."""
    heading = f"{path} ({count})".lower()
    return "".join(c for c in heading if c.isalnum() or c in " -_").replace(" ", "-")
