"""The JSON contract of `list --json` and `show --json` (other tools rely on these names)."""

from __future__ import annotations

from typing import Any

from speedrun.domain.efficiency import efficiency_json, epoch_efficiencies, run_efficiency
from speedrun.domain.hardware import hardware_class_of
from speedrun.domain.records import EPOCH_FIELDS
from speedrun.text import epochs_text
from speedrun.tracking.store import ENV_FIELDS, RunView


def run_date(run: Any) -> str:
    """When the run happened: its start, or what its notebook section stated. An imported
    run that states no date says when it was imported, never passing that off as its date."""
    if run.started_at is not None:
        return run.started_at.strftime("%Y-%m-%d")
    if run.source != "train" and run.created_at is not None:
        return f"imported {run.created_at:%Y-%m-%d}"
    return run.created_at.strftime("%Y-%m-%d") if run.created_at else "—"


def run_summary(run: RunView) -> dict[str, Any]:
    params = run.param_dict
    summary = {
        "id": run.id,
        "label": run.display_label,
        "title": run.title,
        "status": run.status,
        "source": run.source,
        "model": params.get("model"),
        "hardware": hardware_class_of(run),
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "date": run_date(run),
        "series": getattr(run, "series_name", None),
        "epochs": run.epochs_planned,
        "epochs_completed": run.epochs_completed,
        "epochs_text": epochs_text(run.epochs_completed, run.epochs_planned, run.final_val_acc),
        "final_val_acc": run.final_val_acc,
        "peak_val_acc": run.peak_val_acc,
        "peak_epoch": run.peak_epoch,
        "train_time_s": run.train_time_s,
        "mean_epoch_s": run.mean_epoch_s,
        "efficiency": efficiency_json(run_efficiency(run)),
        "group": run.group_name,
        "tags": [t.tag for t in run.tags],
        "params": params,
    }
    if run.damaged:  # stored values that could not be read (left out above)
        summary["damaged"] = run.damaged
    return summary


def run_detail(run: RunView) -> dict[str, Any]:
    env = run.environment
    data = run_summary(run)
    data.update(
        {
            "uuid": run.uuid,
            "hypothesis": run.hypothesis,
            "description": run.description,
            "analysis": run.analysis,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "wall_time_s": run.wall_time_s,
            "data_load_s": run.data_load_s,
            "param_count": run.param_count,
            "target_acc": run.target_acc,
            "target_time_s": run.target_time_s,
            "error": run.error,
            "command": run.command,
            "git_commit": run.git_commit,
            "git_dirty": run.git_dirty,
            "source_file": run.source_file,
            "unparsed_config": run.unparsed_config,
            "content_hash": run.content_hash,
            "extra": run.extra or {},
            "env": (
                {"hardware": env.hardware, "hardware_class": env.hardware_class}
                | {k: getattr(env, k) for k in ENV_FIELDS}
                if env
                else {}
            ),
            "epoch_metrics": [
                {"epoch": e.epoch} | {f: getattr(e, f) for f in EPOCH_FIELDS}
                | {"tflops": rate.tflops if rate else None, "mfu": rate.mfu if rate else None}
                | ({"extra": e.extra} if e.extra else {})
                for e, rate in zip(run.epochs, epoch_efficiencies(run))
            ],
        }
    )
    return data
