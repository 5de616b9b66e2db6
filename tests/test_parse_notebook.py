"""parse_notebook: the user's seed notebook, every style variant, and our own report round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from speedrun.errors import ParseError
from speedrun.notebook.logformat import epoch_line, footer_lines, header_lines
from speedrun.notebook import NotebookParse, parse_log, parse_notebook
from speedrun.domain.records import RunRecord
from tests.conftest import SEED_LOGS, SEED_NOTEBOOK

VARIANTS = Path(__file__).parent / "data" / "notebook_variants.md"
COLAB = "Google Colab (Python 3 Google Compute Engine backend), T4 GPU."


@pytest.fixture(scope="module")
def seed() -> NotebookParse:
    return parse_notebook(SEED_NOTEBOOK.read_text(), source="seed-notebook.md")


@pytest.fixture(scope="module")
def variants() -> NotebookParse:
    return parse_notebook(VARIANTS.read_text(), source="variants.md")


def by_name(parsed: NotebookParse) -> dict[str, RunRecord]:
    runs: dict[str, RunRecord] = {}
    for run in parsed.runs:
        runs.setdefault(run.label or str(run.number), run)
    return runs


# --- the seed notebook --------------------------------------------------------------


def test_seed_has_five_runs(seed):
    assert [r.number for r in seed.runs] == [15, 16, 17, 18, 19]
    assert all(r.source == "notebook" and r.status == "completed" and r.label is None for r in seed.runs)
    assert seed.warnings == []
    assert seed.preamble.startswith("# Experiment Results: CIFAR-10 Speedrun")


def test_seed_titles_verbatim(seed):
    assert seed.runs[0].title == "Ultra-Small Batch Size - 64 (Google Colab, T4 GPU)"
    assert seed.runs[2].title == "Batch Size 16 - Testing scaling limit"
    assert seed.runs[4].title == "CPU Baseline - ResNet-9 (CPU, No GPU)"


def test_seed_hardware_texts(seed):
    assert [r.hardware for r in seed.runs] == [COLAB] * 4 + ["CPU only (no GPU available)."]


def test_seed_run15(seed):
    run = seed.runs[0]
    # The values `speedrun train` records: one spelling per model, optimizer and augmentation.
    assert run.params == {
        "model": "resnet9",
        "bn": True,
        "optimizer": "sgd",
        "lr": 0.02,
        "momentum": 0.9,
        "batch_size": 64,
        "epochs": 10,
        "augment": "crop,flip",
        "compile": False,
    }
    assert run.unparsed_config is None
    assert (run.final_val_acc, run.train_time_s, run.data_load_s, run.param_count) == (85.69, 436.99, 1.69, 11173962)
    assert len(run.epochs) == 10 and run.epochs[8].val_acc == 86.47
    assert run.env == {"device_type": "cuda"}
    assert run.source_line == 5 and run.source_file == "seed-notebook.md"


def test_seed_wrapped_hypothesis_is_joined(seed):
    assert seed.runs[0].hypothesis == (
        "Continuing the batch size reduction trend, batch size 64 might provide even better convergence "
        "through maximum gradient noise and most frequent parameter updates."
    )
    assert seed.runs[0].description == "Same as Run 14 but with batch size halved again to 64."


def test_seed_analysis(seed):
    run15, run17 = seed.runs[0], seed.runs[2]
    assert run15.analysis.startswith("- **Record-breaking performance**: 85.69% vs 82.62%")
    assert "**Key Breakthrough Insights**:\n1. **Clear batch size scaling law**" in run15.analysis
    assert "testing smaller batch sizes, we've achieved" in run15.analysis  # wrap joined
    assert run15.analysis.endswith("revolutionary small-batch training approach.")
    assert "**Analysis**" not in run15.analysis
    assert run17.analysis.endswith("offering no accuracy benefits while sacrificing speed.")
    assert not seed.runs[1].analysis.endswith("---")


def test_seed_runs_18_and_19_indentation(seed):
    run18, run19 = seed.runs[3], seed.runs[4]
    assert run18.params["lr"] == 0.02 and run18.params["batch_size"] == 64
    assert run18.params["epochs"] == 20 and run18.params["cosine"] is True
    assert len(run18.epochs) == 20 and run18.final_val_acc == 90.68
    assert run18.hypothesis.startswith("Extend optimal batch size 64")
    assert run18.analysis.startswith("- **New record achieved**")
    assert "\n - " not in run18.analysis
    assert run19.params["cosine"] is False and run19.env == {"device_type": "cpu"}
    assert run19.train_time_s == 7539.55 and run19.analysis.startswith("- **CPU performance**")


def test_seed_log_text_matches_the_standalone_log(seed):
    # The same log, indented in the notebook, hashes and reads like the pasted file.
    for run, name in [(seed.runs[0], "run15-bs64-t4.txt"), (seed.runs[3], "run18-bs64-20ep-cosine-t4.txt")]:
        standalone = parse_log((SEED_LOGS / name).read_text())[0]
        assert run.log_text == standalone.log_text
        assert run.epochs == standalone.epochs


def test_seed_content_hashes_differ_per_run(seed):
    assert len({r.content_hash for r in seed.runs}) == 5


# --- the variants notebook ---------------------------------------------------------------


def test_variants_import_completely(variants):
    names = [r.label or str(r.number) for r in variants.runs]
    assert names == ["1", "2", "3", "7", "7a", "7b", "8", "8", "9", "10", "11"]
    assert variants.preamble.startswith("# CIFAR-10 Speedrun Notebook")
    assert variants.preamble.endswith("crept in over the months.")
    assert all(r.source_file == "variants.md" for r in variants.runs)
    assert len({r.content_hash for r in variants.runs}) == len(variants.runs)


def test_bold_paragraphs_inline_code_config_and_epoch_table(variants):
    run = by_name(variants)["1"]
    assert run.hypothesis == "A plain CNN gives a floor to beat."
    assert run.hardware == "Google Colab (Python 3 Google Compute Engine backend), T4 GPU"
    assert run.params == {"lr": 0.08, "batch_size": 64, "epochs": 3}
    assert run.tags == ["baseline", "cnn"]
    assert [(e.epoch, e.train_loss, e.val_acc, e.duration_s) for e in run.epochs] == [
        (1, 1.6012, 45.10, 30.5),
        (2, 1.2011, 55.20, 30.1),
        (3, 1.0101, 60.30, 29.9),
    ]
    assert run.analysis == "A floor to beat.\nSecond line of the same paragraph."


def test_free_text_config_and_summary_only_run(variants):
    run = by_name(variants)["2"]
    assert run.params == {"optimizer": "adam", "lr": 0.001, "batch_size": 512, "epochs": 10}
    assert run.hardware == "AMD Ryzen 7 5700U with Radeon Graphics, WSL environment (CPU)"
    assert run.epochs == [] and run.final_val_acc == 69.39 and run.train_time_s == 123.15
    assert run.analysis == "**Key Insights**:\n- Adam is not better here."


def test_table_config_and_plain_summary_lines(variants):
    run = by_name(variants)["3"]
    assert run.params == {
        "lr": 0.01,
        "batch_size": 128,
        "optimizer": "sgd",
        "momentum": 0.9,
        "weight_decay": 0.0005,
        "cosine": True,
    }
    assert run.train_time_s == 456.7 and run.final_val_acc == 71.2
    assert run.description == "Same as Run 2, settings in a table."
    assert run.analysis == "Plain prose analysis starts here."


def test_sub_runs(variants):
    runs = by_name(variants)
    assert (runs["7a"].number, runs["7a"].label, runs["7a"].title) == (7, "7a", "LR 0.01")
    assert runs["7a"].params == {"lr": 0.01, "batch_size": 64, "epochs": 2}
    assert runs["7b"].params == {"lr": 0.04, "epochs": 2}
    assert [e.val_acc for e in runs["7b"].epochs] == [52.0, 63.0]
    assert runs["7"].label is None and runs["7"].final_val_acc == 80.0


def test_duplicate_run_numbers_are_kept_with_warning(variants):
    eights = [r for r in variants.runs if r.number == 8]
    assert [r.final_val_acc for r in eights] == [70.0, 72.0]
    assert any("also appears" in w for w in eights[1].warnings)
    assert any("run 8" in w and "also appears" in w for w in variants.warnings)


def test_a_second_log_in_a_section_stays_text(variants):
    """One section is one run: a second, partial log is kept in the text (and said so), not made a run."""
    main = by_name(variants)["9"]
    assert len(main.epochs) == 3 and main.env == {"device_type": "cuda"} and main.status == "completed"
    assert main.params["amp"] is True and main.params["seed"] == 1
    assert main.params["model"] == "resnet18" and main.param_count == 11173962
    assert main.params["compile"] is False and main.data_load_s == 1.5
    # The log says BATCH_SIZE=64, the notebook 128: the log wins, with a warning.
    assert main.params["batch_size"] == 64
    assert any("batch_size" in w for w in main.warnings)
    assert any("another log of 1 epochs" in w for w in main.warnings)
    assert "Epoch [1/3], Loss: 1.5100" in main.section_text
    assert main.analysis.endswith("GPU is fast.") and "**Analysis**" not in main.analysis


def test_wrapped_lines_status_and_computed_block(variants):
    run = by_name(variants)["10"]
    assert run.hypothesis == "A long hypothesis that the terminal wrapped in the middle of a sentence keeps going here."
    assert run.description == "Wrapped description with a continuation that has no trailing space."
    assert run.hardware == "AMD Ryzen 7 5700U with Radeon Graphics, WSL environment (CPU)"
    assert run.params == {"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "batch_size": 32, "epochs": 5}
    assert run.status == "incomplete" and len(run.epochs) == 2
    assert run.final_val_acc is None  # the computed block's 99.99% is never read
    assert run.tags == ["cpu", "wrap"]
    assert run.analysis.startswith("- **Slow**: the CPU run was stopped after two epochs, which is a long line that wraps.")


def test_report_format_section(variants):
    run = by_name(variants)["11"]
    assert run.params == {"model": "resnet18", "lr": 0.02, "batch_size": 64, "cosine": False, "my_custom_knob": "abc", "epochs": 2}
    assert run.command == "speedrun train --lr 0.02"
    assert run.analysis == "User text verbatim."


def test_free_text_after_the_last_run_is_kept_but_not_read(variants):
    last = variants.runs[-1]
    assert "closing section" not in (last.analysis or "")
    assert last.section_text.rstrip().endswith("## Summary of all runs\n\nThis closing section is not a run.")


# --- round trip of the generated report --------------------------------------------------------


def render_report(run: RunRecord) -> str:
    """The report generator's run layout, as specified for `speedrun report`."""
    lines = [f"## Run {run.label or run.number}: {run.title}"]
    lines += [f"- **Hypothesis**: {run.hypothesis}", f"- **Description**: {run.description}"]
    lines += [f"- **Hardware**: {run.hardware}", f"- **Tags**: {', '.join(run.tags)}", "- **Configuration**:"]
    lines += [f"  - {key}={value}" for key, value in run.params.items()]
    lines += ["<!-- speedrun:computed -->", "- Final accuracy 1.00%, peak 2.00% at epoch 1", "<!-- /speedrun:computed -->", ""]
    if run.epochs:
        total = run.params["epochs"]
        lines += ["```", "$ speedrun train"]
        lines += header_lines(run.env.get("device_type"), run.param_count, {k: run.params[k] for k in ("lr", "batch_size", "epochs")}, run.data_load_s)
        lines += [epoch_line(e.epoch, total, e.train_loss, e.val_acc, e.duration_s, e.elapsed_s) for e in run.epochs]
        lines += footer_lines(run.train_time_s, run.final_val_acc)
        lines += ["```"]
    else:
        lines += [f"**Final Validation Accuracy:** {run.final_val_acc:.2f}%", f"- **Training Time**: {run.train_time_s:.2f}s"]
    lines += ["", "**Analysis**:", run.analysis, ""]
    return "\n".join(lines)


def test_report_round_trip_of_the_seed(seed):
    report = "# Report\n\n" + "\n".join(render_report(run) for run in seed.runs)
    again = parse_notebook(report, source="report.md")
    assert again.warnings == []
    for before, after in zip(seed.runs, again.runs, strict=True):
        for name in ("number", "title", "hardware", "hypothesis", "description", "analysis", "tags", "epochs",
                     "final_val_acc", "train_time_s", "data_load_s", "param_count", "status"):
            assert getattr(after, name) == getattr(before, name), name
        assert after.params == before.params
        assert {k: type(v) for k, v in after.params.items()} == {k: type(v) for k, v in before.params.items()}


def test_report_round_trip_of_summary_only_and_sub_runs(variants):
    chosen = [r for r in variants.runs if (r.label or str(r.number)) in ("2", "7a", "10")]
    for run in chosen:
        run.title = run.title or "untitled"
        run.description = run.description or "d"
        run.hypothesis = run.hypothesis or "h"
        run.hardware = run.hardware or "T4"
        run.analysis = run.analysis or "a"
    again = parse_notebook("\n".join(render_report(run) for run in chosen))
    for before, after in zip(chosen, again.runs, strict=True):
        assert (after.number, after.label, after.title, after.params) == (before.number, before.label, before.title, before.params)
        assert (after.final_val_acc, after.train_time_s, after.epochs) == (before.final_val_acc, before.train_time_s, before.epochs)
        assert after.analysis == before.analysis


# --- small inputs ---------------------------------------------------------------------------


def nb(body: str, heading: str = "## Run 5: Test") -> RunRecord:
    parsed = parse_notebook(f"{heading}\n{body}")
    assert len(parsed.runs) == 1
    return parsed.runs[0]


@pytest.mark.parametrize(
    "line",
    [
        "- **Hardware**: T4 GPU",
        "- **Hardware:** T4 GPU",
        "- Hardware: T4 GPU",
        "**Hardware:** T4 GPU",
        "**Hardware**: T4 GPU",
    ],
)
def test_metadata_label_styles(line):
    assert nb(line).hardware == "T4 GPU"


@pytest.mark.parametrize(
    "config, expected",
    [
        ("- EPOCHS=20 (doubled from 10)", {"epochs": 20}),
        ("- BATCH_SIZE=64 (128/2)", {"batch_size": 64}),
        ("- Learning Rate: 0.04", {"lr": 0.04}),
        ("- Cosine LR scheduling: True", {"cosine": True}),
        ("- BatchNorm: True", {"bn": True}),
        ("- `LR=0.08`, `BATCH_SIZE=64`", {"lr": 0.08, "batch_size": 64}),
        ("- Optimizer: AdamW(lr=0.003, weight_decay=0.05)", {"optimizer": "adamw", "lr": 0.003, "weight_decay": 0.05}),
        ("- Model: ResNet-18 (11,173,962 parameters)", {"model": "resnet18"}),
        ("- SGD optimizer, cosine schedule, lr=0.1", {"optimizer": "sgd", "cosine": True, "lr": 0.1}),
        ("- BatchNorm2d", {"bn": True}),
        ("- USE_BN=False", {"bn": False}),
        ("- Augmentation: RandomCrop(32, padding=4), RandomHorizontalFlip()", {"augment": "crop,flip"}),
        ("- TrivialAugmentWide", {"augment": "trivialaugmentwide"}),
    ],
)
def test_configuration_forms(config, expected):
    run = nb(f"- **Configuration**:\n  {config}\n- **Final accuracy**: 50%")
    assert run.params == expected


def test_model_parameter_count_from_configuration():
    assert nb("- **Configuration**:\n  - Model: ResNet-18 (11,173,962 parameters)").param_count == 11173962


def test_non_finite_config_value_is_a_warning_not_a_value():
    run = nb("- **Configuration**:\n  - LR=nan\n  - EPOCHS=-3")
    assert run.params == {}
    assert len([w for w in run.warnings if "ignored" in w]) == 2


def test_summary_time_in_minutes():
    assert nb("- **Training Time**: 7.5 minutes\n- **Final Validation Accuracy**: 80%").train_time_s == 450.0


def test_epoch_table_with_time_columns_and_fractions():
    run = nb("| Epoch | Train Loss | Val Acc | Time (s) | Total |\n|---|---|---|---|---|\n| 1 | 1.5 | 0.55 | 10.0 | 10.0 |\n| 2 | 1.0 | 0.65 | 11.0 | 21.0 |\n")
    assert [(e.train_loss, e.val_acc, e.duration_s, e.elapsed_s) for e in run.epochs] == [(1.5, 55.0, 10.0, 10.0), (1.0, 65.0, 11.0, 21.0)]


def test_epoch_table_contradiction_names_the_row():
    with pytest.raises(ParseError) as info:
        parse_notebook("## Run 1: x\n| Epoch | Accuracy (%) |\n|---|---|\n| 1 | 50 |\n| 1 | 51 |\n", source="n.md")
    assert (info.value.source, info.value.line) == ("n.md", 5)


def test_log_contradiction_inside_notebook_names_the_notebook_line():
    text = "intro\n\n## Run 1: x\n```\nConfig: EPOCHS=20\nEpoch [3/10], Loss: 1, Val Accuracy: 50%\n```\n"
    with pytest.raises(ParseError) as info:
        parse_notebook(text, source="n.md")
    assert (info.value.source, info.value.line) == ("n.md", 6)


def test_code_block_without_epochs_is_kept_in_the_analysis():
    run = nb("- **Hypothesis**: h\n```python\nmodel = resnet18()\n```\n**Analysis**: fine")
    assert run.epochs == [] and run.analysis == "```python\nmodel = resnet18()\n```\n\nfine"


def test_unknown_metadata_bullet_goes_to_extra():
    run = nb("- **Observation**: loss spikes at epoch 3\n- **Hypothesis**: h")
    assert run.extra == {"observation": "loss spikes at epoch 3"} and run.hypothesis == "h"


def test_a_stated_date_is_the_run_date():
    from datetime import datetime

    assert nb("- **Date**: 2024-05-01\n- **Hypothesis**: h").started_at == datetime(2024, 5, 1)
    assert nb("- **Hypothesis**: h").started_at is None  # no date unless the section states one
    assert nb("- **Date**: last spring").extra == {"date": "last spring"}


def test_status_bullet_wins_over_a_complete_log():
    run = nb("- **Status**: failed\n```\nEpoch [1/1], Loss: 1, Val Accuracy: 50%\nFinished Training. Total time: 1 seconds\n```")
    assert run.status == "failed"


def test_heading_without_title_and_indented_heading():
    parsed = parse_notebook("  ## Run 3\n- **Final accuracy**: 50%\n")
    assert (parsed.runs[0].number, parsed.runs[0].title) == (3, None)


def test_windows_line_endings():
    run = nb("- **Hardware**: T4\r\n- **Final accuracy**: 50%\r\n".replace("\n", "\r\n"))
    assert run.hardware == "T4" and run.final_val_acc == 50.0


def test_empty_notebook():
    parsed = parse_notebook("")
    assert parsed.runs == [] and parsed.preamble == ""


def test_unclosed_computed_block_stops_at_next_run():
    parsed = parse_notebook("## Run 1: a\n<!-- speedrun:computed -->\n- x\n## Run 2: b\n- **Final accuracy**: 50%\n")
    assert [r.number for r in parsed.runs] == [1, 2] and parsed.runs[1].final_val_acc == 50.0
    assert any("computed block" in w for w in parsed.warnings)


def test_whole_notebook_indented_like_a_terminal_copy(seed):
    # The user's chat paste indents every line by two spaces, headings included.
    indented = "\n".join("  " + line if line else line for line in SEED_NOTEBOOK.read_text().splitlines())
    again = parse_notebook(indented, source="seed-notebook.md")
    assert [r.number for r in again.runs] == [15, 16, 17, 18, 19]
    for before, after in zip(seed.runs, again.runs):
        assert (after.title, after.hardware, after.params, after.hypothesis) == (before.title, before.hardware, before.params, before.hypothesis)
        assert after.analysis == before.analysis and after.epochs == before.epochs


def test_log_pasted_into_the_chat_reads_like_the_file():
    # From the seed session: the user's Run 19 log, pasted with two-space indentation and no trailing newline.
    original = (SEED_LOGS / "run19-bs64-cpu.txt").read_text()
    pasted = "\n".join("  " + line for line in original.splitlines())
    assert parse_log(pasted)[0].content_hash == parse_log(original)[0].content_hash


@pytest.mark.parametrize(
    "line, expected",
    [
        ("- note=warmup then decay, no restarts", {"note": "warmup then decay, no restarts"}),
        ("- lr=1e-05", {"lr": 1e-05}),
        ("- augment=RandomCrop(32, padding=4), RandomHorizontalFlip()", {"augment": "crop,flip"}),
        ("- lr=0.1, cosine schedule", {"lr": 0.1, "cosine": True}),
    ],
)
def test_report_param_lines_read_back_whole(line, expected):
    # A string parameter holding a comma once lost everything after the comma.
    assert nb(f"- **Configuration**:\n  {line}").params == expected


def test_hardware_that_names_no_machine_is_a_warning():
    # "**Hardware**: same as Run 15." classed the run "GPU" from its log's `cuda` with no word said: it left
    # the T4 leaderboard and compare called it "a ratio of machines (T4 vs GPU)".
    log = (SEED_LOGS / "run16-bs32-t4.txt").read_text()
    text = f"## Run 16: Batch 32\n- **Hardware**: same as Run 15.\n\n```\n{log}```\n"
    (run,) = parse_notebook(text, source="n.md").runs
    assert [w for w in run.warnings if "hardware" in w] == [
        "hardware 'same as Run 15.' names no machine, so the run is classed 'GPU' from its log's device (cuda): "
        "write the GPU or CPU (e.g. 'Colab, T4 GPU') to compare it with runs of its class"]
    named = parse_notebook(text.replace("same as Run 15.", "Google Colab, T4 GPU"), source="n.md").runs[0]
    assert not [w for w in named.warnings if "hardware" in w]
