"""What machine a run happened on: detected, never typed by hand.

`detect_environment()` gives the facts the store keeps beside each run;
`hardware` is the short text people read ("Google Colab, Tesla T4",
"CPU: AMD EPYC (2 cores)") and that `hardware_class` understands.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any


def _run(cmd: list[str], cwd: str | Path | None = None, timeout: float = 5) -> str | None:
    """stdout of a command, or None when it is missing, fails or hangs."""
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@lru_cache(maxsize=1)
def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_flags() -> set[str]:
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def usable_cpus() -> list[int]:
    """CPUs this process may run on (respects taskset and container CPU sets)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return list(range(os.cpu_count() or 1))


def physical_cores() -> int:
    """Physical cores among the usable CPUs: hyper-threads share a core's FPUs, so count cores once."""
    cores = set()
    for cpu in usable_cpus():
        topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add((topo.joinpath("physical_package_id").read_text().strip(),
                       topo.joinpath("core_id").read_text().strip()))
        except OSError:
            return len(usable_cpus())
    return max(1, len(cores))


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 matrix products natively (AVX512-BF16 or AMX), where autocast pays off."""
    flags = cpu_flags()
    if flags & {"avx512_bf16", "amx_bf16"}:
        return True
    if flags:
        return False
    try:  # no /proc/cpuinfo (macOS, Windows): ask oneDNN
        import torch

        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def ram_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def is_colab() -> bool:
    return "google.colab" in sys.modules or any(k in os.environ for k in ("COLAB_RELEASE_TAG", "COLAB_GPU"))


def best_device_type() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _gpu_facts(device_type: str) -> dict[str, Any]:
    import torch

    facts: dict[str, Any] = {"gpu_name": None, "gpu_count": 0, "gpu_memory_gb": None, "cuda_version": None,
                             "driver_version": None}
    if device_type == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        facts.update(gpu_name=props.name, gpu_count=torch.cuda.device_count(),
                     gpu_memory_gb=round(props.total_memory / 2**30, 1), cuda_version=torch.version.cuda)
    elif device_type == "mps":
        facts.update(gpu_name="Apple MPS", gpu_count=1)
    if shutil.which("nvidia-smi"):
        out = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
        facts["driver_version"] = out.splitlines()[0].strip() if out else None
    return facts


def hardware_text(env: dict[str, Any]) -> str:
    """"Google Colab, Tesla T4", "NVIDIA H100 80GB HBM3", "Apple MPS (...)" or "CPU: <model> (N cores)"."""
    if env["device_type"] == "cuda" and env.get("gpu_name"):
        text = env["gpu_name"] if env.get("gpu_count", 1) <= 1 else f"{env['gpu_count']}× {env['gpu_name']}"
    elif env["device_type"] == "mps":
        text = f"Apple MPS ({env['cpu_model']})"
    else:
        text = f"CPU: {env['cpu_model']} ({env['cpu_cores']} cores)"
    return f"Google Colab, {text}" if env.get("is_colab") else text


def detect_environment(device_type: str | None = None) -> dict[str, Any]:
    """Facts about this machine for the device the run uses (the best available when None)."""
    import torch
    import torchvision

    device_type = device_type or best_device_type()
    env: dict[str, Any] = {"device_type": device_type, **_gpu_facts(device_type)}
    env.update(
        cpu_model=cpu_model(),
        cpu_cores=physical_cores(),
        ram_gb=ram_gb(),
        os=platform.platform(),
        python_version=platform.python_version(),
        torch_version=torch.__version__,
        torchvision_version=torchvision.__version__,
        hostname=socket.gethostname(),
        is_colab=is_colab(),
    )
    env["hardware"] = hardware_text(env)
    return env


def git_info(path: str | Path = ".") -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout holding `path`; (None, None) outside a checkout or without git."""
    if _run(["git", "rev-parse", "--is-inside-work-tree"], cwd=path) != "true":
        return None, None
    commit = _run(["git", "rev-parse", "HEAD"], cwd=path)  # None before the first commit
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=path)
    return commit or None, (bool(status) if status is not None else None)


def command_line(argv: list[str] | None = None) -> str:
    """The command a run was started with, as it is recorded: every URL in it (`--db URL`,
    `--db=URL`) without its credentials, so a password never reaches the database."""
    from speedrun.tracking.db import mask_urls

    return mask_urls(" ".join(sys.argv if argv is None else argv)) or ""
