"""Every schema change keeps what was stored: build at an old revision with real data, upgrade, compare.

Run on SQLite and on PostgreSQL (tests/conftest.py's `db_path`).
"""

from __future__ import annotations

import json

import pytest
from alembic import command
from sqlalchemy import text

from speedrun.tracking import db as dbmod
from speedrun.tracking.store import Store
from tests.helpers import add_run


def url_of(path_or_url) -> str:
    return str(path_or_url) if "://" in str(path_or_url) else f"sqlite:///{path_or_url}"


def build_at(revision: str, path_or_url) -> None:
    url = url_of(path_or_url)
    engine = dbmod.make_engine(url)
    config = dbmod.alembic_config(url)
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.commit()
    engine.dispose()


def insert_0001_run(con) -> None:
    """A run as schema 0001 stored it (the target inside `extra`). `con`: sqlite3 or SQLAlchemy connection."""
    statements = [
        "insert into environments (id, fingerprint, hardware_class, hardware, device_type) "
        "values (1, 'fp', 'T4', 'Google Colab, T4 GPU', 'cuda')",
        "insert into runs (id, uuid, label, title, status, source, created_at, epochs_completed, "
        "final_val_acc, peak_val_acc, peak_epoch, train_time_s, extra, environment_id, analysis) values "
        "(15, 'u-15', null, 'Batch 64 (T4)', 'completed', 'log', '2026-01-02 03:04:05', 2, 64.28, 64.28, 2, 85.0, "
        "'{\"target_acc\": 60.0, \"target_time_s\": 85.0, \"eval_time_s\": 3.5}', 1, 'Text **kept**')",
        "insert into params (run_id, name, value, type, position) values (15, 'lr', '0.02', 'float', 0)",
        "insert into params (run_id, name, value, type, position) values (15, 'cosine', 'true', 'bool', 1)",
        "insert into tags (run_id, tag) values (15, 't4')",
        "insert into epoch_metrics (run_id, epoch, val_acc, elapsed_s, extra) values (15, 1, 55.88, 42.6, '{}')",
        "insert into epoch_metrics (run_id, epoch, val_acc, elapsed_s, extra) values (15, 2, 64.28, 85.0, '{}')",
    ]
    if getattr(getattr(con, "dialect", None), "name", None) == "postgresql":
        # The ids above are given by hand; a server that made them would have moved its sequences on.
        statements += [f"select setval(pg_get_serial_sequence('{t}', 'id'), (select max(id) from {t}))"
                       for t in ("environments", "runs", "params", "tags", "epoch_metrics")]
    for statement in statements:
        con.execute(text(statement) if hasattr(con, "dialect") else statement)
    con.commit()


TABLES = ("runs", "params", "tags", "epoch_metrics", "environments")


def counts(url: str) -> dict[str, int]:
    engine = dbmod.make_engine(url)
    with engine.connect() as conn:
        found = {t: conn.execute(text(f"select count(*) from {t}")).scalar() for t in TABLES}
    engine.dispose()
    return found


def test_upgrade_0001_to_head_keeps_everything(db_path):
    url = url_of(db_path)
    build_at("0001", url)
    engine = dbmod.make_engine(url)
    with engine.connect() as conn:
        insert_0001_run(conn)
    engine.dispose()
    before = counts(url)

    notices = []
    store = Store.open(str(db_path), notify=notices.append)
    assert store.current_revision() == dbmod.head_revision()
    assert notices and "from 0001" in notices[0]

    run = store.get_run(15)
    assert (run.title, run.status, run.analysis) == ("Batch 64 (T4)", "completed", "Text **kept**")
    assert run.param_dict == {"lr": 0.02, "cosine": True}
    assert [t.tag for t in run.tags] == ["t4"]
    assert [(e.epoch, e.val_acc, e.elapsed_s) for e in run.epochs] == [(1, 55.88, 42.6), (2, 64.28, 85.0)]
    assert run.environment.hardware == "Google Colab, T4 GPU"
    # 0002 moved the target out of the JSON into columns, and left the rest of the JSON alone.
    assert (run.target_acc, run.target_time_s) == (60.0, 85.0)
    assert run.extra == {"eval_time_s": 3.5}
    store.close()
    assert counts(url) == before
    # The upgraded database takes new runs like a fresh one (numbers continue after 15).
    store = Store.open(str(db_path))
    from tests.test_store_cli import make_record

    assert add_run(store, make_record()) == 16
    store.close()


def test_downgrade_puts_the_target_back(db_path):
    url = url_of(db_path)
    build_at("0001", url)
    engine = dbmod.make_engine(url)
    with engine.connect() as conn:
        insert_0001_run(conn)
    Store.open(str(db_path)).close()
    config = dbmod.alembic_config(url)
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
        conn.commit()
    with engine.connect() as conn:
        extra = conn.execute(text("select extra from runs")).scalar()
    engine.dispose()
    extra = json.loads(extra) if isinstance(extra, str) else extra
    assert extra == {"eval_time_s": 3.5, "target_acc": 60.0, "target_time_s": 85.0}


def test_models_match_migrations(db_path):
    """An ORM change without its revision fails here (alembic check compares both)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from speedrun.tracking.models import Base

    from speedrun.tracking import db as dbmod

    # Replayed revision by revision (how every existing database gets its schema)...
    url = dbmod.resolve_url(str(db_path))
    engine = dbmod.make_engine(url)
    assert dbmod.upgrade(engine, url, through_migrations=True)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": dbmod.VERSION_TABLE})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_a_new_database_is_created_at_head_as_the_migrations_would_make_it(db_path, tmp_path):
    """A database without a schema is made from the models and stamped (no revision replayed):
    the same schema as the revisions give, checked against the models both ways."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from speedrun.tracking.db import SCHEMA_HEAD, head_revision
    from speedrun.tracking.models import Base

    store = Store.open(str(db_path))
    assert store.current_revision() == SCHEMA_HEAD == head_revision()
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": dbmod.VERSION_TABLE})
        assert compare_metadata(context, Base.metadata) == []
    store.close()


@pytest.mark.sqlite_only
def test_upgrade_while_another_process_writes_waits_for_it(tmp_path):
    """`db upgrade` takes the write lock like any writer: it waits, it does not corrupt or fail."""
    import sqlite3
    import threading
    import time

    path = tmp_path / "busy.db"
    build_at("0001", path)
    holder = sqlite3.connect(path, timeout=30, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    result = {}

    def upgrade():
        result["store"] = Store.open(str(path))

    thread = threading.Thread(target=upgrade)
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive()  # waiting for the writer's lock
    holder.execute("COMMIT")
    thread.join(30)
    assert result["store"].current_revision() == dbmod.head_revision()


def test_concurrent_first_opens_create_the_schema_once(db_path):
    """Eight processes opening a new database at once: one creates the schema, the rest wait and use it."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(8) as pool:
        revisions = pool.map(_open_and_report, [str(db_path)] * 8)
    assert revisions == [dbmod.head_revision()] * 8


def _open_and_report(db: str) -> str:
    store = Store.open(db)
    try:
        return store.current_revision()
    finally:
        store.close()


def test_schema_head_constant_matches_alembic():
    """db.SCHEMA_HEAD spares every command an Alembic import; it must name the real head."""
    assert dbmod.SCHEMA_HEAD == dbmod.head_revision()


# --------------------------------------------------------------------------- speedrun's own version table


def _as_an_older_speedrun_left_it(url: str, revision: str) -> None:
    """The layout before 0005: speedrun's revision in `alembic_version`, Optuna's stamp never written."""
    engine = dbmod.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        conn.execute(text("DROP TABLE speedrun_version"))
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                          "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"))  # as Alembic makes it
        conn.execute(text("INSERT INTO alembic_version VALUES (:revision)"), {"revision": revision})
    engine.dispose()


def test_an_old_database_moves_its_stamp_and_forgets_the_passwords_its_command_lines_held(db_path):
    url = url_of(db_path)
    build_at("0004_notebook", url)
    engine = dbmod.make_engine(url)
    with engine.connect() as conn:
        insert_0001_run(conn)
        conn.execute(text("UPDATE runs SET command = :c"),
                      {"c": "speedrun --db postgresql+psycopg://alice:PW-s3cret@db.example.org/runs train --lr 0.1"})
        conn.commit()
    engine.dispose()
    _as_an_older_speedrun_left_it(url, "0004_notebook")

    notices = []
    store = Store.open(str(db_path), notify=notices.append)
    assert notices == ["Upgraded (from 0004_notebook) database " + store.label + " at schema revision "
                       + dbmod.SCHEMA_HEAD + "."]
    assert store.get_run(15).command == "speedrun --db postgresql+psycopg://alice:***@db.example.org/runs train --lr 0.1"
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM speedrun_version")).scalar() == dbmod.SCHEMA_HEAD
        assert not store.has_table("alembic_version")
    store.close()


def _a_sweep_in(db_path) -> str:
    """A sweep as `speedrun sweep` makes it (its study and grid, no training needed); returns its name."""
    from speedrun.sweep import runner
    from speedrun.sweep.space import parse_space

    store = Store.open(str(db_path))
    spec = runner.plan("lr-grid", "resnet18", parse_space({"lr": "0.01,0.02"}, whole_epochs=True), sampler=None,
                       trials=None, repeat=1, objective="final_accuracy", prune=True, seed=0)
    runner.open_sweep(store, spec, "lr-grid", lambda _message: None)
    store.close()
    return "lr-grid"


def test_optuna_opens_a_sweeps_study_with_its_own_tools(db_path):
    """Issue 27: speedrun's revision is in speedrun_version, so Optuna's schema check passes."""
    import optuna

    name = _a_sweep_in(db_path)
    study = optuna.load_study(study_name=name, storage=url_of(db_path))
    assert len(study.trials) == 2
    assert optuna.storages.RDBStorage(url_of(db_path)).get_current_version() == \
        optuna.storages.RDBStorage(url_of(db_path)).get_head_version()


def _ask_dashboard(app, path: str) -> tuple[str, dict, bytes]:
    """(status, headers, body) of one GET to optuna-dashboard's WSGI app, as a browser asks it."""
    import io
    from wsgiref.util import setup_testing_defaults

    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    answer = {}
    body = b"".join(app(environ, lambda status, headers, *_: answer.update(status=status, headers=dict(headers))))
    return answer["status"], answer["headers"], body


def test_optuna_dashboard_opens_a_sweeps_study(db_path):
    """Issue 27: optuna-dashboard sent every page to "Incompatible RDB Schema" while speedrun's revision
    sat in alembic_version. Its own WSGI app, asked as a browser asks it, shows the dashboard and the sweep."""
    dashboard = pytest.importorskip("optuna_dashboard")
    name = _a_sweep_in(db_path)
    app = dashboard.wsgi(url_of(db_path))
    status, headers, _ = _ask_dashboard(app, "/dashboard")
    assert status.startswith("200"), (status, headers.get("Location"))
    status, _, body = _ask_dashboard(app, "/api/studies")
    assert status.startswith("200") and [s["study_name"] for s in json.loads(body)["study_summaries"]] == [name]


def test_a_sweep_database_of_an_older_speedrun_opens_in_optuna_once_speedrun_opened_it(db_path):
    import optuna

    name = _a_sweep_in(db_path)
    _as_an_older_speedrun_left_it(url_of(db_path), dbmod.SCHEMA_HEAD)
    with pytest.raises(RuntimeError, match="no longer compatible"):  # what users saw
        optuna.load_study(study_name=name, storage=url_of(db_path))

    notices = []
    Store.open(str(db_path), notify=notices.append).close()
    assert notices and "moved from alembic_version to speedrun_version" in notices[0]
    assert len(optuna.load_study(study_name=name, storage=url_of(db_path)).trials) == 2
    store = Store.open(str(db_path), notify=notices.append)
    assert len(notices) == 1 and store.current_revision() == dbmod.SCHEMA_HEAD  # once
    store.close()


def test_a_database_of_another_program_is_refused_on_either_backend(db_path):
    url = url_of(db_path)
    engine = dbmod.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE invoices (id integer primary key, total integer)"))
    engine.dispose()
    with pytest.raises(dbmod.DatabaseError, match=r"another program \(tables invoices\)"):
        Store.open(str(db_path))
    with pytest.raises(dbmod.DatabaseError, match="another program"):
        Store.open(str(db_path), migrate=False)
    engine = dbmod.make_engine(url)
    with engine.connect() as conn:
        from sqlalchemy import inspect

        assert inspect(conn).get_table_names() == ["invoices"]
    engine.dispose()


# --------------------------------------------------------------------------- 0008: recipes own their params


def _insert_0007_runs(conn) -> None:
    """Runs as speedrun recorded them before 0008: every config field, `lr` in three meanings, machine facts."""
    runs = {  # id: (source, hardware env id, params)
        21: ("train", 1, {"recipe": "airbench94", "model": "airbench94", "lr": 11.5, "cosine": False, "bn": True,
                          "warmup": 0, "schedule": "triangle", "batch_size": 1024, "threads": 8,
                          "amp_dtype": "float16"}),
        22: ("train", 1, {"recipe": "airbench94-muon", "model": "airbench94", "optimizer": "muon", "lr": 0.24,
                          "cosine": False, "schedule": "linear", "threads": 8}),
        23: ("train", 2, {"model": "resnet18", "optimizer": "adam", "lr": 0.001, "momentum": 0.9,
                          "nesterov": False, "threads": 4, "amp_dtype": "bfloat16"}),
        24: ("log", 2, {"model": "resnet18", "optimizer": "adam", "lr": 0.001, "momentum": 0.9}),
        25: ("train", 2, {"model": "resnet18", "optimizer": "sgd", "lr": 0.04, "threads": 4}),
        26: ("train", 3, {"model": "resnet18", "optimizer": "sgd", "lr": 0.04, "threads": 16}),
    }
    for env, cls in ((1, "A100"), (2, "CPU"), (3, "CPU")):
        conn.execute(text("insert into environments (id, fingerprint, hardware_class, device_type) "
                          "values (:id, :fp, :cls, 'cpu')"), {"id": env, "fp": f"fp{env}", "cls": cls})
    for run_id, (source, env, params) in runs.items():
        conn.execute(text("insert into runs (id, uuid, title, status, source, created_at, epochs_completed, "
                          "final_val_acc, extra, environment_id) values (:id, :uuid, 't', 'completed', :source, "
                          "'2026-01-02 03:04:05', 1, 90.0, '{\"eval_time_s\": 1.5}', :env)"),
                     {"id": run_id, "uuid": f"u-{run_id}", "source": source, "env": env})
        for position, (name, value) in enumerate(params.items()):
            conn.execute(text("insert into params (run_id, name, value, type, position) values "
                              "(:run, :name, :value, :type, :position)"),
                         {"run": run_id, "name": name, "value": json.dumps(value), "type": type(value).__name__,
                          "position": position})
    if conn.dialect.name == "postgresql":
        for t in ("environments", "runs", "params"):
            conn.execute(text(f"select setval(pg_get_serial_sequence('{t}', 'id'), (select max(id) from {t}))"))
    conn.commit()


def _at_0007_with_runs(url: str):
    """A database at 0007 holding `_insert_0007_runs`'s runs; its engine, still open."""
    build_at("0007_where_indexes", url)
    engine = dbmod.make_engine(url)
    with engine.connect() as conn:
        _insert_0007_runs(conn)
    return engine


def test_0008_gives_old_runs_the_names_and_params_new_runs_record(db_path):
    from speedrun.recipes import get_recipe

    _at_0007_with_runs(url_of(db_path)).dispose()
    store = Store.open(str(db_path))
    airbench, muon, adam, imported, cpu_a, cpu_b = (store.get_run(i) for i in range(21, 27))
    assert airbench.param_dict == {"recipe": "airbench94", "model": "airbench94", "lr_per_1024": 11.5,
                                   "batch_size": 1024}
    assert airbench.extra == {"eval_time_s": 1.5, "machine": {"threads": 8, "amp_dtype": "float16"}}
    assert muon.param_dict == {"recipe": "airbench94-muon", "model": "airbench94", "optimizer": "muon",
                               "muon_lr": 0.24}
    assert adam.param_dict == {"model": "resnet18", "optimizer": "adam", "lr": 0.001}
    assert imported.param_dict == {"model": "resnet18", "optimizer": "adam", "lr": 0.001, "momentum": 0.9}
    # The same setting on two machines: one set-up now, the machines told apart by their environment.
    assert cpu_a.param_dict == cpu_b.param_dict == {"model": "resnet18", "optimizer": "sgd", "lr": 0.04}
    assert (cpu_a.extra["machine"], cpu_b.extra["machine"]) == ({"threads": 4}, {"threads": 16})
    # What a new airbench94 run records uses the same names as the migrated one.
    new = get_recipe("airbench94").configure().to_params()
    assert set(airbench.param_dict) <= set(new) and "lr" not in new
    store.close()


def test_0008_downgrade_puts_the_rates_and_machine_facts_back(db_path):
    url = url_of(db_path)
    engine = _at_0007_with_runs(url)
    build_at("0008_recipe_params", url)
    config = dbmod.alembic_config(url)
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0007_where_indexes")
        conn.commit()
        names = {(r, n): v for r, n, v in conn.execute(text("select run_id, name, value from params"))}
        sqlite = conn.dialect.name == "sqlite"
    engine.dispose()
    value = lambda v: json.loads(v) if sqlite and isinstance(v, str) else v  # noqa: E731  (JSON text on SQLite)
    assert value(names[(21, "lr")]) == 11.5 and value(names[(22, "lr")]) == 0.24
    assert value(names[(26, "threads")]) == 16 and value(names[(21, "amp_dtype")]) == "float16"


# --------------------------------------------------------------------------- 0009: sweeps of the fast recipes
def test_0009_renames_a_fast_recipes_swept_rate_and_its_downgrade_puts_it_back(db_path):
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    url = url_of(db_path)
    build_at("0008_recipe_params", url)
    storage = optuna.storages.RDBStorage(url)
    space = {"fixed": {"epochs": 2, "lr": 0.5}, "dimensions": [
        {"name": "lr", "choices": None, "low": 5.0, "high": 12.0, "log": False, "integer": False}]}
    for name, recipe in (("fast", "airbench94"), ("muon", "airbench94-muon"), ("classic", "resnet18")):
        study = optuna.create_study(study_name=name, storage=storage)
        study.set_user_attr("speedrun", {"name": name, "recipe": recipe, "space": space})
        study.add_trial(create_trial(params={"lr": 6.0}, distributions={"lr": FloatDistribution(5.0, 12.0)},
                                     value=1.0))
        study.enqueue_trial({"lr": 7.0})
    storage.engine.dispose()

    def swept(name):
        study = optuna.load_study(study_name=name, storage=url)
        stored = study.user_attrs["speedrun"]["space"]
        return ([d["name"] for d in stored["dimensions"]], list(stored["fixed"]),
                [list(t.params or t.system_attrs.get("fixed_params", {})) for t in study.trials])

    build_at("0009_sweep_recipe_params", url)
    assert swept("fast") == (["lr_per_1024"], ["epochs", "lr_per_1024"], [["lr_per_1024"], ["lr_per_1024"]])
    assert swept("muon") == (["muon_lr"], ["epochs", "muon_lr"], [["muon_lr"], ["muon_lr"]])
    assert swept("classic") == (["lr"], ["epochs", "lr"], [["lr"], ["lr"]])  # resnet18's lr is its lr
    engine = dbmod.make_engine(url)
    config = dbmod.alembic_config(url)
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0008_recipe_params")
        conn.commit()
    engine.dispose()
    assert swept("fast") == swept("muon") == swept("classic") == (["lr"], ["epochs", "lr"], [["lr"], ["lr"]])


def test_0009_leaves_a_database_without_sweeps_as_it_was(db_path):
    url = url_of(db_path)
    build_at("0008_recipe_params", url)
    build_at("0009_sweep_recipe_params", url)
    engine = dbmod.make_engine(url)
    from sqlalchemy import inspect

    assert not inspect(engine).has_table("studies")
    engine.dispose()
