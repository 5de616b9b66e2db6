"""`speedrun ui` at scale: 10,000 runs × 10 epochs, served by a real `speedrun ui` process over HTTP.

    python benchmarks/bench_ui.py [--runs 10000] [--epochs 10] [--repeat 15]

Each page is fetched once cold (printed as "first": the compare page then builds the
noise pool the server keeps until the runs change) and then --repeat times; the median
and the spread (min–max) of the time to the full response are printed beside the
target. The server's resident memory (VmRSS) is read after all requests.
The filtered page uses `?where=` when the server knows it (the --where
language), else it is reported as not available.

Targets (issue 30): runs page <= 100 ms, filtered page <= 100 ms, run page <= 50 ms,
compare of 10 runs <= 150 ms, server RSS <= 150 MB.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS_MS = {"runs page": 100, "filtered page": 100, "run page": 50, "compare 10 runs": 150}
RSS_TARGET_MB = 150


def build(path: Path, runs: int, epochs: int) -> None:
    from speedrun.domain.records import EpochRecord, RunRecord
    from speedrun.tracking.store import Store

    rng = random.Random(0)
    store = Store.open(str(path))
    batch = []
    for i in range(runs):
        final = 80 + rng.random() * 10
        batch.append(RunRecord(
            source="train", status="completed", title=f"run {i}",
            params={"model": "resnet18", "lr": rng.choice([0.02, 0.04, 0.08]), "batch_size": rng.choice([64, 128]),
                    "epochs": epochs, "cosine": rng.random() < 0.5},
            hardware=rng.choice(["T4", "A100", "CPU"]), group=f"g{i // 5}" if i < 100 else None,
            epochs=[EpochRecord(e, train_loss=2 / e, val_acc=final - (epochs - e), duration_s=40.0,
                                elapsed_s=40.0 * e) for e in range(1, epochs + 1)]))
        if len(batch) == 1000:
            store.add_runs(batch)
            batch = []
    if batch:
        store.add_runs(batch)
    store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str) -> tuple[int, float]:
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        exc.read()
        status = exc.code
    return status, (time.perf_counter() - start) * 1000


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runs.db"
        start = time.perf_counter()
        build(db, args.runs, args.epochs)
        print(f"database: {args.runs:,} runs × {args.epochs} epochs built in {time.perf_counter() - start:.1f} s "
              f"({db.stat().st_size / 1e6:.1f} MB)")
        port = free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        server = subprocess.Popen([sys.executable, "-m", "speedrun", "ui", "--db", str(db), "--port", str(port)],
                                  env=env, stderr=subprocess.PIPE, text=True)
        base = f"http://127.0.0.1:{port}/"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    fetch(base + "static/ui.css")
                    break
                except (urllib.error.URLError, ConnectionError):
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the server did not start: " + (server.stderr.read() if server.poll() else ""))
                    time.sleep(0.1)
            last = args.runs
            pages = {
                "runs page": base,
                "filtered page": base + "?where=" + urllib.request.quote("lr < 0.05 and (batch_size = 64 or cosine)"),
                "run page": base + f"runs/{last // 2}",
                "run verdict fragment": base + f"runs/%23{last // 2}/verdict",
                "compare 10 runs": base + "compare?" + "&".join(f"runs={i}" for i in range(1, 11)),
                "runs JSON (one page)": base + "api/runs",
                "live poll": base + f"api/runs/{last // 2}/live?after=9",
            }
            print(f"{'page':<22} {'first':>9} {'median':>9} {'min–max':>17}  target  status")
            for name, url in pages.items():
                status, first = fetch(url)  # the first fetch: caches are cold (the compare's noise pool)
                times = [fetch(url)[1] for _ in range(args.repeat)]
                target = TARGETS_MS.get(name)
                verdict = "" if target is None else ("met" if statistics.median(times) <= target else "MISSED")
                note = "" if status == 200 else f" (HTTP {status}: not available)"
                print(f"{name:<22} {first:>7.1f}ms {statistics.median(times):>7.1f}ms {min(times):>7.1f}–{max(times):>6.1f}ms  "
                      f"{(str(target) + 'ms') if target else '':>6}  {verdict}{note}")
            memory = rss_mb(server.pid)
            print(f"server resident memory: {memory:.0f} MB (target <= {RSS_TARGET_MB} MB: "
                  f"{'met' if memory <= RSS_TARGET_MB else 'MISSED'})")
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
