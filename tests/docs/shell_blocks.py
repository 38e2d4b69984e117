"""Read the walked shell blocks of a Markdown document into steps, by the rules the
documents state at the top of each walked part (README.md "A tour", docs/OPERATIONS.md):

- a fenced ```sh block is walked, in order; one whose first line is
  `# not run by the docs test: <why>` is not (and must say why);
- a line ending in `\\` goes on on the next line; a blank line or a comment line is no step;
- ` # ` starts a comment; a comment starting `exits N` says the command exits with N
  (0 otherwise); a comment line `# → TEXT` under a command is a line its output holds
  (`…` stands for anything);
- a command ending in `&` runs in the background;
- `<name>` is a placeholder, filled from a table of the document whose first column is
  `placeholder`: the JSON field (second column) of what the last earlier command starting
  with the third column printed (with `--json`);
- a port (the number after an option ending in `port`, or after `localhost:` or
  `127.0.0.1:`) is the same free port of this machine wherever it appears.

Pure: text in, steps out; tests/docs/test_docs_run.py runs them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

FENCE_RE = re.compile(r"^(\s*)```(\S*)\s*$")
NOT_RUN = "# not run by the docs test:"
EXPECT_PREFIX = "# →"
EXITS_RE = re.compile(r"^exits (\d+)\b")
PLACEHOLDER_RE = re.compile(r"<([a-z][a-z0-9-]*)>")
PORT_RE = re.compile(r"(--[a-z-]*port[= ]|localhost:|127\.0\.0\.1:)(\d{2,5})\b")


@dataclass
class Step:
    """One command of a walked block: `command` as written (comment removed, continuation
    lines joined), `exit_code` it must end with, `expected` output lines (patterns with
    `…`), whether it runs in the `background`, and where it is (`where`: file:line)."""

    command: str
    where: str
    exit_code: int = 0
    background: bool = False
    expected: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Source:
    """Where a placeholder's value comes from: `field` (a dotted path, integers index lists)
    of the JSON that the last earlier command starting with `command` printed."""

    field: str
    command: str


def part(text: str, heading: str | None) -> tuple[str, int]:
    """The section of `text` under the `## heading` (to the next `## `), or all of it for
    None; with the number of lines before it (to name lines as in the file)."""
    if heading is None:
        return text, 0
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.rstrip("\n") == f"## {heading}":
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("## ")), None)
            return "".join(lines[i : end or len(lines)]), i
    raise ValueError(f"no section '## {heading}'")


def split_comment(line: str) -> tuple[str, str]:
    """`command  # comment` → (command, comment); a `#` inside quotes or a word is kept."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def sh_blocks(text: str, *, offset: int = 0) -> list[tuple[int, list[str]]]:
    """Every fenced ```sh block: (line number of its first line in the file, its lines)."""
    blocks: list[tuple[int, list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent, lang = m.group(1), m.group(2)
        j = i + 1
        while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
            j += 1
        if lang == "sh":
            body = [ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines[i + 1 : j]]
            blocks.append((offset + i + 2, body))
        i = j + 1
    return blocks


def steps_of_block(start: int, body: list[str], name: str) -> list[Step]:
    """The steps of one block whose first line is line `start` of file `name`; none if the
    block says it is not run (it must then say why)."""
    if body and body[0].startswith(NOT_RUN):
        if not body[0][len(NOT_RUN) :].strip():
            raise ValueError(f"{name}:{start}: a block not run must say why")
        return []
    steps: list[Step] = []
    i = 0
    while i < len(body):
        number = start + i
        line = body[i].rstrip()
        while line.endswith("\\") and i + 1 < len(body):
            i += 1
            line = line[:-1].rstrip() + " " + body[i].strip()
        i += 1
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(EXPECT_PREFIX):
            if not steps:
                raise ValueError(f"{name}:{number}: an expected output line before any command")
            steps[-1].expected.append(stripped[len(EXPECT_PREFIX) :].strip())
            continue
        command, comment = split_comment(stripped)
        if not command:
            continue
        exits = EXITS_RE.search(comment)
        background = command.endswith("&") and not command.endswith("&&")
        if background:
            command = command[:-1].rstrip()
        steps.append(
            Step(
                command=command,
                where=f"{name}:{number}",
                exit_code=int(exits.group(1)) if exits else 0,
                background=background,
            )
        )
    return steps


def walked_steps(text: str, heading: str | None, name: str) -> list[Step]:
    """The steps of every walked block of the part of `text` under `heading`, in order."""
    section, offset = part(text, heading)
    return [
        s
        for start, body in sh_blocks(section, offset=offset)
        for s in steps_of_block(start, body, name)
    ]


def placeholder_sources(text: str, heading: str | None) -> dict[str, Source]:
    """The placeholder table of the part: rows `| \\`<name>\\` | \\`field\\` | \\`command\\` |`
    under a header whose first cell is `placeholder`."""
    section, _ = part(text, heading)
    sources: dict[str, Source] = {}
    in_table = False
    for line in section.splitlines():
        cells = [c.strip().strip("`").strip() for c in line.strip().strip("|").split("|")]
        if not line.strip().startswith("|"):
            in_table = False
            continue
        if cells[0].lower() == "placeholder":
            in_table = True
            continue
        if in_table and len(cells) >= 3 and PLACEHOLDER_RE.fullmatch(cells[0]):
            command = cells[2].replace("…", "").strip()
            sources[cells[0][1:-1]] = Source(field=cells[1], command=command)
    return sources


def json_field(output: str, path: str) -> str | None:
    """The value at `path` (dotted; integers index lists) of the JSON `output` printed (its
    last line that parses, for commands that print more), as text; None if absent."""
    value: object = None
    for candidate in [output, *reversed(output.splitlines())]:
        try:
            value = json.loads(candidate)
            break
        except ValueError:
            continue
    else:
        return None
    for key in path.split("."):
        if isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            return None
    return value if isinstance(value, str) else json.dumps(value)


def map_ports(command: str, ports: dict[str, str], free_port: Callable[[], int]) -> str:
    """`command` with each port it names replaced by its free port (`ports` remembers them,
    so one number is one port everywhere)."""

    def replace(m: re.Match[str]) -> str:
        number = m.group(2)
        if number not in ports:
            ports[number] = str(free_port())
        return m.group(1) + ports[number]

    return PORT_RE.sub(replace, command)


def ports_named(command: str) -> list[int]:
    """The port numbers a (mapped) command names."""
    return [int(m.group(2)) for m in PORT_RE.finditer(command)]


def output_matches(pattern: str, output: str) -> bool:
    """Whether a line of `output` holds `pattern` (`…` stands for anything; spaces are
    compared as any run of whitespace)."""
    # `…` with the spaces around it stands for anything, nothing included: `… oakley …`
    # matches a line that starts with oakley.
    parts = [p.strip() for p in " ".join(pattern.split()).split("…")]
    regex = re.compile(".*".join(re.escape(p) for p in parts))
    return any(regex.search(" ".join(line.split())) for line in output.splitlines())
