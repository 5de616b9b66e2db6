"""airbench94 on the CPU: training throughput against what the machine's matmul can do.

    python benchmarks/bench_airbench_cpu.py [--batch-sizes 256,512,1024] [--steps 6] [--threads N]

Prints, for fp32 and bf16 autocast and each batch size:
- images/s of full training steps of the airbench94 recipe (augmentation of
  the batch, forward, label-smoothed loss, backward, Nesterov SGD step; the
  real optimizer of the recipe, random images so no data is needed);
- the achieved GFLOP/s, counting the network's FLOPs: every conv/linear
  multiply-add is 2 FLOPs, and a training step is taken as 3× the forward
  (forward + two backward matmuls); elementwise work is not counted;
- that as a fraction of the measured peak: the best square torch.matmul
  (1024, 2048, 4096) in the same precision on the same threads.
The first --warmup steps of each setting are not timed (oneDNN primitive creation).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from speedrun.recipes import get_recipe
from speedrun.recipes.airbench94 import build_model, make_optimizers
from speedrun.training.augment import AlternatingFlipTranslate
from speedrun.training.fastloop import Steps


def matmul_gflops(dtype: torch.dtype, sizes=(1024, 2048, 4096), seconds: float = 1.0) -> tuple[float, int]:
    """The best GFLOP/s of square torch.matmul over `sizes` (each timed for about `seconds`), and its size."""
    best = (0.0, 0)
    for n in sizes:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b  # warm-up: oneDNN/MKL kernel selection, page faults
        reps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds or reps < 2:
            a @ b
            reps += 1
        best = max(best, (2 * n**3 * reps / (time.perf_counter() - start) / 1e9, n))
    return best


def forward_flops(model: nn.Module) -> int:
    """FLOPs of one forward pass of one 3×32×32 image: 2 per multiply-add of every conv and linear layer."""
    total = 0

    def count(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += 2 * output.numel() * k
        elif isinstance(module, nn.Linear):
            total += 2 * output.numel() * module.in_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()
        model(torch.zeros(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    return total


def train_rate(batch_size: int, amp: bool, steps: int, warmup: int) -> float:
    """Images per second of full training steps of the recipe at `batch_size`."""
    config = get_recipe("airbench94").configure(batch_size=batch_size, device="cpu", amp=amp, seed=0).resolve()
    model = build_model(config).to(memory_format=torch.channels_last)
    optimizers = make_optimizers(model, config, Steps(per_epoch=100, total=1000))
    n = batch_size * 2
    images = AlternatingFlipTranslate(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8),
                                      dtype=torch.bfloat16 if amp else torch.float32)
    labels = torch.randint(0, 10, (n,))
    model.train()
    start = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        idx = torch.randperm(n)[:batch_size]
        x = images.batch(idx, step)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = model(x)
        loss = F.cross_entropy(out.float(), labels[idx], label_smoothing=0.2, reduction="sum")
        loss.backward()
        for opt in optimizers:
            opt.step()
        model.zero_grad(set_to_none=True)
    return batch_size * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", default="256,512,1024")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per setting")
    parser.add_argument("--threads", type=int, default=None, help="[default: as speedrun train resolves it]")
    parser.add_argument("--precisions", default="fp32,bf16")
    args = parser.parse_args()

    from speedrun.tracking.environment import physical_cores

    threads = args.threads or physical_cores()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    flops_fwd = forward_flops(build_model(get_recipe("airbench94").config))
    flops_train = 3 * flops_fwd
    print(f"torch {torch.__version__}, {threads} threads")
    print(f"airbench94 network: {flops_fwd / 1e6:.1f} MFLOP forward per image, "
          f"{flops_train / 1e6:.1f} MFLOP per trained image (3x forward)")
    peaks = {}
    for name in args.precisions.split(","):
        dtype = torch.bfloat16 if name == "bf16" else torch.float32
        peaks[name], n = matmul_gflops(dtype)
        print(f"peak ({name} torch.matmul, best of 1024/2048/4096, here {n}x{n}): {peaks[name]:.1f} GFLOP/s")
    print(f"{'precision':>9} {'batch':>6} {'images/s':>9} {'GFLOP/s':>8} {'of peak':>8} {'10 epochs':>10}")
    for name in args.precisions.split(","):
        for bs in (int(b) for b in args.batch_sizes.split(",")):
            rate = train_rate(bs, name == "bf16", args.steps, args.warmup)
            gflops = rate * flops_train / 1e9
            minutes = 10 * 50_000 / rate / 60
            print(f"{name:>9} {bs:>6} {rate:>9.1f} {gflops:>8.1f} {gflops / peaks[name]:>8.1%} {minutes:>8.1f} min",
                  flush=True)


if __name__ == "__main__":
    main()
