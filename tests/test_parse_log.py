"""parse_log: every line form of the trainer, the noise around it, runs, and contradictions."""

from __future__ import annotations

import math

import pytest

from speedrun.errors import ParseError
from speedrun.notebook.logformat import epoch_line, footer_lines, header_lines
from speedrun.notebook import parse_log
from speedrun.domain.records import summarize
from tests.conftest import SEED_LOGS

EPOCH3 = "Epoch [3/10], Loss: 0.7856, Val Accuracy: 75.63%"


def one(text: str):
    runs = parse_log(text)
    assert len(runs) == 1, [r.log_text for r in runs]
    return runs[0]


def small_log(*middle: str, epochs: int = 2, finished: bool = True) -> str:
    lines = ["Using device: cuda", *middle]
    lines += [f"Epoch [{n}/{epochs}], Loss: {1.0 / n:.4f}, Val Accuracy: {50 + n:.2f}%" for n in range(1, epochs + 1)]
    if finished:
        lines += ["Finished Training. Training loop time: 12.50 seconds", f"Final Validation Accuracy: {50 + epochs:.2f}%"]
    return "\n".join(lines) + "\n"


# --- seed logs ---------------------------------------------------------------


def test_seed_run15_numbers_exactly():
    run = one((SEED_LOGS / "run15-bs64-t4.txt").read_text())
    assert run.source == "log" and run.status == "completed"
    assert len(run.epochs) == 10
    assert run.final_val_acc == 85.69
    assert run.train_time_s == 436.99
    assert run.data_load_s == 1.69
    assert run.param_count == 11173962
    assert run.env == {"device_type": "cuda"}
    assert run.params == {"epochs": 10}
    assert run.command == "python main.py"
    summary = summarize(run.epochs, stated_final=run.final_val_acc, stated_train_time=run.train_time_s)
    assert (summary.peak_val_acc, summary.peak_epoch, summary.final_val_acc) == (86.47, 9, 85.69)
    third = run.epochs[2]
    assert (third.epoch, third.train_loss, third.val_acc, third.duration_s, third.elapsed_s) == (3, 0.7856, 75.63, 42.85, 127.8)
    assert run.warnings == []


def test_seed_run18_config_line():
    run = one((SEED_LOGS / "run18-bs64-20ep-cosine-t4.txt").read_text())
    assert run.params == {"lr": 0.02, "batch_size": 64, "epochs": 20, "cosine": True}
    assert len(run.epochs) == 20 and run.epochs[-1].val_acc == 90.68
    assert run.train_time_s == 884.88 and run.data_load_s == 1.88


@pytest.mark.parametrize(
    "name, epochs, final, train_time, device",
    [
        ("run15-bs64-t4.txt", 10, 85.69, 436.99, "cuda"),
        ("run16-bs32-t4.txt", 10, 87.18, 534.28, "cuda"),
        ("run17-bs16-t4.txt", 10, 87.16, 689.89, "cuda"),
        ("run18-bs64-20ep-cosine-t4.txt", 20, 90.68, 884.88, "cuda"),
        ("run19-bs64-cpu.txt", 10, 84.08, 7539.55, "cpu"),
    ],
)
def test_all_seed_logs(name, epochs, final, train_time, device):
    path = SEED_LOGS / name
    run = one(path.read_text())
    assert (len(run.epochs), run.final_val_acc, run.train_time_s, run.env["device_type"]) == (epochs, final, train_time, device)
    assert [e.epoch for e in run.epochs] == list(range(1, epochs + 1))
    assert run.source_line == 1 and run.status == "completed"


def test_seed_run19_cpu_params():
    run = one((SEED_LOGS / "run19-bs64-cpu.txt").read_text())
    assert run.params == {"lr": 0.02, "batch_size": 64, "epochs": 10, "cosine": False}
    assert run.epochs[0].duration_s == 742.44 and run.epochs[-1].elapsed_s == 7539.6


# --- line forms ----------------------------------------------------------------


def test_amp_seed_and_preload_to_gpu():
    run = one(
        small_log(
            "Using Automatic Mixed Precision (AMP).",
            "Setting random seed: 42",
            "Pre-loading data to GPU...",
            "Data pre-loaded in 3.25 seconds.",
        )
    )
    assert run.params["amp"] is True and run.params["seed"] == 42
    assert run.data_load_s == 3.25


def test_data_loaders_line_after_preload_is_the_total():
    run = one(small_log("Data pre-loaded in 3.25 seconds.", "Data loaders created in 3.30 seconds."))
    assert run.data_load_s == 3.30


def test_config_line_keeps_unknown_keys_lower_cased():
    run = one(small_log("Config: LR=0.04, BATCH_SIZE=64, EPOCHS=2, COSINE=True, AMP=True, WARMUP_STEPS=100, MY_KNOB=abc"))
    assert run.params == {
        "lr": 0.04,
        "batch_size": 64,
        "epochs": 2,
        "cosine": True,
        "amp": True,
        "warmup_steps": 100,
        "my_knob": "abc",
    }


def test_config_value_with_commas_inside_parentheses():
    run = one(small_log("Config: LR=0.1, AUGMENT=RandomCrop(32, padding=4), RandomHorizontalFlip(), EPOCHS=2"))
    # The whole call list is one value, in the recipe's spelling (what `speedrun train` records).
    assert run.params["augment"] == "crop,flip"
    assert run.params["lr"] == 0.1 and run.params["epochs"] == 2


def test_epochs_param_from_epoch_total_when_config_lacks_it():
    run = one(small_log("Config: LR=0.04", epochs=3))
    assert run.params == {"lr": 0.04, "epochs": 3}


def test_epoch_line_without_duration_and_total():
    run = one(EPOCH3.replace("[3/10]", "[1/1]"))
    epoch = run.epochs[0]
    assert (epoch.train_loss, epoch.val_acc, epoch.duration_s, epoch.elapsed_s) == (0.7856, 75.63, None, None)


def test_epoch_line_with_duration_only():
    run = one("Epoch [1/1], Loss: 0.5, Val Accuracy: 80.00%, Duration: 42.85s")
    assert run.epochs[0].duration_s == 42.85 and run.epochs[0].elapsed_s is None


def test_epoch_line_extra_fields():
    run = one("Epoch [1/1], Loss: 0.5, Train Acc: 70.5%, Val Loss: 0.61, Val Accuracy: 80.00%, LR: 0.01, TTA Acc: 81.2%")
    epoch = run.epochs[0]
    assert (epoch.train_acc, epoch.val_loss, epoch.lr) == (70.5, 0.61, 0.01)
    assert epoch.extra == {"tta_acc": 81.2}


def test_older_finished_line():
    run = one(small_log().replace("Training loop time: 12.50", "Total time: 99.10"))
    assert run.train_time_s == 99.10 and run.status == "completed"


def test_device_mps_and_cuda_index():
    assert one(small_log().replace("cuda", "mps")).env == {"device_type": "mps"}
    assert one(small_log().replace("cuda", "cuda:0")).env == {"device_type": "cuda"}


def test_round_trip_through_logformat():
    params = {"lr": 0.04, "batch_size": 128, "epochs": 3, "cosine": True, "amp": True, "label_smoothing": 0.2}
    rows = [(1, 1.2345, 55.5, 10.25, 10.3), (2, 0.9876, 66.66, 10.5, 20.8), (3, 0.5, 77.77, 10.0, 30.8)]
    lines = header_lines("cuda", 11173962, params, 1.69, amp=True, seed=7, extra_config_keys=["label_smoothing"])
    lines += [epoch_line(n, 3, loss, acc, dur, tot) for n, loss, acc, dur, tot in rows]
    lines += footer_lines(30.75, 77.77)
    run = one("\n".join(lines))
    assert run.params == {**params, "seed": 7}
    assert run.param_count == 11173962 and run.data_load_s == 1.69
    assert [(e.epoch, e.train_loss, e.val_acc, e.duration_s, e.elapsed_s) for e in run.epochs] == rows
    assert (run.train_time_s, run.final_val_acc, run.status) == (30.75, 77.77, "completed")


# --- noise ---------------------------------------------------------------------

# (A `$ python ...` prompt is noise too, but between epochs it starts the next run: see below.)
NOISE_LINES = [
    "/usr/lib/python3/site-packages/torch/cuda/__init__.py:52: UserWarning: CUDA initialization: blah",
    "  warnings.warn(",
    "Downloading https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz to ./data/cifar-10-python.tar.gz",
    "100% 170M/170M [00:04<00:00, 38.8MB/s]",
    "100%|██████████| 170498071/170498071 [00:04<00:00, 38.8MB/s]",
    "Extracting ./data/cifar-10-python.tar.gz to ./data",
    "Files already downloaded and verified",
    "^C",
    "",
    "Traceback (most recent call last):",
]


@pytest.mark.parametrize("noise", NOISE_LINES)
def test_noise_lines_are_skipped(noise):
    base = small_log()
    lines = base.splitlines()
    noisy = "\n".join(lines[:1] + [noise] + lines[1:2] + [noise] + lines[2:])
    run = one(noisy)
    assert len(run.epochs) == 2 and run.final_val_acc == 52.0 and run.status == "completed"


def test_progress_bars_stay_out_of_log_text():
    run = one(small_log("100%|██████████| 170498071/170498071 [00:04<00:00, 38.8MB/s]"))
    assert "100%" not in run.log_text


def test_tqdm_carriage_returns_keep_the_epoch_segment():
    bar = "  0%|          | 0/782 [00:00<?, ?it/s]\r 50%|█████     | 391/782 [00:21<00:21, 18.3it/s]\r100%|██████████| 782/782 [00:42<00:00, 18.4it/s]"
    text = f"Using device: cuda\n{bar}\rEpoch [1/2], Loss: 1.0000, Val Accuracy: 51.00%\n{bar}\rEpoch [2/2], Loss: 0.5000, Val Accuracy: 52.00%\n"
    run = one(text)
    assert [e.val_acc for e in run.epochs] == [51.0, 52.0]
    assert "it/s" not in run.log_text


def test_epoch_line_found_after_a_prefix():
    run = one("Training: 100%|█████| 782/782 Epoch [1/1], Loss: 0.5, Val Accuracy: 60.00%")
    assert run.epochs[0].val_acc == 60.0


def test_ansi_crlf_trailing_spaces_and_indentation_hash_the_same():
    plain = small_log()
    damaged = "\r\n".join(f"   \x1b[32m{line}\x1b[0m   " for line in plain.splitlines()) + "\r\n"
    a, b = one(plain), one(damaged)
    assert a.content_hash == b.content_hash
    assert a.log_text == b.log_text
    assert [e.val_acc for e in b.epochs] == [51.0, 52.0]


def test_blank_lines_do_not_change_the_hash():
    plain = small_log()
    assert one(plain).content_hash == one(plain.replace("\n", "\n\n")).content_hash


def test_different_logs_hash_differently():
    assert one(small_log()).content_hash != one(small_log().replace("52.00%", "52.01%")).content_hash


def test_log_text_is_the_cleaned_run():
    run = one("$ python main.py\n" + small_log())
    assert run.log_text.splitlines()[0] == "$ python main.py"
    assert run.log_text.splitlines()[-1] == "Final Validation Accuracy: 52.00%"
    assert run.source_file == "<stdin>"


def test_source_is_passed_through():
    runs = parse_log(small_log(), source="colab.txt")
    assert runs[0].source_file == "colab.txt"


# --- several runs ------------------------------------------------------------------


def test_two_runs_back_to_back():
    text = "$ python main.py\n" + small_log() + "$ python main.py\n" + small_log(epochs=3)
    runs = parse_log(text)
    assert [len(r.epochs) for r in runs] == [2, 3]
    assert [r.source_line for r in runs] == [1, 7]
    assert runs[0].content_hash != runs[1].content_hash
    assert runs[1].log_text.startswith("$ python main.py\nUsing device: cuda")


def test_new_run_when_epoch_goes_back_to_one_without_header():
    text = "Epoch [1/2], Loss: 1, Val Accuracy: 50%\nEpoch [2/2], Loss: 1, Val Accuracy: 51%\nEpoch [1/2], Loss: 2, Val Accuracy: 40%\n"
    runs = parse_log(text)
    assert [[e.val_acc for e in r.epochs] for r in runs] == [[50.0, 51.0], [40.0]]
    assert [r.source_line for r in runs] == [1, 3]


def test_new_run_when_epoch_total_changes():
    text = "Epoch [1/2], Loss: 1, Val Accuracy: 50%\nEpoch [2/3], Loss: 1, Val Accuracy: 51%\n"
    runs = parse_log(text)
    assert [r.params["epochs"] for r in runs] == [2, 3]


def test_header_after_epochs_starts_new_run_even_without_finish():
    text = small_log(finished=False) + small_log()
    first, second = parse_log(text)
    assert first.status == "incomplete" and second.status == "completed"


def test_identical_line_pasted_twice_is_one_epoch():
    text = "Epoch [1/2], Loss: 1, Val Accuracy: 50%\nEpoch [1/2], Loss: 1, Val Accuracy: 50%\nEpoch [2/2], Loss: 1, Val Accuracy: 51%\n"
    assert [e.epoch for e in one(text).epochs] == [1, 2]


# --- incomplete runs -----------------------------------------------------------------


def test_run_without_finish_is_incomplete_with_warning():
    run = one(small_log(epochs=5, finished=False).replace("Epoch [5/5]", "Epoch [4/5]").rsplit("\n", 2)[0] + "\n^C\n")
    assert run.status == "incomplete"
    assert len(run.epochs) == 4
    assert any("Finished Training" in w for w in run.warnings)


def test_missing_epochs_warn():
    text = "Epoch [1/3], Loss: 1, Val Accuracy: 50%\nEpoch [3/3], Loss: 1, Val Accuracy: 51%\n"
    run = one(text)
    assert any("missing" in w and "2" in w for w in run.warnings)


def test_no_epoch_lines_is_an_error():
    with pytest.raises(ParseError) as info:
        parse_log("Using device: cuda\nPre-loading data...\n", source="x.log")
    assert info.value.reason == "no epoch lines found" and info.value.source == "x.log" and info.value.line == 1


def test_empty_text_is_an_error():
    with pytest.raises(ParseError):
        parse_log("")


def test_header_only_run_after_a_real_one_is_dropped_with_warning():
    runs = parse_log(small_log() + "Using device: cuda\nPre-loading data...\nFinished Training. Total time: 1 seconds\n")
    assert len(runs) == 1
    assert any("without epoch lines" in w for w in runs[0].warnings)


# --- contradictions name the line ------------------------------------------------------


def error_line(text: str) -> int | None:
    with pytest.raises(ParseError) as info:
        parse_log(text, source="bad.log")
    assert info.value.source == "bad.log"
    return info.value.line


def test_same_epoch_twice_with_different_numbers():
    text = "Epoch [1/3], Loss: 1, Val Accuracy: 50%\nEpoch [2/3], Loss: 1, Val Accuracy: 51%\nEpoch [2/3], Loss: 1, Val Accuracy: 52%\n"
    assert error_line(text) == 3


def test_config_epochs_disagree_with_epoch_total():
    text = "Using device: cuda\nConfig: LR=0.02, EPOCHS=20\nEpoch [3/10], Loss: 0.7, Val Accuracy: 75%\n"
    assert error_line(text) == 3


def test_epoch_beyond_total():
    assert error_line("noise\nEpoch [11/10], Loss: 0.7, Val Accuracy: 75%\n") == 2


@pytest.mark.parametrize(
    "line",
    [
        "Epoch [0/10], Loss: 0.7, Val Accuracy: 75%",
        "Epoch [-1/10], Loss: 0.7, Val Accuracy: 75%",
        "Epoch [1/10], Loss: nan, Val Accuracy: 75%",
        "Epoch [1/10], Loss: inf, Val Accuracy: 75%",
        "Epoch [1/10], Loss: -0.5, Val Accuracy: 75%",
        "Epoch [1/10], Loss: 1e999, Val Accuracy: 75%",
        "Epoch [1/10], Loss: 0.5, Val Accuracy: 175%",
        "Epoch [1/10], Loss: 0.5, Val Accuracy: abc%",
        "Epoch [1/99999999999999999999], Loss: 0.5, Val Accuracy: 75%",
    ],
)
def test_bad_values_name_the_line(line):
    assert error_line(f"Using device: cuda\n{line}\n") == 2


@pytest.mark.parametrize(
    "line",
    [
        "Final Validation Accuracy: nan%",
        "Finished Training. Training loop time: inf seconds",
        "Data loaders created in -1.5 seconds.",
        "Config: LR=nan, EPOCHS=1",
        "Config: EPOCHS=0",
        "Model parameters: 99999999999999999999999",
    ],
)
def test_bad_header_and_footer_values(line):
    text = f"Using device: cuda\nEpoch [1/1], Loss: 0.5, Val Accuracy: 75%\n{line}\n"
    if line.startswith(("Config", "Data", "Model")):
        text = f"Using device: cuda\n{line}\nEpoch [1/1], Loss: 0.5, Val Accuracy: 75%\n"
        assert error_line(text) == 2
    else:
        assert error_line(text) == 3


def test_values_are_finite():
    run = one((SEED_LOGS / "run18-bs64-20ep-cosine-t4.txt").read_text())
    values = [v for e in run.epochs for v in (e.train_loss, e.val_acc, e.duration_s, e.elapsed_s)]
    assert all(math.isfinite(v) for v in values)


# --- bugs found while writing the parser -----------------------------------------------------


def test_tqdm_description_with_epoch_counter_is_not_an_epoch_line():
    # "Epoch [1/10]: 45%|..." is a progress bar label, not the trainer's epoch line.
    text = "Epoch [1/2]: 45%|████ | 350/782\nEpoch [1/2], Loss: 1, Val Accuracy: 50%\n"
    assert one(text).epochs[0].val_acc == 50.0


def test_surrogate_characters_do_not_break_hashing():
    run = one("\ud800 noise\nEpoch [1/1], Loss: 1, Val Accuracy: 50%\n")
    assert len(run.content_hash) == 64


def test_huge_digit_strings_are_parse_errors_not_value_errors():
    with pytest.raises(ParseError):
        parse_log("Epoch [1/1], Loss: " + "9" * 5000 + ", Val Accuracy: 50%")


def test_overlong_value_after_a_good_field_is_an_error_not_dropped():
    # The 64-character bound on values once cut this number short silently.
    assert error_line("x\nEpoch [1/1], Loss: 0.5, Val Accuracy: " + "9" * 100 + "%\n") == 2


@pytest.mark.parametrize(
    "cut_line",
    [
        "Epoch [3/3], Loss: 0.5000, Val Accuracy: 53.00%, Duration: 10.00s, Total: 30",
        "Epoch [3/3], Loss: 0.5000, Val Accuracy: 53.0",
        "Epoch [3/3], Loss: 0.50",
        "Epoch [3/3], Loss: 0.5000, Val Acc",
    ],
)
def test_cut_off_last_line_is_dropped_not_misread(cut_line):
    # Truncated pastes once stored `Total: 30` for a 30.0s total and 53.0 for 53.00%.
    head = "Epoch [1/3], Loss: 1.0000, Val Accuracy: 51.00%, Duration: 10.00s, Total: 10.0s\n"
    head += "Epoch [2/3], Loss: 0.8000, Val Accuracy: 52.00%, Duration: 10.00s, Total: 20.0s\n"
    run = one(head + cut_line)
    assert [e.epoch for e in run.epochs] == [1, 2]
    assert any("cut off" in w for w in run.warnings)
    # With a newline after it, the same line is a complete line and is read.
    assert len(one(head + cut_line.removesuffix(", Val Acc") + "\n").epochs) == 3


def test_cut_off_finished_line_still_finishes():
    run = one(small_log(finished=False) + "Finished Training. Training loop time: 12")
    assert run.status == "completed" and run.train_time_s is None
