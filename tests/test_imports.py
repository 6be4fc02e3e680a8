"""The package's shape: no import cycle between fuselip modules, and no module too long to read top to bottom.

The import graph is read from the source with `ast`, so it sees every import of a fuselip module, at the top of
a module and inside functions alike (an import inside a function only hides a cycle until that function runs).
Importing `fuselip.a.b` from outside the package `fuselip.a` also runs `fuselip/a/__init__.py`, so that package
is an edge too. Imports under `if TYPE_CHECKING:` never run and are left out.
"""
from __future__ import annotations

import ast
from pathlib import Path


PACKAGE = Path(__file__).resolve().parents[1] / "fuselip"
MAX_LINES = 400


def module_files() -> dict[str, Path]:
    """{"fuselip.tokenizers.base": path, "fuselip.tokenizers": path of its __init__.py, ...}"""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _type_checking_only(node: ast.AST, parents: dict) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imported_names(module: str, path: Path) -> set[str]:
    """Dotted names a module imports (`from a.b import c` gives "a.b.c": c may be a submodule)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, `level - 1` packages up
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """module -> the fuselip modules importing it runs (the named module and the packages it enters)."""
    modules = module_files()
    graph = {}
    for module, path in modules.items():
        own_packages = {module.rsplit(".", i)[0] for i in range(module.count(".") + 1)}
        edges = set()
        for name in imported_names(module, path):
            while name and name not in modules:  # "fuselip.vocab.PAD" -> "fuselip.vocab"
                name = name.rpartition(".")[0]
            while name and name not in own_packages:  # the module and each package __init__ on the way to it
                edges.add(name)
                name = name.rpartition(".")[0]
        edges.discard(module)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle [a, b, ..., a] of the directed graph, or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_imports_inside_functions_count_and_type_checking_ones_do_not(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nimport fuselip.vocab\nif TYPE_CHECKING:\n"
                      "    from fuselip import model\n\n\ndef f():\n    from fuselip.data import collate\n"
                      "    from . import sibling\n")
    names = imported_names("fuselip.x.m", source)
    assert {"fuselip.vocab", "fuselip.data.collate", "fuselip.x.sibling"} <= names and "fuselip.model" not in names


def test_graph_enters_the_packages_on_the_way():
    graph = import_graph()
    assert {"fuselip.vocab", "fuselip.data", "fuselip.data.collate"} <= graph["fuselip.model"]
    assert "fuselip.tokenizers" not in graph["fuselip.tokenizers.titok"]  # its own package is already running


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def long_files() -> list[str]:
    root = PACKAGE.parent
    return sorted(str(p.relative_to(root)) for p in PACKAGE.rglob("*.py")
                  if len(p.read_text().splitlines()) > MAX_LINES)


def test_no_module_over_400_lines():
    assert long_files() == [], f"over {MAX_LINES} lines: {long_files()}"
