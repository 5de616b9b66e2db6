"""Which runs are repeats of one another, which runs count, and what "earlier" means.

A spread between runs is run-to-run noise only when the runs are true repeats:
the same hardware class, every canonical setting (the seed aside), the same
unparsed configuration text, the same epoch budget and data, and both ran to
the end. Anything looser mixes a change of set-up into the "noise" (BatchNorm
on vs off looked like seed noise when the setting was not parsed). So:

* `exclusion` says why a run cannot stand for its set-up (interrupted, died,
  stopped early, a `--subset` trial); such runs never enter repeats, spreads
  or records;
* `repeat_key` is the one definition of "same set-up"; runs of unknown
  hardware have none, since nothing says they ran on the same machine;
* explicit groups (`speedrun group`, `train --repeat`, a notebook series) stay
  as the user made them; `setup_warnings` says where their members differ;
* `order_key` is the one meaning of "earlier" (notebook, then creation order).

Reports, `stats` and `compare` all use these definitions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Sequence, TypeVar

from speedrun.errors import SpeedrunError
from speedrun.domain.hardware import (
    MACHINE_CLASSES, UNKNOWN_HARDWARE, UNNAMED_GPU, hardware_class_of, hardware_text,
)
from speedrun.domain.memo import per_run
from speedrun.text import counted

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

# Settings that vary between repeats by design.
REPEAT_VARIES = ("seed",)


# --------------------------------------------------------------------------- what a run is


def params_of(run: Any) -> dict[str, Any]:
    """`run.param_dict`, built once per run."""
    return per_run(run, "params", lambda r: r.param_dict)


# Statements in a run's prose that change what trains, read as settings (only where the
# configuration does not state the setting itself): "the data now lives on the device" made a
# run 1.7x faster with the same parsed settings; "without BatchNorm", "switched to ResNet-18".
_BATCHNORM = r"(?:batch\s*-?norm\w*|bn)"
_PROSE = (
    ("data_on_device", True, re.compile(
        r"\b(?:data(?:set)?|images|tensors)\b[^.\n]{0,40}?\b(?:on|onto|to|in)\s+(?:the\s+)?(?:gpu|device|cuda|vram)\b"
        r"|\bpre-?load\w*\b[^.\n]{0,30}?\b(?:gpu|device|cuda)\b", re.IGNORECASE)),
    ("bn", False, re.compile(
        rf"\b(?:without|no|remov\w*|drop\w*|disabl\w*)\s+(?:the\s+|any\s+)?{_BATCHNORM}\b"
        rf"|\b{_BATCHNORM}\s+(?:is\s+|was\s+)?(?:removed|dropped|disabled|off)\b", re.IGNORECASE)),
    ("bn", True, re.compile(rf"\b(?:add\w*|with|enabl\w*)\s+(?:the\s+)?{_BATCHNORM}\b", re.IGNORECASE)),
    ("amp", False, re.compile(r"\b(?:without|no|disabl\w*)\s+(?:mixed[\s-]precision|amp|autocast)\b", re.IGNORECASE)),
    ("amp", True, re.compile(r"\b(?:with|enabl\w*|add\w*|turn\w*\s+on|us\w*)\s+(?:mixed[\s-]precision|amp|autocast)\b",
                             re.IGNORECASE)),
)
_SWITCHED_MODEL = re.compile(
    r"\b(?:switch\w*|chang\w*|mov\w*|replac\w*)\b[^.\n]{0,40}?\b(?:to|with)\s+(?:\w+'s\s+)?"
    r"(resnet-?\d+|simple\s*cnn|resnet)\b", re.IGNORECASE)


def prose_settings(run: Any) -> dict[str, Any]:
    """Settings the run's title, hypothesis and description state in words, for the settings its
    configuration does not state. A setting stated both ways in one run is left out (read
    neither way)."""
    return per_run(run, "prose", _prose_settings)


def _prose_settings(run: Any) -> dict[str, Any]:
    text = "\n".join(t for t in (getattr(run, f, None) for f in ("title", "hypothesis", "description"))
                     if isinstance(t, str))
    if not text:
        return {}
    stated = params_of(run)
    found: dict[str, set] = {}
    for name, value, pattern in _PROSE:
        if name not in stated and pattern.search(text):
            found.setdefault(name, set()).add(value)
    if "model" not in stated and (match := _SWITCHED_MODEL.search(text)):
        found["model"] = {match.group(1)}
    return {name: next(iter(vals)) for name, vals in found.items() if len(vals) == 1}


def setup_of(run: Any) -> dict[str, Any]:
    """What the run trained with: its stated settings, and those its prose states (`prose_settings`)."""
    return per_run(run, "setup", lambda r: {**prose_settings(r), **params_of(r)})


def unparsed_config(run: Any) -> str | None:
    """The configuration text the importer did not understand, None when it understood all.

    The one accessor for it: the field comes with the notebook round trip; runs
    stored before it have none. Different texts count as a difference everywhere.
    """
    text = getattr(run, "unparsed_config", None)
    if not isinstance(text, str):
        return None
    return " ".join(text.split()) or None


def epoch_budget(run: Any) -> int | None:
    """The epochs the run was planned for (its `epochs` setting), None when unstated."""
    planned = getattr(run, "epochs_planned", None)
    if planned is None:
        planned = params_of(run).get("epochs")
    if isinstance(planned, float) and planned.is_integer():
        planned = int(planned)
    return planned if isinstance(planned, int) and not isinstance(planned, bool) else None


def subset_of(run: Any) -> int | None:
    """The number of training images of a `--subset` trial, None for the full data."""
    subset = params_of(run).get("subset")
    return subset if isinstance(subset, int) and not isinstance(subset, bool) else None


# CIFAR-10's test set: what every run is evaluated on unless it states another test size.
CIFAR10_TEST_IMAGES = 10_000


def evaluated_on(run: Any) -> int:
    """The images the run's accuracy was measured on: its `test_size` setting, else CIFAR-10's
    10,000. The binomial error of an accuracy depends on it (`metrics`)."""
    size = params_of(run).get("test_size")
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else CIFAR10_TEST_IMAGES


def precision_of(run: Any) -> str:
    """"amp" when the run states mixed precision, "fp32" when it states none, "unstated" otherwise."""
    amp = setup_of(run).get("amp")
    return "unstated" if amp is None else "amp" if setting_key(amp) in (True, 1, "true") else "fp32"


def noise_kind(run: Any) -> tuple:
    """Runs whose spreads measure one another's noise: the same hardware class, recipe, epoch
    budget and precision. A spread measured on another model, machine, length or precision says
    nothing about this run's."""
    return (hardware_class_of(run), recipe_of(run), epoch_budget(run), precision_of(run))


def recipe_of(run: Any) -> str | None:
    """The training set-up family a run belongs to: its recipe, else its model."""
    params = setup_of(run)
    name = params.get("recipe") or params.get("model")
    return None if name is None else setting_key(name)


def _epochs_done(run: Any) -> int:
    if run.epochs:
        return max(e.epoch for e in run.epochs)
    return run.epochs_completed or 0


def exclusion(run: Any) -> str | None:
    """Why the run cannot stand for its set-up, or None when it can (see `_exclusion`)."""
    return per_run(run, "exclusion", _exclusion)


def _exclusion(run: Any) -> str | None:
    """Why the run cannot stand for its set-up, or None when it can.

    Only a run that completed on the full data with every planned epoch counts
    towards repeats, spreads and records: an interrupted run's accuracy is an
    early epoch's, and a 500-image trial's time is no training time.
    """
    if run.status != "completed":
        return run.status
    subset = subset_of(run)
    if subset is not None:
        return f"a {subset:,}-image subset"
    budget = epoch_budget(run)
    done = _epochs_done(run)
    if budget and 0 < done < budget:
        return f"stopped after {done} of {budget} epochs"
    return None


# How a run with an exclusion is described after its name ("Run 16 stopped after 6 of 10 epochs").
_STATUS_WORDS = {"running": "is still running", "died": "died", "failed": "failed", "incomplete": "is incomplete",
                 "interrupted": "was interrupted", "pruned": "was pruned"}


def exclusion_words(run: Any) -> str:
    """Why the run cannot stand for its set-up, as words that follow its name: "stopped after 6
    of 10 epochs", "trained on a 2,000-image subset", "is incomplete"."""
    why = exclusion(run) or ""
    if why.startswith("stopped"):
        return why
    if subset_of(run) is not None and run.status == "completed":
        return f"trained on {why}"
    return _STATUS_WORDS.get(why, f"is {why}")


def counts(run: Any) -> bool:
    """True when the run completed on the full data (see `exclusion`)."""
    return exclusion(run) is None


def counting(runs: Sequence[Any]) -> list[Any]:
    """The runs of a set that statistics use: those that count, or all when none does
    (a lone interrupted run is still shown, with its status)."""
    kept = [r for r in runs if counts(r)]
    return kept or list(runs)


def order_key(run: Any) -> tuple:
    """The one meaning of "earlier": notebook order, then creation order.

    An import creates its runs in the notebook's order, so the creation time
    orders them; the line a run starts at breaks ties within one file, and
    the run number any remaining ones.
    """
    return (run.created_at or datetime.min, getattr(run, "source_line", None) or 0, run.id)


# --------------------------------------------------------------------------- settings


def _normalise(value: Any) -> Any:
    """Make equal settings serialise equally: 10.0 epochs is 10 epochs."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    return value


_NOT_IN_KEY = re.compile(r"[^0-9a-z.]+")


def setting_key(value: Any) -> Any:
    """A setting as compared: case, spaces and punctuation of text do not count.

    `ResNet-18` and `resnet18`, `SGD` and `sgd` are one value; True and 1 stay
    two (a flag is not a count).
    """
    if isinstance(value, str):
        return _NOT_IN_KEY.sub("", value.lower())
    return _normalise(value)


def settings(run: Any) -> dict[str, Any]:
    """The run's stated settings as compared (`setting_key`), the seed left out."""
    return per_run(run, "settings", lambda r: {
        name: setting_key(v) for name, v in setup_of(r).items() if name not in REPEAT_VARIES and v is not None
    })


def config_key(params: Mapping[str, Any], hardware_class: str, ignore: Iterable[str] = REPEAT_VARIES) -> str:
    """Stable key for "same settings on the same class of hardware".

    Canonical JSON (sorted keys, no whitespace); None-valued params count as
    unset, and integral floats equal their ints, so logs that write "10.0" and
    trainers that write 10 group together. Values JSON cannot encode are
    stringified.
    """
    skip = set(ignore)
    return _settings_json({str(k): setting_key(v) for k, v in params.items() if k not in skip and v is not None},
                          hardware_class)


def _settings_json(clean: Mapping[str, Any], hardware_class: str) -> str:
    payload = {"hardware": hardware_class, "params": clean}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def repeat_key(run: Any) -> str | None:
    """The one definition of "same set-up" (see `_repeat_key`), computed once per run."""
    return per_run(run, "repeat_key", _repeat_key)


def states_setup(run: Any) -> bool:
    """Whether the run states anything of how it trained beyond its epoch count (which any log's
    "Epoch [3/10]" gives): a setting, or configuration text the importer did not understand."""
    return any(name != "epochs" for name in settings(run)) or unparsed_config(run) is not None


def _repeat_key(run: Any) -> str | None:
    """The one definition of "same set-up": None for a run that cannot be anyone's repeat.

    Hardware class (and, in a class of many machines such as CPU, the machine's
    own text), every setting but the seed, the unparsed configuration text, the
    epoch budget and the data must all match. A run on an unknown machine or on
    a GPU nothing names, or one that states no setting, is no one's repeat:
    nothing says it trained as another did (three logs without a Config line,
    batch 64, 32 and 16, read as "the same settings" and their gap as noise).
    """
    hardware = hardware_class_of(run)
    if hardware in (UNKNOWN_HARDWARE, UNNAMED_GPU) or not counts(run) or not states_setup(run):
        return None
    payload = {
        "config": _settings_json(settings(run), hardware),  # config_key(setup_of(run), hardware), computed once
        "machine": hardware_text(run) if hardware in MACHINE_CLASSES else None,
        "unparsed": unparsed_config(run),
        "epochs": epoch_budget(run),
        "subset": subset_of(run),
    }
    return json.dumps(payload, sort_keys=True, ensure_ascii=False)


def group_runs(items: Iterable[T], key: Callable[[T], K]) -> dict[K, list[T]]:
    """Group items by `key(item)`, keeping first-seen key order and item order.

    Order is preserved so that listings stay chronological within a group.
    """
    groups: dict[K, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def _epoch_record(run: Any) -> tuple | None:
    """The run's per-epoch numbers (accuracy, loss, duration), None with fewer than two epochs: two
    runs that share every one of them are one training stored twice (a log imported again under
    another name) or the same seed run again, never two samples of the seed-to-seed spread.
    Once per run: a report keys its runs' repeats three times."""
    return per_run(run, "epoch_record", _read_epoch_record)


def one_training(a: Sequence[Any], b: Sequence[Any]) -> bool:
    """Whether two sets of runs hold the same trainings: every run's per-epoch numbers (accuracy,
    loss, duration, epoch by epoch) are those of a run of the other set, to the last digit. Two
    runs that agree so are one training stored twice (a log imported again, a notebook copied),
    never two samples of anything: there is nothing to compare between them."""
    records_a, records_b = ({_epoch_record(r) for r in runs} for runs in (a, b))
    return bool(a) and bool(b) and None not in records_a | records_b and records_a == records_b


def _read_epoch_record(run: Any) -> tuple | None:
    if len(run.epochs) < 2:
        return None
    return tuple((e.epoch, e.val_acc, e.train_loss, e.duration_s) for e in sorted(run.epochs, key=lambda e: e.epoch))


class Repeats:
    """Who repeats whom among `runs`: every run keyed once (a key is not free to compute). A run
    whose per-epoch record is an earlier repeat's, number for number, is a copy of it (`copy_of`):
    it stands for that run's set, and the set counts the training once."""

    def __init__(self, runs: Iterable[Any]):
        ordered = sorted(runs, key=order_key)
        self._keys = {r.id: repeat_key(r) for r in ordered}
        self._copies: dict[int, Any] = {}
        first: dict[tuple, Any] = {}
        for run in ordered:
            record = _epoch_record(run)
            if record is not None:
                original = first.setdefault(record, run)
                if original is not run:
                    self._copies[run.id] = original
        self._members = group_runs((r for r in ordered if self._keys[r.id] is not None and r.id not in self._copies),
                                   lambda r: self._keys[r.id])

    def key(self, run: Any) -> str | None:
        return self._keys[run.id] if run.id in self._keys else repeat_key(run)

    def copy_of(self, run: Any) -> Any | None:
        """The earlier run whose per-epoch record this run repeats number for number, if any."""
        return self._copies.get(run.id)

    def of(self, run: Any) -> list[Any]:
        """The run and its true repeats, in order (a copy: its original's); just the run when it has none here."""
        if run.id in self._copies:  # whatever settings the copy states
            return self.of(self._copies[run.id])
        key = self.key(run)
        members = self._members.get(key, []) if key is not None else []
        return members if run.id in self._keys and members else [run]

    def sets(self) -> list[list[Any]]:
        """Every set of two or more true repeats, each in order."""
        return [members for members in self._members.values() if len(members) >= 2]


def repeat_sets(runs: Iterable[Any]) -> list[list[Any]]:
    """Every set of two or more true repeats among `runs`, each in order."""
    return Repeats(runs).sets()


# --------------------------------------------------------------------------- differences


def _stated(runs: Sequence[Any]) -> dict[str, set]:
    """Each setting the runs state, with its values (repr), and "not stated" where a run leaves it out."""
    values: dict[str, set] = {}
    for run in runs:
        for name, value in settings(run).items():
            values.setdefault(name, set()).add(repr(value))
    for run in runs:  # a run that leaves a setting unstated makes its side's value unknown
        for name in values:
            if name not in settings(run):
                values[name].add("not stated")
    return values


def stated_by_one(a: Sequence[Any], b: Sequence[Any], names: Sequence[str]) -> list[str]:
    """Those of the differing `names` that one side states and no run of the other does: they
    may differ, or the other side ran with the same value and did not say so."""
    left, right = _stated(a), _stated(b)
    return [n for n in names if (n in left) != (n in right)]


def differences(a: Sequence[Any], b: Sequence[Any]) -> list[str]:
    """The one answer to "what differs in set-up" between two sets of runs, for report, compare,
    stats and baselines alike: settings (the configuration's and those its prose states), then
    hardware, then the unparsed configuration text.

    A setting one side states and the other does not is a difference: nothing says the other
    ran with the same value (the run that turned AMP on states amp, its baseline may not).
    """
    left, right = _stated(a), _stated(b)
    names = [n for n in dict.fromkeys([*left, *right]) if left.get(n, {"not stated"}) != right.get(n, {"not stated"})]
    if not any(states_setup(r) for r in (*a, *b)):
        names.insert(0, UNSTATED)
    if {hardware_class_of(r) for r in a} != {hardware_class_of(r) for r in b}:
        names.append("hardware")
    if {unparsed_config(r) for r in a} != {unparsed_config(r) for r in b}:
        names.append("configuration text")
    return names


# A difference `differences` names when no run on either side states a setting: equal settings
# are then unknown, not "the same".
UNSTATED = "settings (stated by neither)"


def _listed(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def differences_text(names: Sequence[str], one_sided: Sequence[str] = ()) -> str:
    """"only amp differs", "lr and cosine differ", "lr, cosine, amp and epochs differ", "same settings":
    every setting that differs, named; those of `one_sided` (`stated_by_one`) as "stated by one
    only" ("batch_size differs; compile and cosine stated by one only"); "neither states its
    settings" where nothing is known."""
    if names and names[0] == UNSTATED:
        head = "neither states its settings, so they are not known to be the same"
        return head if len(names) == 1 else f"{head}; {differences_text(names[1:], one_sided)}"
    if not names:
        return "same settings"
    differ = [n for n in names if n not in one_sided]
    unsure = [n for n in names if n in one_sided]
    parts = []
    if differ:
        verb = "differ" if len(differ) > 1 else "differs"
        parts.append(f"{'only ' if len(differ) == 1 and not unsure else ''}{_listed(differ)} {verb}")
    if unsure:
        parts.append(f"{_listed(unsure)} stated by one only")
    return "; ".join(parts)


# "Same as Run 14 but ...", "vs Run 15", "compared to Run 7a", "Building on Run 15's success".
_NAMED = re.compile(
    r"\b(?:same\s+as|vs\.?|versus|compared\s+(?:to|with)|relative\s+to|building\s+on|based\s+on|"
    r"on\s+top\s+of|against|baseline(?:\s+is|:)?)\s+run\s+#?(\d+[a-z]?)\b",
    re.IGNORECASE,
)


def named_label(run: Any) -> str | None:
    """The run label the run's own words compare it with, if any (description first)."""
    for text in (run.description, run.hypothesis, run.title):
        if text and (match := _NAMED.search(text)):
            return match.group(1)
    return None


def differs_entry(name_a: str, a: Sequence[Any], name_b: str, b: Sequence[Any]) -> dict[str, Any]:
    """What differs between two sets of runs, as `compare` and `stats` give it: the names and the
    line "Run 21 vs Run 20: only amp differs" (the report's baseline line says the same words).
    `no_verdict`: the two share runs (`compare g:all 2`, run 2 in g:all) or hold one training
    stored twice (`one_training`), and no verdict stands between them."""
    names = differences(a, b)
    entry = {"side": name_b, "against": name_a, "names": names, "no_verdict": True,
             "line": f"{name_b} vs {name_a}: {differences_text(names, stated_by_one(a, b, names))}"}
    in_b = {r.id for r in b}
    if shared := [r.display_label for r in a if r.id in in_b]:
        entry["line"] += (f"; they share {counted(len(shared), 'run')} ({', '.join(shared)}): a set is not "
                          f"weighed against its own runs, so there is nothing to compare")
        return entry
    if one_training(a, b):
        entry["line"] += f"; {STORED_TWICE}: nothing to compare"
        return entry
    entry["no_verdict"] = False
    if not names and len(a) == len(b) == 1 and (said := _names_the_other(a[0], b[0])):
        # "Same as Run 1 but with label smoothing": a change the settings do not hold is not seen.
        entry["line"] += f"; but {said}: the settings cannot show that change"
    return entry


# After "same as Run 1", the words that say something changed ("but with label smoothing").
_A_CHANGE = re.compile(r"[\s,;:\u2014-]*(?:but|with|plus|except|instead|using|and|w/)\b", re.IGNORECASE)


def _changed_from(run: Any) -> str | None:
    """The label of the run this run's words say it changed something of: "vs Run 15", "building
    on Run 15", "same as Run 1 but with …" (a bare "same as Run 1" says it repeats it)."""
    for text in (run.description, run.hypothesis, run.title):
        if text and (match := _NAMED.search(text)):
            if not match.group(0).lower().startswith("same") or _A_CHANGE.match(text, match.end()):
                return match.group(1)
            return None
    return None


def _names_the_other(a: Any, b: Any) -> str | None:
    """"Run 17's text says it changed something of Run 1" where one run's words say so of the other."""
    for run, other in ((b, a), (a, b)):
        if _changed_from(run) in (other.display_label, str(other.id)):
            return f"Run {run.display_label}'s text says it changed something of Run {other.display_label}"
    return None


# Why a copy (`one_training`, `Repeats.copy_of`) counts once: the words the report, compare and stats share.
STORED_TWICE = "the same per-epoch numbers to the last digit, so one training stored twice"


def setup_difference(members: Sequence[Any]) -> str | None:
    """Where the members of a group the user made differ in set-up, if they do."""
    base = members[0]
    differing = list(dict.fromkeys(name for m in members[1:] for name in differences([base], [m])))
    if UNSTATED in differing:
        return "members state no settings: not known to be repeats of one set-up"
    return f"members differ in {', '.join(differing)}: not repeats of one set-up" if differing else None


def setup_warnings(members: Sequence[Any]) -> list[str]:
    """Where the members of a group the user made differ in set-up, and who is left out."""
    warnings = [w for w in (setup_difference(members),) if w]
    for run in members:
        why = exclusion(run)
        if why:
            warnings.append(f"Run {run.display_label} ({why}) is left out of the statistics")
    return warnings


# --------------------------------------------------------------------------- sets named on the command line


@dataclass
class RunSet:
    """The runs a reference stands for: `g:NAME` (as the user made it), or a run and its repeats."""

    name: str
    runs: list[Any]
    note: str | None = None  # what the reference stands for, where that is not what it names


def set_name(run: Any, members: Sequence[Any]) -> str:
    """"Run 15", or "Run 15 and repeats" when it stands for its repeats: a set of repeats is
    named by its first run whichever member was asked for, so it has one name everywhere."""
    if len(members) == 1:
        return f"Run {run.display_label}"
    return f"Run {members[0].display_label} and repeats"


def resolve(store: Any, refs: Sequence[str], *, expand: bool = True) -> list[RunSet]:
    """`g:NAME` → that group; a run number or label → the run and, with `expand`, its true repeats."""
    everything = None
    sets = []
    for ref in refs:
        if ref.startswith("g:"):
            name = ref[2:]
            if not name:
                raise SpeedrunError("g: needs a group name, e.g. g:baseline")
            members = store.list_runs(group=name, with_epochs=True)
            if not members:
                raise SpeedrunError(f"no runs in group {name!r}")
            sets.append(RunSet(ref, sorted(members, key=order_key)))
            continue
        run = store.get_run(ref)
        if not expand:
            sets.append(RunSet(f"Run {run.display_label}", [run]))
            continue
        if everything is None:
            everything = Repeats(store.list_runs(with_epochs=True))
        members = everything.of(run)
        original = everything.copy_of(run)
        if original is not None:  # a copy stands for its original's set (`Repeats.of`)
            sets.append(RunSet(set_name(original, members), members,
                               note=f"Run {run.display_label} is a copy of Run {original.display_label} "
                                    f"({STORED_TWICE}), so it stands as {set_name(original, members)}"))
            continue
        sets.append(RunSet(set_name(run, members), members))
    return named_apart(sets)


def named_apart(sets: list[RunSet]) -> list[RunSet]:
    """The sets, those whose names would collide named by their run numbers too: a notebook's
    second "Run 16" (stored as run 20) is "Run #20 (16)" beside "Run #16", never a second
    "Run 16" (two sets that read as one, or "given twice" for two different runs)."""
    members: dict[str, set[tuple[int, ...]]] = {}
    for s in sets:
        members.setdefault(s.name, set()).add(tuple(sorted(r.id for r in s.runs)))
    renamed = []
    for s in sets:
        if len(members[s.name]) > 1 and not s.name.startswith("g:"):
            first = s.runs[0]  # the run a set of runs is named by (`set_name`)
            s = RunSet(f"Run #{first.number_and_label}" + (" and repeats" if len(s.runs) > 1 else ""), s.runs)
        renamed.append(s)
    return renamed


def where_sets(store: Any, where: str, *, by: str | None = None, each: bool = False) -> list[RunSet]:
    """The runs a `--where` query selects, as sets: one per value of `by` (a parameter or run
    field: `batch_size=64`, `batch_size=128`, ... and `batch_size unset`), else one run per set
    (`each`), else all of them as one set named by the query."""
    from speedrun.errors import QueryError
    from speedrun.query.evaluate import run_values

    field = None
    if by is not None:
        try:
            field = store.where_query(f"has {by}").field
        except QueryError as exc:
            raise SpeedrunError(f"--by {by!r}: {exc.reason.replace('unknown name', 'not a name')}") from None
    runs = store.list_runs(where=where, with_epochs=True)
    if not runs:
        raise SpeedrunError(f"no runs match --where {where!r}")
    runs = sorted(runs, key=order_key)
    if field is None:
        return [RunSet(f"Run {r.display_label}", [r]) for r in runs] if each else [RunSet(f"where {where}", runs)]
    split: dict[Any, list[Any]] = {}
    for run in runs:
        present, values = run_values(run, field)
        value = values[0] if values else None
        split.setdefault((type(value).__name__, value) if isinstance(value, Hashable) else ("str", str(value)),
                         []).append(run)

    def ordered(key: tuple[str, Any]) -> tuple:
        kind, value = key
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return (value is None, not number, value if number else 0, str(value))

    return [
        RunSet(f"{by} unset" if value is None else f"{by}={value}", members)
        for (kind, value), members in sorted(split.items(), key=lambda item: ordered(item[0]))
    ]
