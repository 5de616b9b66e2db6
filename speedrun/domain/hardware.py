"""Hardware classes: which runs compete with which.

A CPU run and an A100 run do not compete, so records and groups are kept per
class. The class comes from a detected GPU name, or from the free text the
user wrote ("Google Colab (...), T4 GPU", "AMD Ryzen 7 5700U, WSL (CPU)").
`hardware_class` reads a class from such a text; `hardware_class_of` is the
class a stored run competes in; `hardware_text` is the line a report prints.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

UNKNOWN_HARDWARE = "unknown"
# A GPU whose model nothing names ("Using device: cuda" and no more): two such runs may have had any two GPUs.
UNNAMED_GPU = "GPU"
# Classes that hold many machines (every CPU, every Apple chip): a run's own machine is its hardware text.
MACHINE_CLASSES = ("CPU", "MPS")

# Most specific first: "A100" must not be read as "A10", "H200" not as "H20".
_GPU_CLASSES = (
    "GH200",
    "H200",
    "H100",
    "H20",
    "A100",
    "A6000",
    "A5000",
    "A4000",
    "A40",
    "A30",
    "A10G",
    "A10",
    "L40S",
    "L40",
    "L4",
    "T4",
    "V100",
    "P100",
    "P4",
    "K80",
    "B200",
    "B100",
)


@lru_cache(maxsize=1)
def _gpu_patterns() -> tuple[tuple[str, re.Pattern], ...]:
    """The classes' patterns, compiled when a class is first asked for (not by every command's start)."""
    return tuple(
        (name, re.compile(rf"(?<![A-Za-z0-9]){name}(?![0-9A-Za-z])", re.IGNORECASE)) for name in _GPU_CLASSES
    )


_RTX = re.compile(r"\b(?:RTX|GTX)\s*-?\s*(\d{3,4})\s*(Ti|SUPER)?\b", re.IGNORECASE)
_APPLE = re.compile(r"\b(mps|apple\s+m\d|m[1-4]\s+(pro|max|ultra)?)\b", re.IGNORECASE)
_CPU_WORDS = re.compile(r"\b(cpu|ryzen|intel|core\s+i\d|xeon|epyc|no gpu|wsl)\b", re.IGNORECASE)


@lru_cache(maxsize=1024)  # a log of 2,000 runs names one machine 2,000 times
def hardware_class(description: str | None, device_type: str | None = None) -> str:
    """A short class such as "T4", "A100", "RTX 4090", "MPS" or "CPU"; "unknown" otherwise."""
    text = description or ""
    for name, pattern in _gpu_patterns():
        if pattern.search(text):
            return name
    match = _RTX.search(text)
    if match:
        suffix = f" {match.group(2).title() if match.group(2).lower() == 'super' else 'Ti'}" if match.group(2) else ""
        return f"RTX {match.group(1)}{suffix}"
    if device_type == "mps" or _APPLE.search(text):
        return "MPS"
    if device_type == "cpu":
        return "CPU"
    if device_type == "cuda":
        return UNNAMED_GPU
    if _CPU_WORDS.search(text):
        return "CPU"
    if re.search(r"\bgpu\b|\bcuda\b", text, re.IGNORECASE):
        return UNNAMED_GPU
    return UNKNOWN_HARDWARE


def hardware_class_of(run: Any) -> str:
    """The hardware class a run competes in ("T4", "A100", "CPU"; "unknown" without an environment)."""
    env = run.environment
    return env.hardware_class if env else UNKNOWN_HARDWARE


def hardware_text(run: Any) -> str | None:
    """The user's hardware text, else a description built from the detected environment.

    The built text always classifies (`hardware_class`) to the stored class,
    so a report imported back lands in the same hardware class.
    """
    env = run.environment
    if env is None:
        return None
    if env.hardware:
        return env.hardware
    if env.gpu_name:
        text = env.gpu_name + (f" x{env.gpu_count}" if env.gpu_count and env.gpu_count > 1 else "")
    elif env.cpu_model:
        text = f"{env.cpu_model} (CPU)" if env.device_type == "cpu" else env.cpu_model
    elif env.device_type:
        text = env.device_type.upper()
    else:
        return env.hardware_class if env.hardware_class != UNKNOWN_HARDWARE else None
    if env.hardware_class not in (UNKNOWN_HARDWARE, hardware_class(text, env.device_type)):
        text += f" ({env.hardware_class})"
    return text
