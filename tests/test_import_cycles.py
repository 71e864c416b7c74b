"""No import cycles among fraudnet's modules: the graph of module-level imports (read with `ast`) is acyclic.

Imports inside functions are left out (they run late, when called); every other import counts, also those under
`if TYPE_CHECKING:` — a type-only import still ties two modules together, and a cycle dodged by typing `Any` or by
a deferred import is the kind this test is here to catch at the design level.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "fraudnet"


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Import statements outside function and class bodies (inside module-level if/try/with blocks too)."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        else:
            stack.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt))
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module → the fraudnet modules it imports at module level."""
    modules = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _module_level_imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                # `from package import module` imports the module; `from module import name` the module itself.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                while target and target not in modules:  # `import a.b.c` of a name inside a module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted, and self-loops."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
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
            if len(component) > 1 or v in graph.get(v, ()):
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_a_cycle(tmp_path: Path) -> None:
    """The check itself: a planted cycle (a → b → c → a, one leg under TYPE_CHECKING, one relative) is found."""
    pkg = tmp_path / "fraudnet"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from fraudnet.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from .c import thing\n\ndef f():\n    import fraudnet.lazy\n")
    (pkg / "sub" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import fraudnet.a\n"
                                      "thing = 1\n")
    (pkg / "lazy.py").write_text("import fraudnet.a\n")
    graph = import_graph(pkg)
    assert graph["fraudnet.a"] == {"fraudnet.sub.b"} and graph["fraudnet.sub.b"] == {"fraudnet.sub.c"}
    assert find_cycles(graph) == [["fraudnet.a", "fraudnet.sub.b", "fraudnet.sub.c"]]
    (pkg / "sub" / "c.py").write_text("thing = 1\n")
    assert find_cycles(import_graph(pkg)) == []


def test_fraudnet_has_no_import_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 50 and graph["fraudnet.api.app"], "the import graph was not read"
    cycles = find_cycles(graph)
    if cycles:
        pytest.fail("import cycles in fraudnet/ (module-level imports):\n" + "\n".join(
            " ↔ ".join(c) for c in cycles))
