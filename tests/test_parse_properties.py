"""Whatever the input, the parsers answer with records or a ParseError, never another exception.

A ParseError whose reason starts with "cannot read" comes from the parsers'
last-resort guard, i.e. from a bug: those fail the tests too.
"""

from __future__ import annotations

import math

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from speedrun.errors import ParseError
from speedrun.notebook import parse_log, parse_notebook
from tests.conftest import SEED_LOGS, SEED_NOTEBOOK

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALID_LOG = (SEED_LOGS / "run18-bs64-20ep-cosine-t4.txt").read_text()
VALID_LINES = VALID_LOG.splitlines()
NOTEBOOK = SEED_NOTEBOOK.read_text()

WEIRD_NUMBERS = st.sampled_from(
    ["nan", "NaN", "inf", "-inf", "1e309", "-1", "-0.5", "0", "9" * 400, "1e-400", "+3", "1,000", "", "abc", "1.2.3", "%", "٣"]
)


def check_log(text: str):
    try:
        runs = parse_log(text)
    except ParseError as exc:
        assert not exc.reason.startswith("cannot read"), exc.reason
        assert exc.line is None or exc.line >= 1
        return None
    for run in runs:
        assert run.epochs
        for epoch in run.epochs:
            assert epoch.epoch >= 1
            for value in (epoch.train_loss, epoch.val_acc, epoch.duration_s, epoch.elapsed_s):
                assert value is None or (math.isfinite(value) and value >= 0)
        assert len(run.content_hash) == 64
    return runs


def check_notebook(text: str):
    try:
        parsed = parse_notebook(text)
    except ParseError as exc:
        assert not exc.reason.startswith("cannot read"), exc.reason
        return None
    for run in parsed.runs:
        assert run.number is not None and run.number >= 0
        for value in (run.final_val_acc, run.train_time_s):
            assert value is None or math.isfinite(value)
    return parsed


@SETTINGS
@given(st.text(max_size=400))
@example("Epoch [1/1], Loss: 1, Val Accuracy: 1%\rEpoch [1/1], Loss: 2, Val Accuracy: 1%")
@example("Config: =, ,=,EPOCHS=\nEpoch [1/1], Loss: 1")
def test_random_text_log(text):
    check_log(text)


@SETTINGS
@given(st.lists(st.sampled_from(VALID_LINES + ["", "^C", "$ python main.py", "\x1b[31m", "Epoch [", "Config:"]), max_size=40))
def test_shuffled_valid_lines(lines):
    check_log("\n".join(lines))


@SETTINGS
@given(st.integers(min_value=0, max_value=len(VALID_LOG)))
def test_truncated_valid_log_is_a_correct_run_or_an_error(cut):
    runs = check_log(VALID_LOG[:cut])
    if runs is None:
        return
    full = parse_log(VALID_LOG)[0]
    assert len(runs) == 1
    run = runs[0]
    # Every number read is the full log's: a cut-off last line is dropped, never misread.
    # (A line cut just before `, Total: ...` is a complete line of its own, minus that field.)
    assert run.epochs[:-1] == full.epochs[: len(run.epochs) - 1]
    last, expected = run.epochs[-1], full.epochs[len(run.epochs) - 1]
    for name in ("epoch", "train_loss", "val_acc", "duration_s", "elapsed_s"):
        assert getattr(last, name) in (None, getattr(expected, name)), name
    assert run.params.items() >= {"epochs": 20}.items()
    assert run.train_time_s in (None, full.train_time_s)
    assert run.final_val_acc in (None, full.final_val_acc)
    assert run.status == ("completed" if "Finished Training" in VALID_LOG[:cut] else "incomplete")


@SETTINGS
@given(st.binary(max_size=600))
def test_random_bytes_decoded_with_replacement(data):
    text = data.decode("utf-8", errors="replace")
    check_log(text)
    check_notebook(text)


@SETTINGS
@given(st.integers(min_value=0, max_value=len(VALID_LINES) - 1), WEIRD_NUMBERS, st.data())
def test_weird_numbers_spliced_into_valid_lines(index, weird, data):
    line = VALID_LINES[index]
    spans = [(i, j) for i, j in _number_spans(line)]
    if not spans:
        return
    start, end = data.draw(st.sampled_from(spans))
    lines = list(VALID_LINES)
    lines[index] = line[:start] + weird + line[end:]
    check_log("\n".join(lines))


def _number_spans(line: str):
    import re

    return [(m.start(), m.end()) for m in re.finditer(r"\d[\d.,]*", line)]


@SETTINGS
@given(st.text(max_size=300), st.integers(min_value=0, max_value=len(NOTEBOOK)))
def test_random_text_spliced_into_the_notebook(junk, at):
    check_notebook(NOTEBOOK[:at] + junk + NOTEBOOK[at:])


@SETTINGS
@given(st.integers(min_value=0, max_value=len(NOTEBOOK)))
def test_truncated_notebook(cut):
    parsed = check_notebook(NOTEBOOK[:cut])
    if parsed is not None:
        assert len(parsed.runs) <= 5


@SETTINGS
@given(st.lists(st.sampled_from(NOTEBOOK.splitlines() + ["## Run 99999999999: x", "### Run 1a", "| Epoch |", "|---|", "| 1 | nan |", "```", "<!-- speedrun:computed -->"]), max_size=60))
def test_shuffled_notebook_lines(lines):
    check_notebook("\n".join(lines))


def test_ten_megabyte_line():
    huge = "x" * 10_000_000
    runs = check_log(f"{huge}\n{VALID_LOG}\n{huge}")
    assert runs is not None and len(runs[0].epochs) == 20
    assert len(runs[0].log_text) < 10_000
    check_log("Epoch [" * 1_000_000)
    check_notebook(f"## Run 1: a\n{huge}\n```\n{VALID_LOG}```\n")


# --------------------------------------------------------------------------- user text through a report (issue 12)

from hypothesis import assume  # noqa: E402

PIECES = st.sampled_from(
    ["\n", "## Run 77: x", "```", "~~~", "|", "<!-- speedrun:computed -->", "---", "#", "**Analysis**:", "\\", "&#10;",
     "- ", " ", "=", "<div>", "&amp;", "\r\n", "| Epoch | Acc |\n|---|---|\n| 1 | 99 |"]
)
TEXT = st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6) | PIECES, max_size=12).map("".join)


_STORE = []


def report_of(record) -> str:
    """The Markdown report of one stored run (one database for all examples: opening one costs)."""
    import tempfile
    from pathlib import Path

    from speedrun.analysis.report import build_context, render
    from speedrun.tracking.store import Store

    if not _STORE:
        _STORE.append(Store.open(str(Path(tempfile.mkdtemp()) / "r.db")))
    store = _STORE[0]
    run_id = add_run(store, record)
    try:
        return render(build_context(store.list_runs(with_epochs=True)), "md")
    finally:
        store.delete_run(run_id)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=TEXT, hypothesis=TEXT, description=TEXT, analysis=TEXT, tags=st.lists(TEXT, max_size=3))
def test_user_text_never_forges_structure(title, hypothesis, description, analysis, tags):
    """Titles, notes and hypotheses with newlines, `## Run 77` lines, fences and pipes come back,
    after report → import, as the same text (as Markdown keeps it), and never as new runs."""
    from markdown_it import MarkdownIt

    from speedrun.notebook.syntax import canonical_text
    from speedrun.domain.records import EpochRecord, RunRecord

    tags = [t.strip() for t in tags if t.strip()]
    tags = list(dict.fromkeys(tags))
    record = RunRecord(
        source="train", title=title, hypothesis=hypothesis, description=description, analysis=analysis,
        tags=tags, params={"lr": 0.02, "epochs": 2},
        epochs=[EpochRecord(epoch=1, train_loss=1.5, val_acc=50.0), EpochRecord(epoch=2, train_loss=1.2, val_acc=60.0)],
    )
    assume(title.strip())  # a run without a title gets a default one
    report = report_of(record)
    parsed = parse_notebook(report, "report.md")
    assert len(parsed.runs) == 1 and not parsed.series
    run = parsed.runs[0]
    assert run.title == title.strip()
    assert run.hypothesis == (hypothesis.strip() or None)
    assert run.description == (description.strip() or None)
    assert run.analysis == (canonical_text(analysis) or None)
    assert sorted(run.tags) == sorted(tags)
    assert [e.val_acc for e in run.epochs] == [50.0, 60.0]
    # CommonMark sees the same: the report's two headings and one run's, no more.
    tokens = MarkdownIt("commonmark").enable("table").parse(report)
    headings = [t for t in tokens if t.type == "heading_open"]
    assert len(headings) == 3


# --------------------------------------------------------------------------- linear time (issue 14)

import contextlib  # noqa: E402
import gc  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402
from tests.helpers import add_run

MILLION = 1_000_000
RUN_CHARS = ["7", " ", "%", "|"]  # digits, spaces, percent signs, pipes
LOG_LINES = [
    "{r}",
    "Epoch [1/2], Loss: {r}, Val Accuracy: 5{r}%",
    "Epoch [{r}/2], Loss: 1{r}",
    "Config: LR={r}, BATCH_SIZE=6{r}4",
    "Data loaders created in {r} seconds.",
    "Final Validation Accuracy: {r}",
    "1{r}%|{r}| 3/5 [00:0{r}1<00:00]",
]
NOTEBOOK_LINES = [
    "## Run 1{r}: x{r}",
    "- **Hypothesis**: {r}x",
    "**A{r}**: {r}",
    "Final accuracy{r}: {r}",
    "- **Configuration**:\n  - LR={r}x\n  - Model: a{r}b ({r})\n  - {r}",
    "| Epoch | Acc |\n|---|---|\n| 1 | {r} |\n| {r} |",
    "```\nEpoch [1/1], Loss: 1, Val Accuracy: {r}%\n```",
    "x{r}= {r}y, optimizer{r}x, SGD{r}(",
]
LINEAR = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@contextlib.contextmanager
def no_old_garbage():
    """The objects earlier tests left are frozen out of the collector while a span is timed: a full
    collection over a thousand tests' heap (CI once charged 1.13 s to a 0.4 s import) is not the
    parser's cost."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def cpu_seconds(func, *args) -> float:
    """CPU time of one call (other work on the machine does not count); ParseError is an answer."""
    with no_old_garbage():
        start = time.process_time()
        try:
            func(*args)
        except ParseError:
            pass
        return time.process_time() - start


@LINEAR
@given(st.sampled_from(RUN_CHARS), st.sampled_from(LOG_LINES))
def test_log_parser_is_linear_in_long_runs(char, line):
    """A million-character run of one character class, in any of the trainer's lines, reads in under a second."""
    text = line.replace("{r}", char * MILLION)
    assert cpu_seconds(parse_log, f"{text}\n{VALID_LINES[6]}\n") < 1.0


@LINEAR
@given(st.sampled_from(RUN_CHARS), st.sampled_from(NOTEBOOK_LINES))
def test_notebook_parser_is_linear_in_long_runs(char, line):
    text = "## Run 1: t\n" + line.replace("{r}", char * MILLION) + "\n"
    assert cpu_seconds(parse_notebook, text) < 1.0


@pytest.mark.parametrize("char", RUN_CHARS)
def test_cli_imports_long_runs_in_linear_time(cli, tmp_path, char):
    run = char * MILLION
    log, notebook = tmp_path / "run.txt", tmp_path / "n.md"
    log.write_text(f"Epoch [1/1], Loss: {run}, Val Accuracy: 5{run}%\n{VALID_LOG}")
    notebook.write_text(f"## Run 1: {run}\n- **Configuration**: {run}\n```\n{run}\n{VALID_LOG}```\n")
    for command, path in (("import-log", log), ("import-md", notebook)):
        with no_old_garbage():
            start = time.process_time()
            result = cli(command, str(path))
            spent = time.process_time() - start
        # The parse, the store and the CLI around them take 0.2-0.4 s here; a parser quadratic in a
        # 1 MB run would take hours, so 2 s tells the two apart on a slower or busier machine too.
        assert spent < 2.0, command
        assert result.exit_code in (0, 1)
        assert "Traceback" not in result.output


# --------------------------------------------------------------------------- bugs are not bad input (issue 11)


def test_a_parser_bug_is_no_parse_error(monkeypatch, cli, tmp_path):
    """ParseError means bad input; a bug inside a parser surfaces as a bug: the CLI's one
    'internal error' line, never an Error naming the user's file and line."""
    from speedrun.notebook import logs, markdown

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(logs, "_fast_epoch_record", broken)
    with pytest.raises(KeyError):
        parse_log(VALID_LOG)
    monkeypatch.setattr(markdown, "_build_record", broken)
    with pytest.raises(KeyError):
        parse_notebook(NOTEBOOK)
    path = tmp_path / "log.txt"
    path.write_text(VALID_LOG)
    result = cli("import-log", str(path))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: internal error (a bug in speedrun, please report it): KeyError")


# --------------------------------------------------------------------------- linear memory (issue 24, C2)

RULE_LINES = ["-", "*", "_", "- ", "* ", " -", "\t*", "-  -"]


@pytest.mark.parametrize("unit", RULE_LINES)
@pytest.mark.parametrize("where", ["section", "preamble", "analysis end", "title"])
def test_a_long_horizontal_rule_parses_in_linear_memory(unit, where):
    """A line of 4 MB of `-`, `*`, `_` (or `- - -`) anywhere in a notebook: a few bytes per
    character at most (the rule's backreference pattern took ~190 bytes per character)."""
    import tracemalloc

    line = unit * (4_000_000 // len(unit))
    text = {
        "section": f"## Run 1: a\n{line}\nEpoch [1/1], Loss: 1, Val Accuracy: 50%\n",
        "preamble": f"# Notes\n{line}\n## Run 1: a\n- **Final accuracy**: 90%\n",
        "analysis end": f"## Run 1: a\n- **Final accuracy**: 90%\n\n**Analysis**:\nfine\n\n{line}\n",
        "title": f"## Run 1: {line}\n- **Final accuracy**: 90%\n",
    }[where]
    tracemalloc.start()
    try:
        seconds = cpu_seconds(parse_notebook, text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50_000_000, f"{peak / 1e6:.0f} MB"
    assert seconds < 2.0


@pytest.mark.parametrize("unit", ["&#10;", "&amp;", "#", " #", "- "])
def test_a_long_title_reads_quickly(unit):
    """A 2 MB run title of character references or closing hashes: linear, and quick
    (each reference was decoded by html.unescape anew: 2 s for 400,000 of them)."""
    title = unit * (2_000_000 // len(unit))
    text = f"## Run 1: {title}x\n- **Final accuracy**: 90%\n"
    assert cpu_seconds(parse_notebook, text) < 0.5
