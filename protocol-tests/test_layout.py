"""The modules of this directory import each other in one direction only.

conftest.py holds just the pytest fixtures and hooks; the machinery it uses is
in plain modules (brokers <- cluster <- durability <- conftest).  A helper that
imported conftest would close a circle: whichever of the two is imported first
sees the other half-initialised.  These tests read every *.py file here with
``ast`` (nothing is imported, no broker is started) and fail on

- any module other than conftest.py importing conftest;
- any cycle in the import graph of the local modules;
- a module of the documented order importing one that comes after it.

Imports anywhere in a file count (inside functions too), and so do
``importlib.import_module("x")`` / ``__import__("x")`` with a literal name.
"""

from __future__ import annotations

import ast
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Each may import only modules before it (and modules outside this list).
ORDER = ["brokers", "cluster", "durability", "conftest"]


def imported_names(source: str, filename: str = "<source>") -> dict:
    """Top-level module name -> first line number, for every import in ``source``."""
    found: dict = {}

    def add(name, node):
        if name:
            found.setdefault(name.split(".")[0], node.lineno)

    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            if node.module:
                add(node.module, node)
            else:  # `from . import x`: the names are modules
                for alias in node.names:
                    add(alias.name, node)
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Name) and node.func.id == "__import__")
                   or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"))):
            add(node.args[0].value, node)
    return found


def import_graph(directory: Path = HERE) -> dict:
    """Local module -> {local module it imports: line}, for every *.py in ``directory``."""
    files = {p.stem: p for p in sorted(directory.glob("*.py"))}
    graph = {}
    for mod, path in files.items():
        names = imported_names(path.read_text(), str(path))
        graph[mod] = {m: line for m, line in names.items() if m in files and m != mod}
    return graph


def find_cycle(graph: dict) -> list | None:
    """One cycle as [a, b, ..., a], or None."""
    state: dict = {}  # absent: unvisited, 1: on the current path, 2: done
    path: list = []

    def visit(m):
        state[m] = 1
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if n not in state:
                cycle = visit(n)
                if cycle:
                    return cycle
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            cycle = visit(m)
            if cycle:
                return cycle
    return None


def test_the_scan_sees_the_modules():
    graph = import_graph()
    assert set(ORDER) <= set(graph), f"missing from {HERE}: {set(ORDER) - set(graph)}"
    assert any(graph.values()), "no local imports found at all: the scan is broken"


def test_nothing_imports_conftest():
    offenders = [f"{mod}.py:{imports['conftest']}" for mod, imports in import_graph().items()
                 if mod != "conftest" and "conftest" in imports]
    assert not offenders, (f"conftest.py is only for fixtures and hooks; import what these need "
                           f"from the helper modules instead: {offenders}")


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_helpers_import_in_one_direction():
    graph = import_graph()
    wrong = [f"{mod}.py:{line} imports {later}"
             for i, mod in enumerate(ORDER)
             for later in ORDER[i + 1:]
             for target, line in graph.get(mod, {}).items() if target == later]
    assert not wrong, f"the order is {' <- '.join(ORDER)}: {wrong}"


def test_the_checks_catch_violations():
    """The scanner itself: nested, aliased and dynamic imports count; cycles are found."""
    src = ("import os\nimport a.b as ab\n\ndef f():\n    from conftest import Broker\n"
           "    import importlib\n    importlib.import_module('c')\n    __import__('d')\n")
    assert imported_names(src) == {"os": 1, "a": 2, "conftest": 5, "importlib": 6, "c": 7, "d": 8}
    assert find_cycle({"x": {"y": 1}, "y": {"z": 1}, "z": {}}) is None
    assert find_cycle({"x": {"y": 1}, "y": {"z": 1}, "z": {"x": 1}}) == ["x", "y", "z", "x"]
