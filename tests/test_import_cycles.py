"""No import cycles inside the `mrv_ml` package.

Every module under src/mrv_ml is parsed (not imported). An edge A -> B is any import of B in
A, at module level or inside a function: `import mrv_ml.b`, `from mrv_ml.b import x`,
`from mrv_ml import b` (b a submodule), relative imports resolved. Imports under
`if TYPE_CHECKING:` never run and do not count; neither does `from mrv_ml import __version__`
(the package __init__ re-exports the library, but only its version is taken from it).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import REPO_ROOT

SRC = REPO_ROOT / "src"
VERSION_ONLY = {"__version__"}

Edges = dict[str, dict[str, list[str]]]  # source -> target -> ["file:line", ...]


def _modules(src: Path, package: str) -> dict[str, Path]:
    modules = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Import statements anywhere in the tree, except in `if TYPE_CHECKING:` bodies."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)  # the `else:` branch runs
            continue
        stack.extend(ast.iter_child_nodes(node))
    return found


def import_graph(src: Path, package: str) -> Edges:
    modules = _modules(src, package)
    edges: Edges = defaultdict(lambda: defaultdict(list))
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _runtime_imports(tree):
            where = f"{path.relative_to(src)}:{node.lineno}"
            targets: set[str] = set()
            if isinstance(node, ast.Import):
                targets = {a.name for a in node.names}
            else:
                if node.level:
                    base_parts = name.split(".") if is_package else name.split(".")[:-1]
                    base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                    base = ".".join(base_parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                names = {a.name for a in node.names}
                submodules = {f"{base}.{n}" for n in names if f"{base}.{n}" in modules}
                targets = set(submodules)
                attributes = {n for n in names if f"{base}.{n}" not in modules}
                if attributes and not (base == package and attributes <= VERSION_ONLY):
                    targets.add(base)
            for target in targets:
                if target in modules and target != name:
                    edges[name][target].append(where)
    return edges


def _cycles(edges: Edges) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, {})):
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
                components.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(components)


def _describe(edges: Edges, component: list[str]) -> str:
    inside = set(component)
    lines = [f"cycle among {', '.join(component)}:"]
    for source in component:
        for target in sorted(set(edges.get(source, {})) & inside):
            places = sorted(edges[source][target], key=lambda p: int(p.rsplit(":", 1)[1]))
            lines.append(f"  {source} -> {target}  ({', '.join(places)})")
    return "\n".join(lines)


def test_no_import_cycles_in_mrv_ml() -> None:
    edges = import_graph(SRC, "mrv_ml")
    assert "mrv_ml.cli" in edges  # the walk found the package
    cycles = [_describe(edges, c) for c in _cycles(edges)]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_graph_follows_the_documented_rules(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "__version__ = '1'\nfrom pkg.a import A\n",
        "a.py": "from pkg import __version__\nA = 1\n"
                "def f():\n    from . import b\n",
        "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n"
                "else:\n    import pkg.sub.d\n",
        "c.py": "from pkg import A\n",
        "sub/__init__.py": "from .d import D\n",
        "sub/d.py": "from ..a import A\nD = 1\n",
    }
    for rel, text in files.items():
        (pkg / rel).write_text(text, encoding="utf-8")
    edges = import_graph(tmp_path, "pkg")
    assert {s: sorted(t) for s, t in edges.items()} == {
        "pkg": ["pkg.a"],
        "pkg.a": ["pkg.b"],  # function-level; `__version__` from pkg ignored
        "pkg.b": ["pkg.sub.d"],  # TYPE_CHECKING ignored, its else-branch counted
        "pkg.c": ["pkg"],  # anything else taken from the package counts
        "pkg.sub": ["pkg.sub.d"],
        "pkg.sub.d": ["pkg.a"],
    }
    assert edges["pkg.a"]["pkg.b"] == ["pkg/a.py:4"]
    assert _cycles(edges) == [["pkg.a", "pkg.b", "pkg.sub.d"]]
    assert "pkg.sub.d -> pkg.a  (pkg/sub/d.py:1)" in _describe(edges, _cycles(edges)[0])
