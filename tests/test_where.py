"""`--where`: the filter language, its SQL on both backends, its errors, and every command that takes it."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from speedrun.errors import QueryError
from speedrun.query import parse
from speedrun.query.evaluate import matches
from speedrun.domain.records import RunRecord
from tests.helpers import add_run

# ---------------------------------------------------------------- random runs and queries

_DAYS = [datetime(2026, 11, 1, 0, 0), datetime(2026, 11, 1, 23, 59), datetime(2026, 11, 2, 12, 0),
         datetime(2026, 11, 3, 12, 0)]


@st.composite
def runs(draw):
    records = []
    for i in range(draw(st.integers(0, 7))):
        params = {}
        for name, values in (
            ("lr", [0.01, 0.02, 0.04, 0.05, 0.1, "0.04 warm"]),
            ("batch_size", [32, 64, 128]),
            ("cosine", [True, False]),
            ("model", ["resnet18", "resnet9", "ResNet_X", "simplecnn"]),
        ):
            if draw(st.booleans()):
                params[name] = draw(st.sampled_from(values))
        records.append(RunRecord(
            source=draw(st.sampled_from(["train", "log", "notebook"])),
            status=draw(st.sampled_from(["completed", "failed", "incomplete", "interrupted"])),
            label=draw(st.sampled_from([None, f"{i}a", f"x{i}"])),
            params=params,
            tags=draw(st.lists(st.sampled_from(["a", "b", "base"]), unique=True, max_size=2)),
            hardware=draw(st.sampled_from([None, "Tesla T4", "A100 SXM4", "AMD Ryzen 7 (CPU)"])),
            final_val_acc=draw(st.sampled_from([None, 60.0, 80.0, 85.5, 90.0])),
            started_at=draw(st.sampled_from([None, *_DAYS])),
            created_at=datetime(2026, 11, 2, 8, 0),
            group=draw(st.sampled_from([None, "g1", "g2"])),
            series=draw(st.sampled_from([None, "s1", "S2"])),
        ))
    return records


def _add(store, records):
    """Records and the notebook series they name."""
    from speedrun.domain.records import SeriesRecord

    names = sorted({r.series for r in records if r.series})
    store.add_runs(records, force=True, label_clashes=False, series=[SeriesRecord(name) for name in names])


_ATOMS = [
    "lr = 0.04", "lr != 4e-2", "lr < 0.05", "lr <= 0.02", "lr > 0.02", "lr >= 0.1", "lr between 0.02 and 0.05",
    "lr not between 0.02 and 0.05", "batch_size in (32, 64)", "batch_size not in (64)", "bs = 128",
    "cosine", "cosine = false", "cosine != true", "model ~ \"resnet*\"", "model like \"%9\"", "model = resnet18",
    "model != resnet9", "model !~ \"res*\"", "model ~ \"resnet_x\"", "has lr", "has warmup", "not has cosine",
    "tag = a", "tag != a", "tag in (a, base)", "has tag", "tag ~ \"ba*\"",
    "hardware = T4", "hardware = unknown", "hardware in (a100, cpu)", "hardware ~ \"*4\"", "hardware != a100",
    "hardware_text ~ \"*sxm*\"", "has hardware_text", "status = completed", "status != failed",
    "status in (failed, interrupted)", "final_val_acc > 80", "final_val_acc between 80 and 90",
    "final_val_acc != 90", "date >= 2026-11-02", "date = 2026-11-01", "date < 2026-11-03T12:00",
    "date <= 2026-11-02", "date > 2026-11-01", "date between 2026-11-01 and 2026-11-02", "group = g1",
    "group != g2", "has group", "label = 1a", "label ~ \"*a\"", "number <= 3", "id in (1, 4)", "imported",
    "trained", "not imported", "cosine in (true, false)", "lr in (0.01, 4e-2)", "model in (resnet18, simplecnn)",
    "model not in (resnet9)", "series = s1", "series ~ \"s*\"", "series != S2", "has series", "date in (2026-11-01, 2026-11-03)", "date <= 9999-12-31",
    "created_at >= 2026-11-02T09:00+02:00", "id < 99999999999999999", "id in (3, 99999999999)", "id = 99999999999", "id != 99999999999",
]


def queries():
    atom = st.sampled_from(_ATOMS)
    return st.recursive(
        atom,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["and", "or", "AND", "Or"]), inner).map(" ".join),
            inner.map(lambda q: f"not ({q})"),
            inner.map(lambda q: f"({q})"),
        ),
        max_leaves=5,
    )


def _clear(store):
    from speedrun.tracking.models import Environment, EpochMetric, Param, Run, Series, Tag

    with store.engine.begin() as conn:
        for table in (Tag, Param, EpochMetric, Run, Environment):
            conn.execute(delete(table))
        conn.execute(delete(Series))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=runs(), texts=st.lists(queries(), min_size=1, max_size=6))
def test_sql_selects_the_runs_python_does(store, records, texts):
    """The property: a random query over random runs selects in SQL exactly what the plain
    Python meaning of the same tree (speedrun.query.evaluate) selects."""
    _clear(store)
    if records:
        _add(store, records)
    every = store.list_runs()
    for text in texts:
        expr = store.where_query(text)
        expected = [r.id for r in every if matches(expr, r)]
        got = [r.id for r in store.list_runs(where=text)]
        assert got == expected, text


def test_every_condition_selects_in_sql_what_python_does(store):
    """Each condition of the property test once, on a fixed set of runs that has every kind of value."""
    import random

    rng = random.Random(7)
    records = [
        RunRecord(source=rng.choice(["train", "log"]), status=rng.choice(["completed", "failed"]),
                  label=f"{i}a" if i % 3 else None, tags=["a", "base"][: i % 3], group="g1" if i % 2 else None,
                  params={k: v for k, v in {"lr": [0.01, 0.04, "0.04 warm"][i % 3], "batch_size": [32, 64][i % 2],
                                            "cosine": [True, False, None][i % 3],
                                            "model": ["resnet18", "ResNet_X", "simplecnn"][i % 3]}.items()
                          if v is not None and i % 4},
                  hardware=[None, "Tesla T4", "A100 SXM4", "AMD Ryzen 7 (CPU)"][i % 4],
                  final_val_acc=[None, 80.0, 90.0][i % 3], started_at=[None, *_DAYS][i % 5],
                  created_at=datetime(2026, 11, 2, 8, 0), series=[None, "s1", "S2"][i % 3])
        for i in range(12)
    ]
    _add(store, records)
    every = store.list_runs()
    for text in _ATOMS:
        expr = store.where_query(text)
        assert [r.id for r in store.list_runs(where=text)] == [r.id for r in every if matches(expr, r)], text


# ---------------------------------------------------------------- the language


def test_parse_keeps_precedence_and_positions():
    tree = parse("lr < 0.05 and (batch_size in (64, 128) or cosine)")
    assert type(tree).__name__ == "And"
    cond, alternatives = tree.items
    assert (cond.name, cond.op, cond.values[0].text, cond.pos) == ("lr", "<", "0.05", 0)
    assert type(alternatives).__name__ == "Or"
    assert parse("a or b and c").items[1].items[0].name == "b"  # and binds tighter than or


@pytest.mark.parametrize(
    "text, position, words",
    [
        ("lr < 0.05 and (", 15, "ends too early"),
        ("lr @ 3", 3, "unexpected '@'"),
        ("lr < ", 5, "expected a value"),
        ("batch_size in 64", 14, "unexpected '64'"),
        ("", 0, "empty"),
    ],
)
def test_syntax_errors_say_where(text, position, words):
    with pytest.raises(QueryError) as caught:
        parse(text)
    assert caught.value.position == position
    assert words in str(caught.value)
    assert caught.value.details[1] == "  " + " " * position + "^"


@pytest.mark.parametrize(
    "text, words",
    [
        ("not " * 200 + "cosine", "nests deeper than 100"),
        (" or ".join(f"id = {i}" for i in range(201)), "201 conditions; at most 200"),
        ("id in (" + ", ".join(map(str, range(10_001))) + ")", "at most 10,000 values"),
    ],
)
def test_queries_beyond_what_a_person_writes_are_refused_plainly(text, words):
    with pytest.raises(QueryError, match=words):
        parse(text)


def test_long_lists_and_wide_ors_run_in_the_database(notebook):
    """An `in` list is one SQL IN (not an OR per value, which SQLite nests 1,000 deep at most)."""
    listed = "id in (" + ", ".join(map(str, range(9_000))) + ")"
    assert _ids(notebook, "--where", listed + " and batch_size = 128") == [1, 2, 4, 5]
    ored = " or ".join(f"number = {i}" for i in range(1, 200))
    assert len(_ids(notebook, "--where", ored)) == 19


def test_the_language_needs_no_database():
    """speedrun.query parses, checks and evaluates without the storage layer (which compiles it)."""
    import subprocess
    import sys

    code = ("import sys, speedrun.query, speedrun.query.evaluate; "
            "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'speedrun.tracking.store', "
            "'speedrun.tracking.db', 'speedrun.tracking.models', 'speedrun.tracking.where'))))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_vocabulary_agrees_with_what_train_records():
    """Every parameter `speedrun train` records is a name with the type of its default's values."""
    from dataclasses import fields as dataclass_fields

    from speedrun.query.fields import BOOL, NUMBER, PARAMS, TEXT
    from speedrun.training.config import TrainConfig

    declared = [f.name for f in dataclass_fields(TrainConfig) if f.metadata.get("param", True)]
    assert sorted(declared) == sorted(PARAMS)
    types = {"float": NUMBER, "int": NUMBER, "bool": BOOL, "str": TEXT}
    for f in dataclass_fields(TrainConfig):
        if f.name in PARAMS:
            first = str(f.type).split("|")[0].strip().split("[")[0]
            if first in types:
                assert PARAMS[f.name] == types[first], f.name


# ---------------------------------------------------------------- through the CLI


@pytest.fixture
def notebook(cli):
    from tests.conftest import DATA

    assert cli("import-md", str(DATA / "seed-notebook.md")).exit_code == 0
    assert cli("import-md", str(DATA / "user-notebook.md")).exit_code == 0
    return cli


def _ids(cli, *args):
    result = cli("list", "--json", *args)
    assert result.exit_code == 0, result.output
    return [r["id"] for r in json.loads(result.stdout)]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("batch_size = 128", [1, 2, 4, 5]),
        ("bs != 64", [1, 2, 3, 4, 5, 16, 17]),
        ("batch_size < 64", [16, 17]),
        ("batch_size <= 32 or batch_size >= 256", [3, 16, 17]),
        ("batch_size > 128", [3]),
        ("batch_size in (16, 256)", [3, 17]),
        ("batch_size not in (64, 128)", [3, 16, 17]),
        ("final_val_acc between 88 and 90", [36, 37]),
        ("lr = 1e-2", [1]),
        ("model ~ \"resnet1*\"", [2, 3, 4, 5]),
        ("model like \"simple%\"", [1]),
        ("model = ResNet-18 and not bn", [3, 4, 5]),
        ("hardware = cpu", [19, 31]),
        ("hardware != T4", [19, 31]),
        ("series = 30", [30, 36, 37]),
        ("label ~ \"26?\"", [33, 34, 35]),
        ("number between 30 and 32", [30, 31, 32]),
        ("status = incomplete", [5, 31]),
        ("has label_smoothing", [24, 32]),
        ("imported and final_accuracy > 90", [18, 30]),
        ("trained", []),
        ("date >= 2000-01-01 and not (hardware = T4)", [19, 31]),
    ],
)
def test_list_where_each_operator_and_name_family(notebook, query, expected):
    assert _ids(notebook, "--where", query) == expected


def test_where_goes_with_the_other_filters(notebook):
    assert _ids(notebook, "--where", "batch_size = 64", "--hardware", "cpu") == [19, 31]
    assert _ids(notebook, "--where", "batch_size = 64", "--limit", "2") == [36, 37]


@pytest.mark.parametrize(
    "query, message, caret",
    [
        ("batch_sise = 64", "unknown name 'batch_sise'; did you mean batch_size?", 0),
        ("lr < 0.05 and finall_val_acc > 80", "did you mean final_val_acc", 14),
        ("lr = fast", "lr takes a number, not 'fast'", 5),
        ("cosine = maybe", "cosine takes true or false, not 'maybe'", 9),
        ("date >= yesterday", "date takes a date such as 2026-11-01", 8),
        ("lr ~ \"0.0*\"", "lr takes a number: ~ / like does not apply", 0),
        ("model < 3", "model takes text: < does not apply", 0),
        ("lr", "lr takes a number, not yes or no", 0),
        ("mfu > 40", "computed from the epochs when a run is shown", 0),
        ("lr < 0.05 or", "the query ends too early", 12),
    ],
)
def test_errors_are_one_line_with_the_query_and_a_caret(notebook, query, message, caret):
    result = notebook("list", "--where", query)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Error: --where: ") and message in lines[0], lines
    assert lines[1:] == [f"  {query}", "  " + " " * caret + "^"]
    assert "Traceback" not in result.output


def test_report_stats_compare_export_take_where(notebook, tmp_path):
    report = notebook("report", "--where", "series = 30")
    assert report.exit_code == 0, report.output
    assert "Run 30a" in report.stdout and "Run 15" not in report.stdout

    exported = notebook("export", "--where", "hardware = cpu")
    assert exported.exit_code == 0, exported.output
    assert sorted(r["number"] for r in json.loads(exported.stdout)["runs"]) == [19, 31]
    both = notebook("export", "15-19", "--where", "batch_size = 64")
    assert sorted(r["number"] for r in json.loads(both.stdout)["runs"]) == [15, 18, 19]

    stats = notebook("stats", "--where", "series = 30", "--json")
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.stdout)["sets"][0]["runs"] == ["30", "30a", "30b"]

    compared = notebook("compare", "--where", "model = resnet9 and hardware = T4", "--by", "batch_size",
                        "--json")
    assert compared.exit_code == 0, compared.output
    names = [side["name"] for side in json.loads(compared.stdout)["sides"]]
    assert names == ["batch_size=16", "batch_size=32", "batch_size=64"]


def test_a_where_that_matches_nothing_says_so(notebook):
    result = notebook("list", "--where", "batch_size = 1024")
    assert result.exit_code == 0
    assert "No runs match." in result.stdout


def test_a_long_text_parameter_is_stored_and_found(store):
    """The (name, value) index leaves text out on PostgreSQL: a btree entry cannot hold 10,000 characters."""
    long = "x" * 10_000
    add_run(store, RunRecord(source="log", params={"note": long, "lr": 0.04}))
    assert [r.id for r in store.list_runs(where=f'note = "{long}" and lr = 0.04')] == [1]
    assert [r.id for r in store.list_runs(where='note ~ "xx*"')] == [1]


def test_status_is_the_status_a_run_reads_as(store):
    """A `running` run whose process is gone reads as `died` (tracking.liveness): so does --where."""
    import os
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = store.begin_run(RunRecord(source="train", status="running", pid=proc.pid))
    alive = store.begin_run(RunRecord(source="train", status="running", pid=os.getpid()))
    done = add_run(store, RunRecord(source="log", final_val_acc=80.0))
    assert [r.id for r in store.list_runs(where="status = died")] == [dead]
    assert [r.id for r in store.list_runs(where="status = running")] == [alive]
    assert [r.id for r in store.list_runs(where="status != died")] == [alive, done]
    assert [r.id for r in store.list_runs(where="status in (died, completed)")] == [dead, done]
