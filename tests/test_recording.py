"""Recording an epoch costs the same at epoch 1,000 as at epoch 1 (issue 14, item 11).

The per-epoch write updates the run's summary from the one new epoch; these
tests check that it reads no earlier epoch back, and that the summary it keeps
is the one derived from all the epochs.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from speedrun.domain.records import EpochRecord, RunRecord, summarize
from speedrun.tracking.store import Store

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
maybe = lambda strategy: st.none() | strategy  # noqa: E731
EPOCH_VALUES = st.fixed_dictionaries(
    {
        "val_acc": maybe(st.floats(0, 100)),
        "duration_s": maybe(st.floats(0.1, 100)),
        "elapsed_s": maybe(st.floats(0, 10_000)),
        "train_loss": maybe(st.floats(0, 5)),
    }
)


def statements_during(store: Store, action) -> list[str]:
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(" ".join(statement.split()).lower())

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    return seen


def test_an_epoch_is_recorded_without_reading_earlier_epochs(store):
    run_id = store.begin_run(RunRecord(source="train", status="running"))
    for epoch in range(1, 51):
        store.add_epoch(run_id, EpochRecord(epoch, val_acc=50.0 + epoch % 7, duration_s=1.0, elapsed_s=float(epoch)))
    statements = statements_during(
        store, lambda: store.add_epoch(run_id, EpochRecord(51, val_acc=60.0, duration_s=1.0, elapsed_s=51.0))
    )
    reads_of_epochs = [s for s in statements if s.startswith("select") and "epoch_metrics" in s]
    assert reads_of_epochs == []
    assert len(statements) <= 6  # begin, read the run row, insert the epoch, update the summary, commit
    run = store.get_run(run_id)
    assert (run.epochs_completed, run.final_val_acc, run.train_time_s) == (51, 60.0, 51.0)


def test_a_second_process_recording_the_same_run_starts_from_the_stored_epochs(db_path):
    first = Store.open(str(db_path))
    run_id = first.begin_run(RunRecord(source="train", status="running"))
    first.add_epoch(run_id, EpochRecord(1, val_acc=70.0, elapsed_s=1.0))
    other = Store.open(str(db_path))  # knows nothing of the run: reads its epochs once
    other.add_epoch(run_id, EpochRecord(2, val_acc=60.0, elapsed_s=2.0))
    first.add_epoch(run_id, EpochRecord(3, val_acc=65.0, elapsed_s=3.0))  # its summary is stale now: re-read
    run = other.get_run(run_id)
    assert (run.epochs_completed, run.final_val_acc, run.peak_val_acc, run.peak_epoch) == (3, 65.0, 70.0, 1)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    store = Store.open(str(tmp_path_factory.mktemp("rec") / "r.db"))  # one database; a new run per example
    yield store
    store.close()


@SETTINGS
@given(values=st.lists(EPOCH_VALUES, min_size=1, max_size=12), rewrite=st.lists(st.integers(1, 12), max_size=3))
def test_the_summary_kept_epoch_by_epoch_is_the_one_derived_from_all_epochs(shared_store, values, rewrite):
    store = shared_store
    run_id = store.begin_run(RunRecord(source="train", status="running"))
    epochs = {}
    for number in [*range(1, len(values) + 1), *[r for r in rewrite if r <= len(values)]]:
        epoch = EpochRecord(number, **values[(number * 7) % len(values)] if number in epochs else values[number - 1])
        epochs[number] = epoch
        store.add_epoch(run_id, epoch)
        run = store.get_run(run_id)
        expected = summarize(list(epochs.values()))
        got = (run.final_val_acc, run.peak_val_acc, run.peak_epoch, run.train_time_s, run.mean_epoch_s,
               run.epochs_completed)
        for a, b in zip(got, expected.__dict__.values()):
            assert a == b or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-12)), (got, expected)
    store.finish_run(run_id, "completed")
    run = store.get_run(run_id)
    assert (run.final_val_acc, run.peak_val_acc, run.peak_epoch) == (expected.final_val_acc, expected.peak_val_acc,
                                                                     expected.peak_epoch)
