"""Mutants of what lives outside functions, which mutmut does not reach (TESTING.md).

An AST walk over a module's top-level and class-level statements (never into a function or
a lambda) makes one mutant for each of:

- a table (a dict literal, nested or not; a tuple inside one is a row of a grid): an entry
  removed; a value replaced by the next different value of the same table; a key replaced by
  a key of the same level that this dict lacks;
- a tuple, set, list or `Literal[...]` outside a table: one element removed;
- a number, or a constant expression of numbers (`7 * 24 * 3600`): +1 and -1 (inside
  `msgspec.Meta(...)` these are the bounds ge/le/gt/lt/min_length/max_length);
- a regex quantifier `{m,n}` in a `pattern=` string or a `re.compile` pattern: m or n ±1;
- a class field's literal default: a different literal (a string emptied or filled, a bool
  flipped; numbers are covered above).

Each mutant is a text edit of the original source, so its diff is the change and nothing
else. Mutants that do not parse, or that give the same source twice, are dropped.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass

_QUANTIFIER = re.compile(r"\{(\d+)(?:,(\d*))?\}")
_SKIPPED_NAMES = frozenset({"__all__", "__slots__", "__match_args__"})


@dataclass(frozen=True)
class Mutant:
    """One change of one module: `source` is the whole mutated module."""

    path: str  # relative to the repository root, e.g. "protocol/trades.py"
    line: int
    what: str
    source: str

    def diff(self, original: str) -> str:
        lines = difflib.unified_diff(
            original.splitlines(keepends=True),
            self.source.splitlines(keepends=True),
            fromfile=self.path,
            tofile=self.path,
            n=1,
        )
        return "".join(lines)


@dataclass(frozen=True)
class _Edit:
    start: int  # offsets into the source text
    end: int
    text: str
    line: int
    what: str


class _Offsets:
    """Turns an AST node's (line, column) positions into offsets into the source text."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.line_starts = [0]
        for line in source.splitlines(keepends=True):
            self.line_starts.append(self.line_starts[-1] + len(line))

    def _offset(self, line: int, col: int) -> int:
        # ast columns count UTF-8 bytes
        start = self.line_starts[line - 1]
        text = self.source[start : self.line_starts[line]]
        return start + len(text.encode("utf-8")[:col].decode("utf-8", errors="ignore"))

    def start(self, node: ast.AST) -> int:
        return self._offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> int:
        end_line: int = node.end_lineno  # type: ignore[attr-defined]
        end_col: int = node.end_col_offset  # type: ignore[attr-defined]
        return self._offset(end_line, end_col)

    def text(self, node: ast.AST) -> str:
        return self.source[self.start(node) : self.end(node)]


def _is_simple(node: ast.expr) -> bool:
    """A value a table cell may be replaced by: a literal, a name, or an attribute."""
    if isinstance(node, ast.Constant):
        return not isinstance(node.value, bytes)
    return isinstance(node, ast.Name | ast.Attribute)


def _number(node: ast.expr) -> int | float | None:
    """The value of a constant expression of numbers (not bools), else None."""
    if isinstance(node, ast.Constant):
        constant = node.value
        if isinstance(constant, int | float) and not isinstance(constant, bool):
            return constant
        return None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _number(node.operand)
        if inner is None:
            return None
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and isinstance(
        node.op, ast.Add | ast.Sub | ast.Mult | ast.Pow | ast.FloorDiv
    ):
        left, right = _number(node.left), _number(node.right)
        if left is None or right is None:
            return None
        try:
            value: object = eval(  # constant numbers only, checked above
                compile(ast.Expression(node), "<constant>", "eval"), {"__builtins__": {}}
            )
        except (ArithmeticError, ValueError):
            return None
        return value if isinstance(value, int | float) else None
    return None


def _is_literal_subscript(node: ast.Subscript) -> bool:
    target = node.value
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
    return name == "Literal"


def _is_meta_call(node: ast.Call) -> bool:
    func = node.func
    return isinstance(func, ast.Attribute) and func.attr == "Meta"


def _is_re_compile(node: ast.Call) -> bool:
    func = node.func
    return isinstance(func, ast.Attribute) and func.attr == "compile" and bool(node.args)


def _is_field_call(node: ast.expr) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name == "field"


class _Walker:
    """Collects the edits of one module."""

    def __init__(self, source: str) -> None:
        self.src = _Offsets(source)
        self.edits: list[_Edit] = []
        self.in_meta: list[str] = []  # the Meta keyword being walked, if any

    # -- statements -------------------------------------------------------------------------

    def module(self, tree: ast.Module) -> None:
        self.statements(tree.body, in_class=False)

    def statements(self, body: list[ast.stmt], *, in_class: bool) -> None:
        for stmt in body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.Import):
                continue
            if isinstance(stmt, ast.ImportFrom | ast.Expr | ast.Pass):
                continue  # docstrings and bare expressions
            if isinstance(stmt, ast.ClassDef):
                self.statements(stmt.body, in_class=True)
            elif isinstance(stmt, ast.Assign):
                names = [t.id for t in stmt.targets if isinstance(t, ast.Name)]
                if any(n in _SKIPPED_NAMES for n in names):
                    continue
                self.expression(stmt.value)
            elif isinstance(stmt, ast.AnnAssign):
                self.expression(stmt.annotation)
                if stmt.value is not None:
                    if in_class and stmt.simple:
                        self.field_default(stmt.value)
                    self.expression(stmt.value)
            elif isinstance(stmt, ast.If | ast.Try):
                if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
                    continue
                self.statements(stmt.body, in_class=in_class)

    # -- expressions ------------------------------------------------------------------------

    def expression(self, node: ast.expr) -> None:
        if isinstance(node, ast.Lambda):
            return
        if isinstance(node, ast.Dict):
            self.table(node)
            return
        value = _number(node)
        if value is not None:
            self.number(node, value)
            return
        if isinstance(node, ast.Subscript):
            if _is_literal_subscript(node):
                elements = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
                if len(elements) > 1:
                    self.remove_elements(elements, container=None, what="Literal value removed")
            elif isinstance(node.slice, ast.Tuple):  # type arguments: walked, never removed
                for element in node.slice.elts:
                    self.expression(element)
            else:
                self.expression(node.slice)
            self.expression(node.value)
            return
        if isinstance(node, ast.Tuple | ast.Set | ast.List):
            self.remove_elements(node.elts, container=node, what="element removed")
            for element in node.elts:
                self.expression(element)
            return
        if isinstance(node, ast.Call):
            if _is_re_compile(node) and isinstance(node.args[0], ast.Constant):
                self.pattern(node.args[0])
            for arg in node.args:
                self.expression(arg)
            for keyword in node.keywords:
                if keyword.arg == "pattern" and isinstance(keyword.value, ast.Constant):
                    self.pattern(keyword.value)
                    continue
                meta = _is_meta_call(node) and keyword.arg is not None
                if meta:
                    self.in_meta.append(keyword.arg or "")
                if _is_field_call(node) and keyword.arg == "default":
                    self.field_default(keyword.value)
                self.expression(keyword.value)
                if meta:
                    self.in_meta.pop()
            return
        self.children(node)

    def children(self, node: ast.expr) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr) and not isinstance(child, ast.Lambda):
                self.expression(child)

    # -- the mutations ----------------------------------------------------------------------

    def add(self, node: ast.AST, start: int, end: int, text: str, what: str) -> None:
        line: int = node.lineno  # type: ignore[attr-defined]
        self.edits.append(_Edit(start, end, text, line, what))

    def number(self, node: ast.expr, value: int | float) -> None:
        text = self.src.text(node)
        label = f"Meta {self.in_meta[-1]}" if self.in_meta else "number"
        for delta in (1, -1):
            new = value + delta
            if isinstance(node, ast.Constant) and text.lower().startswith("0x") and new >= 0:
                replacement = f"0x{int(new):X}"
            elif isinstance(node, ast.Constant) or (
                isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant)
            ):
                replacement = repr(new)
            else:
                replacement = f"({text} {'+' if delta > 0 else '-'} 1)"
            self.add(
                node,
                self.src.start(node),
                self.src.end(node),
                replacement,
                f"{label} {text} -> {replacement.strip('()')}",
            )

    def pattern(self, node: ast.Constant) -> None:
        if not isinstance(node.value, str):
            return
        text = self.src.text(node)
        start = self.src.start(node)
        for match in _QUANTIFIER.finditer(text):
            for group in (1, 2):
                digits = match.group(group)
                if not digits:
                    continue
                for delta in (1, -1):
                    new = int(digits) + delta
                    if new < 0:
                        continue
                    mutated = text[: match.start(group)] + str(new) + text[match.end(group) :]
                    try:
                        value = ast.literal_eval(mutated)
                        re.compile(value)
                    except (ValueError, SyntaxError, re.error):
                        continue
                    self.add(
                        node,
                        start,
                        start + len(text),
                        mutated,
                        f"regex bound {match.group(0)}: {digits} -> {new}",
                    )

    def field_default(self, node: ast.expr) -> None:
        if not isinstance(node, ast.Constant):
            return
        value = node.value
        if isinstance(value, bool):
            replacement = repr(not value)
        elif isinstance(value, str):
            replacement = '"x"' if value == "" else '""'
        else:
            return  # numbers: ±1 above; None: no other literal says the same kind of thing
        self.add(
            node,
            self.src.start(node),
            self.src.end(node),
            replacement,
            f"field default {self.src.text(node)} -> {replacement}",
        )

    def remove_elements(
        self, elements: list[ast.expr], *, container: ast.expr | None, what: str
    ) -> None:
        """One mutant per element: the element removed, with its separating comma."""
        for i, element in enumerate(elements):
            if isinstance(element, ast.Starred):
                continue
            text = self.src.text(element)
            if len(elements) == 1:
                if container is None:
                    continue
                empty = {ast.Tuple: "()", ast.List: "[]", ast.Set: "set()"}[type(container)]
                start, end = self.src.start(container), self.src.end(container)
                self.add(element, start, end, empty, f"{what}: {text}")
                continue
            if isinstance(container, ast.Tuple) and len(elements) == 2:
                # (a, b) without b is (a,), not (a): keep it a tuple
                other = elements[1 - i]
                start, end = self.src.start(elements[0]), self.src.end(elements[1])
                self.add(element, start, end, self.src.text(other) + ",", f"{what}: {text}")
                continue
            if i + 1 < len(elements):
                start, end = self.src.start(element), self.src.start(elements[i + 1])
            else:
                start, end = self.src.end(elements[i - 1]), self.src.end(element)
            self.add(element, start, end, "", f"{what}: {text}")

    def table(self, node: ast.Dict) -> None:
        """A dict literal and every dict nested in it form one table."""
        values: list[ast.expr] = []  # every cell, in source order
        levels: dict[int, list[ast.Dict]] = {}

        def collect(d: ast.Dict, depth: int) -> None:
            levels.setdefault(depth, []).append(d)
            for value in d.values:
                if isinstance(value, ast.Dict):
                    collect(value, depth + 1)
                elif isinstance(value, ast.Tuple | ast.List):
                    values.extend(e for e in value.elts if _is_simple(e))
                elif _is_simple(value):
                    values.append(value)

        collect(node, 0)
        pool: list[str] = []
        for value in values:
            text = self.src.text(value)
            if text not in pool:
                pool.append(text)

        def replace(cell: ast.expr) -> None:
            text = self.src.text(cell)
            if text not in pool or len(pool) < 2:
                return
            other = pool[(pool.index(text) + 1) % len(pool)]
            self.add(
                cell,
                self.src.start(cell),
                self.src.end(cell),
                other,
                f"table cell {text} -> {other}",
            )

        for dicts in levels.values():  # collected shallowest first
            level_keys: list[str] = []
            for d in dicts:
                for key in d.keys:
                    if key is not None and _is_simple(key):
                        text = self.src.text(key)
                        if text not in level_keys:
                            level_keys.append(text)
            for d in dicts:
                present = {self.src.text(k) for k in d.keys if k is not None}
                missing = [k for k in level_keys if k not in present]
                keys = [k for k in d.keys if k is not None]
                if len(keys) != len(d.keys):
                    continue  # a `**spread` entry: leave this dict alone
                for i, (key, value) in enumerate(zip(keys, d.values, strict=True)):
                    entry = f"{self.src.text(key)}: ..."
                    if len(keys) == 1:
                        start, end = self.src.start(key), self.src.end(value)
                    elif i + 1 < len(keys):
                        start, end = self.src.start(key), self.src.start(keys[i + 1])
                    else:
                        start, end = self.src.end(d.values[i - 1]), self.src.end(value)
                    self.add(key, start, end, "", f"table entry removed: {entry}")
                    if missing and _is_simple(key):
                        self.add(
                            key,
                            self.src.start(key),
                            self.src.end(key),
                            missing[0],
                            f"table key {self.src.text(key)} -> {missing[0]}",
                        )
                    if isinstance(value, ast.Tuple | ast.List):  # a row of a grid
                        for element in value.elts:
                            replace(element)
                            self.expression(element)
                    elif not isinstance(value, ast.Dict):  # nested dicts: their own level
                        replace(value)
                        self.expression(value)


def mutants(path: str, source: str) -> Iterator[Mutant]:
    """Every mutant of one module's source, in source order, without duplicates."""
    walker = _Walker(source)
    walker.module(ast.parse(source))
    seen = {ast.dump(ast.parse(source))}  # the same tree twice is one mutant
    for edit in sorted(walker.edits, key=lambda e: (e.start, e.end, e.what)):
        mutated = source[: edit.start] + edit.text + source[edit.end :]
        try:
            tree = ast.dump(ast.parse(mutated))
            compile(mutated, path, "exec")
        except SyntaxError:
            continue
        if tree in seen:
            continue
        seen.add(tree)
        yield Mutant(path=path, line=edit.line, what=edit.what, source=mutated)
