"""mutmut 3 over protocol/'s functions, against tests/protocol, in a copy of the repository.

mutmut wants the code under a folder named after the package, so the copy's root holds
`coopnet/` (workspace.py); mutmut copies it to `mutants/`, rewrites every function of
coopnet/protocol/ into a trampoline to its mutants, and runs the tests that reach each
function, forked from one warmed-up process. Here: `mutmut run`, then
`mutmut export-cicd-stats` for the counts, `mutmut results --all true` for each mutant's
status and `mutmut show NAME` for each survivor's diff.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import runner, workspace

MUTMUT = str(Path(sys.executable).with_name("mutmut"))
NOT_KILLED = ("survived", "no tests", "suspicious", "segfault", "not checked")
_RESULT_LINE = re.compile(r"^\s+(\S+): (.+)$")


@dataclass(frozen=True)
class Survivor:
    name: str  # mutmut's, e.g. coopnet.protocol.trades.x_fold__mutmut_12
    status: str
    path: str  # relative to the repository root
    line: int
    diff: str


@dataclass(frozen=True)
class InsideResult:
    counts: dict[str, int]  # mutmut's own (mutants/mutmut-cicd-stats.json)
    statuses: dict[str, str]  # every mutant's status
    survivors: list[Survivor]
    log: Path


def settings(only: Sequence[str], failing: Sequence[str]) -> dict[str, object]:
    """[tool.mutmut] for the copy; `only`: module paths such as protocol/ledger.py;
    `failing`: the tests that fail unmutated, left out."""
    return {
        "source_paths": ["coopnet"],
        "only_mutate": [f"coopnet/{m}" for m in only] or ["coopnet/protocol/*"],
        "pytest_add_cli_args_test_selection": ["tests/protocol"],
        "pytest_add_cli_args": [
            "-p",
            "no:cacheprovider",
            "-p",
            workspace.PLUGIN,
            *runner.exclusions(failing),
        ],
        "also_copy": ["scripts/", "protocol/", "docs/", f"{workspace.PLUGIN}.py"],
        "use_git_change_detection": False,
    }


def run(root: Path, only: Sequence[str], jobs: int, failing: Sequence[str]) -> InsideResult:
    workspace.make_copy(root, mutmut=settings(only, failing))
    log = root / "mutmut-run.log"
    env = workspace.environment(root)
    env.pop("PYTHONPATH")  # mutmut puts mutants/ first on sys.path itself
    with log.open("w") as out:
        done = subprocess.run(
            [MUTMUT, "run", "--max-children", str(jobs)],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"mutmut run failed ({done.returncode}); the end of {log}:\n{tail}")
    subprocess.run(
        [MUTMUT, "export-cicd-stats"], cwd=root, env=env, check=True, capture_output=True
    )
    counts: dict[str, int] = json.loads(
        (root / "mutants" / "mutmut-cicd-stats.json").read_text(encoding="utf-8")
    )
    listing = subprocess.run(
        [MUTMUT, "results", "--all", "true"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    statuses: dict[str, str] = {}
    for line in listing.splitlines():
        match = _RESULT_LINE.match(line)
        if match:
            statuses[match.group(1)] = match.group(2).strip()
    names = sorted(n for n, s in statuses.items() if s in NOT_KILLED)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        diffs = list(pool.map(lambda n: _show(root, env, n), names))
    survivors = [
        _survivor(root, name, statuses[name], diff) for name, diff in zip(names, diffs, strict=True)
    ]
    return InsideResult(counts=counts, statuses=statuses, survivors=survivors, log=log)


def _show(root: Path, env: dict[str, str], name: str) -> str:
    shown = subprocess.run(
        [MUTMUT, "show", name], cwd=root, env=env, capture_output=True, text=True, check=False
    ).stdout
    # the first line is "# NAME: status"
    return "\n".join(line for line in shown.splitlines() if not line.startswith("# ")) + "\n"


def _survivor(root: Path, name: str, status: str, diff: str) -> Survivor:
    module, _, mangled = name.rpartition(".")
    relative = module.removeprefix("coopnet.").replace(".", "/") + ".py"
    function = re.sub(r"__mutmut_\d+$", "", mangled)
    if function.startswith("xǁ"):
        cls, _, method = function[2:].partition("ǁ")
        qualified = [cls, method]
    else:
        qualified = [function.removeprefix("x_")]
    source = (root / "coopnet" / relative).read_text(encoding="utf-8")
    return Survivor(name, status, relative, _line(source, qualified, diff), diff)


def _line(source: str, qualified: list[str], diff: str) -> int:
    """The line of the mutated function that the diff removes (else the function's)."""
    body: Sequence[ast.stmt] = ast.parse(source).body
    node: ast.AST | None = None
    for part in qualified:
        node = next(
            (
                n
                for n in body
                if isinstance(n, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                and n.name == part
            ),
            None,
        )
        if node is None:
            return 0
        body = node.body
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    lines = source.splitlines()
    removed = [
        line[1:].strip()
        for line in diff.splitlines()
        if line.startswith("-") and not line.startswith("---") and line[1:].strip()
    ]
    first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    end = node.end_lineno or node.lineno
    for text in removed:
        for number in range(first, end + 1):
            if lines[number - 1].strip() == text:
                return number
    return node.lineno


def describe(survivor: Survivor) -> str:
    """`Ledger.settle #6: raise ValueError(None)`: the function, the mutant's number and
    the first line it changes to."""
    mangled = survivor.name.rpartition(".")[2]
    function, _, number = mangled.rpartition("__mutmut_")
    function = function[2:].replace("ǁ", ".") if function.startswith("xǁ") else function[2:]
    added = [
        line[1:].strip()
        for line in survivor.diff.splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]
    change = f"`{added[0]}`" if added else "(a line removed)"
    return f"{function} #{number}: {change}"
