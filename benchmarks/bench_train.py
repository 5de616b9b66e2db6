"""Training throughput: our pipeline against the user's original one, and the cost of recording.

    python benchmarks/bench_train.py [--batches 30] [--warmup 3] [--repeats 3] [--batch-size 64]
                                     [--device auto] [--compile] [--data-dir ./data]

Measured side by side in one process, on the same device and the same model
(the default ResNet-18, 11,173,962 parameters), alternating baseline and
ours `--repeats` times so drift hits both alike:

- baseline: the user's main.py pipeline: PIL images through torchvision
  transforms (RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor,
  Normalize) in a DataLoader, each batch copied to the device, fp32,
  `loss.item()` every batch;
- ours: exactly what `speedrun train` runs (loop.build_parts and
  loop.train_epoch): uint8 data on the device, batched augmentation,
  channels_last, autocast as `speedrun train` resolves it (bf16 on CPUs with
  native bf16, fp16 with a GradScaler and a fused optimizer on CUDA), and with
  --compile its compiled model and warm-up; plus ours with --no-amp to show
  what the precision alone is worth;
- both warmed the same way: `--warmup` untimed batches before each timed
  `--batches` (and for --compile, first the warm-up `speedrun train` runs);
  the device is synchronized before each clock read;
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

from speedrun.domain.records import EpochRecord, RunRecord
from speedrun.training.augment import MEAN, STD
from speedrun.training.config import TrainConfig
from speedrun.training.data import Cifar10, load_cifar10, locate_cifar10, read_cifar10
from speedrun.training.device import fused, grad_scaler_for, needs_warm_up, setup_torch, synchronize
from speedrun.training.loop import build_parts, train_epoch, warm_up
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


def baseline_loader(train_x, train_y, batch_size: int, workers: int, device: torch.device):
    import torchvision.transforms as T

    transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize(MEAN, STD)])
    return torch.utils.data.DataLoader(PickleCIFAR10(train_x, train_y, transform), batch_size=batch_size,
                                       shuffle=True, num_workers=workers, persistent_workers=workers > 0,
                                       pin_memory=device.type == "cuda")


def baseline_images_per_s(loader, device: torch.device, batches: int, warmup: int) -> float:
    """The user's main.py on `device`: a fresh model, transforms on PIL images in a DataLoader, fp32, NCHW."""
    model = build_model("resnet18").to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.04, momentum=0.9)
    criterion = torch.nn.CrossEntropyLoss()
    model.train()
    running_loss, seen, start = 0.0, 0, 0.0
    for step, (inputs, labels) in enumerate(loader):
        if step == warmup:
            synchronize(device)
            start = time.perf_counter()
        if step == warmup + batches:
            break
        inputs, labels = inputs.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = criterion(model(inputs), labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
        if step >= warmup:
            seen += len(labels)
    synchronize(device)
    return seen / (time.perf_counter() - start)


def ours_images_per_s(config: TrainConfig, data: Cifar10, batches: int, warmup: int) -> float:
    """`speedrun train`'s own parts and epoch function, timed over `batches` batches after `warmup` untimed ones."""
    device = setup_torch(config)
    parts = build_parts(config, device)

    def images(n: int) -> Cifar10:
        return Cifar10(data.train_images[:n], data.train_labels[:n], data.test_images, data.test_labels)

    bs = config.batch_size
    if needs_warm_up(config, device):
        warm_up(parts, images(batches * bs), bs, device)
    train_epoch(parts, images(warmup * bs), bs, lambda n: None)
    synchronize(device)
    start = time.perf_counter()
    train_epoch(parts, images(batches * bs), bs, lambda n: None)  # ends reading loss and accuracy: synchronized
    return batches * bs / (time.perf_counter() - start)


def spread(rates: list[float]) -> str:
    """"108.8 img/s (min 104.1, max 110.2, n=3)"."""
    mean = statistics.fmean(rates)
    if len(rates) == 1:
        return f"{mean:8.1f} img/s"
    return f"{mean:8.1f} img/s (min {min(rates):.1f}, max {max(rates):.1f}, n={len(rates)})"


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--batches", type=int, default=30, help="timed batches per pipeline and repeat")
    parser.add_argument("--warmup", type=int, default=3, help="untimed batches first, on both sides")
    parser.add_argument("--repeats", type=int, default=3, help="alternating measurements of each pipeline")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto", help="auto, cuda, mps or cpu (both sides run there)")
    parser.add_argument("--compile", action="store_true", help="ours with torch.compile, as `speedrun train --compile`")
    parser.add_argument("--data-dir", default="./data")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the baseline")
    args = parser.parse_args()

    config = TrainConfig(batch_size=args.batch_size, data_dir=args.data_dir, seed=0, device=args.device,
                         compile=args.compile).resolve()
    device = torch.device(config.device)
    n = (args.batches + args.warmup) * args.batch_size
    train_x, train_y, _, _ = read_cifar10(locate_cifar10(args.data_dir, download=False))
    data = load_cifar10(args.data_dir, device, subset=n, download=False)
    print(f"device {config.device}, {config.threads} threads, batch {args.batch_size}, {args.batches} timed batches "
          f"after {args.warmup} untimed, {args.repeats} repeats; ResNet-18", flush=True)

    setup_torch(replace(config, amp=False))
    loader = baseline_loader(train_x[:n], train_y[:n], args.batch_size, args.workers, device)
    fp32_config = replace(config, amp=False, amp_dtype=None)
    base, fp32, ours = [], [], []
    for _ in range(args.repeats):
        base.append(baseline_images_per_s(loader, device, args.batches, args.warmup))
        fp32.append(ours_images_per_s(fp32_config, data, args.batches, args.warmup))
        ours.append(ours_images_per_s(config, data, args.batches, args.warmup))

    def show(label: str, rates: list[float], ratio: str = "") -> None:
        print(f"{label:<62}{spread(rates)}{ratio}", flush=True)

    b = statistics.fmean(base)
    precision = f"amp {config.amp_dtype}" if config.amp else "fp32"
    if grad_scaler_for(config, device) is not None:
        precision += ", GradScaler, fused optimizer" if fused(device) else ", GradScaler"
    compiled_text = ", compiled" if config.compile else ""
    show(f"baseline (PIL transforms, DataLoader workers={args.workers}, fp32)", base)
    show(f"ours, --no-amp (fp32, channels_last, on-device aug{compiled_text})", fp32,
         f"  ({statistics.fmean(fp32) / b:.2f}x)")
    show(f"ours, default ({precision}{compiled_text})", ours, f"  ({statistics.fmean(ours) / b:.2f}x)")
    print(f"speed-up of the default pipeline over the baseline: {statistics.fmean(ours) / b:.2f}x (target >= 1.4x)")

    timings = recording_seconds()
    if timings is None:
        print("recording: speedrun.tracking.store is not importable here, so the cost of recording was not measured")
        return
    add, beat = timings
    epoch_s = FULL_EPOCH / statistics.fmean(ours)
    per_epoch = statistics.mean(add) + statistics.mean(beat) * epoch_s / 10  # a heartbeat every 10 s
    print(f"recording: add_epoch {statistics.mean(add) * 1e3:.2f} ms mean (max {max(add) * 1e3:.2f} ms), "
          f"heartbeat {statistics.mean(beat) * 1e3:.2f} ms; per {epoch_s:.0f} s epoch: {per_epoch * 1e3:.1f} ms "
          f"= {100 * per_epoch / epoch_s:.4f}% of epoch time (target < 0.5%)")


if __name__ == "__main__":
    sys.exit(main())
