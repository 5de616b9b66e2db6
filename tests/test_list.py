"""`speedrun list` at any size: a page of the most recent runs by default, every run with --all,
and a table that fits the terminal by leaving columns out, never by cutting a number."""

from __future__ import annotations

import json

import pytest
from rich.cells import cell_len

from speedrun.cli.runs import PAGE
from speedrun.cli.table import Column, fit, render
from speedrun.domain.records import EpochRecord, RunRecord
from speedrun.tracking.store import Store


def _record(i: int, **overrides) -> RunRecord:
    fields = dict(
        source="log", title=f"run {i}", params={"model": "resnet18", "lr": 0.04, "batch_size": 64},
        hardware="Google Colab, T4 GPU", env={"device_type": "cuda"},
        epochs=[EpochRecord(epoch=1, val_acc=80.0 + i / 100, duration_s=41.0, elapsed_s=41.0)],
    )
    fields.update(overrides)
    return RunRecord(**fields)


def _fill(db_path, n: int, **overrides) -> None:
    store = Store.open(str(db_path))
    store.add_runs([_record(i, **overrides) for i in range(n)], force=True)
    store.close()


def _run_numbers(out: str) -> list[int]:
    """The run numbers of the table's rows (below the header and its rule)."""
    lines = out.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("─"))
    return [int(line.split()[0]) for line in lines[rule + 1:] if line[:1].isdigit()]


def test_the_default_page_is_the_most_recent_runs_and_says_how_many_more(cli, db_path):
    _fill(db_path, PAGE + 12)
    result = cli("list")
    assert result.exit_code == 0
    assert _run_numbers(result.stdout) == list(range(13, PAGE + 13))  # newest last
    assert result.stdout.splitlines()[-1] == (
        f"… and 12 more before these ({PAGE + 12} runs in all): see them with `speedrun list --all`."
    )


def test_all_limit_and_json_are_not_paged(cli, db_path):
    _fill(db_path, PAGE + 12)
    every = cli("list", "--all").stdout
    assert _run_numbers(every) == list(range(1, PAGE + 13)) and "more before these" not in every
    assert _run_numbers(cli("list", "--limit", "3").stdout) == [PAGE + 10, PAGE + 11, PAGE + 12]
    assert "more before these" not in cli("list", "--limit", "3").stdout
    # Scripts get every matching run as JSON, as before the page; --limit still limits it.
    assert [r["id"] for r in json.loads(cli("list", "--json").stdout)] == list(range(1, PAGE + 13))
    assert [r["id"] for r in json.loads(cli("list", "--json", "--limit", "2").stdout)] == [PAGE + 11, PAGE + 12]
    both = cli("list", "--all", "--limit", "3")
    assert both.exit_code == 2 and both.output.strip() == "Error: give --all or --limit N, not both"  # a usage error


def test_a_chosen_order_is_paged_from_its_top(cli, db_path):
    """The help's own example, `list --sort final_val_acc --desc`, showed the 50 worst runs (the last
    page of the order) and `--limit 3` the 3 worst: a ranking is read from its top."""
    _fill(db_path, PAGE + 12)  # run i + 1 ends at 80 + i/100: the later, the better
    _fill(db_path, 2, epochs=[])  # no accuracy: last in either direction
    best = cli("list", "--sort", "final_val_acc", "--desc")
    assert _run_numbers(best.stdout) == list(range(PAGE + 12, 12, -1))
    assert best.stdout.splitlines()[-1] == (
        f"… and 14 more after these ({PAGE + 14} runs in all): see them with `speedrun list --all`."
    )
    assert _run_numbers(cli("list", "--sort", "final_val_acc", "--desc", "--limit", "3").stdout) == [
        PAGE + 12, PAGE + 11, PAGE + 10]
    assert _run_numbers(cli("list", "--sort", "final_val_acc", "--limit", "2").stdout) == [1, 2]  # the worst two
    assert _run_numbers(cli("list", "--desc", "--limit", "2").stdout) == [PAGE + 14, PAGE + 13]  # the newest first
    newest = cli("list", "--limit", "2").stdout  # the default order: the newest, newest last
    assert _run_numbers(newest) == [PAGE + 13, PAGE + 14]


def test_a_page_that_holds_every_run_says_nothing_more(cli, db_path):
    _fill(db_path, PAGE)
    out = cli("list").stdout
    assert len(_run_numbers(out)) == PAGE and "more" not in out


def test_the_count_is_of_the_matching_runs(cli, db_path):
    _fill(db_path, PAGE + 5)
    _fill(db_path, 3, status="failed")
    out = cli("list", "--status", "completed").stdout
    assert out.splitlines()[-1].startswith(f"… and 5 more before these ({PAGE + 5} runs in all)")
    assert "more" not in cli("list", "--status", "failed").stdout


def test_the_store_counts_what_limit_left_out_without_reading_it(db_path):
    _fill(db_path, 7)
    store = Store.open(str(db_path))
    try:
        assert [len(store.list_runs(limit=3)), store.list_runs(limit=3).matching] == [3, 7]
        assert store.list_runs(limit=10).matching == 7
        assert store.list_runs().matching == 7
        assert store.list_runs(status="failed", limit=1).matching == 0
    finally:
        store.close()


def test_at_80_columns_no_number_is_cut_and_no_line_is_wider(cli, db_path, monkeypatch):
    from speedrun.cli.app import console

    store = Store.open(str(db_path))
    store.add_runs([_record(
        i, params={"model": "a-model-with-a-very-long-name", "lr": 0.0123456, "batch_size": 1024},
        hardware="Lambda A100", series=None, epochs=[
            EpochRecord(epoch=e, val_acc=88.888, duration_s=12345.6, elapsed_s=12345.6 * e) for e in (1, 2)
        ],
    ) for i in range(3)], force=True)
    store.close()
    wide = cli("list").stdout
    monkeypatch.setattr(console.rich(), "width", 80)  # the console itself: `console` makes it when first used
    out = cli("list").stdout
    lines = out.splitlines()
    assert lines and all(cell_len(line) <= 80 for line in lines)
    assert "88.89%" in out and "24691.2s" in out and "1024" in out and "0.0123456" in wide
    assert not any(ch.isdigit() and nxt == "…" for line in lines for ch, nxt in zip(line, line[1:]))
    assert "a-model" in out  # text is shortened, not dropped, while it can be
    assert len(lines[0].split()) < len(wide.splitlines()[0].split())  # columns were left out


def test_fit_shortens_text_then_drops_columns_by_rank_and_never_shortens_numbers():
    columns = [Column("Run"), Column("Name", shortest=4, drop=2), Column("Acc", numeric=True),
               Column("Extra", numeric=True, drop=5)]
    natural = [3, 20, 8, 10]
    assert fit(columns, natural, 100) == [(0, 3), (1, 20), (2, 8), (3, 10)]
    assert fit(columns, natural, 40) == [(0, 3), (1, 10), (2, 8), (3, 10)]  # the name gives 10
    assert fit(columns, natural, 23) == [(0, 3), (1, 6), (2, 8)]  # Extra went; Name got room again
    assert fit(columns, natural, 15) == [(0, 3), (2, 8)]
    assert fit(columns, natural, 5) == [(0, 3), (2, 8)]  # what is never dropped stays whole, too wide
    text = render(columns, [["1", "x" * 20, "88.888%", "1234567890"]], 27)
    assert text.splitlines() == [f"Run │ {'Name':<11} │ {'Acc':>7}", "────┼─────────────┼────────",
                                 "1   │ " + "x" * 10 + "… │ 88.888%"]


@pytest.mark.parametrize(("name", "shown"), [
    ("[bold]red[/bold]", "[bold]red[/bold]"),  # no markup is obeyed
    ("esc\x1b[31mred", "esc\\x1b[31mred"),  # nor an escape sequence
    ("two\tcolumns\nand lines", "two columns and lines"),  # one cell stays on one line
    ("wide 名前", "wide 名前"),
])
def test_user_text_is_shown_as_written_on_one_line_and_safe(cli, db_path, name, shown):
    _fill(db_path, 2, params={"model": name})
    lines = cli("list").stdout.splitlines()
    assert len(lines) == 4 and shown in lines[2] and shown in lines[3]
    # The columns after it line up, whatever the width of its characters.
    assert len({cell_len(line[:line.index("20")]) for line in lines[2:]}) == 1
