"""The examples are runnable documentation: each runs here, in a subprocess, with tiny
settings, against the real tracker, CodeCarbon and the embedded local chain."""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO_ROOT

EXAMPLES = REPO_ROOT / "examples"
TINY = ["--synthetic", "--epochs", "1", "--limit-batches", "2", "--batch-size", "8"]


def _run(script: str, *args: str, data_dir: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MRV_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def _records(data_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(data_dir.glob("MRV-*.json"))
            if not p.name.endswith(".proof.json")]


def _proof(data_dir: Path, mrv_id: str) -> dict[str, Any]:
    return json.loads((data_dir / f"{mrv_id}.proof.json").read_text())


def test_simple_example_anchors_and_verifies(data_dir: Path) -> None:
    result = _run("simple_example.py", "--seconds", "0.3", data_dir=data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    [record] = _records(data_dir)
    assert f"MRV ID:   {record['mrv_id']}" in result.stdout
    assert re.search(r"^hash:     [0-9a-f]{64}$", result.stdout, re.M)
    assert re.search(r"^tx:       0x[0-9a-f]{64}$", result.stdout, re.M)
    assert "verdict:  VALID" in result.stdout
    assert record["outcome"]["status"] == "completed"
    assert _proof(data_dir, record["mrv_id"])["status"] == "anchored"


@pytest.mark.torch
def test_train_resnet_synthetic_anchors_verifies_and_prints_latex(data_dir: Path) -> None:
    result = _run("train_resnet.py", *TINY, data_dir=data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    [record] = _records(data_dir)
    assert record["experiment"]["model_name"] == "ResNet18"
    assert "synthetic" in record["experiment"]["dataset_name"]
    assert record["training"]["epochs"] == 1 and record["training"]["batch_size"] == 8
    details = record["training"]["details"]
    assert details["num_parameters"] == 11_173_962 and details["epochs_completed"] == 1
    assert record["outcome"]["status"] == "completed"
    assert "verdict: VALID" in result.stdout
    latex = result.stdout.split("For the paper (LaTeX):")[1]
    assert "We trained ResNet18 on CIFAR-10 (synthetic stand-in" in latex
    assert f"(MRV ID: {record['mrv_id']})" in latex and "CO$_2$" in latex
    # anchored on the embedded chain: the paper is told so, and gets no loopback link
    assert "anchored only on its author's local chain: not publicly verifiable" in latex
    assert "\\url" not in latex and "127.0.0.1" not in latex


@pytest.mark.torch
def test_train_resnet_crash_leaves_failed_anchored_record(data_dir: Path) -> None:
    result = _run("train_resnet.py", "--synthetic", "--epochs", "3", "--limit-batches", "1",
                  "--batch-size", "4", "--crash-after-epoch", "1", data_dir=data_dir)
    assert result.returncode != 0
    assert "SimulatedCrash: simulated crash after epoch 1" in result.stderr  # it propagated
    [record] = _records(data_dir)
    assert record["outcome"]["status"] == "failed"
    assert record["outcome"]["error_type"] == "SimulatedCrash"
    assert record["training"]["details"]["epochs_completed"] == 1
    assert _proof(data_dir, record["mrv_id"])["status"] == "anchored"


@pytest.mark.torch  # train_resnet.py imports torch first
def test_train_resnet_without_data_says_where_to_put_it(data_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "nodata"
    empty.mkdir()
    result = _run("train_resnet.py", "--data-dir", str(empty), "--epochs", "1", data_dir=data_dir)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert str(empty) in lines[0] and "cifar-10-python.tar.gz" in lines[0]
    assert "--synthetic" in lines[0]
    assert _records(data_dir) == []  # nothing ran, nothing recorded


# --- the CIFAR-10 reader, on files in the real format ------------------------------------


@pytest.fixture
def resnet_module(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import _resnet

    return _resnet


def _batch_bytes(n: int, seed: int) -> bytes:
    import numpy as np

    rng = np.random.default_rng(seed)
    # the layout of the real files: uint8 rows of 3072 (R, G, B planes), labels as a list
    batch = {b"batch_label": b"batch", b"labels": [int(x) for x in rng.integers(0, 10, n)],
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"filenames": [b"f%d.png" % i for i in range(n)]}
    return pickle.dumps(batch, protocol=2)


def _write_archive(path: Path, names: list[str], n: int = 3) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for i, name in enumerate(names):
            data = _batch_bytes(n, i)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.torch
def test_cifar_reader_reads_archive_and_extracted_dir(resnet_module: Any, tmp_path: Path) -> None:
    names = [*resnet_module.TRAIN_BATCHES, resnet_module.TEST_BATCH]
    _write_archive(tmp_path / resnet_module.ARCHIVE_NAME, names)
    images, labels = resnet_module.load_cifar10(tmp_path, train=True)
    assert tuple(images.shape) == (15, 3, 32, 32) and images.dtype.is_floating_point is False
    assert tuple(labels.shape) == (15,)
    extracted = tmp_path / "x" / resnet_module.EXTRACTED_DIR
    extracted.mkdir(parents=True)
    (extracted / "test_batch").write_bytes(_batch_bytes(4, 9))
    test_images, _ = resnet_module.load_cifar10(tmp_path / "x", train=False)
    assert tuple(test_images.shape) == (4, 3, 32, 32)


@pytest.mark.torch
def test_cifar_reader_refuses_code_in_pickles(resnet_module: Any, tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> Any:
            return (os.system, ("echo owned",))

    folder = tmp_path / resnet_module.EXTRACTED_DIR
    folder.mkdir()
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(resnet_module.DatasetMissingError, match="refusing to load"):
        resnet_module.load_cifar10(tmp_path, train=False)


@pytest.mark.torch
def test_cifar_reader_names_missing_batches(resnet_module: Any, tmp_path: Path) -> None:
    _write_archive(tmp_path / resnet_module.ARCHIVE_NAME, ["data_batch_1"])
    with pytest.raises(resnet_module.DatasetMissingError, match="lacks data_batch_2"):
        resnet_module.load_cifar10(tmp_path, train=True)


@pytest.mark.torch
def test_resnet18_shape_and_size(resnet_module: Any) -> None:
    import torch

    model = resnet_module.resnet18()
    assert resnet_module.count_parameters(model) == 11_173_962
    images, _ = resnet_module.synthetic_cifar10(2)
    out = model(resnet_module.normalize(resnet_module.augment(images)))
    assert tuple(out.shape) == (2, 10) and torch.isfinite(out).all()
