"""sweep recipe params: sweeps of the fast recipes search the rates by their new names

Revision 0008 renamed the rate of the fast recipes' runs (`lr` became `lr_per_1024`
for airbench94 and `muon_lr` for airbench94-muon), but a sweep over one of them
kept `lr` in what speedrun stored with its Optuna study: resumed, every trial it
had left was refused ("recipe airbench94 does not read --lr") and never queued
again. This revision renames the rate wherever such a sweep keeps it:

- the sweep's spec (the study's `speedrun` user attribute): its fixed options
  and its searched dimensions;
- its trials' parameters (Optuna's `trial_params`), so the finished trials keep
  guiding the search and `sweep show` gives one column;
- the settings of its queued trials (`fixed_params`);
- the refusals 0008 caused: a trial marked refused for `--lr` is unmarked, so a
  resume queues its setting again.

Databases without sweeps (no Optuna tables) are left as they are. The downgrade
renames the rates back to `lr` (refusals are not restored).

Revision ID: 0009_sweep_recipe_params
Revises: 0008_recipe_params
Create Date: 2026-12-05
"""

import json

from alembic import op
import sqlalchemy as sa

revision = "0009_sweep_recipe_params"
down_revision = "0008_recipe_params"
branch_labels = None
depends_on = None

RENAMED = {"airbench94": "lr_per_1024", "airbench94-muon": "muon_lr"}  # as in 0008
SPEC_KEY = "speedrun"  # the study's user attribute that holds the sweep's spec
REFUSED_KEY = "invalid"  # a trial's user attribute: why its setting was refused

_study_attrs = sa.table("study_user_attributes", sa.column("study_user_attribute_id", sa.Integer),
                        sa.column("study_id", sa.Integer), sa.column("key", sa.String),
                        sa.column("value_json", sa.Text))
_trials = sa.table("trials", sa.column("trial_id", sa.Integer), sa.column("study_id", sa.Integer))
_trial_params = sa.table("trial_params", sa.column("trial_id", sa.Integer), sa.column("param_name", sa.String))
_trial_system = sa.table("trial_system_attributes", sa.column("trial_system_attribute_id", sa.Integer),
                         sa.column("trial_id", sa.Integer), sa.column("key", sa.String),
                         sa.column("value_json", sa.Text))
_trial_user = sa.table("trial_user_attributes", sa.column("trial_id", sa.Integer), sa.column("key", sa.String),
                       sa.column("value_json", sa.Text))


def _renamed_names(names: dict, old: str, new: str) -> dict:
    """`names` (a dict in its order) with the key `old` called `new`."""
    return {new if key == old else key: value for key, value in names.items()}


def _rename_spec(spec: dict, old: str, new: str) -> dict:
    space = dict(spec.get("space") or {})
    space["fixed"] = _renamed_names(space.get("fixed") or {}, old, new)
    space["dimensions"] = [{**d, "name": new} if d.get("name") == old else d for d in space.get("dimensions") or []]
    return {**spec, "space": space}


def _searches(spec: dict, name: str) -> bool:
    space = spec.get("space") or {}
    return name in (space.get("fixed") or {}) or any(d.get("name") == name for d in space.get("dimensions") or [])


def _rename(conn, old_of, new_of) -> None:
    """In every sweep of a renamed recipe, the rate `old_of(recipe)` becomes `new_of(recipe)`."""
    if not sa.inspect(conn).has_table("study_user_attributes"):
        return  # no sweep was ever run here
    rows = conn.execute(sa.select(_study_attrs.c.study_user_attribute_id, _study_attrs.c.study_id,
                                  _study_attrs.c.value_json).where(_study_attrs.c.key == SPEC_KEY)).all()
    for attr_id, study_id, value in rows:
        try:
            spec = json.loads(value)
        except (TypeError, ValueError):
            continue  # not a spec speedrun wrote: `sweep` says so when it is opened
        if not isinstance(spec, dict) or spec.get("recipe") not in RENAMED:
            continue
        old, new = old_of(spec["recipe"]), new_of(spec["recipe"])
        if not _searches(spec, old) or _searches(spec, new):
            continue
        conn.execute(_study_attrs.update().where(_study_attrs.c.study_user_attribute_id == attr_id)
                     .values(value_json=json.dumps(_rename_spec(spec, old, new))))
        trial_ids = sa.select(_trials.c.trial_id).where(_trials.c.study_id == study_id).scalar_subquery()
        conn.execute(_trial_params.update()
                     .where(_trial_params.c.trial_id.in_(trial_ids), _trial_params.c.param_name == old)
                     .values(param_name=new))
        queued = conn.execute(sa.select(_trial_system.c.trial_system_attribute_id, _trial_system.c.value_json)
                              .where(_trial_system.c.trial_id.in_(trial_ids),
                                     _trial_system.c.key == "fixed_params")).all()
        for queued_id, fixed in queued:
            try:
                settings = json.loads(fixed)
            except (TypeError, ValueError):
                continue
            if isinstance(settings, dict) and old in settings:
                conn.execute(_trial_system.update()
                             .where(_trial_system.c.trial_system_attribute_id == queued_id)
                             .values(value_json=json.dumps(_renamed_names(settings, old, new))))
        if old == "lr":  # upgrading: the refusals the old name caused go, so a resume queues them again
            refusal = json.dumps(f"recipe {spec['recipe']} does not read --lr;")[:-1] + "%"
            conn.execute(_trial_user.delete().where(_trial_user.c.trial_id.in_(trial_ids),
                                                    _trial_user.c.key == REFUSED_KEY,
                                                    _trial_user.c.value_json.like(refusal)))


def upgrade() -> None:
    _rename(op.get_bind(), lambda recipe: "lr", RENAMED.get)


def downgrade() -> None:
    _rename(op.get_bind(), RENAMED.get, lambda recipe: "lr")
