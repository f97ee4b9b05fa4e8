"""The import graph of the `mrv_ml` package: no cycles, and layers only ever import down.

Every module under src/mrv_ml is parsed (not imported). An edge A -> B is any import of B in
A, at module level, inside a function or under `if TYPE_CHECKING:` (a type-only import is
still a dependency a reader must follow): `import mrv_ml.b`, `from mrv_ml.b import x`,
`from mrv_ml import b` (b a submodule), relative imports resolved.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import REPO_ROOT

SRC = REPO_ROOT / "src"

#: The layers of src/mrv_ml, lowest first: the data flow of the product (measure a run,
#: make its record, store it, anchor it, verify it, report it), then the fronts that drive
#: it. A module may import its own layer or lower ones, never a higher one; nothing inside
#: imports the package ``__init__`` (the public face, the very top).
LAYERS = [
    {"_version", "errors", "types", "units", "extras"},  # the base: no mrv_ml imports
    {"config"},
    {"networks"},  # the known chains: what a proof or a setting may name
    {"record"},  # schema, fingerprint, proof, Merkle, trust level
    {"measure"},  # energy and power of a run (CodeCarbon, NVML)
    {"storage"},  # the record store on disk
    {"chain"},  # one EVM connection, the contract, keys, the embedded chain
    {"anchoring"},  # the fingerprint onto a chain: single, batch, through a registry
    {"verification"},  # evidence read, verdict decided
    {"reporting"},  # reports, charts, model cards, bundles
    {"importers"},  # records from CodeCarbon's files
    {"run"},  # the tracker that wraps a training run
    {"integrations"},  # Keras, Lightning, Hugging Face, torch.distributed
    {"serve"},  # the local dashboard server
    {"registry_service"},  # the operator's registry service
    {"cli"},
]

Edges = dict[str, dict[str, list[str]]]  # source -> target -> ["file:line", ...]


def _modules(src: Path, package: str) -> dict[str, Path]:
    modules = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Import statements anywhere in the tree, `if TYPE_CHECKING:` bodies included."""
    return [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]


def import_graph(src: Path, package: str) -> Edges:
    modules = _modules(src, package)
    edges: Edges = defaultdict(lambda: defaultdict(list))
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _imports(tree):
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
                if attributes:
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


def _layer(module: str) -> int:
    """The layer of ``mrv_ml.<top>...``: its first name under the package."""
    top = module.split(".")[1]
    for rank, layer in enumerate(LAYERS):
        if top in layer:
            return rank
    raise AssertionError(f"{module}: its package {top!r} is in no layer of LAYERS")


def test_every_import_runs_down_the_layers() -> None:
    edges = import_graph(SRC, "mrv_ml")
    upward = [f"{source} -> {target}  ({', '.join(places)})"
              for source, targets in sorted(edges.items()) if source != "mrv_ml"
              for target, places in sorted(targets.items())
              if target == "mrv_ml" or _layer(target) > _layer(source)]
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def test_every_module_has_a_layer() -> None:
    modules = [m for m in _modules(SRC, "mrv_ml") if m != "mrv_ml"]
    assert len(modules) > 50
    assert all(_layer(m) >= 0 for m in modules)


def test_the_layer_check_catches_an_upward_import(tmp_path: Path) -> None:
    pkg = tmp_path / "mrv_ml"
    (pkg / "record").mkdir(parents=True)
    (pkg / "cli").mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "record" / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "cli" / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "cli" / "main.py").write_text("from mrv_ml.record import schema\n",
                                         encoding="utf-8")
    (pkg / "record" / "schema.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from mrv_ml.cli import main\n",
        encoding="utf-8")
    edges = import_graph(tmp_path, "mrv_ml")
    assert edges["mrv_ml.record.schema"]["mrv_ml.cli.main"] == ["mrv_ml/record/schema.py:3"]
    assert _layer("mrv_ml.record.schema") < _layer("mrv_ml.cli.main")
    assert _cycles(edges) == [["mrv_ml.cli.main", "mrv_ml.record.schema"]]


def test_the_graph_follows_the_documented_rules(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "__version__ = '1'\nfrom pkg.a import A\n",
        "a.py": "from pkg import sub\nA = 1\n"
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
        "pkg.a": ["pkg.b", "pkg.sub"],  # a submodule taken from the package; function-level
        "pkg.b": ["pkg.c", "pkg.sub.d"],  # type-only imports count too
        "pkg.c": ["pkg"],  # anything else taken from the package counts
        "pkg.sub": ["pkg.sub.d"],
        "pkg.sub.d": ["pkg.a"],
    }
    assert edges["pkg.a"]["pkg.b"] == ["pkg/a.py:4"]
    assert _cycles(edges) == [["pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.sub", "pkg.sub.d"]]
    assert "pkg.sub.d -> pkg.a  (pkg/sub/d.py:1)" in _describe(edges, _cycles(edges)[0])
