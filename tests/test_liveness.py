"""Whether a `running` run still runs, seen from another pid namespace (issue 24 C6) or during an outage."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import timedelta

import pytest

from speedrun.tracking import liveness
from speedrun.domain.records import RunRecord, utcnow
from speedrun.tracking.store import Store

NOT_A_PID_HERE = 4_194_000  # above any pid_max in use: no process has it in this namespace


def run_from_another_namespace(db_path, monkeypatch, *, beat_age: timedelta) -> int:
    """A run recorded by a training in a container on this host: same host name and boot, another
    pid namespace, where its pid means nothing here."""
    with monkeypatch.context() as there:
        there.setattr(liveness, "_namespace", lambda: "4026532999")
        store = Store.open(str(db_path))
        run_id = store.begin_run(RunRecord(source="train", status="running", pid=os.getpid()))
        store.close()
    con = sqlite3.connect(db_path)
    con.execute("update runs set pid = ?, heartbeat_at = ? where id = ?",
                (NOT_A_PID_HERE, (utcnow() - beat_age).isoformat(sep=" "), run_id))
    con.commit()
    con.close()
    return run_id


@pytest.mark.parametrize(("beat_age", "status"), [(timedelta(seconds=5), "running"), (timedelta(days=1), "died")])
def test_a_training_in_another_pid_namespace_is_judged_by_its_heartbeat(cli, db_path, monkeypatch, beat_age,
                                                                        status):
    run_id = run_from_another_namespace(db_path, monkeypatch, beat_age=beat_age)
    assert json.loads(cli("show", str(run_id), "--json").stdout)["status"] == status


def test_a_gone_process_in_this_namespace_is_still_died_at_once(cli, db_path):
    store = Store.open(str(db_path))
    run_id = store.begin_run(RunRecord(source="train", status="running", pid=os.getpid()))
    store.close()
    con = sqlite3.connect(db_path)
    con.execute("update runs set pid = ? where id = ?", (NOT_A_PID_HERE, run_id))  # heartbeat fresh
    con.commit()
    con.close()
    assert json.loads(cli("show", str(run_id), "--json").stdout)["status"] == "died"


def test_a_run_recorded_before_namespaces_were_recorded_is_still_recognised(cli, db_path):
    """The older `boot/tick` identity of a live process still says `running` (not a stranger)."""
    store = Store.open(str(db_path))
    run_id = store.begin_run(RunRecord(source="train", status="running", pid=os.getpid()))
    store.close()
    con = sqlite3.connect(db_path)
    tick = liveness.process_start(os.getpid()).rsplit("/", 1)[1]
    con.execute("update runs set process_start = ?, heartbeat_at = ? where id = ?",
                (f"{liveness._boot_id()}/{tick}", (utcnow() - timedelta(days=2)).isoformat(sep=" "), run_id))
    con.commit()
    con.close()
    assert json.loads(cli("show", str(run_id), "--json").stdout)["status"] == "running"


# --------------------------------------------------------------------------- issue 27: an outage is not a death


def run_elsewhere(db_path, *, beat_age: timedelta) -> int:
    """A run training on another machine, whose last heartbeat came `beat_age` ago."""
    store = Store.open(str(db_path))
    run_id = store.begin_run(RunRecord(source="train", status="running", pid=12345))
    store.close()
    con = sqlite3.connect(db_path)
    con.execute("update runs set host = 'colab-vm', heartbeat_at = ? where id = ?",
                ((utcnow() - beat_age).isoformat(sep=" "), run_id))
    con.commit()
    con.close()
    return run_id


def test_a_run_out_of_contact_for_twenty_minutes_is_not_died(cli, db_path):
    run_id = run_elsewhere(db_path, beat_age=timedelta(minutes=20))
    listed = cli("list").stdout
    assert "no contact since" in listed and "training may continue offline" in listed and "died" not in listed
    shown = json.loads(cli("show", str(run_id), "--json").stdout)
    assert shown["status"] == "running" and shown["contact"].startswith("no contact since")


def test_a_run_silent_for_longer_than_an_outage_is_died(cli, db_path):
    run_id = run_elsewhere(db_path, beat_age=timedelta(hours=3))
    shown = json.loads(cli("show", str(run_id), "--json").stdout)
    assert shown["status"] == "died" and "contact" not in shown


def test_a_run_that_beats_shows_no_contact_note(cli, db_path):
    run_id = run_elsewhere(db_path, beat_age=timedelta(seconds=20))
    assert "contact" not in json.loads(cli("show", str(run_id), "--json").stdout)
    assert "no contact" not in cli("list").stdout
