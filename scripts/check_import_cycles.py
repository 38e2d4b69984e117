"""Fail if any module of coopnet imports, directly or through others, a module that imports it.

import-linter's contracts check the layers (DESIGN.md "Layers"); this checks every module,
inside a layer too: it builds the import graph with grimp (what import-linter itself uses),
counting imports made only for type checking as well, and lists each strongly connected
component of more than one module (a circle) with one shortest path around it.

    python scripts/check_import_cycles.py        # exit 0: no circle; 1: circles listed
"""

from __future__ import annotations

import sys

import grimp


def circles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0

    def edges(module: str) -> list[str]:
        return sorted(m for m in graph.find_modules_directly_imported_by(module) if m in index_all)

    index_all = set(modules)
    for root in modules:
        if root in index:
            continue
        # Iterative DFS: (module, iterator over its edges).
        work = [(root, iter(edges(root)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            module, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(edges(nxt))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[module] = min(low[module], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    component.append(m)
                    if m == module:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def main() -> int:
    graph = grimp.build_graph("coopnet", exclude_type_checking_imports=False)
    found = circles(graph, "coopnet")
    for component in found:
        first = component[0]
        ring = [first]
        for other in component[1:]:
            chain = graph.find_shortest_chain(importer=first, imported=other) or ()
            back = graph.find_shortest_chain(importer=other, imported=first) or ()
            if chain and back:
                ring = [*chain, *back[1:]]
                break
        print(f"import circle of {len(component)} modules: {', '.join(component)}")
        print(f"  for example: {' -> '.join(ring)}")
    if found:
        return 1
    print(f"no import circle among the {len(graph.modules)} modules of coopnet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
