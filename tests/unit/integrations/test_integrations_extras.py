"""The integrations are optional extras: the core never imports them, and importing one
without its framework says which extra to install."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys

import pytest

from mrv_ml.errors import EXIT_CONFIG, MissingExtraError
from mrv_ml.integrations import FitRun, plain_metrics, plain_number

INTEGRATIONS = [
    ("mrv_ml.integrations.lightning", ["lightning", "lightning.pytorch"], "lightning"),
    ("mrv_ml.integrations.huggingface", ["transformers"], "huggingface"),
    ("mrv_ml.integrations.keras", ["keras"], "keras"),
    ("mrv_ml.integrations.distributed", ["torch"], "torch"),
]


@pytest.mark.parametrize(("module", "blocked", "extra"), INTEGRATIONS)
def test_missing_framework_names_the_extra(monkeypatch: pytest.MonkeyPatch, module: str,
                                           blocked: list[str], extra: str) -> None:
    for name in blocked:
        monkeypatch.setitem(sys.modules, name, None)  # makes `import name` fail
    monkeypatch.delitem(sys.modules, module, raising=False)
    if extra == "keras":  # keras is found on disk; pretend it is not installed at all
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(MissingExtraError) as info:
        importlib.import_module(module)
    assert f"mrv-ml[{extra}]" in str(info.value)
    assert info.value.exit_code == EXIT_CONFIG
    assert "\n" not in str(info.value)


def test_keras_without_a_usable_backend_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keras is installed but defaults to TensorFlow, which is not: say KERAS_BACKEND."""
    result = subprocess.run(
        [sys.executable, "-c", "import mrv_ml.integrations.keras"],
        env={"PATH": "/usr/bin:/bin", "KERAS_BACKEND": "tensorflow", "HOME": "/tmp"},
        capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "MissingExtraError" in result.stderr and "KERAS_BACKEND=torch" in result.stderr


def test_core_imports_no_framework() -> None:
    code = ("import sys, mrv_ml, mrv_ml.cli, mrv_ml.reporting.one_record, mrv_ml.integrations\n"
            "heavy = [m for m in ('lightning', 'transformers', 'keras', 'tensorflow')"
            " if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.torch
def test_plain_metrics_keeps_finite_numbers_only() -> None:
    import torch

    metrics = {"loss": torch.tensor(0.25), "acc": 0.5, "steps": 3, "nan": float("nan"),
               "inf": torch.tensor(float("inf")), "name": "x", "flag": True,
               "vector": torch.tensor([1.0, 2.0])}
    assert plain_metrics(metrics) == {"loss": 0.25, "acc": 0.5, "steps": 3}
    assert plain_number(None) is None


def test_fit_run_finish_without_begin_is_harmless() -> None:
    run = FitRun("x", "Test", {})
    assert run.finish({"epochs": 1}) is None
    assert not run.active and run.trackers == []
