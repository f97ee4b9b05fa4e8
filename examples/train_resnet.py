"""Train ResNet-18 on CIFAR-10 under ``MRVTracker``; anchor, verify, and print the sentence
for the paper (the seed's "Example Walkthrough").

    # real data: cifar-10-python.tar.gz (or its extracted cifar-10-batches-py/) in ./data
    python examples/train_resnet.py --data-dir data --epochs 90 --batch-size 128
    # no data set at hand: random tensors of CIFAR-10's shape, said so in the record
    python examples/train_resnet.py --synthetic --epochs 1 --limit-batches 4 --batch-size 32

Uses CUDA when available (``--device auto``). The model and data loader are in ``_resnet.py``
(plain ``torch.nn`` and pickle, without torchvision; that file says why).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from _resnet import (
    DatasetMissingError,
    augment,
    batches,
    count_parameters,
    load_cifar10,
    normalize,
    resnet18,
    synthetic_cifar10,
)
from torch import nn

from mrv_ml import MRVTracker
from mrv_ml.reporting.one_record import DEFAULT_DASHBOARD_URL, citation_latex
from mrv_ml.units import format_co2_kg, format_energy_kwh

SYNTHETIC_DATASET = "CIFAR-10 (synthetic stand-in: random tensors of CIFAR-10's shape)"


class SimulatedCrash(RuntimeError):
    """Raised by --crash-after-epoch, to show that a failed run still gets its record."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="ResNet-18 on CIFAR-10 under MRVTracker.")
    p.add_argument("--data-dir", type=Path, default=Path("data"),
                   help="folder holding cifar-10-python.tar.gz or cifar-10-batches-py/")
    p.add_argument("--synthetic", action="store_true",
                   help="train on random tensors of CIFAR-10's shape instead of the data set")
    p.add_argument("--epochs", type=int, default=90)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--limit-batches", type=int, default=None,
                   help="stop each epoch (and evaluation) after this many batches")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda:0...")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-anchor", action="store_true", help="write the record, skip the chain")
    p.add_argument("--mrv-data-dir", type=Path, default=None,
                   help="record store (default: $MRV_DATA_DIR or ./mrv_data)")
    p.add_argument("--dashboard-url", default=os.environ.get("MRV_DASHBOARD_URL",
                                                             DEFAULT_DASHBOARD_URL),
                   help="dashboard for the verification link in the printed sentence")
    p.add_argument("--crash-after-epoch", type=int, default=None, metavar="N",
                   help="testing aid: raise an error after epoch N (the record says failed)")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "limit_batches"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def pick_device(choice: str) -> torch.device:
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(choice)
    except RuntimeError as e:
        raise SystemExit(f"error: --device {choice!r}: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"error: --device {choice}: CUDA is not available on this machine")
    return device


def load_data(args: argparse.Namespace) -> tuple[tuple[torch.Tensor, torch.Tensor],
                                                 tuple[torch.Tensor, torch.Tensor], str]:
    if args.synthetic:
        # only as many samples as the limited run will touch
        n = 50_000 if args.limit_batches is None else args.limit_batches * args.batch_size
        n_test = 10_000 if args.limit_batches is None else args.limit_batches * args.batch_size
        return (synthetic_cifar10(n, args.seed), synthetic_cifar10(n_test, args.seed + 1),
                SYNTHETIC_DATASET)
    return load_cifar10(args.data_dir, train=True), load_cifar10(args.data_dir, train=False), \
        "CIFAR-10"


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer,
                    train: tuple[torch.Tensor, torch.Tensor], args: argparse.Namespace,
                    device: torch.device, gen: torch.Generator) -> float:
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    total, count = 0.0, 0
    for images, labels in batches(*train, args.batch_size, shuffle=True, gen=gen,
                                  limit=args.limit_batches):
        x = normalize(augment(images, gen).to(device, non_blocking=True))
        y = labels.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        count += len(y)
    return total / max(count, 1)


@torch.no_grad()
def evaluate(model: nn.Module, test: tuple[torch.Tensor, torch.Tensor],
             args: argparse.Namespace, device: torch.device) -> float:
    model.eval()
    correct, count = 0, 0
    for images, labels in batches(*test, args.batch_size * 2, shuffle=False,
                                  limit=args.limit_batches):
        logits = model(normalize(images.to(device)))
        correct += int((logits.argmax(1).cpu() == labels).sum())
        count += len(labels)
    return correct / max(count, 1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = pick_device(args.device)
    try:
        train_set, test_set, dataset_name = load_data(args)
    except DatasetMissingError as e:  # before tracking starts: nothing to record yet
        print(f"error: {e}", file=sys.stderr)
        return 3
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    with MRVTracker(
        experiment_name="resnet18_cifar10_baseline",
        model_name="ResNet18",
        dataset_name=dataset_name,
        epochs=args.epochs,
        batch_size=args.batch_size,
        framework="PyTorch",
        storage_dir=args.mrv_data_dir,
        blockchain_enabled=not args.no_anchor,
        command=["python", "examples/train_resnet.py", *(argv if argv is not None
                                                         else sys.argv[1:])],
    ) as tracker:
        model = resnet18().to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9,
                                    weight_decay=5e-4, nesterov=True)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
        tracker.update_training(device=str(device), num_parameters=count_parameters(model),
                                optimizer="SGD(momentum=0.9, nesterov, weight_decay=5e-4)",
                                lr=args.lr, lr_schedule="cosine",
                                limit_batches=args.limit_batches, seed=args.seed)
        for epoch in range(1, args.epochs + 1):
            started = time.perf_counter()
            loss = train_one_epoch(model, optimizer, train_set, args, device, gen)
            scheduler.step()
            accuracy = evaluate(model, test_set, args, device)
            # facts so far: a crash later still leaves the record with the last good epoch
            tracker.update_training(epochs_completed=epoch, final_train_loss=round(loss, 6),
                                    test_accuracy=round(accuracy, 6))
            print(f"epoch {epoch}/{args.epochs}  loss {loss:.4f}  test acc {accuracy:.4f}  "
                  f"({time.perf_counter() - started:.1f} s)", flush=True)
            if args.crash_after_epoch is not None and epoch >= args.crash_after_epoch:
                raise SimulatedCrash(f"simulated crash after epoch {epoch}")

    record = tracker.record
    energy = record["energy_emissions"]
    print(f"\nMRV ID:  {tracker.mrv_id}\nrecord:  {tracker.record_path}\n"
          f"hash:    {tracker.mrv_hash}\n"
          f"energy:  {format_energy_kwh(energy['energy_kwh'])}   "
          f"emitted: {format_co2_kg(energy['co2_kg'])}")
    network = None
    if args.no_anchor:
        print("anchor:  skipped (--no-anchor)")
    elif tracker.tx_hash is None:
        print(f"anchor:  pending ({tracker.anchor_error}); `mrv anchor` finishes it later")
    else:
        verdict = tracker.verify_on_blockchain()
        network = verdict.network
        print(f"tx:      {tracker.tx_hash}\nverdict: {verdict.status.value} "
              f"({verdict.trust}: {verdict.trust_note})")
        if not verdict:
            return verdict.exit_code
    print("\nFor the paper (LaTeX):\n")
    print(citation_latex(record, proof=tracker.proof, dashboard_url=args.dashboard_url,
                         network=network), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
