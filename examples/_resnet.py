"""ResNet-18 and CIFAR-10 for the examples, in plain ``torch.nn`` and the standard library.

Why no torchvision: PyPI's torchvision wheel does not import beside the torch 2.13.0 CPU
build this project pins, and the torch + torchvision pair that does install weighs about
5.5 GB. ResNet-18 is a few dozen lines of ``torch.nn`` and CIFAR-10's "python version" is
six pickles, so the example needs neither the extra download nor a second torch.

The model is the CIFAR variant of ResNet-18 (He et al. 2016, as used by most CIFAR-10
baselines): a 3x3 stem with stride 1 and no max-pool, since 32x32 images would lose most of
their pixels to ImageNet's 7x7/2 stem and pool.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CIFAR10_CLASSES = 10
CIFAR10_SHAPE = (3, 32, 32)
# Per-channel mean and standard deviation of the CIFAR-10 training set (0..1 scale).
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
EXTRACTED_DIR = "cifar-10-batches-py"
DOWNLOAD_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"


class DatasetMissingError(Exception):
    """CIFAR-10 is not where we looked; the message says where to put it."""


# --- model -------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (projection when the shape changes)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, blocks_per_stage: tuple[int, int, int, int],
                 num_classes: int = CIFAR10_CLASSES) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        stages: list[nn.Module] = []
        in_planes = 64
        for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), blocks_per_stage, strict=True)):
            layers: list[nn.Module] = []
            for j in range(blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(BasicBlock(in_planes, planes, stride))
                in_planes = planes
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


def resnet18(num_classes: int = CIFAR10_CLASSES) -> ResNet:
    """ResNet-18, CIFAR variant: 11,173,962 parameters for 10 classes."""
    return ResNet((2, 2, 2, 2), num_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- CIFAR-10 ----------------------------------------------------------------------------

# CIFAR-10's pickles hold a dict of bytes, lists and numpy arrays; nothing else may be
# loaded, since an arbitrary pickle can run code on load.
_RECONSTRUCT = np.ndarray((0,)).__reduce__()[0]  # numpy's array rebuilder, whatever its module
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): __import__("codecs").encode,
}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name} from a CIFAR-10 batch file") from None


def _load_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch file → (images uint8 [N, 3, 32, 32], labels int64 [N])."""
    try:
        batch = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
        images = data.reshape(-1, *CIFAR10_SHAPE)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as e:
        raise DatasetMissingError(f"{name} is not a CIFAR-10 python batch: {e}") from e
    if len(images) != len(labels):
        raise DatasetMissingError(f"{name}: {len(images)} images but {len(labels)} labels")
    return images, labels


def _read_batches(data_dir: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """Raw batch files from the extracted directory, or else from the downloaded archive."""
    for folder in (data_dir / EXTRACTED_DIR, data_dir):
        if all((folder / n).is_file() for n in names):
            return {n: (folder / n).read_bytes() for n in names}
    archive = data_dir / ARCHIVE_NAME
    if archive.is_file():
        try:
            with tarfile.open(archive, "r:gz") as tar:
                found: dict[str, bytes] = {}
                for member in tar.getmembers():
                    base = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and base in names:
                        handle = tar.extractfile(member)
                        if handle is not None:
                            found[base] = handle.read()
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DatasetMissingError(f"cannot read {archive}: {e}") from e
        missing = [n for n in names if n not in found]
        if missing:
            raise DatasetMissingError(f"{archive} lacks {', '.join(missing)}")
        return found
    raise DatasetMissingError(
        f"CIFAR-10 not found in {data_dir}: put {ARCHIVE_NAME} (from {DOWNLOAD_URL}) there, "
        f"or its extracted {EXTRACTED_DIR}/ folder; or pass --synthetic")


def load_cifar10(data_dir: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The training (50,000) or test (10,000) split as uint8 images and int64 labels."""
    names = TRAIN_BATCHES if train else (TEST_BATCH,)
    raw = _read_batches(Path(data_dir), names)
    parts = [_load_batch(raw[n], n) for n in names]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return torch.from_numpy(images), torch.from_numpy(labels)


def synthetic_cifar10(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random uint8 images and labels with CIFAR-10's shapes, for runs without the data set."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, *CIFAR10_SHAPE), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, CIFAR10_CLASSES, (n,), dtype=torch.int64, generator=gen)
    return images, labels


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 3, 32, 32] → float, scaled to 0..1 and standardized per channel."""
    mean = torch.tensor(CIFAR10_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def augment(images: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """The standard CIFAR augmentation: random 32x32 crop of a 4-pixel zero-padded image,
    then a horizontal flip with probability 1/2. Works on a whole batch at once."""
    n = images.shape[0]
    padded = F.pad(images, (4, 4, 4, 4))
    dx = torch.randint(0, 9, (n,), generator=gen).tolist()
    dy = torch.randint(0, 9, (n,), generator=gen).tolist()
    flips = (torch.rand(n, generator=gen) < 0.5).tolist()
    out = torch.empty_like(images)
    for i in range(n):
        crop = padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        out[i] = crop.flip(-1) if flips[i] else crop
    return out


def batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int, *, shuffle: bool,
            gen: torch.Generator | None = None,
            limit: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches over in-memory tensors (CIFAR-10 fits in 150 MB; no DataLoader needed)."""
    order = torch.randperm(len(images), generator=gen) if shuffle else torch.arange(len(images))
    for count, start in enumerate(range(0, len(images), batch_size)):
        if limit is not None and count >= limit:
            return
        idx = order[start:start + batch_size]
        yield images[idx], labels[idx]
