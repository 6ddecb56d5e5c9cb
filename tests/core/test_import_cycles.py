"""No import cycle in ``server/`` and ``workers/``, counting imports inside functions too.

The module graph comes from an AST walk over every file (module-level and function-local
``import``/``from`` statements, and ``importlib.import_module`` of a literal name; not a
file's ``if __name__ == "__main__":`` block, which runs as a program of its own). A
cycle, even one hidden in a function body, means a step sits in the wrong layer.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGES = ("server", "workers")


def _modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the packages."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _script_block(node: ast.AST) -> bool:
    """``if __name__ == "__main__":`` runs only when the file is the program (``python -m``),
    as a module of its own: its imports are not the module's."""
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__"
                    for c in node.test.comparators))


def _walk(tree: ast.AST) -> Iterable[ast.AST]:
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        todo += [child for child in ast.iter_child_nodes(node) if not _script_block(child)]


def _imported(tree: ast.AST, module: str, is_package: bool) -> Iterable[str]:
    """Every dotted name ``tree`` imports, wherever the statement sits."""
    for node in _walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                here = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(here[:len(here) - node.level + 1] + ([node.module]
                                                                     if node.module else []))
            else:
                base = node.module or ""
            # A submodule named here is the edge; the package runs first for any import
            # of its submodules, so its own edges are not repeated for each of them.
            yield from (f"{base}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.args[0].value


def import_graph(root: Path, packages: Iterable[str]) -> dict[str, set[str]]:
    """module -> the modules of the same packages it imports."""
    modules = _modules(root, packages)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets: set[str] = set()
        for dotted in _imported(tree, name, path.name == "__init__.py"):
            # ``from a.b import c`` names module a.b.c if there is one, else a.b itself.
            while dotted and dotted not in modules:
                dotted = dotted.rpartition(".")[0]
            if dotted and dotted != name:
                targets.add(dotted)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_server_and_workers_have_no_import_cycle() -> None:
    """The module graph of server/ and workers/ has no cycle."""
    graph = import_graph(ROOT, PACKAGES)
    assert len(graph) > 100 and graph["server.app"], "the walk found the modules and imports"
    assert cycles(graph) == []


def test_a_cycle_through_a_function_local_import_is_found(tmp_path: Path) -> None:
    """A made-up package whose cycle closes inside a function body (and one through a
    relative import and import_module) is reported: the check cannot pass by construction."""
    pkg = tmp_path / "cyc"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from cyc import b\n")
    (pkg / "b.py").write_text("def late() -> None:\n    from cyc.a import name  # noqa\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from . import d\n")
    (pkg / "sub" / "d.py").write_text(
        "import importlib\n\ndef f():\n    importlib.import_module('cyc.sub.c')\n")
    (pkg / "e.py").write_text("import cyc.a\n")
    # A script block importing its own CLI is no cycle: it runs as __main__.
    (pkg / "f.py").write_text("import cyc.e\nif __name__ == '__main__':\n    import cyc.g\n")
    (pkg / "g.py").write_text("import cyc.f\n")
    assert cycles(import_graph(tmp_path, ["cyc"])) == [["cyc.a", "cyc.b"],
                                                       ["cyc.sub.c", "cyc.sub.d"]]
