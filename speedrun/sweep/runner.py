"""Running a sweep: an Optuna study in the runs' own database, each trial one or more recorded runs.

The study lives in the database the runs go to (Optuna's RDB storage: its
tables beside speedrun's), so a sweep on the PostgreSQL team store is shared
by every machine that runs `speedrun sweep --name NAME` with the same search:
each is a worker that takes the next trial; no coordinator.

How trials are handed out. A grid is enqueued point by point when the sweep
is created; random and TPE sweeps sample a new point per trial. Deciding
whether a worker should start another trial (a waiting grid point, or fewer
trials than planned) and taking it happen under one lock of the database
(`Store.exclusive`), so two workers never take the same grid point and a
sweep never runs more trials than planned.

A trial trains its setting `repeat` times, with the seeds S, S+1, ... that
every trial shares (common random numbers: differences between trials are
differences of setting, not of luck of the draw), all runs in the group named
after the sweep. Its value is the mean of the objective over its runs.
While the first repeat trains, each epoch's val accuracy goes to the pruner
(Optuna's median pruner, on by default, its start-up trials scaled to the
sweep); a trial it stops ends as `pruned`, and so does its run.

How a trial ends, as its runs did: complete, pruned, failed (a setting the
recipe refuses fails for good; one whose training failed may be retried),
interrupted (Ctrl-C) or died (its worker stopped without a word). Ctrl-C
leaves the finished trials; `sweep --resume NAME` (or the same command again)
gives failed, interrupted and died trials back to the queue as retries of
the same trial, so only the missing ones run. An error of the machine rather
than of the setting (no data set, no such device, the database gone) takes
no trial: the trial goes back to the queue as it was, and the worker stops
with that one error.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

from speedrun.analysis.metrics import Metric, metric_named
from speedrun.errors import RunNotFound, SettingRefused, SpeedrunError
from speedrun.sweep.space import SAMPLERS, SearchSpace, config_values, setting_text
from speedrun.tracking import liveness
from speedrun.domain.records import EpochRecord, RunRecord, utcnow
from speedrun.text import counted

if TYPE_CHECKING:  # torch comes with the trainer: imported when a sweep trains, not to read one
    from speedrun.training.recording import Recorder, Reporter
SPEC_ATTR = "speedrun"  # the study's user attribute that holds the sweep's spec
RUNS_ATTR = "runs"  # a trial's user attribute: the ids of its runs
INVALID_ATTR = "invalid"  # a trial's user attribute: why its setting was refused (never queued again)
FAILED_ATTR = "failed"  # a failed trial's user attribute: why (out of memory, no value to report)
ENDED_ATTR = "ended"  # a failed trial's user attribute: "interrupted", "died" or "returned" (see trial_state)
SLOT_ATTR = "retry_of"  # a queued-again trial's user attribute: the number of the trial it continues
RETRY_ATTR = "retry"  # with it: which retry it is (0: the same trial given back before it trained)


@dataclass
class SweepSpec:
    """Everything that defines a sweep; stored with its study so every worker and resume agree."""

    name: str
    recipe: str
    space: SearchSpace
    sampler: str
    trials: int  # planned trials (a grid: its points)
    repeat: int = 1
    objective: str = "final_accuracy"
    prune: bool = True
    seed: int = 0  # the first repeat's seed in every trial

    @property
    def metric(self) -> Metric:
        return metric_named(self.objective)

    @property
    def direction(self) -> str:
        return "maximize" if self.metric.higher_is_better else "minimize"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "recipe": self.recipe, "space": self.space.to_json(), "sampler": self.sampler,
                "trials": self.trials, "repeat": self.repeat, "objective": self.objective, "prune": self.prune,
                "seed": self.seed}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SweepSpec:
        return cls(**{**data, "space": SearchSpace.from_json(data["space"])})

    def differences(self, other: SweepSpec) -> list[str]:
        """What `other` (a worker's command line) sets differently from this stored sweep."""
        mine, theirs = self.to_json(), other.to_json()
        return [k for k in mine if k != "seed" and mine[k] != theirs[k]]


def plan(name: str, recipe: str, space: SearchSpace, *, sampler: str | None, trials: int | None, repeat: int,
         objective: str, prune: bool, seed: int) -> SweepSpec:
    """A checked spec from the command line: a grid by default when every option is a list."""
    sampler = (sampler or ("grid" if space.is_grid else "tpe")).lower()
    if sampler not in SAMPLERS:
        raise SpeedrunError(f"--sampler must be one of {', '.join(SAMPLERS)}, not {sampler!r}")
    from speedrun.training.repeats import MAX_REPEATS

    if not 1 <= repeat <= MAX_REPEATS:
        raise SpeedrunError(f"--repeat must be from 1 to {MAX_REPEATS:,}, not {repeat:,}")
    metric_named(objective)  # checked now, not after the first trial
    if sampler == "grid":
        points = len(space.grid())
        if trials is not None and trials != points:
            raise SpeedrunError(f"--trials {trials} disagrees with the grid's {points} points; leave --trials out")
        trials = points
    elif trials is None:
        raise SpeedrunError(f"--trials is needed with --sampler {sampler}: how many settings to try")
    if trials < 1:
        raise SpeedrunError(f"--trials must be at least 1, not {trials}")
    return SweepSpec(name, recipe, space, sampler, trials, repeat, objective.strip().lower(), prune, seed)


# --------------------------------------------------------------------------- the study


def _quiet_optuna():
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    return optuna


STUDY_TABLE = "studies"  # Optuna's; absent until the database's first sweep


def storage_of(store: Any, *, reading: bool = False):
    """Optuna's storage in the store's own database.

    Optuna keeps its schema version in Alembic's default `alembic_version`;
    speedrun keeps its own in `speedrun_version` (tracking/db.py), so Optuna's
    schema check, `optuna.load_study` and optuna-dashboard all see Optuna's.
    `reading`: only to read sweeps back; a store open for reading only (`speedrun ui`)
    then gets a storage whose connections refuse writes too (db.read_only_connection).
    """
    optuna = _quiet_optuna()
    from speedrun.tracking.db import BUSY_TIMEOUT_S, POSTGRES_CONNECT_ARGS, read_only_connection

    if store.read_only and not reading:
        raise SpeedrunError(f"cannot sweep in database {store.label}: {store.read_only}")
    postgres = store.engine.dialect.name == "postgresql"
    engine_kwargs = ({"connect_args": POSTGRES_CONNECT_ARGS, "pool_pre_ping": True} if postgres
                     else {"connect_args": {"timeout": BUSY_TIMEOUT_S}})
    url = store.url
    if store.read_only:
        url, engine_kwargs = read_only_connection(url, engine_kwargs)
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, skip_table_creation=bool(store.read_only))


def sweep_names(store: Any) -> list[str]:
    """The sweeps recorded in the database, oldest first (reading creates no table)."""
    if not store.has_table(STUDY_TABLE):
        return []
    optuna = _quiet_optuna()
    storage = storage_of(store, reading=True)
    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
            if SPEC_ATTR in s.user_attrs]


def load(store: Any, name: str):
    """(study, spec) of the sweep `name`; SpeedrunError naming the known sweeps when there is none."""
    optuna = _quiet_optuna()
    try:
        if not store.has_table(STUDY_TABLE):
            raise KeyError(name)
        study = optuna.load_study(study_name=name, storage=storage_of(store, reading=True))
    except KeyError:
        known = sweep_names(store)
        hint = f"; sweeps here: {', '.join(known)}" if known else "; there are no sweeps here yet"
        raise SpeedrunError(f"no sweep named {name!r} in {store.label}{hint}") from None
    return study, _spec_of(store, study)


def _spec_of(store: Any, study) -> SweepSpec:
    """The spec a sweep stored with its study; SpeedrunError for a study speedrun did not make."""
    if SPEC_ATTR not in study.user_attrs:
        raise SpeedrunError(f"study {study.study_name!r} in {store.label} was not made by `speedrun sweep`")
    return SweepSpec.from_json(study.user_attrs[SPEC_ATTR])


def _sampler(spec: SweepSpec):
    optuna = _quiet_optuna()
    if spec.sampler == "tpe":
        # Optuna's default of 10 random start-up trials would leave a short sweep all random.
        return optuna.samplers.TPESampler(n_startup_trials=min(10, max(2, spec.trials // 3)))
    return optuna.samplers.RandomSampler()  # a grid's points are all enqueued; this never picks one


def startup_trials(planned: int) -> int:
    """Trials that finish before the pruner judges any: a quarter of the sweep, at least 2 (a median of
    one trial is that trial's luck) and at most Optuna's default of 5. A 4-trial sweep prunes from its
    third trial; Optuna's 5 would never prune a sweep of 5 trials or fewer."""
    return max(2, min(5, planned // 4))


def make_pruner(spec: SweepSpec):
    """Optuna's median pruner: a trial whose val accuracy after an epoch is below the median of the
    completed trials' at that epoch stops, once `startup_trials` of them completed."""
    optuna = _quiet_optuna()
    return (optuna.pruners.MedianPruner(n_startup_trials=startup_trials(spec.trials)) if spec.prune
            else optuna.pruners.NopPruner())


def open_sweep(store: Any, spec: SweepSpec | None, name: str, notify: Callable[[str], None]):
    """The study to work on: `spec`'s new sweep, or the stored one (`spec` None: resume;
    a `spec` that disagrees with the stored one is refused). Failed trials and trials
    whose training died are given back to the queue first."""
    optuna = _quiet_optuna()
    if spec is None:
        load(store, name)  # resuming: a sweep that is not there is an error before anything is created
    with store.exclusive(f"sweep {name}"):
        storage = storage_of(store)
        try:
            stored = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            stored = None
        if stored is None:
            if spec is None:
                load(store, name)  # raises, naming the sweeps there are
            study = optuna.create_study(study_name=name, storage=storage, direction=spec.direction,
                                        sampler=_sampler(spec), pruner=make_pruner(spec))
            study.set_user_attr(SPEC_ATTR, spec.to_json())
            if spec.sampler == "grid":
                for point in spec.space.grid():
                    study.enqueue_trial(point)
            notify(f"Sweep {name}: {counted(spec.trials, 'trial')} of {counted(spec.repeat, 'run')} each, "
                   f"{spec.sampler} search, objective {spec.metric.name}")
            return study, spec
        known = _spec_of(store, stored)
        if spec is not None and (changed := known.differences(spec)):
            raise SpeedrunError(
                f"sweep {name!r} already exists with a different {', '.join(changed)}; continue it with "
                f"`speedrun sweep --resume {name}`, or give this search another --name")
        study = optuna.load_study(study_name=name, storage=storage, sampler=_sampler(known),
                                  pruner=make_pruner(known))
        given_back = _requeue(store, study)
        done = sum(t.state.is_finished() and t.state.name != "FAIL" for t in study.get_trials(deepcopy=False))
        notify(f"Sweep {name}: {done} of {known.trials} trials done" +
               (f"; {given_back} given back to the queue" if given_back else ""))
        return study, known


def _requeue(store: Any, study) -> int:
    """Failed trials (Ctrl-C, a crash) and running ones whose training died go back to the queue,
    once per setting: a setting already done, queued or training again is not queued twice, and
    a setting the recipe refused (`INVALID_ATTR`) never."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    for t in trials:
        if t.state == TrialState.RUNNING and _dead(store, t):
            _end(study, t, "died")
    trials = study.get_trials(deepcopy=False)
    covered = [t.params for t in trials if t.state != TrialState.FAIL] + \
              [t.system_attrs.get("fixed_params") for t in trials if t.state == TrialState.WAITING]
    queued = 0
    for t in trials:
        if t.state == TrialState.FAIL and t.params and t.params not in covered and INVALID_ATTR not in t.user_attrs:
            _queue_again(study, t)
            covered.append(t.params)
            queued += 1
    return queued


def _end(study, trial, how: str) -> None:
    """End a trial as failed, noting how (`ENDED_ATTR`): its runs say "interrupted" or "died", and
    "returned" is a trial given back for an error of the machine. Optuna's states have no word for
    these, so the note is a user attribute, set through the storage (a FrozenTrial has no setter)."""
    from optuna.trial import TrialState

    study._storage.set_trial_user_attr(trial._trial_id, ENDED_ATTR, how)
    study.tell(trial.number, state=TrialState.FAIL)


def _queue_again(study, trial) -> None:
    """Queue a failed trial's setting again as the same trial: its retry (numbered as one), or the trial
    itself when it was given back before it trained (a "returned" trial with no run)."""
    slot = trial.user_attrs.get(SLOT_ATTR, trial.number)
    retry = trial.user_attrs.get(RETRY_ATTR, 1 if SLOT_ATTR in trial.user_attrs else 0)
    fresh = trial.user_attrs.get(ENDED_ATTR) == "returned" and not trial.user_attrs.get(RUNS_ATTR)
    study.enqueue_trial(trial.params, user_attrs={SLOT_ATTR: slot, RETRY_ATTR: retry + (0 if fresh else 1)})


def trial_label(trial) -> str:
    """How the user counts a trial: its number, or the number of the trial it retries (`2, retry 1`),
    so a retry never looks like a trial beyond the planned ones."""
    slot, retry = trial.user_attrs.get(SLOT_ATTR), trial.user_attrs.get(RETRY_ATTR, 1)
    if slot is None:
        return str(trial.number)
    return f"{slot}, retry {retry}" if retry else str(slot)


def trial_state(store: Any, trial) -> str:
    """How a trial ended (or stands), as its runs did: complete, pruned, fail, interrupted, died or
    returned (given back for an error of the machine), else Optuna's running or waiting. A running
    trial whose worker is gone is "died" here, though only a worker's resume ends it in the study."""
    state = trial.state.name.lower()
    if state == "fail":
        return trial.user_attrs.get(ENDED_ATTR, "fail")
    if state == "running" and _dead(store, trial):
        return "died"
    return state


def shown(state: str, trial) -> bool:
    """Whether a trial counts as one: a trial given back before it trained did nothing (its setting
    waits in the queue under its number)."""
    return not (state == "returned" and not trial.user_attrs.get(RUNS_ATTR))


def _dead(store: Any, trial) -> bool:
    """A running trial nobody works on any more: the process that trained its last run is gone
    (read through liveness: between two repeats, the run has finished but its worker lives), or
    it never began a run and was started longer ago than a heartbeat may lag."""
    from datetime import datetime

    now = utcnow()
    run_ids = trial.user_attrs.get(RUNS_ATTR) or []
    if run_ids:
        try:
            last = store.get_run(run_ids[-1])
        except RunNotFound:  # deleted by hand: nothing trains it
            return True
        return liveness.is_dead(pid=last.pid, host=last.host, started=last.process_start,
                                heartbeat_at=last.heartbeat_at, now=now)
    started = trial.datetime_start
    return started is None or datetime.now() - started > liveness.STALE_AFTER


# --------------------------------------------------------------------------- one worker


class TrialRecorder:
    """Records into `inner`, notes the trial's runs, and reports each epoch to the pruner."""

    def __init__(self, inner: Recorder, trial, *, higher_is_better: bool):
        self.inner, self.trial, self.higher_is_better = inner, trial, higher_is_better
        self.run_ids: list[int] = []
        self.reporting = True  # the first repeat only: its epochs are the trial's learning curve

    @property
    def label(self) -> str:
        return self.inner.label

    def begin_run(self, record: RunRecord) -> int:
        run_id = self.inner.begin_run(record)
        self.run_ids.append(run_id)
        self.trial.set_user_attr(RUNS_ATTR, self.run_ids)
        return run_id

    def add_epoch(self, run_id: int, epoch: EpochRecord) -> None:
        self.inner.add_epoch(run_id, epoch)
        if not self.reporting or epoch.val_acc is None:
            return
        # The pruner compares in the study's direction: accuracy up, or the error rate down.
        self.trial.report(epoch.val_acc if self.higher_is_better else 100.0 - epoch.val_acc, epoch.epoch)
        if self.trial.should_prune():
            from speedrun.training.recording import RunStopped

            raise RunStopped("pruned", f"pruned after epoch {epoch.epoch}: val accuracy {epoch.val_acc:.2f}% "
                                       f"below the median of earlier trials at that epoch")

    def heartbeat(self, run_id: int) -> None:
        self.inner.heartbeat(run_id)

    def finish_run(self, run_id: int, status: str, **kwargs: Any) -> None:
        self.inner.finish_run(run_id, status, **kwargs)


@dataclass
class WorkerResult:
    """What this worker did: trials by how they ended."""

    completed: list[int] = field(default_factory=list)
    pruned: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def run_worker(store: Any, recorder: Recorder, study, spec: SweepSpec, *, device: str, data_dir: str,
               template: RunRecord, reporter: Reporter, budget_s: float | None = None) -> WorkerResult:
    """Take trials until the sweep has none left (or the budget is spent), training each."""
    from optuna.trial import TrialState

    from speedrun.recipes import get_recipe

    recipe = get_recipe(spec.recipe)
    started = time.monotonic()
    result = WorkerResult()
    distributions = spec.space.distributions()
    while True:
        if budget_s is not None and time.monotonic() - started >= budget_s:
            reporter.line(f"Sweep {spec.name}: the budget is spent; no new trial starts "
                          f"(resume with `speedrun sweep --resume {spec.name}`)")
            break
        with store.exclusive(f"sweep {spec.name}"):
            trials = study.get_trials(deepcopy=False)
            waiting = sum(t.state == TrialState.WAITING for t in trials)
            taken = sum(t.state != TrialState.FAIL for t in trials)  # done, training or queued
            if not waiting and (spec.sampler == "grid" or taken >= spec.trials):
                break
            trial = study.ask(distributions)
        _run_trial(store, recorder, study, trial, spec, recipe, device=device, data_dir=data_dir,
                   template=template, reporter=reporter, result=result)
    return result


def _give_back(store: Any, study, trial, spec: SweepSpec, label: str, exc: SpeedrunError) -> SpeedrunError:
    """An error of this machine, not of the setting: the trial goes back to the queue as it was (another
    worker, or this one once fixed, trains it) and the worker stops with the error, saying so."""
    from sqlalchemy.exc import SQLAlchemyError

    def frozen():
        return next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)

    try:
        with store.exclusive(f"sweep {spec.name}"):
            _end(study, frozen(), "returned")
            _queue_again(study, frozen())
        where = "is back in the queue"
    except (SQLAlchemyError, SpeedrunError):  # the database itself is gone: the next worker finds it died
        where = "goes back to the queue when the next worker starts"
    return SpeedrunError(f"{exc} (sweep {spec.name}: trial {label} {where}; continue with "
                         f"`speedrun sweep --resume {spec.name}` once this is fixed)")


def _run_trial(store, recorder, study, trial, spec: SweepSpec, recipe, *, device, data_dir, template,
               reporter: Reporter, result: WorkerResult) -> None:
    from optuna.trial import TrialState

    from speedrun.training.recording import RunInterrupted, RunStopped, TrainingFailed
    from speedrun.training.repeats import train_one

    setting = setting_text(trial.params)
    label = trial_label(trial)
    reporter.line(f"Trial {label} of sweep {spec.name} ({spec.trials} planned): {setting}")
    metric = spec.metric
    trial_recorder = TrialRecorder(recorder, trial, higher_is_better=metric.higher_is_better)

    def refused(exc: SpeedrunError) -> None:  # the setting itself: trying it again cannot help
        trial.set_user_attr(INVALID_ATTR, str(exc))
        study.tell(trial, state=TrialState.FAIL)
        result.failed.append(trial.number)
        reporter.line(f"Trial {label} failed: {exc}")

    config = None
    try:
        config = recipe.configure(**config_values({**spec.space.fixed, **trial.params}),
                                  device=device, data_dir=data_dir)
        config = config.resolve()  # the machine's part: the device asked for is here
        for repeat in range(spec.repeat):
            record = copy.deepcopy(template)
            record.group = spec.name
            record.title = record.title or f"{spec.name} trial {label}: {setting}"
            trial_recorder.reporting = repeat == 0
            train_one(recipe, replace(config, seed=spec.seed + repeat), trial_recorder, record, reporter)
    except RunStopped as exc:
        study.tell(trial, state=TrialState.PRUNED)
        result.pruned.append(trial.number)
        reporter.line(f"Trial {label}: {exc.reason}")
        return
    except (KeyboardInterrupt, RunInterrupted):
        trial.set_user_attr(ENDED_ATTR, "interrupted")
        study.tell(trial, state=TrialState.FAIL)
        raise
    except TrainingFailed as exc:  # out of memory, a device error: this setting, here; the others still can
        trial.set_user_attr(FAILED_ATTR, str(exc))
        study.tell(trial, state=TrialState.FAIL)
        result.failed.append(trial.number)
        reporter.line(f"Trial {label} failed: {exc}")
        return
    except SpeedrunError as exc:
        if config is None or isinstance(exc, SettingRefused):  # the recipe refuses the setting, for good
            refused(exc)
            return
        # The machine's (no data set, no such device, no database): no trial is spent on it.
        raise _give_back(store, study, trial, spec, label, exc) from None
    except BaseException:
        study.tell(trial, state=TrialState.FAIL)
        raise
    values = [v for r in store.get_runs(trial_recorder.run_ids) if (v := metric.value(r)) is not None]
    # A target never reached is the worst time there is; no value at all is a failed trial.
    if not values and metric.target is not None:
        values = [math.inf]
    if not values:
        trial.set_user_attr(FAILED_ATTR, f"no {metric.name} to report")
        study.tell(trial, state=TrialState.FAIL)
        result.failed.append(trial.number)
        reporter.line(f"Trial {label}: no {metric.name} to report; counted as failed")
        return
    value = sum(values) / len(values)
    study.tell(trial, value)
    result.completed.append(trial.number)
    over = f" (mean of {len(values)} runs)" if len(values) > 1 else ""
    reporter.line(f"Trial {label}: {metric.name} {metric.text(value) if math.isfinite(value) else 'not reached'}{over}")


# --------------------------------------------------------------------------- reading a sweep back


def trial_infos(store: Any, study) -> list:
    """The sweep's trials with their runs (RunViews) read from the store, each in the state its runs
    tell (`trial_state`); a trial given back before it trained is left out."""
    from speedrun.sweep.summary import TrialInfo

    trials = study.get_trials(deepcopy=False)
    wanted = [i for t in trials for i in t.user_attrs.get(RUNS_ATTR) or []]
    views = _views(store, wanted)
    infos = []
    for t in trials:
        if not shown(state := trial_state(store, t), t):
            continue
        runs = [views[i] for i in t.user_attrs.get(RUNS_ATTR) or [] if i in views]
        steps = sorted(t.intermediate_values)
        params = t.params or t.system_attrs.get("fixed_params") or {}
        infos.append(TrialInfo(t.number, state, dict(params),
                               t.value if t.state.name == "COMPLETE" else None, runs,
                               pruned_at=steps[-1] if t.state.name == "PRUNED" and steps else None,
                               label=trial_label(t), refused=t.user_attrs.get(INVALID_ATTR),
                               failed=t.user_attrs.get(FAILED_ATTR) if state == "fail" else None))
    return infos


def state_counts(store: Any, study) -> dict[str, int]:
    """Trials by `trial_state` (those given back before they trained not counted): `sweep list`'s columns."""
    from collections import Counter

    states = [state for t in study.get_trials(deepcopy=False) if shown(state := trial_state(store, t), t)]
    return dict(Counter(states))


def _views(store: Any, ids: list[int]) -> dict[int, Any]:
    """The runs by id, leaving out any deleted since (`speedrun rm`)."""
    try:
        return {v.id: v for v in store.get_runs(ids)}
    except RunNotFound:
        found = {}
        for i in ids:
            try:
                found[i] = store.get_run(i)
            except RunNotFound:
                pass
        return found


def importances(study, spec: SweepSpec) -> tuple[dict[str, float] | None, str | None]:
    """(importances, None), Optuna's (its default evaluator, PED-ANOVA, which needs no other library)
    over the completed trials: how much each option decides whether a trial reaches the top
    `importance_quantile` of them; or (None, why not) while the completed trials cannot rank the
    searched options (`sweep.summary.importance_gap`)."""
    import warnings

    import optuna

    from speedrun.sweep.summary import importance_gap, importance_quantile

    finished = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                if t.value is not None and math.isfinite(t.value)]
    if (why := importance_gap(spec.space.names, [t.params for t in finished], [t.value for t in finished])):
        return None, why
    # PED-ANOVA asks which settings reach low values: a maximised objective is turned round.
    sign = 1.0 if study.direction == optuna.study.StudyDirection.MINIMIZE else -1.0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "computes the importances ... to achieve low `target` values"
            evaluator = optuna.importance.PedAnovaImportanceEvaluator(target_quantile=importance_quantile(len(finished)))
            return dict(optuna.importance.get_param_importances(study, evaluator=evaluator,
                                                                target=lambda t: sign * t.value)), None
    except (RuntimeError, ValueError, ZeroDivisionError) as exc:
        return None, f"Optuna could not compute them ({exc})"


def answer(store: Any, name: str, *, alpha: float, pool: Any) -> tuple:
    """(spec, trials, answer) of the sweep `name`: what `sweep show` prints and the report lays out."""
    study, spec = load(store, name)
    return _answer(study, spec, trial_infos(store, study), alpha=alpha, pool=pool)


def _answer(study, spec: SweepSpec, infos: list, *, alpha: float, pool: Any) -> tuple:
    from speedrun.sweep.summary import summarize

    values, why = importances(study, spec)
    return spec, infos, summarize(spec, infos, importances=values, importance_note=why, alpha=alpha, pool=pool)


def summaries(store: Any, *, alpha: float, pool: Any, runs: set[int] | None = None) -> list[tuple]:
    """`answer` of every sweep, or of those with a run among `runs` (the others are not summarised)."""
    out = []
    for name in sweep_names(store):
        study, spec = load(store, name)
        infos = trial_infos(store, study)
        if runs is None or any(r.id in runs for t in infos for r in t.runs):
            out.append(_answer(study, spec, infos, alpha=alpha, pool=pool))
    return out
