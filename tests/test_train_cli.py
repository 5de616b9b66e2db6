import re

import pytest
from typer.testing import CliRunner

from speedrun.cli import app
from speedrun.cli import train as train_cli
from speedrun.training import data as data_module
from speedrun.training import loop
from speedrun.training.data import write_synthetic_cifar10
from tests.helpers import MemoryRecorder
from tests.tinynets import tiny_param_count

runner = CliRunner()
# What `speedrun train` prints and records, not what it learns: thousand-parameter nets (tests/tinynets.py).
pytestmark = pytest.mark.usefixtures("tiny_nets")


UNIT = r"(?:\s+\(.+\))?"  # --dry-run shows a unit after a value: `64  (images)`


def one_line(text):
    return re.sub(r"\s+", " ", text)


@pytest.fixture
def recorder(monkeypatch):
    recorder = MemoryRecorder(label="test.db")
    monkeypatch.setattr(train_cli, "make_recorder", lambda **options: recorder)
    return recorder


@pytest.fixture(scope="module")
def fake_cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_synthetic_cifar10(root, n_train=48, n_test=16)
    return root


def tiny_args(fake_cifar, *more):
    return ["train", "--model", "resnet9", "--bs", "16", "--epochs", "2", "--device", "cpu", "--no-amp",
            "--seed", "1", "--data-dir", str(fake_cifar), *more]


def test_dry_run_prints_the_defaults_and_records_nothing(recorder):
    result = runner.invoke(app, ["train", "--dry-run", "--device", "cpu", "--seed", "5"])
    assert result.exit_code == 0, result.output
    out = result.output
    for key, value in [("model", "resnet18"), ("optimizer", "sgd"), ("lr", "0.04"), ("momentum", "0.9"),
                       ("batch_size", "64"), ("epochs", "10"), ("cosine", "True"), ("augment", "crop,flip"),
                       ("seed", "5"), ("device", "cpu")]:
        assert re.search(rf"^\s+{key}\s+{re.escape(value)}{UNIT}$", out, re.MULTILINE), key
    assert "Config: LR=0.04, BATCH_SIZE=64, EPOCHS=10, COSINE=True" in out
    assert recorder.run is None


def test_options_reach_the_configuration(recorder):
    result = runner.invoke(app, ["train", "--dry-run", "--device", "cpu", "--model", "resnet9", "--bs", "512",
                                 "--lr", "0.4", "--wd", "5e-4", "--nesterov", "--no-cosine", "--warmup", "2",
                                 "--no-bn", "--no-amp", "--aug", "crop,cutout", "--optimizer", "SGD",
                                 "--subset", "1000", "--target", "94", "--title", "big batch",
                                 "--tag", "bs", "--tag", "page"])
    assert result.exit_code == 0, result.output
    out = result.output
    for key, value in [("model", "resnet9"), ("batch_size", "512"), ("lr", "0.4"), ("weight_decay", "0.0005"),
                       ("nesterov", "True"), ("cosine", "False"), ("warmup", "2"), ("bn", "False"),
                       ("amp", "False"), ("augment", "crop,cutout"), ("subset", "1000"), ("target", "94.0"),
                       ("title", "big batch"), ("tags", "bs, page")]:
        assert re.search(rf"^\s+{key}\s+{re.escape(value)}{UNIT}$", out, re.MULTILINE), key


@pytest.mark.parametrize("args, message", [
    (["--model", "vgg"], "--model must be one of resnet18, resnet9"),
    (["--bs", "0"], "--batch-size must be at least 2"),
    (["--aug", "crop,rotate"], "--aug: unknown augmentation rotate"),
    (["--optimizer", "lion"], "--optimizer must be one of sgd, adam, adamw"),
    (["--device", "cuda"], "no CUDA GPU"),
])
def test_bad_values_give_one_clear_error(recorder, args, message, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    result = runner.invoke(app, ["train", "--dry-run", *args])
    assert result.exit_code == 1
    assert message in one_line(result.output)
    assert "Traceback" not in result.output


def test_train_prints_the_users_log_and_records_the_run(recorder, fake_cifar):
    result = runner.invoke(app, tiny_args(fake_cifar, "--title", "tiny", "--hypothesis", "it runs",
                                          "--notes", "smoke", "--tag", "t1", "--tag", "t2"))
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0] == "Using device: cpu"
    assert f"Model parameters: {tiny_param_count():,}" in lines
    epoch_lines = [line for line in lines if line.startswith("Epoch [")]
    assert len(epoch_lines) == 2
    assert re.fullmatch(r"Epoch \[1/2\], Loss: \d+\.\d{4}, Val Accuracy: \d+\.\d{2}%, Duration: \d+\.\d{2}s, "
                        r"Total: \d+\.\d{1}s", epoch_lines[0])
    assert any(line.startswith("Finished Training. Training loop time: ") for line in lines)
    assert lines[-1] == "Run 1 recorded in test.db"

    run = recorder.run
    assert (run.title, run.hypothesis, run.analysis, run.tags) == ("tiny", "it runs", "smoke", ["t1", "t2"])
    assert run.env["device_type"] == "cpu" and run.env["hardware"].startswith("CPU: ")
    assert run.hardware is None and run.command and run.params["batch_size"] == 16
    assert recorder.status == "completed" and len(recorder.epochs) == 2


def test_ctrl_c_exits_130_and_records_interrupted(recorder, fake_cifar, ctrl_c_in_second_evaluation):
    result = runner.invoke(app, tiny_args(fake_cifar))
    assert result.exit_code == 130
    assert recorder.status == "interrupted" and len(recorder.epochs) == 1
    assert "run 1 recorded as interrupted in test.db" in one_line(result.output)


def test_an_error_exits_1_and_records_failed(recorder, fake_cifar, monkeypatch):
    monkeypatch.setattr(loop, "evaluate", lambda *a: (_ for _ in ()).throw(RuntimeError("disk on fire")))
    result = runner.invoke(app, tiny_args(fake_cifar))
    assert result.exit_code == 1
    assert recorder.status == "failed" and "disk on fire" in recorder.finish_args["error"]
    assert "training failed: RuntimeError: disk on fire (run 1 recorded as failed in test.db)" in one_line(result.output)


def test_missing_data_is_one_clear_error_and_no_run(recorder, tmp_path, monkeypatch):
    monkeypatch.setattr(data_module, "_download", lambda d: (_ for _ in ()).throw(OSError("offline")))
    result = runner.invoke(app, ["train", "--device", "cpu", "--data-dir", str(tmp_path / "none")])
    assert result.exit_code == 1
    message = one_line(result.output)
    assert "CIFAR-10 not found" in message and "--data-dir" in message and "prepare.py" in message
    assert "Traceback" not in result.output and recorder.run is None


def test_epochs_may_be_fractional_only_in_the_fast_recipes(recorder):
    whole = runner.invoke(app, ["train", "--dry-run", "--device", "cpu", "--epochs", "12"])
    assert whole.exit_code == 0 and re.search(r"^\s+epochs\s+12" + UNIT + "$", whole.output, re.MULTILINE)
    fast = runner.invoke(app, ["train", "--dry-run", "--device", "cpu", "--recipe", "airbench94", "--epochs", "7.5"])
    assert fast.exit_code == 0 and re.search(r"^\s+epochs\s+7.5" + UNIT + "$", fast.output, re.MULTILINE)
    result = runner.invoke(app, ["train", "--dry-run", "--device", "cpu", "--epochs", "9.9"])
    assert result.exit_code == 1
    assert "--epochs must be a whole number in the resnet recipes" in one_line(result.output)


@pytest.mark.parametrize("epochs, shown", [("1e308", "1e+308"), ("200000", "200,000"), ("inf", "inf")])
def test_an_epoch_count_no_training_means_is_refused_before_anything_starts(recorder, epochs, shown):
    # `--epochs 1e308` was taken as a 309-digit whole number: a training that never ends, whose
    # epoch count no database column holds.
    result = runner.invoke(app, ["train", "--dry-run", "--device", "cpu", "--epochs", epochs])
    assert result.exit_code == 1 and recorder.run is None
    assert one_line(result.output).strip() == f"Error: --epochs must be positive and at most 100,000, not {shown}"


def test_a_sweeps_repeat_is_capped_like_trains(cli):
    result = cli("sweep", "--name", "s", "--lr", "0.01,0.02", "--repeat", "1000000")
    assert result.exit_code == 1 and "--repeat must be from 1 to 10,000, not 1,000,000" in one_line(result.output)


def test_dry_run_prints_the_config_line_the_log_will_print():
    # The log counts the epochs begun (EPOCHS=10 for a 9.9-epoch budget) and says where the last stops;
    # the dry run printed EPOCHS=9.9, a line the log parser would read differently.
    result = runner.invoke(app, ["train", "--dry-run", "--device", "cpu", "--recipe", "airbench94"])
    assert result.exit_code == 0, result.output
    assert re.search(r"^Config: .*EPOCHS=10,", result.output, re.MULTILINE)
    assert "Epoch budget: 9.9 epochs = 476 steps of 1024 images; epoch 10 stops after 44 of 48" in result.output
    assert re.search(r"^\s+epochs\s+9.9" + UNIT + "$", result.output, re.MULTILINE)  # the setting itself, as given


def test_val_subset_evaluates_a_fixed_seeded_part_of_the_test_set_and_is_recorded(recorder, fake_cifar,
                                                                                   monkeypatch):
    seen = []
    evaluate = loop.evaluate

    def counting(net, images, labels, *rest):
        seen.append(labels.tolist())
        return evaluate(net, images, labels, *rest)

    monkeypatch.setattr(loop, "evaluate", counting)
    result = runner.invoke(app, tiny_args(fake_cifar, "--val-subset", "10"))
    assert result.exit_code == 0, result.output
    assert [len(labels) for labels in seen] == [10, 10]  # both epochs, 10 of the 16 test images each
    assert seen[0] == seen[1]  # the same images every epoch
    assert recorder.run.params["val_subset"] == 10
    assert "VAL_SUBSET=10" in result.output  # the Config line carries it, so a pasted log keeps it

    # The same N images in every run: the choice is seeded, not drawn per run.
    from speedrun.training.data import val_subset_indices

    assert val_subset_indices(10_000, 500).tolist() == val_subset_indices(10_000, 500).tolist()
    assert len(set(val_subset_indices(10_000, 500).tolist())) == 500


def test_eval_every_skips_evaluations_but_always_evaluates_the_last_epoch(recorder, fake_cifar, monkeypatch):
    calls = []
    evaluate = loop.evaluate
    monkeypatch.setattr(loop, "evaluate", lambda *a: calls.append(1) or evaluate(*a))
    args = tiny_args(fake_cifar, "--eval-every", "2")
    args[args.index("--epochs") + 1] = "3"
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(calls) == 2  # epochs 2 and 3
    assert [e.val_acc is None for e in recorder.epochs] == [True, False, False]
    epoch_lines = [line for line in result.output.splitlines() if line.startswith("Epoch [")]
    assert "Val Accuracy" not in epoch_lines[0] and "Val Accuracy" in epoch_lines[2]
    assert recorder.run.params["eval_every"] == 2


@pytest.mark.parametrize("args, message", [
    (["--val-subset", "0"], "--val-subset must be at least 1 image"),
    (["--eval-every", "0"], "--eval-every must be at least 1"),
])
def test_bad_evaluation_options_are_one_clear_error(recorder, args, message):
    result = runner.invoke(app, ["train", "--dry-run", "--device", "cpu", *args])
    assert result.exit_code == 1 and message in one_line(result.output)


def test_a_val_subset_larger_than_the_test_set_is_one_clear_error(recorder, fake_cifar):
    result = runner.invoke(app, tiny_args(fake_cifar, "--val-subset", "17"))
    assert result.exit_code == 1
    assert "--val-subset 17 is larger than the 16 test images" in one_line(result.output)
    assert "Traceback" not in result.output
