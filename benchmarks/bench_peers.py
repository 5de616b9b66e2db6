"""speedrun against MLflow and Aim on the same data, side by side as ratios speedrun/peer.

    python benchmarks/bench_peers.py                      # 1,000 and 10,000 runs, 3 repeats
    python benchmarks/bench_peers.py --sizes 1000 --repeat 5 --writers 8 16 --epochs 100
    python benchmarks/bench_peers.py --quick              # smoke check: 200 runs, 2 repeats
    python benchmarks/bench_peers.py --peers mlflow       # only one peer; --no-install: no pip

What it measures, per size (runs of `--run-epochs` epochs, the synthetic runs of
bench_report.py, given to every tool as the same plain data):

- ingest: all runs into an empty store, each tool through its own bulk API
  (speedrun `Store.add_runs` in batches of 2,000; MLflow `create_run` + `log_batch`
  + `set_terminated` per run; Aim one `Run` per run, `track` per epoch);
- list: every run with its parameters, tags and final metrics as one JSON text
  (speedrun `list_runs` + the `list --json` summary; MLflow `search_runs`; Aim `iter_runs`);
- top-10 by final validation accuracy (speedrun `list_runs(sort=...)`; MLflow
  `search_runs(order_by=["metrics.val_acc DESC"], max_results=10)`; Aim: every run's
  last value, sorted), checked against the data: all three must give the same ten;
- size on disk of the store (the database file, its journal, Aim's whole repository);

and, independent of the size:

- W concurrent live writers (`--writers 8 16`): W processes each record one run of
  `--epochs` epochs, one write per epoch, started together once all have imported and
  opened their store; the crowd's wall time from the go to the last close, its CPU time
  (whole processes, imports included), and the epochs counted afterwards in a fresh
  process (nothing may be lost);
- live per-epoch cost: one run of `--record-epochs` epochs, mean milliseconds per epoch write.

Every figure comes from fresh processes: the peers run inside their own virtual
environment (`--venvs`, created with pip from the package registry when absent, skipped
with a message when the install fails or times out), speedrun inside this interpreter's;
each process is this file run as a driver (`--driver TOOL ACTION`), which imports nothing
but the standard library until it knows its tool. "op" is timed inside the process: the
tool's import, opening its store and the operation (at a few hundred runs the import is
most of it); "process" is the whole process as a user waits for it, interpreter start and
exit included. "wall" is elapsed time, "CPU" the process's user and system time: on a
loaded machine the CPU figures are the steadier ones. Each repetition runs the tools in
turn, the order reversed every other time (A B C, C B A, ...), and each figure is the median
of `--repeat` repetitions with its range. Peers record with their background extras off (Aim's system
metrics and terminal capture, MLflow's telemetry).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
PEERS = {"mlflow": "MLflow", "aim": "Aim"}
NAMES = {"speedrun": "speedrun", **PEERS}
# The same filter in both languages (issue 29): three conditions and no `or`, which MLflow's search
# syntax lacks; MLflow compares params as text only (= != LIKE), so the batch size is matched exactly.
SPEEDRUN_FILTER = "hardware_text ~ \"*T4*\" and batch_size = 64 and final_val_acc > 85"
MLFLOW_FILTER = "tags.hardware LIKE '%T4%' and params.batch_size = '64' and metrics.val_acc > 85"
FILTERS = ("speedrun", "mlflow")  # Aim's queries are Python expressions: nothing to compare with
METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "duration_s", "elapsed_s", "lr", "images_per_s")
QUIET_ENV = {  # MLflow's telemetry off (Aim 3.29's SDK has none), MLflow logging synchronous as by default
    "DO_NOT_TRACK": "true", "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    "PYTHONDONTWRITEBYTECODE": "1",
}


# ============================================================== drivers (one process each)
def _emit(**result) -> None:
    print("@@result " + json.dumps(result), flush=True)


def _load(data: str) -> list[dict]:
    return [json.loads(line) for line in Path(data).read_text().splitlines()]


def _wait_for_go(folder: Path, index: int) -> None:
    """Say ready, then wait for the parent's go: every writer starts together, imports done."""
    (folder / f"ready-{index}").touch()
    go = folder / "go"
    while not go.exists():
        time.sleep(0.001)


def _live_epoch(epoch: int) -> dict:
    return {"train_loss": 1.0 / epoch, "train_acc": 50.0, "val_loss": 1.1 / epoch,
            "val_acc": min(99.0, 40.0 + epoch * 0.05), "duration_s": 12.5, "elapsed_s": 12.5 * epoch,
            "lr": 0.1, "images_per_s": 4000.0}


class SpeedrunDriver:
    def __init__(self, dest: Path):
        sys.path.insert(0, str(ROOT))
        from speedrun.tracking.store import Store

        self.db = str(dest / "speedrun.db")
        self.Store = Store

    def prepare(self) -> None:
        self.Store.open(self.db).close()

    def ingest(self, runs: list[dict]) -> None:
        from datetime import datetime

        from speedrun.domain.records import EpochRecord, RunRecord

        store = self.Store.open(self.db)
        batch = 2_000
        for start in range(0, len(runs), batch):
            records = []
            for run in runs[start:start + batch]:
                run = dict(run, epochs=[EpochRecord(**e) for e in run["epochs"]],
                           created_at=datetime.fromisoformat(run["created_at"]))
                records.append(RunRecord(source="train", **run))
            store.add_runs(records, force=True)
        store.close()

    def list(self) -> list:
        from speedrun.analysis.views import run_summary

        store = self.Store.open(self.db)
        rows = [run_summary(r) for r in store.list_runs()]  # what `speedrun list --json` prints
        store.close()
        return rows

    def top10(self) -> list[tuple[str, float]]:
        store = self.Store.open(self.db)
        best = store.list_runs(sort="final_val_acc", descending=True, limit=10, first=True)  # as `list --desc`
        store.close()
        return [(r.title, r.final_val_acc) for r in best]

    def filter(self) -> list[str]:
        store = self.Store.open(self.db)
        found = store.list_runs(where=SPEEDRUN_FILTER)  # what `speedrun list --where` runs
        store.close()
        return [r.title for r in found]

    def live(self, title: str, epochs: int) -> tuple[list[float], float, int]:
        from speedrun.domain.records import EpochRecord, RunRecord

        store = self.Store.open(self.db)
        run_id = store.begin_run(RunRecord(source="train", status="running", title=title, pid=os.getpid(),
                                           params={"model": "resnet18", "epochs": epochs}))
        return _timed_epochs(epochs, lambda e, m: store.add_epoch(run_id, EpochRecord(e, **m)),
                             lambda: (store.finish_run(run_id, "completed"), store.close()))

    def count(self) -> dict[str, int]:
        from sqlalchemy import text

        store = self.Store.open(self.db)
        with store.engine.connect() as conn:
            rows = conn.execute(text("select r.title, count(e.epoch) from runs r "
                                     "left join epoch_metrics e on e.run_id = r.id group by r.id")).all()
        store.close()
        return {title: n for title, n in rows}


def _timed_epochs(epochs: int, write, close) -> tuple[list[float], float, int]:
    """Each epoch's write time (wall), all writes' CPU time, and how many writes raised.

    A write that fails is counted and not retried: a training goes on, and the count
    afterwards shows what was lost.
    """
    times, cpu, errors = [], 0.0, 0
    for epoch in range(1, epochs + 1):
        metrics = _live_epoch(epoch)
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            write(epoch, metrics)
        except Exception as exc:  # noqa: BLE001 - any tracker failure is one lost epoch
            errors += 1
            if errors == 1:
                print(f"write failed at epoch {epoch}: {type(exc).__name__}: {exc}", file=sys.stderr)
        times.append(time.perf_counter() - start)
        cpu += time.process_time() - start_cpu
    close()
    return times, cpu, errors


class MlflowDriver:
    def __init__(self, dest: Path):
        import mlflow
        from mlflow.tracking import MlflowClient

        self.mlflow = mlflow
        self.dest = dest
        mlflow.set_tracking_uri(f"sqlite:///{dest / 'mlflow.db'}")
        self.client = MlflowClient()

    def _experiment(self) -> str:
        found = self.client.get_experiment_by_name("bench")
        if found:
            return found.experiment_id
        return self.client.create_experiment("bench", artifact_location=(self.dest / "artifacts").as_uri())

    def prepare(self) -> None:
        self._experiment()

    def ingest(self, runs: list[dict]) -> None:
        from mlflow.entities import Metric, Param, RunTag

        exp = self._experiment()
        for run in runs:
            tags = {t: "" for t in run["tags"]}
            tags.update({k: str(run[k]) for k in ("hardware", "group", "hypothesis", "analysis") if run.get(k)})
            tags.update({f"env.{k}": str(v) for k, v in run["env"].items()})
            start_ms = int(_timestamp(run["created_at"]) * 1000)
            info = self.client.create_run(exp, start_time=start_ms, run_name=run["title"]).info
            metrics = [Metric(k, v, start_ms + e["epoch"], e["epoch"])
                       for e in run["epochs"] for k, v in e.items() if k != "epoch" and v is not None]
            params = [Param(k, str(v)) for k, v in run["params"].items()]
            params += [Param(k, str(run[k])) for k in ("param_count", "data_load_s") if run.get(k) is not None]
            for start in range(0, len(metrics), 900):  # log_batch takes 1,000 entries at most
                self.client.log_batch(info.run_id, metrics=metrics[start:start + 900],
                                      params=params if start == 0 else [],
                                      tags=[RunTag(k, v) for k, v in tags.items()] if start == 0 else [])
            self.client.set_terminated(info.run_id, "FINISHED")

    def list(self) -> list:
        runs = self.mlflow.search_runs(experiment_ids=[self._experiment()], max_results=1_000_000,
                                       output_format="list")
        return [{"run_id": r.info.run_id, "name": r.info.run_name, "status": r.info.status,
                 "start_time": r.info.start_time, "params": r.data.params, "metrics": r.data.metrics,
                 "tags": r.data.tags} for r in runs]

    def top10(self) -> list[tuple[str, float]]:
        runs = self.client.search_runs([self._experiment()], order_by=["metrics.val_acc DESC"], max_results=10)
        return [(r.info.run_name, r.data.metrics["val_acc"]) for r in runs]

    def filter(self) -> list[str]:
        runs = self.client.search_runs([self._experiment()], filter_string=MLFLOW_FILTER, max_results=50_000)
        return [r.info.run_name for r in runs]

    def live(self, title: str, epochs: int) -> tuple[list[float], float, int]:
        mlflow = self.mlflow
        mlflow.start_run(experiment_id=self._experiment(), run_name=title)
        mlflow.log_params({"model": "resnet18", "epochs": epochs})
        return _timed_epochs(epochs, lambda e, m: mlflow.log_metrics(m, step=e), mlflow.end_run)

    def count(self) -> dict[str, int]:
        runs = self.client.search_runs([self._experiment()], max_results=50_000)
        return {r.info.run_name: len(self.client.get_metric_history(r.info.run_id, "val_acc")) for r in runs}


class AimDriver:
    def __init__(self, dest: Path):
        import aim

        self.aim = aim
        self.repo_path = str(dest / "aim")

    def _run(self, **kwargs):
        return self.aim.Run(repo=self.repo_path, experiment="bench", system_tracking_interval=None,
                            log_system_params=False, capture_terminal_logs=False, **kwargs)

    def _repo(self):
        return self.aim.Repo.from_path(self.repo_path)

    def prepare(self) -> None:
        Path(self.repo_path).mkdir(parents=True, exist_ok=True)
        self.aim.Repo.from_path(self.repo_path, init=True)

    def ingest(self, runs: list[dict]) -> None:
        self.prepare()
        for data in runs:
            run = self._run()
            run.name = data["title"]
            run["hparams"] = data["params"]
            run["env"] = data["env"]
            for key in ("hardware", "group", "hypothesis", "analysis", "created_at", "param_count", "data_load_s"):
                if data.get(key) is not None:
                    run[key] = data[key]
            for tag in data["tags"]:
                run.add_tag(tag)
            for e in data["epochs"]:
                run.track({k: v for k, v in e.items() if k != "epoch" and v is not None}, step=e["epoch"])
            run.close()
        self._index()

    def _index(self) -> None:
        """Index every run, as Aim's UI server does in the background: until then Aim's readers
        (`Repo.iter_runs`, `query_runs`) see no run and no value."""
        from aim.sdk.index_manager import RepoIndexManager

        repo = self._repo()
        manager = RepoIndexManager.get_index_manager(repo)
        for run_hash in repo.list_all_runs():
            manager.index(run_hash)

    def list(self) -> list:
        rows = []
        for run in self._repo().iter_runs():
            rows.append({"hash": run.hash, "name": run.name, "experiment": run.experiment,
                         "created_at": run.get("created_at"), "hparams": run.get("hparams"),
                         "tags": [getattr(t, "name", t) for t in run.props.tags], "metrics": _aim_last(run)})
        return rows

    def top10(self) -> list[tuple[str, float]]:
        final = [(run.name, _aim_last(run).get("val_acc")) for run in self._repo().iter_runs()]
        return sorted((f for f in final if f[1] is not None), key=lambda f: -f[1])[:10]

    def live(self, title: str, epochs: int) -> tuple[list[float], float, int]:
        run = self._run()
        run.name = title
        run["hparams"] = {"model": "resnet18", "epochs": epochs}
        return _timed_epochs(epochs, lambda e, m: run.track(m, step=e), run.close)

    def count(self) -> dict[str, int]:
        from aim.storage.context import Context

        self._index()
        counts = {}
        for run in self._repo().iter_runs():
            metric = run.get_metric("val_acc", Context({}))
            counts[run.name] = 0 if metric is None else len(metric.values.values_list())
        return counts


def _aim_last(run) -> dict[str, float]:
    """The last value of each of a run's metrics, from its metadata tree (no sequence is read)."""
    traces = run.meta_run_tree.subtree("traces").collect()
    return {name: info.get("last") for context in traces.values() for name, info in context.items()}


def _timestamp(iso: str) -> float:
    from datetime import datetime, timezone

    return datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp()


DRIVERS = {"speedrun": SpeedrunDriver, "mlflow": MlflowDriver, "aim": AimDriver}


def driver_main(tool: str, action: str, args: dict) -> None:
    """One measurement in this fresh process: prints `@@result {json}` for the parent."""
    dest = Path(args["dest"]) if "dest" in args else Path(tempfile.gettempdir())
    if action == "version":
        from importlib.metadata import version

        DRIVERS[tool](dest)  # the import works
        _emit(version=version(tool))
        return
    if action == "writer":
        driver = DRIVERS[tool](dest)
        _wait_for_go(Path(args["sync"]), args["index"])
        _times, _cpu, errors = driver.live(f"writer {args['index']}", args["epochs"])
        _emit(end=time.time(), errors=errors)
        return
    runs = _load(args["data"]) if action == "ingest" else None
    start, start_cpu = time.perf_counter(), time.process_time()
    driver = DRIVERS[tool](dest)
    if action == "prepare":
        driver.prepare()
        _emit(op_s=time.perf_counter() - start)
    elif action == "ingest":
        driver.ingest(runs)
        _emit(op_s=time.perf_counter() - start, op_cpu_s=time.process_time() - start_cpu)
    elif action == "list":
        text = json.dumps(driver.list(), default=str)
        _emit(op_s=time.perf_counter() - start, op_cpu_s=time.process_time() - start_cpu,
              runs=len(json.loads(text)), bytes=len(text))
    elif action == "top10":
        best = driver.top10()
        _emit(op_s=time.perf_counter() - start, op_cpu_s=time.process_time() - start_cpu,
              top=[[name, round(acc, 4)] for name, acc in best])
    elif action == "filter":
        titles = driver.filter()
        _emit(op_s=time.perf_counter() - start, op_cpu_s=time.process_time() - start_cpu, titles=sorted(titles))
    elif action == "record":
        times, cpu, errors = driver.live("record", args["epochs"])
        _emit(mean_ms=statistics.mean(times) * 1e3, cpu_ms=cpu / len(times) * 1e3,
              median_ms=statistics.median(times) * 1e3, errors=errors)
    elif action == "count":
        _emit(counts=driver.count())
    else:
        raise SystemExit(f"unknown action {action!r}")


# ============================================================== the parent
class Failed(Exception):
    """A driver process that did not give its result (its tool is then left out of that figure)."""


class Tool:
    def __init__(self, key: str, python: str, version: str = ""):
        self.key, self.python, self.version = key, python, version

    @property
    def label(self) -> str:
        return f"{NAMES[self.key]} {self.version}".strip()

    def command(self, action: str, args: dict) -> list[str]:
        return [self.python, str(HERE), "--driver", self.key, action, json.dumps(args)]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SPEEDRUN_DB")}
        env.update(QUIET_ENV)
        if self.key == "speedrun":
            env["PYTHONPATH"] = str(ROOT)
        return env

    def start(self, action: str, args: dict, cwd: Path) -> subprocess.Popen:
        return subprocess.Popen(self.command(action, args), cwd=cwd, env=self.env(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, action: str, args: dict, cwd: Path, timeout: float) -> dict:
        """One driver process, waited for; its result, with the process's wall and CPU seconds."""
        print(f"  {self.label}: {action} ...", file=sys.stderr, flush=True)
        start, start_cpu = time.perf_counter(), children_cpu()
        proc = self.start(action, args, cwd)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise Failed(f"{self.label} {action}: no result after {timeout:.0f} s") from None
        result = collect(proc, out, err, f"{self.label} {action}")
        result["process_s"] = time.perf_counter() - start
        result["process_cpu_s"] = children_cpu() - start_cpu
        return result


def children_cpu() -> float:
    """CPU seconds (user and system) of every child process waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def collect(proc: subprocess.Popen, out: str, err: str, what: str) -> dict:
    for line in reversed(out.splitlines()):
        if line.startswith("@@result "):
            return json.loads(line[len("@@result "):])
    tail = " | ".join((err or out).strip().splitlines()[-3:])
    raise Failed(f"{what} failed (exit {proc.returncode}): {tail[-400:]}")


def peer_tool(key: str, venvs: Path, install: bool, timeout: float) -> tuple[Tool | None, str]:
    """The peer's venv python, installing it there when asked; (None, why) when it cannot run."""
    venv = venvs / key
    python = venv / "bin" / "python"
    if not python.exists():
        if not install:
            return None, f"no virtual environment at {venv} (--no-install)"
        print(f"installing {key} into {venv} (pip; once, reused afterwards) ...", flush=True)
        venvs.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True,
                           timeout=300)
            subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", key],
                           check=True, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            shutil.rmtree(venv, ignore_errors=True)
            return None, f"pip install {key} did not finish in {timeout:.0f} s"
        except subprocess.CalledProcessError as exc:
            shutil.rmtree(venv, ignore_errors=True)
            lines = [ln for ln in (exc.stderr or "").splitlines() if not ln.startswith("WARNING")]
            return None, f"pip install {key} failed: {' | '.join(lines[-2:])[-300:]}"
    tool = Tool(key, str(python))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tool.version = tool.run("version", {"dest": tmp}, Path(tmp), timeout=300)["version"]
    except Failed as exc:
        return None, f"installed but does not run: {exc}"
    return tool, ""


def synthetic_data(n: int, epochs: int, path: Path) -> list[tuple[str, float]]:
    """bench_report's synthetic runs as plain JSON lines (the same data for every tool); the true top 10."""
    sys.path.insert(0, str(ROOT))
    import random

    import bench_report  # noqa: E402 - beside this file

    bench_report.EPOCHS = epochs
    rng = random.Random(0)
    finals = []
    with path.open("w") as out:
        for i in range(n):
            record = bench_report.synthetic_record(i, rng)
            record.title = f"{record.title} #{i}"  # unique: the tools' top 10 are compared by title
            plain = {
                "title": record.title, "hypothesis": record.hypothesis, "analysis": record.analysis,
                "tags": record.tags, "params": record.params, "hardware": record.hardware, "env": record.env,
                "param_count": record.param_count, "data_load_s": record.data_load_s,
                "created_at": record.created_at.isoformat(), "group": record.group,
                "epochs": [{k: getattr(e, k) for k in ("epoch", *METRICS)} for e in record.epochs],
            }
            out.write(json.dumps(plain) + "\n")
            finals.append((record.title, record.epochs[-1].val_acc))
    return sorted(finals, key=lambda f: -f[1])[:10]


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def orders(tools: list[Tool], repeat: int):
    """A B C, C B A, A B C, ...: no tool always goes first (or always after the same one)."""
    for rep in range(repeat):
        yield rep, tools if rep % 2 == 0 else tools[::-1]


class Table:
    """Rows of figures, each a list of values per tool, printed as medians with ranges and ratios."""

    def __init__(self, tools: list[Tool]):
        self.tools = tools
        self.rows: dict[str, tuple[str, dict[str, list[float]]]] = {}
        self.notes: list[str] = []

    def add(self, row: str, tool: Tool, value: float, unit: str = "s") -> None:
        self.rows.setdefault(row, (unit, {}))[1].setdefault(tool.key, []).append(value)

    def fail(self, exc: Exception) -> None:
        self.notes.append(str(exc))

    def print(self, title: str) -> None:
        peers = [t for t in self.tools if t.key != "speedrun"]
        cells = [[title] + [t.label for t in self.tools] + [f"speedrun/{NAMES[t.key]}" for t in peers]]
        for name, (unit, values) in self.rows.items():
            row = [name] + [_cell(values.get(tool.key), unit) for tool in self.tools]
            mine = values.get("speedrun")
            for tool in peers:
                theirs = values.get(tool.key)
                ok = mine and theirs and statistics.median(theirs) > 0 and unit != "n"
                row.append(f"{statistics.median(mine) / statistics.median(theirs):.3g}x" if ok else "-")
            cells.append(row)
        widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
        for k, row in enumerate(cells):
            print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
            if k == 0:
                print("  ".join("-" * w for w in widths))
        for note in self.notes:
            print(f"  note: {note}")
        print(flush=True)

    def as_json(self) -> dict:
        return {name: {"unit": unit, **values} for name, (unit, values) in self.rows.items()}


def _cell(values: list[float] | None, unit: str) -> str:
    if not values:
        return "-"
    med, low, high = statistics.median(values), min(values), max(values)
    if unit == "MB":
        return f"{med:.1f} MB"
    if unit == "n":  # counts: every repetition's
        return "/".join(str(int(v)) for v in values)
    digits = 3 if med < 0.1 else 2
    spread = f" ({low:.{digits}f}-{high:.{digits}f})" if len(values) > 1 else ""
    return f"{med:.{digits}f} {unit}{spread}"


def bench_size(tools: list[Tool], n: int, args, tmp: Path) -> Table:
    """Ingest, list, top 10 and size of `n` runs, for every tool."""
    table = Table(tools)
    data = tmp / f"runs-{n}.jsonl"
    truth = synthetic_data(n, args.run_epochs, data)
    kept: dict[str, Path] = {}
    for rep, order in orders(tools, args.ingest_repeat or args.repeat):
        for tool in order:
            dest = tmp / f"{tool.key}-{n}-{rep}"
            dest.mkdir()
            try:
                result = tool.run("ingest", {"data": str(data), "dest": str(dest)}, dest, args.timeout)
            except Failed as exc:
                table.fail(exc)
                shutil.rmtree(dest, ignore_errors=True)
                continue
            table.add(f"ingest {n:,} runs, wall", tool, result["op_s"])
            table.add(f"ingest {n:,} runs, CPU", tool, result["op_cpu_s"])
            table.add("size on disk", tool, folder_bytes(dest) / 1e6, unit="MB")
            if tool.key in kept:
                shutil.rmtree(dest, ignore_errors=True)
            else:
                kept[tool.key] = dest
    for action, label in (("list", "list all as JSON"), ("top10", "top-10 by final acc")):
        for rep, order in orders([t for t in tools if t.key in kept], args.repeat):
            for tool in order:
                try:
                    result = tool.run(action, {"dest": str(kept[tool.key])}, kept[tool.key], args.timeout)
                except Failed as exc:
                    table.fail(exc)
                    continue
                if action == "list" and result["runs"] != n:
                    table.notes.append(f"{tool.label} listed {result['runs']} runs of {n}")
                if action == "top10" and [round(a, 2) for _, a in result["top"]] != [round(a, 2) for _, a in truth]:
                    table.notes.append(f"{tool.label}'s top 10 differs from the data's: {result['top']}")
                table.add(f"{label}, op wall", tool, result["op_s"])
                table.add(f"{label}, op CPU", tool, result["op_cpu_s"])
                table.add(f"{label}, process wall", tool, result["process_s"])
                table.add(f"{label}, process CPU", tool, result["process_cpu_s"])
    filtered = [t for t in tools if t.key in kept and t.key in FILTERS]
    answers: dict[str, list[str]] = {}
    for rep, order in orders(filtered, args.repeat):
        for tool in order:
            try:
                result = tool.run("filter", {"dest": str(kept[tool.key])}, kept[tool.key], args.timeout)
            except Failed as exc:
                table.fail(exc)
                continue
            answers[tool.key] = result["titles"]
            table.add("filter (3 conditions), op wall", tool, result["op_s"])
            table.add("filter (3 conditions), op CPU", tool, result["op_cpu_s"])
            table.add("filter (3 conditions), process wall", tool, result["process_s"])
    if len(set(map(tuple, answers.values()))) > 1:
        table.notes.append(f"the filter's runs differ between tools: {', '.join(f'{k} {len(v)}' for k, v in answers.items())}")
    elif answers:
        table.notes.append(f"filter: speedrun `{SPEEDRUN_FILTER}`, MLflow `{MLFLOW_FILTER}`: the same "
                           f"{len(next(iter(answers.values())))} runs")
    if "size on disk" in table.rows:
        table.rows["size on disk"] = table.rows.pop("size on disk")  # last, below the timings
    if "aim" in kept:
        table.notes.append("Aim's ingest includes indexing its runs (Aim's readers see none before)")
    for path in kept.values():
        shutil.rmtree(path, ignore_errors=True)
    return table


def crowd(tool: Tool, writers: int, epochs: int, dest: Path, timeout: float) -> dict:
    """`writers` processes that record a run of `epochs` epochs each, started together.

    Their wall time (from the go to the last one's close), CPU time (all of them),
    the epochs counted afterwards by a fresh process, and the writes that raised.
    """
    tool.run("prepare", {"dest": str(dest)}, dest, timeout)
    sync = dest / "sync"
    sync.mkdir()
    cpu = children_cpu()
    procs = [tool.start("writer", {"dest": str(dest), "sync": str(sync), "index": i, "epochs": epochs}, dest)
             for i in range(writers)]
    deadline = time.time() + timeout
    while len(list(sync.glob("ready-*"))) < writers and time.time() < deadline:
        if any(p.poll() not in (None, 0) for p in procs):
            break
        time.sleep(0.01)
    go = time.time()
    (sync / "go").touch()
    ends, errors, failures = [], 0, []
    for i, proc in enumerate(procs):
        try:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.time()))
            result = collect(proc, out, err, f"{tool.label} writer {i}")
            ends.append(result["end"])
            errors += result["errors"]
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            failures.append(f"{tool.label} writer {i}: no result after {timeout:.0f} s")
        except Failed as exc:
            failures.append(str(exc))
    cpu = children_cpu() - cpu
    found = sum(tool.run("count", {"dest": str(dest)}, dest, timeout)["counts"].values())
    if failures:
        raise Failed("; ".join(failures[:2]) + f" ({len(failures)} of {writers} writers failed, "
                     f"{found} of {writers * epochs} epochs stored)")
    return {"wall": max(ends) - go, "cpu": cpu, "lost": writers * epochs - found, "errors": errors}


def bench_live(tools: list[Tool], args, tmp: Path) -> Table:
    """Concurrent live writers and one run's per-epoch cost, for every tool."""
    table = Table(tools)
    for writers in args.writers:
        for rep, order in orders(tools, args.repeat):
            for tool in order:
                dest = tmp / f"{tool.key}-w{writers}-{rep}"
                dest.mkdir()
                try:
                    result = crowd(tool, writers, args.epochs, dest, args.timeout)
                except Failed as exc:
                    table.fail(exc)
                    continue
                finally:
                    shutil.rmtree(dest, ignore_errors=True)
                row = f"{writers} writers x {args.epochs} epochs"
                table.add(f"{row}, wall", tool, result["wall"])
                table.add(f"{row}, CPU (all)", tool, result["cpu"])
                table.add(f"{row}, epochs lost", tool, result["lost"], unit="n")
                if result["errors"]:
                    table.notes.append(f"{tool.label}, {writers} writers: {result['errors']} writes raised")
    for rep, order in orders(tools, args.repeat):
        for tool in order:
            dest = tmp / f"{tool.key}-record-{rep}"
            dest.mkdir()
            try:
                result = tool.run("record", {"dest": str(dest), "epochs": args.record_epochs}, dest, args.timeout)
            except Failed as exc:
                table.fail(exc)
                continue
            finally:
                shutil.rmtree(dest, ignore_errors=True)
            table.add(f"1 run x {args.record_epochs} epochs, per epoch wall", tool, result["mean_ms"], unit="ms")
            table.add(f"1 run x {args.record_epochs} epochs, per epoch CPU", tool, result["cpu_ms"], unit="ms")
            if result["errors"]:
                table.notes.append(f"{tool.label}, 1 run: {result['errors']} writes raised")
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000], help="runs in the data")
    parser.add_argument("--run-epochs", type=int, default=20, help="epochs of each run of the data")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of each figure (median, range)")
    parser.add_argument("--ingest-repeat", type=int, help="repetitions of the ingest (default: --repeat)")
    parser.add_argument("--writers", type=int, nargs="*", default=[8, 16], help="concurrent live writers")
    parser.add_argument("--epochs", type=int, default=100, help="epochs each concurrent writer records")
    parser.add_argument("--record-epochs", type=int, default=1_000, help="epochs of the per-epoch cost run")
    parser.add_argument("--peers", nargs="*", choices=list(PEERS), default=list(PEERS))
    parser.add_argument("--venvs", type=Path, default=Path(tempfile.gettempdir()) / "bench_peers_venvs",
                        help="where the peers' virtual environments are (made once, reused)")
    parser.add_argument("--no-install", action="store_true", help="skip a peer whose venv is absent")
    parser.add_argument("--install-timeout", type=float, default=900)
    parser.add_argument("--timeout", type=float, default=1_800, help="seconds one measurement may take")
    parser.add_argument("--quick", action="store_true", help="smoke check: 200 runs, 2 repeats, small loads")
    parser.add_argument("--json", type=Path, help="also write every measured value here")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeat, args.writers, args.epochs, args.record_epochs = [200], 2, [4], 20, 200

    # The drivers run with PYTHONDONTWRITEBYTECODE (QUIET_ENV); pip compiled the peers' bytecode, so speedrun's is
    # compiled too, as its install would: a checkout would otherwise compile its modules in every process.
    compileall.compile_dir(ROOT / "speedrun", quiet=1)
    tools = [Tool("speedrun", sys.executable)]
    tools[0].version = _speedrun_version()
    for key in args.peers:
        tool, why = peer_tool(key, args.venvs, not args.no_install, args.install_timeout)
        if tool:
            tools.append(tool)
        else:
            print(f"{PEERS[key]}: SKIPPED - {why}", flush=True)
    print(f"tools: {', '.join(t.label for t in tools)}; medians of {args.repeat} (min-max); "
          f"ratios are speedrun's median over the peer's (below 1: speedrun is faster/smaller)\n", flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench_peers-") as tmp:
        for n in args.sizes:
            table = bench_size(tools, n, args, Path(tmp))
            table.print(f"{n:,} runs x {args.run_epochs} epochs")
            results[f"runs_{n}"] = table.as_json()
        if args.writers or args.record_epochs:
            table = bench_live(tools, args, Path(tmp))
            table.print("live writes")
            results["live"] = table.as_json()
    if args.json:
        args.json.write_text(json.dumps({"tools": {t.key: t.label for t in tools}, "results": results}, indent=1))
    return 0


def _speedrun_version() -> str:
    sys.path.insert(0, str(ROOT))
    try:
        from importlib.metadata import version

        return version("speedrun")
    except Exception:  # noqa: BLE001 - a checkout without metadata
        return ""


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--driver":
        driver_main(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))
    else:
        sys.exit(main())
