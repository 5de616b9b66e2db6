"""The user's console log format, written exactly as their main.py printed it.

`speedrun train` prints these lines and `speedrun report` renders log blocks
with them, so anything pasted from either reads back through `import-log`
with identical numbers.
"""

from __future__ import annotations

from typing import Any, Iterable

from speedrun.text import fmt_value

# Order and spelling of the `Config:` line of the user's script.
_CONFIG_KEYS = (
    ("lr", "LR"),
    ("batch_size", "BATCH_SIZE"),
    ("epochs", "EPOCHS"),
    ("cosine", "COSINE"),
    ("amp", "AMP"),
)


def config_line(params: dict[str, Any], extra_keys: Iterable[str] = ()) -> str:
    """`Config: LR=0.04, BATCH_SIZE=64, EPOCHS=10, COSINE=True, AMP=True`.

    The user's keys first, in their order; `extra_keys` (canonical names) follow
    upper-cased, so other hyperparameters survive the round trip too.
    """
    parts = [f"{label}={fmt_value(params[key])}" for key, label in _CONFIG_KEYS if key in params]
    for key in extra_keys:
        if key in params and key not in dict(_CONFIG_KEYS):
            parts.append(f"{key.upper()}={fmt_value(params[key])}")
    return "Config: " + ", ".join(parts)


def epoch_line(
    epoch: int,
    total_epochs: int,
    loss: float | None,
    val_acc: float | None,
    duration_s: float | None = None,
    elapsed_s: float | None = None,
) -> str:
    """`Epoch [3/10], Loss: 0.7856, Val Accuracy: 75.63%, Duration: 42.85s, Total: 127.8s`."""
    if loss is not None and val_acc is not None and duration_s is not None and elapsed_s is not None:
        # One format for the usual line: a report writes 200,000 of them at 10,000 runs.
        return (f"Epoch [{epoch}/{total_epochs}], Loss: {loss:.4f}, Val Accuracy: {val_acc:.2f}%, "
                f"Duration: {duration_s:.2f}s, Total: {elapsed_s:.1f}s")
    line = f"Epoch [{epoch}/{total_epochs}]"
    if loss is not None:
        line += f", Loss: {loss:.4f}"
    if val_acc is not None:
        line += f", Val Accuracy: {val_acc:.2f}%"
    if duration_s is not None:
        line += f", Duration: {duration_s:.2f}s"
    if elapsed_s is not None:
        line += f", Total: {elapsed_s:.1f}s"
    return line


def header_lines(
    device: str | None,
    param_count: int | None,
    params: dict[str, Any],
    data_load_s: float | None = None,
    *,
    amp: bool = False,
    seed: int | None = None,
    extra_config_keys: Iterable[str] = (),
) -> list[str]:
    lines = []
    if device:
        lines.append(f"Using device: {device}")
    if amp:
        lines.append("Using Automatic Mixed Precision (AMP).")
    if seed is not None:
        lines.append(f"Setting random seed: {seed}")
    lines.append("Pre-loading data...")
    if data_load_s is not None:
        lines.append(f"Data loaders created in {data_load_s:.2f} seconds.")
    if param_count is not None:
        lines.append(f"Model parameters: {param_count:,}")
    if params:
        lines.append(config_line(params, extra_config_keys))
    return lines


def footer_lines(train_time_s: float | None, final_val_acc: float | None) -> list[str]:
    lines = []
    if train_time_s is not None:
        lines.append(f"Finished Training. Training loop time: {train_time_s:.2f} seconds")
    if final_val_acc is not None:
        lines.append(f"Final Validation Accuracy: {final_val_acc:.2f}%")
    return lines
