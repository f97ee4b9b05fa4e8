"""What does wrapping a training loop in MRVTracker cost?

Trains the examples' ResNet-18 on synthetic CIFAR-10-shaped batches for the same number of
steps two ways, in one process, alternating the order across rounds so warm-up and machine
noise hit both sides alike: the bare loop (baseline), and the same loop inside
``MRVTracker`` (CodeCarbon sampling in the background, record written at the end; no chain,
so only the measurement is timed). It prints the loop's wall time ratio tracked / baseline
(the per-step cost users pay) and, apart, the fixed cost of start + stop + writing.

    .venv/bin/python benchmarks/training_overhead.py --steps 20 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from _resnet import augment, normalize, resnet18, synthetic_cifar10  # noqa: E402

from mrv_ml import MRVTracker  # noqa: E402


def train_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps: int,
                images: torch.Tensor, labels: torch.Tensor) -> None:
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(normalize(augment(images))), labels).backward()
        optimizer.step()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = resnet18()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images, labels = synthetic_cifar10(args.batch_size)
    train_steps(model, optimizer, 2, images, labels)  # warm-up: allocator, kernels
    bare: list[float] = []
    loop_tracked: list[float] = []
    whole_tracked: list[float] = []
    with tempfile.TemporaryDirectory() as store:
        for round_no in range(args.rounds):
            order = ("bare", "tracked") if round_no % 2 == 0 else ("tracked", "bare")
            for kind in order:
                if kind == "bare":
                    t0 = time.perf_counter()
                    train_steps(model, optimizer, args.steps, images, labels)
                    bare.append(time.perf_counter() - t0)
                    continue
                t0 = time.perf_counter()
                with MRVTracker(experiment_name="bench", storage_dir=store,
                                blockchain_enabled=False):
                    t1 = time.perf_counter()
                    train_steps(model, optimizer, args.steps, images, labels)
                    loop_tracked.append(time.perf_counter() - t1)
                whole_tracked.append(time.perf_counter() - t0)
    b, lt, wt = (statistics.median(x) for x in (bare, loop_tracked, whole_tracked))
    print(f"ResNet-18, {args.steps} steps of batch {args.batch_size}, {args.rounds} rounds, "
          f"torch threads {torch.get_num_threads()}")
    print(f"  bare loop                 {b:8.3f} s  (median)")
    print(f"  loop inside MRVTracker    {lt:8.3f} s  ratio {lt / b:5.3f} x baseline")
    print(f"  tracker start+stop+write  {wt - lt:8.3f} s  fixed per run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
