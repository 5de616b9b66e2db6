"""Time parse_log on a 100,000-line log and parse_notebook on a 2,000-run notebook.

Both inputs are synthetic, written with speedrun.notebook.logformat so they are exactly
what the trainer prints, plus the noise a terminal copy adds.

    .venv/bin/python benchmarks/bench_parse.py [--log-lines N] [--runs N]
"""

from __future__ import annotations

import argparse
import random
import time

from speedrun.notebook.logformat import epoch_line, footer_lines, header_lines
from speedrun.notebook import parse_log, parse_notebook

EPOCHS_PER_RUN = 30


def run_log_lines(rng: random.Random, epochs: int = EPOCHS_PER_RUN) -> list[str]:
    params = {"lr": round(rng.uniform(0.01, 0.1), 3), "batch_size": rng.choice([64, 128, 256]), "epochs": epochs, "cosine": True}
    lines = ["$ python main.py"]
    lines += header_lines("cuda", 11173962, params, rng.uniform(1, 3), amp=True, seed=rng.randrange(1000))
    elapsed, acc = 0.0, 30.0
    for epoch in range(1, epochs + 1):
        duration = rng.uniform(40, 45)
        elapsed += duration
        acc = min(99.0, acc + rng.uniform(0, 3))
        if epoch % 10 == 0:
            lines.append("100%|██████████| 782/782 [00:42<00:00, 18.4it/s]")
        lines.append(epoch_line(epoch, epochs, rng.uniform(0.1, 2), acc, duration, elapsed))
    lines += footer_lines(elapsed, acc)
    return lines


def synthetic_log(target_lines: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    lines: list[str] = []
    while len(lines) < target_lines:
        lines += run_log_lines(rng)
    return "\n".join(lines[:target_lines]) + "\n"


def synthetic_notebook(runs: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    parts = ["# Experiment Results\n\nSynthetic notebook for timing.\n"]
    for number in range(1, runs + 1):
        log = "\n".join(run_log_lines(rng, epochs=10))
        parts.append(
            f"""## Run {number}: Batch size sweep {number} (Google Colab, T4 GPU)
- **Hypothesis**: Smaller batches give more updates per epoch and might converge faster in wall time, which a
terminal copy wraps.
- **Description**: Same as Run {number - 1} with another batch size.
- **Hardware**: Google Colab (Python 3 Google Compute Engine backend), T4 GPU.
- **Configuration**:
  - Model: ResNet-9 (11,173,962 parameters)
  - Optimizer: SGD(lr=0.02, momentum=0.9)
  - BATCH_SIZE=64 (128/2)
  - Augmentation: RandomCrop(32, padding=4), RandomHorizontalFlip()

```
{log}
```

**Analysis**:
- **Result**: a line of analysis.
- **Another**: more text.

**Recommendation**: keep going.

---
"""
        )
    return "\n".join(parts)


def timed(label: str, func, text: str) -> float:
    lines = text.count("\n") + 1
    start = time.perf_counter()
    result = func(text)
    seconds = time.perf_counter() - start
    runs = len(result.runs) if hasattr(result, "runs") else len(result)
    print(f"{label}: {lines:,} lines, {runs:,} runs in {seconds:.3f} s ({lines / seconds:,.0f} lines/s)")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log-lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2_000)
    args = parser.parse_args()
    log_text = synthetic_log(args.log_lines)
    notebook_text = synthetic_notebook(args.runs)
    total = timed("parse_log", parse_log, log_text) + timed("parse_notebook", parse_notebook, notebook_text)
    print(f"total: {total:.3f} s")


if __name__ == "__main__":
    main()
