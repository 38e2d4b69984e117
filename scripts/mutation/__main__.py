"""Mutation testing of protocol/ against tests/protocol (TESTING.md): `make mutation`.

    python -m scripts.mutation                         # both tools, every protocol module
    python -m scripts.mutation --only protocol/ledger.py --jobs 1
    python -m scripts.mutation --skip inside           # only our mutator (outside functions)

Inside functions: mutmut 3 (inside.py). Outside functions (tables, grids, constants, Meta
and regex bounds, field defaults): our mutator (outside.py, runner.py). Writes
mutation-report/summary.json and mutation-report/survivors.md and prints both scores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from . import inside, outside, report, runner, workspace


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.mutation", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="protocol/MODULE.py",
        help="mutate only this module (repeatable); default: every module of protocol/",
    )
    parser.add_argument("--skip", choices=("inside", "outside"), help="run one tool only")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument(
        "--examples",
        type=int,
        default=20,
        help="hypothesis max_examples for tests that do not set their own (default 20)",
    )
    parser.add_argument("--timeout", type=float, help="seconds per mutant (ours)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/coopnet-mutation"))
    parser.add_argument("--out", type=Path, default=workspace.REPO / "mutation-report")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    return parser.parse_args()


def _modules(only: list[str]) -> list[str]:
    if only:
        for module in only:
            if not (workspace.REPO / module).is_file() or not module.startswith("protocol/"):
                raise SystemExit(f"--only {module}: not a module of protocol/")
        return sorted(only)
    return sorted(
        str(p.relative_to(workspace.REPO)) for p in (workspace.REPO / "protocol").glob("*.py")
    )


def _baseline(args: argparse.Namespace) -> tuple[float, list[str]]:
    """The unmutated tests' time, and those that fail unmutated (left out of every run)."""
    root = workspace.make_copy(args.work / "baseline")
    workspace.check_imports_copy(root)
    seconds, failing = runner.baseline(root)
    print(f"the unmutated tests take {seconds:.1f} s", flush=True)
    for nodeid in failing:
        print(f"  left out, as it fails unmutated: {nodeid}")
    shutil.rmtree(root)
    return seconds, failing


def _outside(
    args: argparse.Namespace, modules: list[str], seconds: float, failing: list[str]
) -> tuple[dict[str, object], list[report.Row]]:
    start = time.monotonic()
    roots = [workspace.make_copy(args.work / f"outside-{i}") for i in range(args.jobs)]
    timeout = args.timeout or max(60.0, 4 * seconds)
    originals = {m: (workspace.REPO / m).read_text(encoding="utf-8") for m in modules}
    mutants = [m for path in modules for m in outside.mutants(path, originals[path])]
    print(
        f"outside: {len(mutants)} mutants in {len(modules)} modules, {args.jobs} at a time, "
        f"{timeout:.0f} s at most each",
        flush=True,
    )

    def progress(outcome: runner.Outcome, done: int) -> None:
        if outcome.status != "killed":
            m = outcome.mutant
            print(f"  {outcome.status}: {m.path}:{m.line} {m.what}", flush=True)
        if done % 50 == 0 or done == len(mutants):
            print(f"  {done}/{len(mutants)} ({time.monotonic() - start:.0f} s)", flush=True)

    outcomes = runner.run_mutants(
        mutants, originals, roots, timeout=timeout, failing=failing, progress=progress
    )
    killed = sum(o.status == "killed" for o in outcomes)
    timed_out = sum(o.status == "timeout" for o in outcomes)
    survivors = [o for o in outcomes if o.status == "survived"]
    summary: dict[str, object] = {
        "total": len(outcomes),
        "killed": killed,
        "survived": len(survivors),
        "timeout": timed_out,
        "score": report.score(killed, timed_out, len(outcomes)),
        "seconds": round(time.monotonic() - start),
        "hypothesis_max_examples": args.examples,
    }
    rows = [
        report.Row(
            "outside",
            o.mutant.path,
            o.mutant.line,
            o.status,
            f"{o.mutant.what} in `{_line_text(originals[o.mutant.path], o.mutant.line)}`",
            o.mutant.diff(originals[o.mutant.path]),
        )
        for o in survivors
    ]
    return summary, rows


def _line_text(source: str, line: int) -> str:
    text = source.splitlines()[line - 1].strip()
    return text if len(text) <= 80 else text[:77] + "..."


def _inside(
    args: argparse.Namespace, only: list[str], failing: list[str]
) -> tuple[dict[str, object], list[report.Row]]:
    start = time.monotonic()
    print("inside: mutmut run (its log: mutmut-run.log in the work folder)", flush=True)
    result = inside.run(args.work / "mutmut", only, args.jobs, failing)
    statuses = list(result.statuses.values())
    killed = statuses.count("killed")
    timed_out = statuses.count("timeout")
    not_killed = sum(s in inside.NOT_KILLED for s in statuses)
    total = killed + timed_out + not_killed
    summary: dict[str, object] = {
        "total": total,
        "killed": killed,
        "survived": not_killed,
        "timeout": timed_out,
        "score": report.score(killed, timed_out, total),
        "seconds": round(time.monotonic() - start),
        "hypothesis_max_examples": args.examples,
        "mutmut_counts": result.counts,
    }
    rows = [
        report.Row("mutmut", s.path, s.line, s.status, inside.describe(s), s.diff)
        for s in result.survivors
    ]
    return summary, rows


def main() -> int:
    args = _arguments()
    os.environ["MUTATION_HYPOTHESIS_EXAMPLES"] = str(args.examples)
    modules = _modules(args.only)
    start = time.monotonic()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    summary: dict[str, dict[str, object]] = {}
    rows: list[report.Row] = []
    seconds, failing = _baseline(args)
    if args.skip != "inside":
        summary["mutmut (inside functions)"], found = _inside(args, args.only, failing)
        rows += found
    if args.skip != "outside":
        summary["ours (outside functions)"], found = _outside(args, modules, seconds, failing)
        rows += found
    extra = " ".join(sys.argv[1:])
    command = f"make mutation MUTATION_ARGS='{extra}'" if extra else "make mutation"
    report.write(args.out, summary, rows, command=command, when=when, left_out=failing)
    if not args.keep:
        shutil.rmtree(args.work, ignore_errors=True)
    print(f"\nreport: {args.out}/summary.json, {args.out}/survivors.md")
    for tool, counts in summary.items():
        print(
            f"{tool}: {counts['score']} % killed ({counts['killed']} killed, "
            f"{counts['timeout']} timeout, {counts['survived']} survived of {counts['total']})"
        )
    print(f"run time: {time.monotonic() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
