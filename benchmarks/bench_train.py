"""Training throughput: our pipeline against the user's original one, and the cost of recording.

    python benchmarks/bench_train.py [--batches 30] [--batch-size 64] [--data-dir ./data]

Measured side by side in one run, on the same machine and the same model
(the default ResNet-18, 11,173,962 parameters):

- baseline: the user's main.py pipeline: PIL images through torchvision
  transforms (RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor,
  Normalize) in a DataLoader, fp32, `loss.item()` every batch;
- ours: uint8 data on the device, batched augmentation, channels_last,
  autocast as `speedrun train` resolves it (bf16 on CPUs with native bf16),
  plus ours with --no-amp to show what the precision alone is worth;
- recording: time in Store.add_epoch per epoch (a temporary SQLite file),
  as a share of one full 50,000-image epoch at our measured speed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from speedrun.tracking.records import EpochRecord, RunRecord
from speedrun.training.augment import MEAN, STD, Preprocess
from speedrun.training.config import TrainConfig
from speedrun.training.data import Cifar10, load_cifar10, locate_cifar10, read_cifar10
from speedrun.training.loop import autocast_for, make_optimizer, setup_torch, train_epoch
from speedrun.training.nets import build_model

FULL_EPOCH = 50_000


class PickleCIFAR10(torch.utils.data.Dataset):
    """torchvision's CIFAR10.__getitem__, over the pickles it refuses (MD5): HWC uint8 -> PIL -> transform."""

    def __init__(self, images_nchw: np.ndarray, labels: np.ndarray, transform):
        self.data = np.ascontiguousarray(images_nchw.transpose(0, 2, 3, 1))
        self.targets = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        img, target = Image.fromarray(self.data[index]), self.targets[index]
        return self.transform(img), target


def baseline_images_per_s(train_x, train_y, batch_size: int, batches: int, warmup: int, workers: int) -> float:
    """The user's main.py: transforms on PIL images in a DataLoader, fp32, contiguous NCHW."""
    import torchvision.transforms as T

    transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize(MEAN, STD)])
    dataset = PickleCIFAR10(train_x, train_y, transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0)
    model = build_model("resnet18")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.04, momentum=0.9)
    criterion = torch.nn.CrossEntropyLoss()
    model.train()
    running_loss, seen, start = 0.0, 0, None
    for step, (inputs, labels) in enumerate(loader):
        if step == warmup:
            start = time.perf_counter()
        if step == warmup + batches:
            break
        optimizer.zero_grad()
        loss = criterion(model(inputs), labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
        if start is not None:
            seen += len(labels)
    return seen / (time.perf_counter() - start)


def ours_images_per_s(config: TrainConfig, data: Cifar10, batches: int, warmup: int) -> float:
    """`speedrun train`'s own epoch function, timed over `batches` batches after `warmup` untimed ones."""
    device = setup_torch(config)
    model = build_model(config.model).to(device, memory_format=torch.channels_last)
    optimizer = make_optimizer(config, model.parameters())
    prep, autocast = Preprocess(config.augment, device), autocast_for(config, device)

    def images(n: int) -> Cifar10:
        return Cifar10(data.train_images[:n], data.train_labels[:n], data.test_images, data.test_labels)

    bs = config.batch_size
    train_epoch(model, optimizer, None, images(warmup * bs), prep, bs, autocast, lambda n: None)
    start = time.perf_counter()
    train_epoch(model, optimizer, None, images(batches * bs), prep, bs, autocast, lambda n: None)
    return batches * bs / (time.perf_counter() - start)


def recording_seconds(epochs: int = 20) -> tuple[list[float], list[float]] | None:
    """Seconds per Store.add_epoch and per Store.heartbeat call on a temporary SQLite file; None without a Store."""
    try:
        from speedrun.tracking.store import Store
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(str(Path(tmp) / "bench.db"), migrate=True, notify=lambda msg: None)
        run_id = store.begin_run(RunRecord(source="train", status="running", title="bench",
                                           params=TrainConfig().to_params()))
        add, beat = [], []
        for epoch in range(1, epochs + 1):
            row = EpochRecord(epoch, train_loss=1.0 / epoch, train_acc=50.0, val_loss=1.0, val_acc=60.0 + epoch,
                              duration_s=40.0, elapsed_s=40.0 * epoch, lr=0.04, images_per_s=1200.0)
            start = time.perf_counter()
            store.add_epoch(run_id, row)
            add.append(time.perf_counter() - start)
            start = time.perf_counter()
            store.heartbeat(run_id)
            beat.append(time.perf_counter() - start)
        store.finish_run(run_id, "completed", train_time_s=800.0)
    return add, beat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=30, help="timed batches per pipeline")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches first")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data-dir", default="./data")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the baseline")
    args = parser.parse_args()

    config = TrainConfig(batch_size=args.batch_size, data_dir=args.data_dir, seed=0).resolve()
    n = (args.batches + args.warmup) * args.batch_size
    train_x, train_y, _, _ = read_cifar10(locate_cifar10(args.data_dir, download=False))
    data = load_cifar10(args.data_dir, config.device, subset=n, download=False)
    print(f"device {config.device}, {config.threads} threads, batch {args.batch_size}, "
          f"{args.batches} timed batches after {args.warmup} warm-up; ResNet-18", flush=True)

    def show(label: str, rate: float, ratio: str = "") -> None:
        print(f"{label:<58}{rate:8.1f} img/s{ratio}", flush=True)

    setup_torch(replace(config, amp=False))
    base = baseline_images_per_s(train_x[:n], train_y[:n], args.batch_size, args.batches, args.warmup, args.workers)
    show(f"baseline (PIL transforms, DataLoader workers={args.workers}, fp32)", base)
    fp32 = ours_images_per_s(replace(config, amp=False, amp_dtype=None), data, args.batches, args.warmup)
    show("ours, --no-amp (fp32, channels_last, on-device aug)", fp32, f"  ({fp32 / base:.2f}x)")
    ours = ours_images_per_s(config, data, args.batches, args.warmup)
    show(f"ours, default ({f'amp {config.amp_dtype}' if config.amp else 'fp32'})", ours, f"  ({ours / base:.2f}x)")
    print(f"speed-up of the default pipeline over the baseline: {ours / base:.2f}x (target >= 1.4x)")

    timings = recording_seconds()
    if timings is None:
        print("recording: speedrun.tracking.store is not importable here, so the cost of recording was not measured")
        return
    add, beat = timings
    epoch_s = FULL_EPOCH / ours
    per_epoch = statistics.mean(add) + statistics.mean(beat) * epoch_s / 10  # a heartbeat every 10 s
    print(f"recording: add_epoch {statistics.mean(add) * 1e3:.2f} ms mean (max {max(add) * 1e3:.2f} ms), "
          f"heartbeat {statistics.mean(beat) * 1e3:.2f} ms; per {epoch_s:.0f} s epoch: {per_epoch * 1e3:.1f} ms "
          f"= {100 * per_epoch / epoch_s:.4f}% of epoch time (target < 0.5%)")


if __name__ == "__main__":
    sys.exit(main())
