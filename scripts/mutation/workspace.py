"""Temporary copies of the repository laid out as mutation runs need them.

A copy's root holds `coopnet/` (the package: this repository without its tests), `tests/`,
`scripts/`, `protocol/vectors/` and `docs/` (the tests find the last three beside `tests/`, as
in the repository), a pyproject.toml with the repository's pytest settings (and mutmut's, where
asked) and a pytest plugin that loads a hypothesis profile of fewer examples. With the root
first on PYTHONPATH, `import coopnet` finds the copy: PathFinder comes before the editable
install's finder on sys.meta_path, which `check_imports_copy` verifies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLUGIN = "coopnet_mutation_plugin"

_IGNORED = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".typecheck",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    ".schemathesis",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    "data",
    "mutants",
    "mutation-report",
    "relative",
)

_PLUGIN_SOURCE = '''"""Loaded with `-p {name}` in mutation runs (scripts/mutation/workspace.py
writes it): a hypothesis profile of fewer examples, which also caps the tests' own; the
files in MUTATION_FIRST run first; failures noted in MUTATION_FAILURES."""

import os

import pytest
from hypothesis import settings

settings.register_profile(
    "mutation",
    max_examples=int(os.environ.get("MUTATION_HYPOTHESIS_EXAMPLES", "20")),
    derandomize=True,  # the same examples for every mutant: results that repeat
    database=None,
    deadline=None,  # mutmut's trampolines slow every call down
)
settings.load_profile("mutation")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _note_failure(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _note_failure(report)


def _note_failure(report: pytest.TestReport | pytest.CollectReport) -> None:
    path = os.environ.get("MUTATION_FAILURES")
    if path and report.failed:
        with open(path, "a", encoding="utf-8") as out:
            out.write(report.nodeid + "\\n")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # tests that ask for more examples get the profile's number too: a fuzz test's
    # thousand examples find crashes, seldom a changed rule, and a survivor runs them all
    cap = settings.default.max_examples
    for item in items:
        test = getattr(item, "obj", None)
        own = getattr(test, "_hypothesis_internal_use_settings", None)
        if own is not None and own.max_examples > cap:
            test._hypothesis_internal_use_settings = settings(own, max_examples=cap)
    first = [name for name in os.environ.get("MUTATION_FIRST", "").split(",") if name]
    if first:
        rank = {name: i for i, name in reversed(list(enumerate(first)))}
        items.sort(key=lambda item: rank.get(item.path.name, len(first)))
'''


def _pytest_settings() -> str:
    """The repository's [tool.pytest.ini_options], as TOML text."""
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    options: dict[str, object] = data["tool"]["pytest"]["ini_options"]
    return "[tool.pytest.ini_options]\n" + "".join(
        f"{key} = {_toml(value)}\n" for key, value in options.items()
    )


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def make_copy(root: Path, *, mutmut: dict[str, object] | None = None) -> Path:
    """Lay out a fresh copy at `root` (removed first if it exists); returns `root`."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    package = root / "coopnet"
    shutil.copytree(REPO, package, ignore=_ignore_tests_at_top)
    shutil.copytree(REPO / "tests", root / "tests", ignore=_IGNORED)
    shutil.copytree(REPO / "scripts", root / "scripts", ignore=_IGNORED)
    shutil.copytree(REPO / "protocol" / "vectors", root / "protocol" / "vectors")
    shutil.copytree(REPO / "docs", root / "docs")  # tests that hold the spec to its vectors
    pyproject = _pytest_settings()
    if mutmut is not None:
        pyproject += "\n[tool.mutmut]\n" + "".join(
            f"{key} = {_toml(value)}\n" for key, value in mutmut.items()
        )
    (root / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    (root / f"{PLUGIN}.py").write_text(_PLUGIN_SOURCE.replace("{name}", PLUGIN), encoding="utf-8")
    return root


def _ignore_tests_at_top(directory: str, names: list[str]) -> set[str]:
    """What a copy of the package leaves out: tests/ and scripts/ go beside it."""
    ignored: set[str] = set(_IGNORED(directory, names))
    if Path(directory).resolve() == REPO:
        ignored |= {"tests", "scripts"} & set(names)
    return ignored


def environment(root: Path) -> dict[str, str]:
    """The environment for a test run against the copy at `root`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    env.pop("HYPOTHESIS_PROFILE", None)
    return env


def check_imports_copy(root: Path) -> None:
    """Fail unless `import coopnet` under environment(root) finds the copy."""
    out = subprocess.run(
        [sys.executable, "-c", "import coopnet.protocol as p; print(p.__file__)"],
        cwd=root,
        env=environment(root),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(out).resolve().is_relative_to(root.resolve()):
        raise SystemExit(f"coopnet imports from {out}, not from the copy at {root}")
