"""Every schema change keeps what was stored: build at an old revision with real data, upgrade, compare."""

from __future__ import annotations

import json
import sqlite3

from alembic import command

from speedrun.tracking import db as dbmod
from speedrun.tracking.store import Store


def build_at(revision: str, path) -> None:
    url = f"sqlite:///{path}"
    engine = dbmod.make_engine(url)
    config = dbmod.alembic_config(url)
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.commit()
    engine.dispose()


def insert_0001_run(con: sqlite3.Connection) -> None:
    con.execute(
        "insert into environments (id, fingerprint, hardware_class, hardware, device_type) "
        "values (1, 'fp', 'T4', 'Google Colab, T4 GPU', 'cuda')"
    )
    con.execute(
        "insert into runs (id, uuid, label, title, status, source, created_at, epochs_completed, "
        "final_val_acc, peak_val_acc, peak_epoch, train_time_s, extra, environment_id, analysis) values "
        "(15, 'u-15', null, 'Batch 64 (T4)', 'completed', 'log', '2026-01-02 03:04:05', 2, 64.28, 64.28, 2, 85.0, "
        "'{\"target_acc\": 60.0, \"target_time_s\": 85.0, \"eval_time_s\": 3.5}', 1, 'Text **kept**')"
    )
    con.execute("insert into params (run_id, name, value, type, position) values (15, 'lr', '0.02', 'float', 0)")
    con.execute("insert into params (run_id, name, value, type, position) values (15, 'cosine', 'true', 'bool', 1)")
    con.execute("insert into tags (run_id, tag) values (15, 't4')")
    for epoch, acc, elapsed in [(1, 55.88, 42.6), (2, 64.28, 85.0)]:
        con.execute(
            "insert into epoch_metrics (run_id, epoch, val_acc, elapsed_s, extra) values (15, ?, ?, ?, '{}')",
            (epoch, acc, elapsed),
        )
    con.commit()


def test_upgrade_0001_to_head_keeps_everything(tmp_path):
    path = tmp_path / "old.db"
    build_at("0001", path)
    con = sqlite3.connect(path)
    insert_0001_run(con)
    before = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in ("runs", "params", "tags", "epoch_metrics", "environments")}
    con.close()

    notices = []
    store = Store.open(str(path), notify=notices.append)
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
    con = sqlite3.connect(path)
    after = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in before}
    assert after == before


def test_downgrade_puts_the_target_back(tmp_path):
    path = tmp_path / "old.db"
    build_at("0001", path)
    con = sqlite3.connect(path)
    insert_0001_run(con)
    con.close()
    Store.open(str(path)).close()
    url = f"sqlite:///{path}"
    engine = dbmod.make_engine(url)
    config = dbmod.alembic_config(url)
    with engine.connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")
        conn.commit()
    extra = json.loads(sqlite3.connect(path).execute("select extra from runs").fetchone()[0])
    assert extra == {"eval_time_s": 3.5, "target_acc": 60.0, "target_time_s": 85.0}


def test_models_match_migrations(tmp_path):
    """An ORM change without its revision fails here (alembic check compares both)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from speedrun.tracking.models import Base

    store = Store.open(str(tmp_path / "head.db"))
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_while_another_process_writes_waits_for_it(tmp_path):
    """`db upgrade` takes the write lock like any writer: it waits, it does not corrupt or fail."""
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


def test_schema_head_constant_matches_alembic():
    """db.SCHEMA_HEAD spares every command an Alembic import; it must name the real head."""
    assert dbmod.SCHEMA_HEAD == dbmod.head_revision()
