"""Training a recipe once, or once per seed as one group of repeats, and recording each run.

The seed policy lives here: `--seed S --repeat N` trains seeds S, S+1, ...;
`--seeds 1,2,3` trains those; otherwise seeds are drawn at random, never the
same one twice (a repeat with the same seed measures nothing). Each repeat is
an ordinary run, recorded in its group; Ctrl-C or a failure keeps the
finished ones and still prints the group's summary.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from speedrun.errors import SpeedrunError
from speedrun.domain.records import RunRecord
from speedrun.training.config import TrainConfig, random_seed
from speedrun.training.recording import Recorder, Reporter, TrainResult, recorded_line


class Trainer(Protocol):
    """What a run needs of a recipe (speedrun.recipes.Recipe is one): its name and its trainer."""

    name: str

    def train(self, config: TrainConfig, recorder: Recorder, *, record: RunRecord, reporter: Reporter) -> TrainResult: ...


MAX_REPEATS = 10_000  # runs of one configuration: far more than any study, far less than a machine's memory


def seed_plan(seed: int | None, repeat: int | None, seeds: str | None) -> list[int | None] | None:
    """The seed of every repeat (None: draw one), or None for a plain single run."""
    if repeat is not None and not 1 <= repeat <= MAX_REPEATS:
        raise SpeedrunError(f"--repeat must be from 1 to {MAX_REPEATS:,}, not {repeat:,}")
    if seeds is not None:
        try:
            listed = [int(s) for s in seeds.split(",") if s.strip()]
        except ValueError:
            raise SpeedrunError(f"--seeds must be comma-separated integers, not {seeds!r}") from None
        if len(listed) > MAX_REPEATS:
            raise SpeedrunError(f"--seeds lists {len(listed):,} seeds; at most {MAX_REPEATS:,} are allowed")
        if not listed or len(set(listed)) != len(listed):
            raise SpeedrunError(f"--seeds must list distinct integers, not {seeds!r}")
        if repeat is not None and repeat != len(listed):
            raise SpeedrunError(f"--repeat {repeat} disagrees with the {len(listed)} seeds of --seeds")
        if seed is not None:
            raise SpeedrunError("give either --seed or --seeds, not both")
        return listed
    if repeat is None:
        return None
    return [seed + i for i in range(repeat)] if seed is not None else [None] * repeat


def distinct_seeds(first: int | None, wanted: list[int | None]) -> list[int]:
    """Fill in random seeds (the first repeat takes `first`, the config's resolved seed), never repeating one."""
    chosen: list[int] = []
    for s in wanted:
        if s is None:
            s = first if not chosen and first is not None else random_seed()
            while s in chosen:
                s = random_seed()
        chosen.append(s)
    return chosen


def default_group(recipe_name: str) -> str:
    return f"{recipe_name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def train_runs(recipe: Trainer, config: TrainConfig, recorder: Recorder, template: RunRecord, *,
               seeds: list[int | None] | None, group: str | None, reporter: Reporter) -> list[TrainResult]:
    """Train `config` once (no `seeds`) or once per seed in `group`; every run is recorded as it goes.

    `template` carries what the user said about the run(s): title, notes, tags, command.
    """
    if seeds is None or (len(seeds) == 1 and group is None):
        return [train_one(recipe, config, recorder, copy.deepcopy(template), reporter)]
    group = group or default_group(recipe.name)
    chosen = distinct_seeds(config.seed, seeds)
    results: list[TrainResult] = []
    try:
        for i, seed in enumerate(chosen, 1):
            reporter.line(f"Repeat {i}/{len(chosen)} of group {group}: seed {seed}")
            record = copy.deepcopy(template)
            record.group = group
            results.append(train_one(recipe, replace(config, seed=seed), recorder, record, reporter))
    finally:  # also after Ctrl-C or a failure: what the finished repeats showed
        reporter.line(group_summary(group, [r.final_val_acc for r in results], len(chosen)))
    return results


def train_one(recipe: Trainer, config: TrainConfig, recorder: Recorder, record: RunRecord,
              reporter: Reporter) -> TrainResult:
    """One run, with the machine's environment and the code's git state recorded alongside."""
    from speedrun.tracking.environment import detect_environment, git_info

    record.env = detect_environment(config.device)
    record.git_commit, record.git_dirty = git_info(Path.cwd())
    result = recipe.train(config, recorder, record=record, reporter=reporter)
    reporter.line(recorded_line(recorder, result.run_id))
    return result


def group_summary(group: str, finals: list[float | None], planned: int) -> str:
    """`Group g1: final accuracy over 2 repeats: 94.01 ± 0.12 (n=2), std 0.05 (mean ± 95% CI half-width)`."""
    from speedrun.domain.stats import describe, fmt_mean_ci

    desc = describe(finals)
    spread = f", std {desc.std:.2f}" if desc.std is not None else ""
    done = f"{len(finals)} of {planned} repeats" if len(finals) != planned else f"{planned} repeats"
    return f"Group {group}: final accuracy over {done}: {fmt_mean_ci(desc)}{spread} (mean ± 95% CI half-width)"
