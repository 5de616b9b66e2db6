"""A user's `--template` is a program: whatever it asks for, the report ends soon, small, in one
`Error:` line (issue 24, S5). Each attack below ran for minutes or took gigabytes before."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from typer.testing import CliRunner

from speedrun.cli import app
from speedrun.tracking.store import Store
from tests.helpers import add_run
from tests.test_hostile_input import one_error
from tests.test_store_cli import make_record

DOUBLING = '{% set ns = namespace(s="x") %}{% for i in range(40) %}{% set ns.s = ns.s OP ns.s %}{% endfor %}{{ ns.s|length }}'
ATTACKS = {
    "power": ("{{ ((9**1000)**1000)**1000 }}", "bits"),
    "nested loops": ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "steps"),
    "recursive macro": ("{% macro m(n) %}{% if n %}{{ m(n-1) }}{{ m(n-1) }}{% endif %}{% endmacro %}{{ m(40) }}",
                        "steps"),
    "doubling with ~": (DOUBLING.replace("OP", "~"), "characters"),
    "doubling with +": (DOUBLING.replace("OP", "+"), "characters"),
    "doubling a list": (DOUBLING.replace('"x"', "[1]").replace("OP", "+"), "items"),
    "center": ("{{ 'x'|center(10**9) }}", "size"),
    "percent width": ("{{ '%0999999999d'|format(1) }}", "width"),
    "percent operator": ("{{ '%0999999999d' % 1 }}", "width"),
    "format width": ("{{ '{:>999999999}'.format(1) }}", "width"),
    "format width argument": ("{{ '{:>{}}'.format(1, 999999999) }}", "size"),
    "ljust": ("{{ 'x'.ljust(10**9) }}", "size"),
    "replace": ("{{ ('x'*1000000).replace('x', 'y'*1000) }}", "replacement"),
    "replace filter": ("{{ ('x'*1000000)|replace('x', 'y'*1000) }}", "replacement"),
    "expandtabs": ("{{ ('\\t'*1000000).expandtabs(1000) }}", "tabs"),
    "join": ("{{ ('y'*1000000).join(['x']*1000) }}", "join"),
    "indent": ("{{ ('\\n'*1000000)|indent(1000) }}", "indented"),
    "sum of lists": ("{{ ([[1]*1000000]*500)|sum(start=[]) }}", "sum"),
    "mutation": ("{% set l = [1] %}{{ l.append(2) }}", "unsafe"),
}
MEMORY_ATTACKS = [name for name in ATTACKS if name not in ("power", "nested loops", "recursive macro", "mutation")]


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "runs.db"
    store = Store.open(str(path))
    add_run(store, make_record())
    store.close()
    return path


def report_with(db, tmp_path, source: str):
    template = tmp_path / "mine.md.j2"
    template.write_text(source)
    return CliRunner().invoke(app, ["--db", str(db), "report", "--template", str(template)])


@pytest.mark.parametrize("name", list(ATTACKS))
def test_each_attack_ends_in_one_error_line_within_seconds(db, tmp_path, name):
    source, reason = ATTACKS[name]
    start = time.perf_counter()
    error = one_error(report_with(db, tmp_path, source), containing="mine.md.j2, line 1")
    assert reason in error
    assert time.perf_counter() - start < 30  # before: past 120 s, or the out-of-memory killer


@pytest.mark.parametrize("name", MEMORY_ATTACKS)
def test_attacks_on_memory_are_refused_before_the_memory_is_taken(db, tmp_path, name):
    Store.open(str(db)).close()  # the schema is checked once, outside the measurement
    tracemalloc.start()
    try:
        one_error(report_with(db, tmp_path, ATTACKS[name][0]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 150 * 1024**2, f"{peak / 1024**2:.0f} MB"  # before: 1 to 8 GB


def test_ordinary_uses_of_the_same_operations_still_work(db, tmp_path):
    source = ('{{ [1,2]|sum }} {{ [[1],[2]]|sum(start=[]) }} {{ "a\\tb".expandtabs(4) }} {{ "%5d"|format(3) }} '
              '{{ "%5d" % 3 }} {{ "{:>5}".format(1) }} {{ ["a","b"]|join(",") }} {{ "ab"|center(6) }}|'
              '{{ "x y"|indent(2, true) }}|{{ "xx"|replace("x", "yy") }} {{ 2**10 }} {{ "ab" * 2 }} {{ "a" ~ 1 }}'
              "{% for run in runs %} {{ run.label }}{% endfor %}")
    result = report_with(db, tmp_path, source)
    assert result.exit_code == 0, result.output
    assert result.stdout == '3 [1, 2] a   b     3     3     1 a,b   ab  |  x y|yyyy 1024 abab a1 1'


def test_the_clock_stops_a_template_that_no_count_catches(db, tmp_path, monkeypatch):
    from speedrun.analysis import sandbox

    monkeypatch.setattr(sandbox, "MAX_RENDER_S", 0.5)
    source = "{% for i in range(100000) %}{{ 'x'.upper() }}{% for j in range(5) %}{% endfor %}{% endfor %}"
    error = one_error(report_with(db, tmp_path, source))
    assert "0.5 s" in error


def test_what_no_check_foresaw_ends_in_a_memory_error_not_the_oom_killer():
    from speedrun.analysis.sandbox import memory_limit

    with pytest.raises(MemoryError):
        with memory_limit(64 * 1024**2):
            bytearray(4 * 1024**3)
    assert len(bytearray(256 * 1024**2)) > 0  # the limit is lifted again


def test_the_built_in_reports_keep_well_inside_the_limits(tmp_path):
    path = tmp_path / "many.db"
    store = Store.open(str(path))
    store.add_runs([make_record(title=f"run {i}", params={"lr": 0.01 * (i % 5 + 1), "epochs": 3}) for i in range(300)],
                   force=True)
    store.close()
    for fmt in ("md", "html"):
        result = CliRunner().invoke(app, ["--db", str(path), "report", "--format", fmt])
        assert result.exit_code == 0, result.output
