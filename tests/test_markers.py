"""Optional dependencies skip cleanly: a marked test is skipped, with the extra to install,
where its framework cannot be imported; and every test that imports one carries its marker."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BLOCK_ENV, OPTIONAL_DEPENDENCIES, REPO_ROOT

TESTS = REPO_ROOT / "tests"

# top-level module a test imports -> the marker it must carry
NEEDS_MARKER = {
    "torch": "torch",
    "torch.distributed": "distributed",
    "lightning": "lightning",
    "transformers": "huggingface",
    "accelerate": "huggingface",
    "keras": "keras",
    "mrv_ml.integrations.lightning": "lightning",
    "mrv_ml.integrations.huggingface": "huggingface",
    "mrv_ml.integrations.keras": "keras",
    "mrv_ml.integrations.distributed": "distributed",
    "huggingface_hub": "hub",
    "mlflow": "mlflow",
    "wandb": "wandb",
    "mrv_ml.run.log_to.mlflow": "mlflow",
    "mrv_ml.run.log_to.wandb": "wandb",
    "in_toto_attestation": "attestation",
    "sigstore_models": "attestation",
}


def test_every_optional_marker_is_registered(pytestconfig: pytest.Config) -> None:
    registered = {line.split(":")[0].strip() for line in pytestconfig.getini("markers")}
    assert set(OPTIONAL_DEPENDENCIES) <= registered
    assert set(NEEDS_MARKER.values()) <= set(OPTIONAL_DEPENDENCIES)


def _marker_names(node: ast.expr) -> set[str]:
    """`pytest.mark.X` (called or not) anywhere in an expression: {X, ...}."""
    return {n.attr for n in ast.walk(node)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Attribute)
            and n.value.attr == "mark"}


def _required(node: ast.AST) -> set[str]:
    """Markers needed by the imports directly in this node's body (not nested functions)."""
    needed: set[str] = set()
    stack = list(ast.iter_child_nodes(node))
    while stack:
        child = stack.pop()
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        names: list[str] = []
        if isinstance(child, ast.Import):
            names = [a.name for a in child.names]
        elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
            names = [child.module] + [f"{child.module}.{a.name}" for a in child.names]
        for name in names:
            for prefix, marker in NEEDS_MARKER.items():
                if name == prefix or name.startswith(prefix + "."):
                    needed.add(marker)
        stack.extend(ast.iter_child_nodes(child))
    return needed


def _unmarked_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module_marks: set[str] = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "pytestmark" for t in stmt.targets):
            module_marks |= _marker_names(stmt.value)
    problems = [f"{path.name}: module-level import needs pytestmark {m!r}"
                for m in sorted(_required(tree) - module_marks)]
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
            marks = module_marks.union(*(_marker_names(d) for d in node.decorator_list))
            problems += [f"{path.name}::{node.name}: imports need @pytest.mark.{m}"
                         for m in sorted(_required(node) - marks)]
    return problems


def test_tests_that_import_an_optional_framework_carry_its_marker() -> None:
    problems = [p for path in sorted(TESTS.glob("test_*.py")) for p in _unmarked_imports(path)]
    assert problems == []


def test_the_marker_check_sees_unmarked_imports(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text("import pytest\nimport keras\n\n"
                      "@pytest.mark.torch\ndef test_a():\n    import torch\n\n"
                      "def test_b():\n    from mrv_ml.integrations.distributed import x\n",
                      encoding="utf-8")
    assert _unmarked_imports(sample) == [
        "test_sample.py: module-level import needs pytestmark 'keras'",
        "test_sample.py::test_b: imports need @pytest.mark.distributed"]


def test_blocked_framework_means_skipped_not_failed() -> None:
    """With torch hidden, a function-marked test and two modules importing torch at module
    level are reported as skipped, with the extra to install as the reason."""
    targets = ["tests/unit/integrations/test_integrations_extras.py::test_plain_metrics_keeps_finite_numbers_only",
               "tests/unit/integrations/test_integrations_lightning.py", "tests/unit/integrations/test_distributed.py"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *targets],
        cwd=REPO_ROOT, env={**os.environ, BLOCK_ENV: "torch"}, capture_output=True, text=True,
        timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "3 skipped" in output and "failed" not in output and "error" not in output, output
    assert "needs torch (pip install 'mrv-ml[torch]')" in output, output
