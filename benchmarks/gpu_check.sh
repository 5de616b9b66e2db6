#!/usr/bin/env bash
# benchmarks/gpu_check.sh — issue #19: prove the GPU path on a real GPU, in two back-to-back device calls.
#
#   bash benchmarks/gpu_check.sh stage1   # call 1: CIFAR-10 part 1 + wheels in place, environment, GPU tests
#   bash benchmarks/gpu_check.sh stage2   # call 2: CIFAR-10 part 2, prepare, the user's default, airbench94
#                                         #         side by side with the reference, airbench94-muon, summary
#   bash benchmarks/gpu_check.sh dryrun   # here, on a CPU: the same steps end to end with tiny sizes
#
# Run from the repository root. Figures are parsed from what the programs print and record; a step that
# failed is reported as FAILED with the tail of its log. Nothing is estimated or filled in.
#
# WHY TWO CALLS, AND WHAT EACH CARRIES (a call carries at most 64 MiB = 67,108,864 bytes, the tree included;
# sizes measured 2026-11-28; the six lossless WebP files of CIFAR-10 are 102.4 MB, already at WebP's best):
#   working tree (tracked + untracked-not-ignored, runs.db included)                          ~0.75 MB
#   .whl/   sqlalchemy-2.1.9 cp312 manylinux (4.75 MB), alembic-1.20.1, mako-1.4.3,
#           airbench-0.1.8-py3-none-any.whl (built here by `pip wheel --no-deps` from the PyPI sdist,
#           which rides along in .whl/src/airbench-0.1.8.tar.gz: the fallback build needs only setuptools),
#           .whl/extra/typing_extensions-4.16.0 (installed only where the image's is older than alembic's
#           >=4.12). Greenlet is not needed: SQLAlchemy 2.1 asks for it only for asyncio.           5.18 MB
#   .gpu1/  train_1..3.webp, labels.json, manifest.json, prepare.py                              51.41 MB
#   .gpu2/  train_4..5.webp, test.webp                                                           51.19 MB
#   call 1 = tree + .gpu1 + .whl = ~57.3 MB (54.7 MiB);  call 2 = tree + .gpu2 + .whl = ~57.1 MB (54.5 MiB)
# (.whl, .gpu1, .gpu2 are ignored by .git/info/exclude and travel only when named in `carry`.)
#
# The machine stays warm only ~30 s after a call and forgets everything when it goes back: issue call 2
# at once after call 1 returns. stage2 stops with exit 3 and a clear message when stage1's files are not on
# the machine (a fresh machine); then run both again. Both stages are idempotent on a warm machine.
#
# State on the GPU machine: /tmp/cifar10 (WebP parts), /tmp/site (wheels), /tmp/gpucheck (data, logs,
# scratch databases). $OUT gets at most 8 files:
#   stage1: stage1.log env.txt tests.log
#   stage2: summary.md results.json env.txt tests.log resnet18.log resnet18_show.json airbench.log muon.log
#
# Knobs (environment): GPU_CHECK_TESTS=stage1|stage2|0 (where the pytest steps run; default stage1, they
# need no CIFAR), AIRBENCH_RUNS (10), MUON_RUNS (5), RESNET_EPOCHS (2), GPU_CHECK_BUDGET_S (stage1: 300,
# stage2: 420; every step's timeout is cut to what is left of it, so the summary is always written: give the
# device call timeout_s 330 and 450), SMOKE_FILES (the CPU test files run after the cuda tests),
# GPU_CHECK_STEPS (stage2: comma list of prepare,tests,resnet18,airbench,muon; default all, for a rerun),
# PY (python3), GPU_CHECK_SRC1/SRC2 (staged folders; default ./.gpu1 ./.gpu2, else ../shared/data/cifar10).

set -uo pipefail

MODE=${1:-}
case "$MODE" in
    stage1|stage2|dryrun) ;;
    *) echo "usage: bash benchmarks/gpu_check.sh stage1|stage2|dryrun   (from the repository root)" >&2; exit 2 ;;
esac

REPO=$(pwd)
if [ ! -d "$REPO/speedrun" ] || [ ! -f "$REPO/benchmarks/gpu_check.sh" ]; then
    echo "gpu_check: run me from the repository root (found no speedrun/ and benchmarks/ in $REPO)" >&2
    exit 2
fi

PY=${PY:-python3}
SHARED_CIFAR="$REPO/../shared/data/cifar10"
if [ "$MODE" = dryrun ]; then
    WORK=${GPU_CHECK_WORK:-/tmp/gpu_check_dryrun}
    CIFAR=$WORK/cifar10
    SITE=$WORK/site
    OUT=$WORK/out  # never a folder from the environment: the dry run empties it
    DEVICE=cpu
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
else
    WORK=${GPU_CHECK_WORK:-/tmp/gpucheck}
    CIFAR=${GPU_CHECK_CIFAR:-/tmp/cifar10}
    SITE=${GPU_CHECK_SITE:-/tmp/site}
    OUT=${OUT:-$WORK/out}
    DEVICE=cuda
fi
WHL=${GPU_CHECK_WHL:-$REPO/.whl}
SRC1=${GPU_CHECK_SRC1:-$REPO/.gpu1}
SRC2=${GPU_CHECK_SRC2:-$REPO/.gpu2}
DATA=$WORK/data
AIRBENCH_RUNS=${AIRBENCH_RUNS:-10}
MUON_RUNS=${MUON_RUNS:-5}
RESNET_EPOCHS=${RESNET_EPOCHS:-2}
TESTS_IN=${GPU_CHECK_TESTS:-stage1}
STEPS=${GPU_CHECK_STEPS:-prepare,tests,resnet18,airbench,muon}
if [ "$MODE" = dryrun ]; then
    SMOKE_FILES=${SMOKE_FILES:-tests/test_nets.py tests/test_data.py}  # two shared cores here
else
    SMOKE_FILES=${SMOKE_FILES:-tests/test_training.py tests/test_recipes.py tests/test_nets.py tests/test_data.py tests/test_train_cli.py}
fi
PART1="train_1.webp train_2.webp train_3.webp labels.json manifest.json prepare.py"
PART2="train_4.webp train_5.webp test.webp"

mkdir -p "$WORK/steps" "$OUT"
export PYTHONUNBUFFERED=1
if [ "$MODE" = dryrun ]; then
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"  # the dev venv already holds SQLAlchemy and Alembic
else
    export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
fi

START=$(date +%s)
if [ "$MODE" = stage1 ]; then BUDGET=${GPU_CHECK_BUDGET_S:-300}; else BUDGET=${GPU_CHECK_BUDGET_S:-420}; fi
DEADLINE=$((START + BUDGET))
RESERVE=25  # seconds kept for the summary after the last step

log() { printf '[gpu_check %s %s] %s\n' "$MODE" "$(date -u +%H:%M:%S)" "$*"; }

want() { case ",$STEPS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# The command as one would type it: plain words bare, anything else in single quotes.
show_cmd() {
    local a out=""
    for a in "$@"; do
        if [[ "$a" =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then out+="$a "; else out+="'${a//\'/\'\\\'\'}' "; fi
    done
    printf '%s' "${out% }"
}

# run_step NAME CAP_SECONDS LOGFILE CMD...: run CMD under `timeout`, cut to the time left; record rc and seconds.
run_step() {
    local name=$1 cap=$2 logf=$3
    shift 3
    local left=$((DEADLINE - $(date +%s) - RESERVE)) t=$cap rc
    ((left < t)) && t=$left
    show_cmd "$@" >"$WORK/steps/$name.cmd"
    if ((t < 15)); then
        echo "SKIPPED: only ${left}s left of the ${BUDGET}s budget" >>"$logf"
        echo skipped >"$WORK/steps/$name.rc"
        echo 0 >"$WORK/steps/$name.s"
        log "$name: SKIPPED (no time left)"
        return 125
    fi
    {
        echo "\$ $(cat "$WORK/steps/$name.cmd")"
        echo "# step $name, timeout ${t}s, started $(date -u +%FT%TZ)"
    } >>"$logf"
    local t0 t1
    t0=$(date +%s.%N)
    timeout -k 15 "$t" "$@" >>"$logf" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    local secs
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    echo "# step $name: rc=$rc after ${secs}s" >>"$logf"
    echo "$rc" >"$WORK/steps/$name.rc"
    echo "$secs" >"$WORK/steps/$name.s"
    log "$name: rc=$rc in ${secs}s"
    return "$rc"
}

# Copy the named files from a staged folder (or ../shared, or already there) into $CIFAR; print what is missing.
stage_files() {
    local src=$1 missing="" f
    shift
    mkdir -p "$CIFAR"
    for f in "$@"; do
        if [ -f "$src/$f" ]; then
            cp -f "$src/$f" "$CIFAR/$f"
        elif [ ! -f "$CIFAR/$f" ] && [ -f "$SHARED_CIFAR/$f" ]; then
            cp -f "$SHARED_CIFAR/$f" "$CIFAR/$f"
        fi
        [ -s "$CIFAR/$f" ] || missing="$missing $f"
    done
    echo "$missing"
}

install_wheels() {
    local wheels=("$WHL"/*.whl) rc
    if [ ! -e "${wheels[0]}" ]; then
        log "no wheels in $WHL (name .whl in carry)"
        return 1
    fi
    if [ "$MODE" = dryrun ]; then
        # Python here is not 3.12: check that the set installs for a cp312 manylinux target, import nothing.
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
            --python-version 3.12 --implementation cp --platform manylinux2014_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 "${wheels[@]}"
        return $?
    fi
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${wheels[@]}"
    rc=$?
    if [ $rc -eq 0 ] && ! ls "$WHL"/airbench-*.whl >/dev/null 2>&1 && ls "$WHL"/src/airbench-*.tar.gz >/dev/null 2>&1; then
        "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --upgrade --target "$SITE" \
            "$WHL"/src/airbench-*.tar.gz
        rc=$?
    fi
    # alembic needs typing_extensions >= 4.12; carry-on wheel only where the image's is older.
    if [ $rc -eq 0 ] && ls "$WHL"/extra/typing_extensions-*.whl >/dev/null 2>&1; then
        if ! PYTHONPATH= "$PY" -c 'import importlib.metadata as m, sys
v = tuple(int(p) for p in m.version("typing_extensions").split(".")[:2]); sys.exit(v < (4, 12))' 2>/dev/null; then
            log "the image's typing_extensions is older than 4.12 (or missing): installing the carried one"
            "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
                "$WHL"/extra/typing_extensions-*.whl
            rc=$?
        fi
    fi
    return $rc
}

environment_report() {
    {
        echo "# gpu_check environment ($MODE), $(date -u +%FT%TZ)"
        echo "repo: $REPO  PYTHONPATH=$PYTHONPATH  python: $(command -v "$PY")"
        echo "git: $(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo 'no .git here')"
        uname -a
        echo "cpus: $(nproc)"
        echo
        if command -v nvidia-smi >/dev/null 2>&1; then
            nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit --format=csv
            echo
            nvidia-smi
        else
            echo "nvidia-smi: not found"
        fi
        echo
        "$PY" -m pip list 2>/dev/null | grep -iE '^(torch|torchvision|triton|numpy|sqlalchemy|alembic|mako|markupsafe|typer|click|rich|jinja2|typing.extensions|airbench|pytest|pytest-xdist|pillow) ' || true
    } >"$WORK/env.txt" 2>&1
    # Facts as JSON, and the card's fp16/bf16 matrix rate measured here (the FLOP share's denominator).
    GC_ENV_JSON="$WORK/env.json" timeout 120 "$PY" - >>"$WORK/env.txt" 2>&1 <<'PYEOF'
import json, os, subprocess, sys
import torch

info = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(), "cuda_available": torch.cuda.is_available()}
try:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=30)
    if smi.returncode == 0 and smi.stdout.strip():
        name, driver, memory = [c.strip() for c in smi.stdout.strip().splitlines()[0].split(",")]
        info.update(smi_name=name, driver=driver, smi_memory=memory)
except (OSError, subprocess.SubprocessError, ValueError):
    pass
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info.update(gpu=p.name, capability=f"{p.major}.{p.minor}", sms=p.multi_processor_count,
                gpu_memory_gib=round(p.total_memory / 2**30, 1))
    n, reps = 8192, 10
    for dtype in (torch.float16, torch.bfloat16):
        a = torch.randn(n, n, device="cuda", dtype=dtype)
        b = torch.randn(n, n, device="cuda", dtype=dtype)
        for _ in range(3):
            a @ b
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(reps):
            a @ b
        end.record()
        end.synchronize()
        seconds = start.elapsed_time(end) / 1000
        info[f"matmul_{str(dtype).split('.')[-1]}_tflops"] = round(reps * 2 * n**3 / seconds / 1e12, 1)
    info["matmul_method"] = f"{n}x{n}x{n} random, mean of {reps} after 3 warm-ups, CUDA events"
print(json.dumps(info, indent=1))
with open(os.environ["GC_ENV_JSON"], "w") as f:
    json.dump(info, f, indent=1)
PYEOF
    cp -f "$WORK/env.txt" "$OUT/env.txt"
}

run_tests() {
    local logf=$WORK/tests.log smoke=() f xdist=()
    : >"$logf"
    run_step tests_cuda 200 "$logf" "$PY" -m pytest -m cuda -q -rA -p no:cacheprovider --durations=10 tests/test_cuda.py
    for f in $SMOKE_FILES; do
        [ -f "$f" ] && smoke+=("$f")
    done
    if "$PY" -c 'import xdist' >/dev/null 2>&1 && [ "$(nproc)" -ge 8 ]; then xdist=(-n 8); fi
    if [ ${#smoke[@]} -gt 0 ]; then
        run_step tests_smoke 100 "$logf" "$PY" -m pytest -m "not slow and not cuda" -q -p no:cacheprovider "${xdist[@]}" "${smoke[@]}"
    fi
    touch "$WORK/tests.done"
    cp -f "$logf" "$OUT/tests.log"
}

sanity() {
    local logf=$WORK/stage1.log
    run_step import_cli 60 "$logf" "$PY" -c 'import speedrun.cli, sqlalchemy, alembic; print("speedrun.cli imports; SQLAlchemy", sqlalchemy.__version__, "Alembic", alembic.__version__)'
    run_step cli_recipes 60 "$logf" "$PY" -m speedrun recipes
    if [ "$MODE" != dryrun ]; then
        run_step import_airbench 60 "$logf" "$PY" -c 'import airbench; print("airbench from", airbench.__file__)'
    fi
}

# ------------------------------------------------------------------------------------------------------------

stage1() {
    : >"$WORK/stage1.log"
    rm -f "$WORK/stage1.done"
    local missing
    missing=$(stage_files "$SRC1" $PART1)
    if [ -n "$missing" ]; then
        log "FAILED: CIFAR-10 part 1 is missing:$missing (carry .gpu1)" | tee -a "$WORK/stage1.log"
        cp -f "$WORK/stage1.log" "$OUT/stage1.log"
        exit 3
    fi
    log "CIFAR-10 part 1 in $CIFAR: $(cd "$CIFAR" && ls $PART1 | tr '\n' ' ')" | tee -a "$WORK/stage1.log"
    if install_wheels >>"$WORK/stage1.log" 2>&1; then
        log "wheels installed into $SITE: $(ls "$SITE" | grep -iE 'dist-info$' | tr '\n' ' ')" | tee -a "$WORK/stage1.log"
    else
        log "FAILED: installing the wheels from $WHL (see stage1.log)" | tee -a "$WORK/stage1.log"
    fi
    environment_report
    log "environment: $(tr -d '\n' <"$WORK/env.json" 2>/dev/null | head -c 600)"
    sanity
    echo "$(date -u +%FT%TZ) $(cat /proc/sys/kernel/random/boot_id 2>/dev/null)" >"$WORK/stage1.done"
    if [ "$TESTS_IN" = stage1 ] || [ "$MODE" = dryrun ]; then
        run_tests
    fi
    cp -f "$WORK/stage1.log" "$OUT/stage1.log"
    log "stage1 done in $(($(date +%s) - START))s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
}

stage2_refuse() {
    local why=$1
    {
        echo "# GPU check (issue #19): stage2 FAILED before it started"
        echo
        echo "$why"
        echo
        echo "stage1 must run on this same machine first, and stage2 right after it (the machine stays warm"
        echo "only ~30 s after a call and forgets everything when it goes back). Run stage1, then stage2 at once."
    } >"$OUT/summary.md"
    cat "$OUT/summary.md"
    exit 3
}

stage2() {
    local missing
    if [ "$MODE" != dryrun ] && [ ! -f "$WORK/stage1.done" ]; then
        stage2_refuse "No $WORK/stage1.done: stage1 did not run on this machine (a fresh machine?)."
    fi
    missing=$(stage_files "$SRC1" $PART1)  # part 1 is on the machine since stage1 (or carried again)
    [ -n "$missing" ] && stage2_refuse "CIFAR-10 part 1 (from stage1) is not in $CIFAR:$missing"
    missing=$(stage_files "$SRC2" $PART2)
    [ -n "$missing" ] && stage2_refuse "CIFAR-10 part 2 is missing:$missing (carry .gpu2 in this call)"
    log "CIFAR-10 complete in $CIFAR"
    if [ "$MODE" != dryrun ] && [ ! -d "$SITE/sqlalchemy" ]; then
        log "no $SITE/sqlalchemy: installing the wheels again"
        install_wheels || log "FAILED: installing the wheels from $WHL"
    fi
    [ -f "$WORK/env.json" ] || environment_report

    if want prepare; then
        if [ -f "$WORK/prepare.done" ] && [ -f "$DATA/cifar-10-batches-py/test_batch" ]; then
            log "prepare: $DATA already prepared"
        else
            : >"$WORK/prepare.log"
            run_step prepare 120 "$WORK/prepare.log" "$PY" "$CIFAR/prepare.py" "$DATA" && touch "$WORK/prepare.done"
        fi
    fi
    local data=$DATA extra_resnet=() extra_muon=() airbench_runs=$AIRBENCH_RUNS muon_runs=$MUON_RUNS
    local resnet_epochs=$RESNET_EPOCHS
    if [ "$MODE" = dryrun ]; then
        # Tiny sizes: a 500-image test set (real images), 256 training images, one epoch, one run.
        data=$WORK/data-mini
        "$PY" - "$DATA/cifar-10-batches-py" "$data/cifar-10-batches-py" <<'PYEOF'
import pathlib, pickle, sys
src, dst = map(pathlib.Path, sys.argv[1:])
dst.mkdir(parents=True, exist_ok=True)
for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
    with open(src / name, "rb") as f:
        d = pickle.load(f, encoding="latin1")
    keep = 500 if name == "test_batch" else 2000
    d = {**d, "data": d["data"][:keep], "labels": d["labels"][:keep], "filenames": d["filenames"][:keep]}
    with open(dst / name, "wb") as f:
        pickle.dump(d, f)
print(f"mini CIFAR-10 in {dst}")
PYEOF
        extra_resnet=(--subset 256)
        extra_muon=(--subset 2000 --epochs 1)
        airbench_runs=2  # the benchmark needs two runs for an interval
        muon_runs=1
        resnet_epochs=1
    fi

    if want tests && [ "$TESTS_IN" != 0 ] && [ ! -f "$WORK/tests.done" ]; then
        run_tests
    fi

    if want resnet18; then
        rm -f "$WORK/resnet18.db" "$WORK/resnet18_show.json"
        : >"$WORK/resnet18.log"
        run_step resnet18 150 "$WORK/resnet18.log" "$PY" -m speedrun --db "$WORK/resnet18.db" train --bs 64 --lr 0.04 \
            --cosine --amp --epochs "$resnet_epochs" --seed 0 --device "$DEVICE" --data-dir "$data" \
            --title gpu-check-resnet18-default "${extra_resnet[@]}"
        if [ -f "$WORK/resnet18.db" ]; then
            "$PY" -m speedrun --db "$WORK/resnet18.db" show 1 --json >"$WORK/resnet18_show.json" 2>>"$WORK/resnet18.log" ||
                log "show 1 --json failed (see resnet18.log)"
        fi
    fi
    if want airbench; then
        : >"$WORK/airbench.log"
        run_step airbench 240 "$WORK/airbench.log" "$PY" benchmarks/bench_airbench_gpu.py --runs "$airbench_runs" \
            --data-dir "$data"
    fi
    if want muon; then
        rm -f "$WORK/muon.db" "$WORK/muon_list.json"
        : >"$WORK/muon.log"
        run_step muon 120 "$WORK/muon.log" "$PY" -m speedrun --db "$WORK/muon.db" train --recipe airbench94-muon \
            --repeat "$muon_runs" --seed 1 --device "$DEVICE" --data-dir "$data" --group gpu-check-muon "${extra_muon[@]}"
        if [ -f "$WORK/muon.db" ]; then
            "$PY" -m speedrun --db "$WORK/muon.db" list --json >"$WORK/muon_list.json" 2>>"$WORK/muon.log" ||
                log "list --json failed (see muon.log)"
        fi
    fi
    summarize
}

summarize() {
    local f
    GC_WORK=$WORK GC_OUT=$OUT GC_MODE=$MODE GC_REPO=$REPO GC_PY=$PY GC_DATA=$DATA GC_PYTHONPATH=$PYTHONPATH \
        timeout 60 "$PY" - <<'PYEOF'
"""Writes $OUT/summary.md and $OUT/results.json from what the steps printed and recorded (nothing else)."""
import json, os, re, statistics
from datetime import datetime, timezone
from pathlib import Path

WORK, OUT, MODE = Path(os.environ["GC_WORK"]), Path(os.environ["GC_OUT"]), os.environ["GC_MODE"]
# Reference figures quoted by issue #19 (not measured here; each is labelled where it is used):
A100_S_PER_EPOCH = 10.5          # the user's own A100 logs: ResNet-18, batch 64, AMP, s/epoch
FLOP_PER_IMAGE = 3.33e9          # ResNet-18 on CIFAR-10, forward + backward per trained image
MUON_PUBLISHED = (94.01, 2.59)   # airbench94_muon: accuracy %, seconds, on an A100
DATASHEET_DENSE_FP16_TFLOPS = {"H200": 989.5, "H100 80GB HBM3": 989.5, "A100": 312.0}  # NVIDIA datasheets, SXM, dense


def read(path):
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def load_json(path):
    try:
        return json.loads(read(path))
    except ValueError:
        return None


def step(name):
    rc = read(WORK / "steps" / f"{name}.rc").strip()
    return {"rc": rc or None, "seconds": read(WORK / "steps" / f"{name}.s").strip() or None,
            "command": read(WORK / "steps" / f"{name}.cmd").strip() or None,
            "status": ("NOT RUN" if not rc else "OK" if rc == "0" else "SKIPPED (no time left)" if rc == "skipped"
                       else "TIMEOUT" if rc in ("124", "137") else "FAILED")}


def tail(path, n=30):
    lines = read(path).splitlines()
    return "\n".join(lines[-n:]) if lines else "(empty log)"


def mean_std(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None, 0
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else None), len(xs)


def fmt(x, d=2, unit=""):
    return "n/a" if x is None else f"{x:.{d}f}{unit}"


def ms(xs, d=2, unit=""):
    m, s, n = mean_std(xs)
    return "n/a (n=0)" if m is None else f"{m:.{d}f}{unit} ± {fmt(s, d)} (std, n={n})"


BENCH_RUN = re.compile(r"^run (\d+): reference ([-\w.]+)% in ([-\w.]+)s \| ours ([-\w.]+)% in ([-\w.]+)s")


def parse_bench(text):
    runs = []
    for line in text.splitlines():
        m = BENCH_RUN.match(line.strip())
        if m:
            i, ra, rt, oa, ot = m.groups()
            runs.append({"run": int(i), "ref_acc": float(ra), "ref_s": float(rt), "ours_acc": float(oa),
                         "ours_s": float(ot)})
    own = [l for l in text.splitlines() if l.startswith(("GPU:", "reference airbench94", "ours (", "time ratio"))]
    return runs, own


def failed_block(lines, name, logf):
    s = step(name)
    if s["status"] not in ("OK", "NOT RUN"):
        expected = " (expected in a CPU dry run: it needs CUDA)" if MODE == "dryrun" and "no CUDA" in read(logf) else ""
        lines += [f"**{name}: {s['status']}**{expected} (rc {s['rc']}). Tail of {logf.name}:", "", "```", tail(logf),
                  "```", ""]


if MODE == "dryrun":  # the parser against the benchmark's own format string (no figure is written from this)
    src = read(Path(os.environ["GC_REPO"]) / "benchmarks" / "bench_airbench_gpu.py")
    assert 'f"run {i + 1}: reference {ref[-1][0]:.2f}% in {ref[-1][1]:.3f}s | "' in src, \
        "bench_airbench_gpu.py no longer prints its per-run line as gpu_check.sh parses it: update BENCH_RUN"
    i, ref, ours = 0, [(94.123, 3.4567, 9.0)], [(93.9, 3.1, 9.0)]
    sample = (f"run {i + 1}: reference {ref[-1][0]:.2f}% in {ref[-1][1]:.3f}s | "
              f"ours {ours[-1][0]:.2f}% in {ours[-1][1]:.3f}s")
    assert parse_bench(sample)[0] == [{"run": 1, "ref_acc": 94.12, "ref_s": 3.457, "ours_acc": 93.9, "ours_s": 3.1}]
    print("parser self-test: the benchmark's per-run line parses")


env = load_json(WORK / "env.json") or {}
results = {"mode": MODE, "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "env": env,
           "reference_figures_quoted": {"a100_s_per_epoch_user_logs": A100_S_PER_EPOCH,
                                        "resnet18_flop_per_trained_image": FLOP_PER_IMAGE,
                                        "airbench94_muon_published_a100": MUON_PUBLISHED},
           "steps": {}}
card = env.get("smi_name") or env.get("gpu") or "no CUDA GPU (CPU dry run)"
L = [f"# GPU check (issue #19){' — DRY RUN on CPU, tiny sizes: no figure here is a GPU result' if MODE == 'dryrun' else ''}",
     "",
     f"- date: {results['date_utc']}",
     f"- card: {card}; driver {env.get('driver', 'n/a')}; {env.get('smi_memory', '')}; compute capability "
     f"{env.get('capability', 'n/a')}, {env.get('sms', 'n/a')} SMs",
     f"- torch {env.get('torch', 'n/a')} (CUDA {env.get('cuda', 'n/a')}, cuDNN {env.get('cudnn', 'n/a')}), "
     f"Python {env.get('python', 'n/a')}",
     f"- measured dense matmul rate (8192³, CUDA events): fp16 {fmt(env.get('matmul_float16_tflops'), 1)} TFLOP/s, "
     f"bf16 {fmt(env.get('matmul_bfloat16_tflops'), 1)} TFLOP/s",
     f"- commands run from the repository root with PYTHONPATH={os.environ['GC_PYTHONPATH']}; "
     f"CIFAR-10 prepared by ../shared/data/cifar10/prepare.py into {os.environ['GC_DATA']}",
     ""]

# 1. tests
L += ["## 1. Tests on the GPU machine", ""]
tests_log = WORK / "tests.log"
for name in ("tests_cuda", "tests_smoke"):
    s = step(name)
    results["steps"][name] = s
    if s["command"]:
        L += [f"- `{s['command']}`: **{s['status']}** in {s['seconds']} s"]
summary_lines = [l for l in read(tests_log).splitlines()
                 if re.match(r"^=*\s*\d+ (passed|failed|skipped|error|deselected|xfailed|xpassed)", l.strip("= "))
                 or re.search(r"\b(passed|failed)\b.* in [\d.]+s", l)]
if summary_lines:
    L += ["", "```", *summary_lines, "```"]
outcomes = [l for l in read(tests_log).splitlines() if re.match(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED) ", l)]
if outcomes:
    L += ["", "<details><summary>per test</summary>", "", "```", *outcomes, "```", "</details>"]
if any(step(n)["status"] not in ("OK", "NOT RUN") for n in ("tests_cuda", "tests_smoke")):
    L += ["", "Tail of tests.log:", "", "```", tail(tests_log, 40), "```"]
L += [""]

# 2. the user's default
L += ["## 2. The user's default: ResNet-18, batch 64, lr 0.04, cosine, AMP", ""]
s = step("resnet18")
results["steps"]["resnet18"] = s
show = load_json(WORK / "resnet18_show.json")
if s["command"]:
    L += [f"`{s['command']}`: **{s['status']}** in {s['seconds']} s (wall, incl. start-up and evaluation)", ""]
if show and show.get("epoch_metrics"):
    eps = show["epoch_metrics"]
    L += ["| epoch | train s | images/s | train loss | val acc % |", "|---|---|---|---|---|"]
    L += [f"| {e['epoch']} | {fmt(e.get('duration_s'))} | {fmt(e.get('images_per_s'), 0)} | "
          f"{fmt(e.get('train_loss'), 4)} | {fmt(e.get('val_acc'))} |" for e in eps]
    steady = [e for e in eps if e["epoch"] >= 2] or eps
    sec = statistics.fmean(e["duration_s"] for e in steady)
    ips = statistics.fmean(e["images_per_s"] for e in steady)
    which = "epochs 2+" if steady is not eps else "epoch 1 only, which includes cuDNN autotuning"
    flops = ips * FLOP_PER_IMAGE
    r = {"epochs": eps, "steady_epochs": which, "s_per_epoch": sec, "images_per_s": ips,
         "achieved_tflops": flops / 1e12, "final_val_acc": show.get("final_val_acc"),
         "train_time_s": show.get("train_time_s"), "wall_time_s": show.get("wall_time_s"),
         "params": show.get("params"), "hardware": (show.get("env") or {}).get("hardware")}
    L += ["", f"- steady state, {which}: **{sec:.2f} s/epoch, {ips:,.0f} images/s**; "
              f"the user's A100 logs: about {A100_S_PER_EPOCH} s/epoch (issue #19) → "
              f"{A100_S_PER_EPOCH / sec:.2f}× the A100's speed",
          f"- achieved {flops / 1e12:.1f} TFLOP/s at {FLOP_PER_IMAGE / 1e9:.2f} GFLOP per trained image (issue #19's "
          f"figure for ResNet-18 fwd+bwd)"]
    measured = env.get("matmul_float16_tflops")
    if measured:
        r["share_of_measured_fp16_matmul"] = flops / 1e12 / measured
        L += [f"- share of this card's measured fp16 matmul rate ({measured:.0f} TFLOP/s): "
              f"**{100 * flops / 1e12 / measured:.1f}%**"]
    for key, peak in DATASHEET_DENSE_FP16_TFLOPS.items():
        if key in card and "NVL" not in card and "PCIe" not in card:
            r["share_of_datasheet_dense_fp16"] = flops / 1e12 / peak
            L += [f"- share of the datasheet's dense fp16/bf16 peak for {key} SXM ({peak:.0f} TFLOP/s): "
                  f"**{100 * flops / 1e12 / peak:.1f}%**"]
            break
    L += [f"- final val accuracy after {len(eps)} epochs: {fmt(show.get('final_val_acc'))}%; recorded "
          f"params: {json.dumps({k: show['params'].get(k) for k in ('batch_size', 'lr', 'cosine', 'amp', 'epochs', 'seed')})}; "
          f"machine: {json.dumps((show.get('extra') or {}).get('machine'))}"]
    results["resnet18"] = r
failed_block(L, "resnet18", WORK / "resnet18.log")
L += [""]

# 3. airbench94 side by side
L += ["## 3. airbench94: ours vs the reference (PyPI airbench 0.1.8), alternated", ""]
s = step("airbench")
results["steps"]["airbench"] = s
runs, own = parse_bench(read(WORK / "airbench.log"))
if s["command"]:
    L += [f"`{s['command']}`: **{s['status']}** in {s['seconds']} s", ""]
if runs:
    L += ["| run | reference acc % | reference s | ours acc % | ours s |", "|---|---|---|---|---|"]
    L += [f"| {r['run']} | {r['ref_acc']:.2f} | {r['ref_s']:.3f} | {r['ours_acc']:.2f} | {r['ours_s']:.3f} |"
          for r in runs]
    ref_t, our_t = mean_std([r["ref_s"] for r in runs])[0], mean_std([r["ours_s"] for r in runs])[0]
    our_acc = mean_std([r["ours_acc"] for r in runs])[0]
    ratio = our_t / ref_t if ref_t else None
    L += ["", "Speedrun time = CUDA events around the whitening init, the training epochs and the final TTA "
              "evaluation, for both (the reference's own `total_time_seconds`, ours `train_time_s`).", "",
          f"- reference: accuracy {ms([r['ref_acc'] for r in runs], 2, '%')}, time {ms([r['ref_s'] for r in runs], 3, ' s')}",
          f"- ours:      accuracy {ms([r['ours_acc'] for r in runs], 2, '%')}, time {ms([r['ours_s'] for r in runs], 3, ' s')}",
          f"- time ratio ours/reference (means): **{fmt(ratio, 3)}** (target <= 1.0: "
          f"{'met' if ratio is not None and ratio <= 1.0 else 'NOT met'}); "
          f"our mean accuracy {fmt(our_acc)}% (target >= 94.0: {'met' if our_acc is not None and our_acc >= 94.0 else 'NOT met'})"]
    results["airbench94"] = {"runs": runs, "ratio_ours_over_ref": ratio,
                             "ref": dict(zip(("acc_mean", "acc_std", "n"), mean_std([r["ref_acc"] for r in runs]))),
                             "ref_time": dict(zip(("mean", "std", "n"), mean_std([r["ref_s"] for r in runs]))),
                             "ours": dict(zip(("acc_mean", "acc_std", "n"), mean_std([r["ours_acc"] for r in runs]))),
                             "ours_time": dict(zip(("mean", "std", "n"), mean_std([r["ours_s"] for r in runs])))}
if own:
    L += ["", "The benchmark's own summary:", "", "```", *own, "```"]
failed_block(L, "airbench", WORK / "airbench.log")
L += [""]

# 4. airbench94-muon
L += ["## 4. airbench94-muon (ours) against the published 94.01% in 2.59 s (A100)", ""]
s = step("muon")
results["steps"]["muon"] = s
listed = load_json(WORK / "muon_list.json") or []
done = [r for r in listed if r.get("status") == "completed"]
if s["command"]:
    L += [f"`{s['command']}`: **{s['status']}** in {s['seconds']} s", ""]
if done:
    L += ["| run | seed | TTA acc % | speedrun s | mean epoch s |", "|---|---|---|---|---|"]
    L += [f"| {r['id']} | {r['params'].get('seed')} | {fmt(r.get('final_val_acc'))} | {fmt(r.get('train_time_s'), 3)} | "
          f"{fmt(r.get('mean_epoch_s'), 3)} |" for r in done]
    acc_m = mean_std([r.get("final_val_acc") for r in done])[0]
    t_m = mean_std([r.get("train_time_s") for r in done])[0]
    L += ["", f"- accuracy {ms([r.get('final_val_acc') for r in done], 2, '%')} "
              f"(published {MUON_PUBLISHED[0]}%: {acc_m - MUON_PUBLISHED[0]:+.2f} points)",
          f"- speedrun time {ms([r.get('train_time_s') for r in done], 3, ' s')} "
          f"(published {MUON_PUBLISHED[1]} s on an A100: ×{t_m / MUON_PUBLISHED[1]:.2f}; different card)"]
    results["muon"] = {"runs": [{k: r.get(k) for k in ("id", "final_val_acc", "train_time_s", "mean_epoch_s")}
                                | {"seed": r["params"].get("seed")} for r in done],
                       "acc": dict(zip(("mean", "std", "n"), mean_std([r.get("final_val_acc") for r in done]))),
                       "time": dict(zip(("mean", "std", "n"), mean_std([r.get("train_time_s") for r in done])))}
failed_block(L, "muon", WORK / "muon.log")
L += [""]

# steps
L += ["## Steps", "", "| step | status | seconds | command |", "|---|---|---|---|"]
for f in sorted((WORK / "steps").glob("*.rc"), key=lambda p: p.stat().st_mtime):
    s = step(f.stem)
    results["steps"].setdefault(f.stem, s)
    L += [f"| {f.stem} | {s['status']} | {s['seconds']} | `{s['command']}` |"]
(OUT / "summary.md").write_text("\n".join(L) + "\n")
(OUT / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
print("\n".join(L))
PYEOF
    for f in env.txt tests.log resnet18.log resnet18_show.json airbench.log muon.log; do
        [ -f "$WORK/$f" ] && cp -f "$WORK/$f" "$OUT/$f"
    done
    local n
    n=$(find "$OUT" -type f | wc -l)
    log "stage2 done in $(($(date +%s) - START))s; $n files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
    ((n > 8)) && log "WARNING: more than 8 files in \$OUT; only 8 come back"
    return 0
}

case "$MODE" in
    stage1) stage1 ;;
    stage2) stage2 ;;
    dryrun)
        rm -rf "$WORK/steps" "$WORK/tests.done" "$OUT" && mkdir -p "$WORK/steps" "$OUT"
        log "dry run: work in $WORK, data from ${SRC1} and ${SRC2}, python $PY"
        stage1
        # stage1's files came back from call 1; clear $OUT as the device does before each command
        rm -rf "$OUT" && mkdir -p "$OUT"
        stage2
        ;;
esac
