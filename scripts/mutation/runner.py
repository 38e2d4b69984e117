"""Runs our own mutants (outside.py) against tests/protocol, each in a fresh pytest process.

Each worker owns one copy of the repository (workspace.py): it writes the mutated module
into its copy, runs the tests with `-x` (first the test files that killed this module's
last mutants, then those named after the module) and puts the original back. Killed: the
tests fail; survived: they pass; timeout: they ran past the per-mutant limit (counted as
killed, as mutmut counts them).
"""

from __future__ import annotations

import queue
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import workspace
from .outside import Mutant

PYTEST_OPTIONS = ("-x", "-q", "-p", "no:cacheprovider", "-p", workspace.PLUGIN)
TESTS = "tests/protocol"


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    status: str  # "killed", "survived" or "timeout"
    seconds: float


def first_files(root: Path, module: str) -> list[str]:
    """The test files named after `module` (test_trades.py for protocol/trades.py): they
    run first, as they fail soonest."""
    stem = Path(module).stem
    folder = root / "tests" / "protocol"
    return sorted(p.name for p in folder.glob("test_*.py") if stem in p.stem.split("_")[1:])


def exclusions(failing: Sequence[str]) -> list[str]:
    """pytest options that leave out the tests (or test files) that fail unmutated."""
    options: list[str] = []
    for nodeid in failing:
        options += ["--deselect", nodeid] if "::" in nodeid else ["--ignore", nodeid]
    return options


def run_tests(
    root: Path,
    module: str,
    timeout: float,
    *,
    failing: Sequence[str] = (),
    first: Sequence[str] = (),
) -> tuple[str, float, str]:
    """Run the tests against the copy at `root`, the files in `first` and those named after
    `module` first: ("passed" | "failed" | "timeout", seconds, the file that failed)."""
    failures = root / "failures.txt"
    failures.unlink(missing_ok=True)
    order = [*first, *first_files(root, module)]
    env = workspace.environment(root) | {
        "MUTATION_FIRST": ",".join(order),
        "MUTATION_FAILURES": str(failures),
    }
    start = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", *PYTEST_OPTIONS, *exclusions(failing), TESTS],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "timeout", time.monotonic() - start, ""
    seconds = time.monotonic() - start
    if result.returncode == 0:
        return "passed", seconds, ""
    failed = failures.read_text(encoding="utf-8").splitlines() if failures.exists() else []
    return "failed", seconds, Path(failed[0].partition("::")[0]).name if failed else ""


def baseline(root: Path) -> tuple[float, list[str]]:
    """Run the tests once unmutated, to the end: (seconds, the node ids that failed). The
    tests may be mid-change (others write them as this runs): what fails here is left out
    of every mutant's run, and the report lists it."""
    failures = root / "baseline-failures.txt"
    failures.unlink(missing_ok=True)
    env = workspace.environment(root) | {"MUTATION_FAILURES": str(failures)}
    options = [o for o in PYTEST_OPTIONS if o != "-x"]
    start = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pytest", *options, TESTS],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=1800,
        check=False,
    )
    seconds = time.monotonic() - start
    failing = failures.read_text(encoding="utf-8").splitlines() if failures.exists() else []
    verdict, _, _ = run_tests(root, "", 1800, failing=failing)
    if verdict != "passed":
        raise SystemExit("tests/protocol fails on the unmutated copy, even without the failures")
    return seconds, sorted(set(failing))


def _write(root: Path, relative: str, source: str) -> None:
    path = root / "coopnet" / relative
    path.write_text(source, encoding="utf-8")
    # a stale .pyc of the same size and second would hide the change
    for cached in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
        cached.unlink()


def run_mutants(
    mutants: Sequence[Mutant],
    originals: dict[str, str],
    roots: Sequence[Path],
    *,
    timeout: float,
    failing: Sequence[str],
    progress: Callable[[Outcome, int], None],
) -> list[Outcome]:
    """Run every mutant, one worker per copy in `roots`; results in the mutants' order."""
    free: queue.Queue[Path] = queue.Queue()
    for root in roots:
        free.put(root)
    done = 0
    killers: dict[str, list[str]] = {}  # per module: the test files that killed, latest first

    def one(mutant: Mutant) -> Outcome:
        nonlocal done
        root = free.get()
        try:
            _write(root, mutant.path, mutant.source)
            verdict, seconds, killer = run_tests(
                root, mutant.path, timeout, failing=failing, first=killers.get(mutant.path, [])
            )
        finally:
            _write(root, mutant.path, originals[mutant.path])
            free.put(root)
        if killer:
            latest = [killer, *(k for k in killers.get(mutant.path, []) if k != killer)]
            killers[mutant.path] = latest[:3]
        status = {"passed": "survived", "failed": "killed"}.get(verdict, "timeout")
        outcome = Outcome(mutant, status, seconds)
        done += 1
        progress(outcome, done)
        return outcome

    with ThreadPoolExecutor(max_workers=len(roots)) as pool:
        return list(pool.map(one, mutants))
