"""recipe params: each recipe records the options it reads, by names that mean one thing

`speedrun train` used to record every field of its configuration, read or not, and
`lr` meant three quantities. A trained run's params now hold only what its recipe's
loop reads (speedrun.recipes.Recipe.options), so this revision makes the runs
already stored say the same, and old runs compare and group with new ones:

- airbench94 runs: `lr` (a rate per 1,024 images) becomes `lr_per_1024`;
  airbench94-muon runs: `lr` (Muon's rate) becomes `muon_lr`;
- in both, `cosine`, `bn`, `warmup` and `graph` (never read by the fast loop) and
  `schedule` (fixed by the recipe, described by `speedrun recipes NAME`) go;
- trained runs with Adam or AdamW lose `momentum` and `nesterov` (never read);
- `threads` and `amp_dtype`, facts of the machine, move from every run's params
  into its `extra["machine"]`, so the same setting on two machines is one set-up.

Imported runs keep what their notebook stated, except the machine facts. The
downgrade moves the machine facts back and the renamed rates back to `lr`; the
params that were never read are not restored.

Revision ID: 0008_recipe_params
Revises: 0007_where_indexes
Create Date: 2026-12-05
"""

from alembic import op
import sqlalchemy as sa

revision = "0008_recipe_params"
down_revision = "0007_where_indexes"
branch_labels = None
depends_on = None

RENAMED = {"airbench94": "lr_per_1024", "airbench94-muon": "muon_lr"}
NOT_READ_BY_FAST_RECIPES = ("cosine", "bn", "warmup", "graph", "schedule")
NOT_READ_BY_ADAM = ("momentum", "nesterov")
MACHINE = ("threads", "amp_dtype")

_params = sa.table("params", sa.column("id", sa.Integer), sa.column("run_id", sa.Integer),
                   sa.column("name", sa.String), sa.column("value", sa.JSON), sa.column("type", sa.String),
                   sa.column("position", sa.Integer))
_runs = sa.table("runs", sa.column("id", sa.Integer), sa.column("source", sa.String),
                 sa.column("extra", sa.JSON))


def _runs_with(conn, name: str, values) -> list[tuple[int, object]]:
    rows = conn.execute(sa.select(_params.c.run_id, _params.c.value).where(_params.c.name == name)).all()
    return [(run_id, value) for run_id, value in rows if value in values]


def _chunks(run_ids):
    """The ids in slices a statement's IN list can hold on either backend."""
    return (run_ids[start:start + 500] for start in range(0, len(run_ids), 500))


def _delete(conn, run_ids, names) -> None:
    for chunk in _chunks(run_ids):
        conn.execute(_params.delete().where(_params.c.run_id.in_(chunk), _params.c.name.in_(names)))


def _rename(conn, run_ids, old: str, new: str) -> None:
    for chunk in _chunks(run_ids):
        conn.execute(_params.update().where(_params.c.run_id.in_(chunk), _params.c.name == old).values(name=new))


def upgrade() -> None:
    conn = op.get_bind()
    for recipe, name in RENAMED.items():
        run_ids = [run_id for run_id, _ in _runs_with(conn, "recipe", (recipe,))]
        _rename(conn, run_ids, "lr", name)
        _delete(conn, run_ids, NOT_READ_BY_FAST_RECIPES)
    trained = {run_id for (run_id,) in conn.execute(sa.select(_runs.c.id).where(_runs.c.source == "train"))}
    recipes = {run_id for run_id, _ in _runs_with(conn, "recipe", tuple(RENAMED))}
    adam = [run_id for run_id, _ in _runs_with(conn, "optimizer", ("adam", "adamw"))
            if run_id in trained and run_id not in recipes]
    _delete(conn, adam, NOT_READ_BY_ADAM)
    _move_machine(conn)


def _move_machine(conn) -> None:
    rows = conn.execute(sa.select(_params.c.run_id, _params.c.name, _params.c.value)
                        .where(_params.c.name.in_(MACHINE))).all()
    facts: dict[int, dict] = {}
    for run_id, name, value in rows:
        facts.setdefault(run_id, {})[name] = value
    for run_id, machine in facts.items():
        extra = conn.execute(sa.select(_runs.c.extra).where(_runs.c.id == run_id)).scalar()
        extra = dict(extra) if isinstance(extra, dict) else {}
        extra["machine"] = {**extra.get("machine", {}), **machine}
        conn.execute(_runs.update().where(_runs.c.id == run_id).values(extra=extra))
    _delete(conn, list(facts), MACHINE)


def downgrade() -> None:
    conn = op.get_bind()
    for recipe, name in RENAMED.items():
        _rename(conn, [run_id for run_id, _ in _runs_with(conn, "recipe", (recipe,))], name, "lr")
    for run_id, extra in conn.execute(sa.select(_runs.c.id, _runs.c.extra)).all():
        machine = extra.get("machine") if isinstance(extra, dict) else None
        if not isinstance(machine, dict):
            continue
        position = conn.execute(sa.select(sa.func.count()).select_from(_params)
                                .where(_params.c.run_id == run_id)).scalar() or 0
        for i, (name, value) in enumerate(machine.items()):
            conn.execute(_params.insert().values(run_id=run_id, name=name, value=value,
                                                 position=position + i, type=type(value).__name__))
        conn.execute(_runs.update().where(_runs.c.id == run_id)
                     .values(extra={k: v for k, v in extra.items() if k != "machine"}))
