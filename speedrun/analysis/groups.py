"""Which runs are repeats of one another.

Runs belong together when the user grouped them (`speedrun group`, `train
--repeat`), or else when they share a configuration: every parameter except
the seed, on the same hardware class. Reports, `stats` and `compare` all use
this one definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from speedrun.errors import SpeedrunError
from speedrun.analysis.views import hardware_class_of


def repeat_key(run: Any) -> tuple[str, str]:
    """("group", class + name) for grouped runs, else ("config", the configuration key)."""
    from speedrun.analysis.stats import config_key  # scipy is only needed once numbers are computed

    hardware = hardware_class_of(run)
    if run.group_name:
        return ("group", f"{hardware}\x00{run.group_name}")
    return ("config", config_key(run.param_dict, hardware))


@dataclass
class RunSet:
    """The runs a reference stands for: `g:NAME`, or a run and its repeats."""

    name: str
    runs: list[Any]


def resolve(store: Any, refs: Sequence[str], *, expand: bool = True) -> list[RunSet]:
    """`g:NAME` → that group; a run number or label → the run and, with `expand`, its repeats."""
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
            sets.append(RunSet(ref, members))
            continue
        run = store.get_run(ref)
        if not expand:
            sets.append(RunSet(f"Run {run.display_label}", [run]))
            continue
        if everything is None:
            everything = store.list_runs(with_epochs=True)
        key = repeat_key(run)
        members = [r for r in everything if repeat_key(r) == key]
        name = f"Run {run.display_label}" if len(members) == 1 else f"Run {run.display_label} and repeats"
        sets.append(RunSet(name, members))
    return sets
