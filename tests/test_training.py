import math
from dataclasses import replace

import pytest
import torch

from speedrun.errors import SpeedrunError
from speedrun.domain.params import CANONICAL
from speedrun.training import device, loop, recording
from speedrun.training.augment import MEAN, STD, Preprocess, cutout, parse_augment, random_crop, random_flip
from speedrun.training.config import TrainConfig
from speedrun.training.data import Cifar10, load_cifar10, write_synthetic_cifar10
from speedrun.training.loop import train_resnet
from speedrun.training.recording import Reporter, TrainingFailed
from tests.helpers import MemoryRecorder
from tests.tinynets import tiny_param_count

# The loop's tests check what a training records and prints, not what it learns: thousand-parameter nets.
pytestmark = pytest.mark.usefixtures("tiny_nets")


# --- augmentation -------------------------------------------------------------------------------

def _images(n=16):
    torch.manual_seed(0)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)


def test_crop_shifts_each_image_within_the_zero_padding():
    images = _images()
    cropped = random_crop(images, padding=4)
    assert cropped.shape == images.shape and cropped.dtype == torch.uint8
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    for i in range(len(images)):
        windows = [(dy, dx) for dy in range(9) for dx in range(9)
                   if torch.equal(padded[i, :, dy:dy + 32, dx:dx + 32], cropped[i])]
        assert windows, f"image {i} is not a 32×32 window of its padded original"
    offsets = {tuple(torch.nonzero(cropped[i].sum(0) != 0)[0].tolist()) for i in range(len(images))}
    assert len(offsets) > 1  # images get different offsets


def test_crop_without_padding_is_identity():
    images = _images()
    assert torch.equal(random_crop(images, padding=0), images)


def test_flip_mirrors_about_half_of_the_images():
    images = _images(200)
    flipped = random_flip(images)
    same = [torch.equal(a, b) for a, b in zip(images, flipped)]
    mirrored = [torch.equal(a.flip(2), b) for a, b in zip(images, flipped)]
    assert all(s or m for s, m in zip(same, mirrored))
    assert 60 < sum(mirrored) < 140


def test_cutout_zeroes_one_square_per_image():
    x = torch.ones(32, 3, 32, 32)
    out = cutout(x, size=8)
    zeros = (out == 0).all(1)  # same square in every channel
    counts = zeros.flatten(1).sum(1)
    assert (counts > 0).all() and (counts <= 64).all()
    assert (counts == 64).any()  # a square fully inside the image keeps its full size


def test_preprocess_normalizes_and_keeps_shapes():
    prep = Preprocess(("crop", "flip", "cutout", "jitter"))
    images = _images()
    for out in (prep.train(images), prep.normalize(images)):
        assert out.shape == images.shape and out.dtype == torch.float32
        assert out.is_contiguous(memory_format=torch.channels_last)
    grey = torch.full((1, 3, 32, 32), 128, dtype=torch.uint8)
    expected = torch.tensor([(128 / 255 - m) / s for m, s in zip(MEAN, STD)])
    assert torch.allclose(prep.normalize(grey)[0, :, 0, 0], expected)
    assert torch.equal(Preprocess(()).train(images), prep.normalize(images))


def test_parse_augment():
    assert parse_augment("crop,flip") == ("crop", "flip")
    assert parse_augment(" Flip , cutout,flip") == ("flip", "cutout")
    assert parse_augment("none") == () and parse_augment("") == ()
    with pytest.raises(SpeedrunError, match="--aug: unknown augmentation rotate"):
        parse_augment("crop,rotate")


# --- configuration ------------------------------------------------------------------------------

def test_defaults_are_the_users_configuration():
    c = TrainConfig()
    assert (c.model, c.optimizer, c.lr, c.momentum, c.batch_size, c.epochs, c.cosine) == \
        ("resnet18", "sgd", 0.04, 0.9, 64, 10, True)
    assert c.augment == ("crop", "flip") and c.weight_decay == 0.0 and c.bn


def test_cosine_schedule_is_stepped_per_epoch():
    c = TrainConfig(lr=0.04, epochs=10)
    assert c.lr_at(0) == pytest.approx(0.04)
    assert c.lr_at(5) == pytest.approx(0.02)
    assert c.lr_at(9) == pytest.approx(0.02 * (1 + math.cos(math.pi * 0.9)))
    assert TrainConfig(cosine=False).lr_at(7) == 0.04
    warm = TrainConfig(lr=0.1, epochs=6, warmup=2)
    assert [round(warm.lr_at(e), 4) for e in range(3)] == [0.05, 0.1, 0.1]


@pytest.mark.parametrize("changes, message", [
    ({"model": "vgg"}, "--model"), ({"batch_size": 1}, "--batch-size"), ({"epochs": 0}, "--epochs"),
    ({"lr": 0.0}, "--lr"), ({"lr": float("nan")}, "--lr"), ({"momentum": 1.0}, "--momentum"),
    ({"weight_decay": -1.0}, "--weight-decay"), ({"warmup": 10}, "--warmup"),
    ({"optimizer": "adam", "nesterov": True}, "--nesterov"), ({"optimizer": "lion"}, "--optimizer"),
    ({"device": "tpu"}, "--device"), ({"subset": 1}, "--subset"), ({"target": 120.0}, "--target"),
])
def test_bad_values_raise_one_clear_error(changes, message):
    with pytest.raises(SpeedrunError, match=message):
        TrainConfig(**changes).resolve()


def test_resolve_decides_amp_seed_and_threads(monkeypatch):
    from speedrun.tracking import environment

    monkeypatch.setattr(environment, "cpu_has_native_bf16", lambda: True)
    fast = TrainConfig(device="cpu").resolve()
    assert fast.amp is True and fast.amp_dtype == "bfloat16" and fast.seed is not None and fast.threads >= 1
    monkeypatch.setattr(environment, "cpu_has_native_bf16", lambda: False)
    slow = TrainConfig(device="cpu").resolve()
    assert slow.amp is False and slow.amp_dtype is None
    assert TrainConfig(device="cpu", amp=False, seed=7).resolve().seed == 7


def test_to_params_uses_canonical_names():
    params = TrainConfig(device="cpu", amp=False, seed=3).resolve().to_params()
    assert set(CANONICAL) <= set(params)
    assert params["augment"] == "crop,flip" and params["amp"] is False and params["seed"] == 3
    assert TrainConfig(augment=()).to_params()["augment"] == "none"


def test_to_params_records_what_the_recipe_reads_and_the_run_settings():
    from speedrun.errors import UsageError
    from speedrun.recipes import get_recipe

    recipe = get_recipe("airbench94-muon")
    muon = recipe.configure(device="cpu", amp=True, seed=1, subset=4000, target=90.0, lookahead=True,
                            val_subset=1000, eval_every=2).resolve()
    # Its options and the run's settings; not cosine, bn, warmup or graph (its loop reads none of
    # them), nor the machine's threads and autocast dtype (muon.machine(), recorded apart).
    assert set(muon.to_params()) == set(recipe.options) | {"recipe", "seed", "subset", "val_subset", "eval_every"}
    assert set(muon.machine()) >= {"threads", "amp_dtype"}
    with pytest.raises(UsageError, match="does not read --bias-lr-scale"):
        recipe.configure(bias_lr_scale=2.0)  # airbench94's knob: Muon's recipe never reads it
    assert TrainConfig(amp=None).to_params()["amp"] is False  # off until resolve() decides


# --- the loop -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake_cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_synthetic_cifar10(root, n_train=64, n_test=32)
    return root


def tiny_config(fake_cifar, **changes):
    settings = dict(model="resnet9", batch_size=16, epochs=2, device="cpu", amp=False, seed=0,
                    data_dir=str(fake_cifar))
    settings.update(changes)
    return TrainConfig(**settings).resolve()


class Lines:
    """A Reporter that keeps the printed lines."""

    def __init__(self):
        self.lines = []
        self.reporter = Reporter(progress=False)
        self.reporter.line = self.lines.append


def test_tiny_run_records_every_epoch(fake_cifar):
    recorder, out = MemoryRecorder(), Lines()
    result = train_resnet(tiny_config(fake_cifar, target=1.0), recorder, reporter=out.reporter)

    run = recorder.run
    assert run.source == "train" and run.status == "running"  # as it was when the run began
    assert run.param_count == tiny_param_count() and run.params["model"] == "resnet9" and run.pid
    assert run.data_load_s is not None and run.started_at is not None
    assert [e.epoch for e in recorder.epochs] == [1, 2]
    for e in recorder.epochs:
        assert None not in (e.train_loss, e.train_acc, e.val_loss, e.val_acc, e.duration_s, e.elapsed_s, e.lr,
                            e.images_per_s)
        assert 0 <= e.val_acc <= 100 and e.images_per_s == pytest.approx(64 / e.duration_s)
    first, second = recorder.epochs
    assert second.elapsed_s == pytest.approx(first.duration_s + second.duration_s)
    assert (first.lr, second.lr) == (pytest.approx(0.04), pytest.approx(0.02))

    assert recorder.status == "completed"
    assert recorder.finish_args["train_time_s"] == pytest.approx(second.elapsed_s)
    assert recorder.finish_args["wall_time_s"] > recorder.finish_args["train_time_s"]
    assert recorder.finish_args["extra"]["eval_time_s"] > 0 and run.target_acc == 1.0
    target_time = recorder.finish_args["target_time_s"]
    assert target_time == pytest.approx(first.elapsed_s)  # reached at the first epoch
    assert result.target_time_s == target_time and result.final_val_acc == second.val_acc

    assert out.lines[0] == "Using device: cpu"
    assert f"Model parameters: {tiny_param_count():,}" in out.lines
    assert any(line.startswith("Config: LR=0.04, BATCH_SIZE=16, EPOCHS=2, COSINE=True, AMP=False") for line in out.lines)
    assert f"Epoch [2/2], Loss: {second.train_loss:.4f}, Val Accuracy: {second.val_acc:.2f}%, " \
           f"Duration: {second.duration_s:.2f}s, Total: {second.elapsed_s:.1f}s" in out.lines
    assert f"Final Validation Accuracy: {second.val_acc:.2f}%" in out.lines


def test_same_seed_gives_the_same_run(fake_cifar):
    runs = [MemoryRecorder(), MemoryRecorder()]
    for recorder in runs:
        train_resnet(tiny_config(fake_cifar, epochs=1, augment=("crop", "flip", "cutout")), recorder,
                     reporter=Lines().reporter)
    assert runs[0].epochs[0].train_loss == runs[1].epochs[0].train_loss


def test_loss_is_read_back_once_per_epoch_not_per_batch(fake_cifar, monkeypatch):
    calls = []
    original = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda self: calls.append(1) or original(self))
    train_resnet(tiny_config(fake_cifar, epochs=1, batch_size=4), MemoryRecorder(), reporter=Lines().reporter)
    assert len(calls) <= 6  # 16 batches; train and eval read loss and accuracy once each


def test_heartbeat_is_sent_during_long_epochs(fake_cifar, monkeypatch):
    monkeypatch.setattr(recording, "HEARTBEAT_S", 0.0)
    recorder = MemoryRecorder()
    train_resnet(tiny_config(fake_cifar, epochs=1), recorder, reporter=Lines().reporter)
    assert recorder.heartbeats >= 3  # 4 batches


def test_ctrl_c_records_interrupted_and_keeps_epochs(fake_cifar, ctrl_c_in_second_evaluation):
    recorder = MemoryRecorder()
    with pytest.raises(KeyboardInterrupt):
        train_resnet(tiny_config(fake_cifar, epochs=3), recorder, reporter=Lines().reporter)
    assert recorder.status == "interrupted"
    assert [e.epoch for e in recorder.epochs] == [1]
    assert recorder.finish_args["train_time_s"] > recorder.epochs[0].elapsed_s  # epoch 2's training counted


def test_an_error_records_failed_with_its_text(fake_cifar, monkeypatch):
    def broken(*args):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(loop, "evaluate", broken)
    recorder = MemoryRecorder(label="test.db")
    with pytest.raises(TrainingFailed, match=r"training failed: RuntimeError: out of memory "
                                             r"\(run 1 recorded as failed in test.db\)") as caught:
        train_resnet(tiny_config(fake_cifar), recorder, reporter=Lines().reporter)
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert recorder.status == "failed" and recorder.finish_args["error"] == "RuntimeError: out of memory"
    assert recorder.epochs == []


def test_a_bug_is_recorded_as_failed_and_travels_on_as_itself(fake_cifar, monkeypatch):
    monkeypatch.setattr(loop, "evaluate", lambda *args: None)  # returns nothing to unpack: a TypeError
    recorder = MemoryRecorder()
    with pytest.raises(TypeError):
        train_resnet(tiny_config(fake_cifar), recorder, reporter=Lines().reporter)
    assert recorder.status == "failed" and recorder.finish_args["error"].startswith("TypeError")


def test_missing_data_fails_before_anything_is_recorded(tmp_path, monkeypatch):
    from speedrun.training import data

    monkeypatch.setattr(data, "_download", lambda d: (_ for _ in ()).throw(OSError("offline")))
    recorder = MemoryRecorder()
    with pytest.raises(SpeedrunError, match="CIFAR-10 not found"):
        train_resnet(tiny_config(tmp_path / "empty"), recorder, reporter=Lines().reporter)
    assert recorder.run is None and recorder.status is None


@pytest.mark.parametrize("changes", [
    {"optimizer": "adamw", "lr": 0.001, "weight_decay": 0.05, "cosine": False, "bn": False},
    {"optimizer": "sgd", "nesterov": True, "warmup": 1, "amp": True, "augment": ("jitter", "cutout")},
])
def test_other_options_train(fake_cifar, changes):
    recorder = MemoryRecorder()
    train_resnet(tiny_config(fake_cifar, **changes), recorder, reporter=Lines().reporter)
    assert recorder.status == "completed" and all(math.isfinite(e.train_loss) for e in recorder.epochs)


def test_printed_log_reads_back_with_the_same_numbers(fake_cifar):
    from speedrun.notebook import parse_log

    recorder, out = MemoryRecorder(), Lines()
    train_resnet(tiny_config(fake_cifar, epochs=3), recorder, reporter=out.reporter)
    parsed = parse_log("$ python main.py\n" + "\n".join(out.lines) + "\n")
    run = parsed[0] if isinstance(parsed, list) else parsed
    assert [e.epoch for e in run.epochs] == [1, 2, 3]
    for got, want in zip(run.epochs, recorder.epochs):
        assert got.train_loss == round(want.train_loss, 4)
        assert got.val_acc == round(want.val_acc, 2)
        assert got.duration_s == round(want.duration_s, 2)
        assert got.elapsed_s == round(want.elapsed_s, 1)
    assert run.param_count == tiny_param_count()
    assert run.params["lr"] == 0.04 and run.params["batch_size"] == 16 and run.params["epochs"] == 3


# --- what a step costs the host, and what is compiled when -------------------------------------


def images_of(data, n):
    return Cifar10(data.train_images[:n], data.train_labels[:n], data.test_images, data.test_labels)


@pytest.mark.parametrize("scaled", [False, True], ids=["cpu-default", "fp16-scaler-fused"])
def test_a_training_epoch_reads_from_the_device_only_once_at_its_end(fake_cifar, host_reads, monkeypatch, scaled):
    config = tiny_config(fake_cifar, batch_size=8)
    if scaled:  # the CUDA branch (fp16, GradScaler, fused SGD), which torch also runs on the CPU
        monkeypatch.setattr(device, "FUSED_DEVICES", ("cuda", "cpu"))
        config = replace(config, amp=True, amp_dtype="float16")
    cpu = torch.device("cpu")
    parts = loop.build_parts(config, cpu)
    assert (parts.scaler is not None) == scaled
    data = load_cifar10(fake_cifar, cpu)
    reads = []
    for n in (32, 64):  # 4 and 8 batches
        host_reads.clear()
        loop.train_epoch(parts, images_of(data, n), 8, lambda images: None)
        reads.append(len(host_reads))
    assert reads == [2, 2]  # loss and accuracy, once per epoch: zero per batch


def test_a_grad_scaler_always_comes_with_a_fused_optimizer_on_cuda():
    cuda = torch.device("cuda")
    fp16 = TrainConfig(amp=True, amp_dtype="float16")
    assert device.fused(cuda) and device.grad_scaler_for(fp16, torch.device("cpu")) is not None
    assert device.grad_scaler_for(replace(fp16, amp_dtype="bfloat16"), cuda) is None  # bf16 needs no scaling
    assert device.grad_scaler_for(TrainConfig(amp=False), cuda) is None


def test_compiled_training_compiles_nothing_while_the_clock_runs(fake_cifar, compilations):
    recorder = MemoryRecorder()
    config = tiny_config(fake_cifar, batch_size=24, compile=True)  # 64 images: batches of 24, 24 and 16
    train_resnet(config, recorder, reporter=Lines().reporter)
    assert recorder.status == "completed"
    assert len(compilations) >= 3  # train full, train partial, evaluation: all static graphs
    assert "timed" not in compilations
    assert recorder.finish_args["extra"]["warmup_s"] > 0


def test_each_loop_is_named_for_what_it_trains():
    """`speedrun.training` has no bare `train`: the ResNet loop and the fast loop, each by its name,
    are what the recipes train with."""
    import speedrun.training as training
    from speedrun.recipes import get_recipe

    assert not hasattr(training, "train")
    assert get_recipe("resnet18").train is training.train_resnet is loop.train_resnet
    assert {get_recipe(name).train.func for name in ("airbench94", "airbench94-muon")} == {training.train_fast}
