import contextlib
import re

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

import speedrun.cli.recipes  # noqa: F401  (registers `speedrun recipes` until speedrun.cli imports it)
from speedrun.cli import app
from speedrun.cli import train as train_cli
from speedrun.errors import SpeedrunError
from speedrun.recipes import all_recipes, get_recipe
from speedrun.training import fastloop
from speedrun.training.augment import AlternatingFlipTranslate, channel_constant, color_jitter, normalize
from speedrun.training.data import load_cifar10, write_synthetic_cifar10
from speedrun.training.fastloop import Steps
from speedrun.training.recording import Reporter
from tests.helpers import MemoryRecorder
from speedrun.training.nets import AirbenchNet, build_model, whitening_filters
from speedrun.training.optim import Lookahead, Muon, orthogonalize, set_lrs
from speedrun.training.schedules import linear_decay, lookahead_decay, triangle
from speedrun.training.tta import tta_logits, tta_views

runner = CliRunner()


@pytest.fixture(scope="module")
def fake_cifar(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_synthetic_cifar10(root, n_train=48, n_test=16)
    return root


def fast_parts(name):
    return get_recipe(name).train.keywords["parts"]


# --- recipes build -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["resnet18", "airbench94", "airbench94-muon"])
def test_each_recipe_builds_and_its_optimizers_cover_every_trainable_parameter(name):
    recipe = get_recipe(name)
    config = recipe.configure(device="cpu", amp=False, seed=0).resolve()
    x = torch.randn(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    if recipe.config.recipe is None:  # the classic loop's models
        model = build_model(config.model)
        assert model(x).shape == (2, 10)
        return
    parts = fast_parts(name)
    model = parts.build_model(config)
    model.init_whitening(x)
    assert model(x).shape == (2, 10)
    optimizers = parts.make_optimizers(model, config, Steps(per_epoch=10, total=100))
    in_groups = [id(p) for opt in optimizers for g in opt.param_groups for p in g["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(in_groups) == sorted(trainable)  # each exactly once
    assert not model.whiten.weight.requires_grad
    assert all(not m.weight.requires_grad for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_airbench_network_shape():
    model = AirbenchNet()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [24, 64, 64, 256, 256, 256, 256]
    assert sum(p.numel() for p in model.parameters()) == 1_971_352 + 24 * 3 * 2 * 2 + (64 * 2 + 256 * 4)
    # Identity-initialised: the first in_channels filters of each 3×3 conv are Dirac deltas.
    conv = convs[2]
    eye = torch.zeros_like(conv.weight[:64])
    torch.nn.init.dirac_(eye)
    assert torch.equal(conv.weight[:64], eye)


# --- whitening -----------------------------------------------------------------------------------

def test_whitening_makes_the_patch_covariance_the_identity():
    torch.manual_seed(0)
    mix = torch.randn(3, 3) + 2 * torch.eye(3)
    images = torch.einsum("ij,njhw->nihw", mix, torch.randn(200, 3, 16, 16))
    images = images + 0.5 * images.roll(1, dims=3)  # neighbouring pixels correlated
    filters = whitening_filters(images, kernel=2, eps=1e-9)
    assert filters.shape == (24, 3, 2, 2)
    assert torch.equal(filters[12:], -filters[:12])  # the negations
    out = F.conv2d(images, filters[:12]).permute(0, 2, 3, 1).reshape(-1, 12)
    covariance = out.T @ out / len(out)
    assert torch.allclose(covariance, torch.eye(12), atol=1e-3)


def test_whitening_eps_damps_only_small_eigen_directions():
    torch.manual_seed(1)
    images = torch.randn(50, 3, 8, 8) * 3
    out = F.conv2d(images, whitening_filters(images, eps=5e-4)[:12]).permute(0, 2, 3, 1).reshape(-1, 12)
    variances = (out.T @ out / len(out)).diagonal()
    assert torch.allclose(variances, torch.ones(12), atol=1e-3)  # eigenvalues ~9 >> eps


# --- augmentation --------------------------------------------------------------------------------

def test_alternating_flip_mirrors_each_image_in_exactly_every_other_epoch():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    aug = AlternatingFlipTranslate(images, pad=0, flip=True)
    plain = aug.padded
    idx = torch.arange(64)
    mirrored = []
    for epoch in range(6):
        out = aug.batch(idx, epoch)
        is_flipped = torch.tensor([torch.equal(o, p.flip(2)) for o, p in zip(out, plain)])
        is_plain = torch.tensor([torch.equal(o, p) for o, p in zip(out, plain)])
        assert (is_flipped ^ is_plain).all()
        mirrored.append(is_flipped)
    mirrored = torch.stack(mirrored)  # epochs × images
    assert (mirrored[1:] != mirrored[:-1]).all()  # every image alternates
    assert (mirrored.sum(0) == 3).all()  # 3 of 6 epochs, for every image
    assert 10 < mirrored[0].sum() < 54  # the starting flips are random


def test_translate_takes_windows_of_the_reflect_padded_image():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    aug = AlternatingFlipTranslate(images, pad=2, flip=False)
    out = aug.batch(torch.arange(16), epoch=0)
    assert out.shape == (16, 3, 32, 32) and out.is_contiguous(memory_format=torch.channels_last)
    offsets = set()
    for i in range(16):
        found = [(dy, dx) for dy in range(5) for dx in range(5)
                 if torch.equal(aug.padded[i, :, dy:dy + 32, dx:dx + 32], out[i])]
        assert found
        offsets.add(found[0])
    assert len(offsets) > 1


# --- test-time augmentation ----------------------------------------------------------------------

def test_tta_weights_sum_to_one():
    x = torch.randn(2, 3, 8, 8)
    assert [w for w, _ in tta_views(x, 0)] == [1.0]
    assert [w for w, _ in tta_views(x, 1)] == [0.5, 0.5]
    assert [w for w, _ in tta_views(x, 2)] == [0.25, 0.25, 0.125, 0.125, 0.125, 0.125]


def test_tta_averages_the_mirrored_and_translated_views():
    torch.manual_seed(0)
    weights = torch.randn(10, 3, 8, 8)

    def model(v):  # position-sensitive, so every view gives different logits
        return torch.einsum("nchw,kchw->nk", v, weights)

    x = torch.randn(4, 3, 8, 8)
    up_left = x[:, :, [1, *range(7)]][:, :, :, [1, *range(7)]]  # shifted by one pixel, reflected border
    down_right = x[:, :, [*range(1, 8), 6]][:, :, :, [*range(1, 8), 6]]
    expected = (0.25 * (model(x) + model(x.flip(3)))
                + 0.125 * (model(up_left) + model(up_left.flip(3)) + model(down_right) + model(down_right.flip(3))))
    assert torch.allclose(tta_logits(model, x, 2), expected, atol=1e-4)
    assert torch.allclose(tta_logits(model, x, 1), 0.5 * (model(x) + model(x.flip(3))), atol=1e-4)
    assert torch.allclose(tta_logits(model, x, 0), model(x), atol=1e-5)


# --- schedules, lookahead, Muon ------------------------------------------------------------------

def test_triangle_schedule_at_known_steps():
    assert triangle(0, 100) == pytest.approx(0.2)
    assert triangle(23, 100) == pytest.approx(1.0)  # peak at 23% of the steps
    assert triangle(10, 100) == pytest.approx(0.2 + 0.8 * 10 / 23)
    assert triangle(100, 100) == pytest.approx(0.07)
    assert triangle(60, 100) == pytest.approx(1 - 0.93 * 37 / 77)


def test_linear_and_lookahead_schedules_at_known_steps():
    assert [linear_decay(s, 8) for s in (0, 2, 8, 9)] == [1.0, 0.75, 0.0, 0.0]
    assert lookahead_decay(0, 100) == 0.0
    assert lookahead_decay(50, 100) == pytest.approx(0.95**5 / 8)
    assert lookahead_decay(100, 100) == pytest.approx(0.95**5)


def test_lookahead_pulls_the_weights_back_towards_the_slow_copy():
    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    lookahead = Lookahead(model)
    with torch.no_grad():
        model.weight.fill_(1.0)
    lookahead.update(decay=0.75)
    assert torch.allclose(model.weight, torch.full((1, 2), 0.25))
    with torch.no_grad():
        model.weight.fill_(1.0)
    lookahead.update(decay=1.0)  # the end of training: install the slow weights
    assert torch.allclose(model.weight, torch.full((1, 2), 0.25))


def test_newton_schulz_orthogonalizes_roughly():
    torch.manual_seed(0)
    g = torch.randn(64, 576)
    singular = torch.linalg.svdvals(orthogonalize(g, steps=5).float())
    assert singular.min() > 0.5 and singular.max() < 1.5  # all directions get a similar step


@pytest.mark.parametrize("name", ["airbench94", "airbench94-muon"])
def test_one_training_step_lowers_the_loss_on_a_tiny_batch(name):
    torch.manual_seed(0)
    config = get_recipe(name).configure(device="cpu", amp=False, seed=0).resolve()
    parts = fast_parts(name)
    model = parts.build_model(config).to(memory_format=torch.channels_last)
    x = torch.randn(32, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (32,))
    model.init_whitening(x)
    optimizers = parts.make_optimizers(model, config, Steps(per_epoch=5, total=10))
    model.train()

    def loss_now():
        return F.cross_entropy(model(x), y, label_smoothing=0.2, reduction="sum")

    before = loss_now()
    set_lrs(optimizers, 0, 10)
    before.backward()
    for opt in optimizers:
        opt.step()
    model.zero_grad(set_to_none=True)
    assert loss_now().item() < before.item()


# --- the fast trainer ----------------------------------------------------------------------------

def test_fast_trainer_records_tta_as_final_and_both_times(fake_cifar, tiny_nets):
    recipe = get_recipe("airbench94")
    config = recipe.configure(device="cpu", amp=False, seed=0, batch_size=16, epochs=2,
                              data_dir=str(fake_cifar)).resolve()
    recorder, lines = MemoryRecorder(), []
    reporter = Reporter(progress=False)
    reporter.line = lines.append
    result = recipe.train(config, recorder, reporter=reporter)
    assert recorder.status == "completed"
    epochs = {e.epoch: e for e in recorder.epochs}  # epochs keep their accuracy without TTA
    extra = recorder.finish_args["extra"]
    assert len(recorder.epochs) == 2 and epochs[2].val_acc == extra["val_acc_no_tta"]
    assert recorder.finish_args["final_val_acc"] == extra["tta_val_acc"]
    assert recorder.finish_args["final_from"] == "tta" and result.final_val_acc == extra["tta_val_acc"]
    assert recorder.finish_args["train_time_s"] == extra["speedrun_time_s"]
    assert recorder.finish_args["wall_time_s"] > extra["speedrun_time_s"] > epochs[2].elapsed_s
    assert recorder.run.params["recipe"] == "airbench94" and recorder.run.params["tta"] == 2
    assert f"Final Validation Accuracy: {extra['tta_val_acc']:.2f}%" in lines
    assert any(line.startswith("Final accuracy above is with test-time augmentation") for line in lines)
    assert any(line.startswith("Speedrun time (whitening init") for line in lines)


def test_without_tta_the_last_epochs_evaluation_is_final_and_nothing_more_is_timed(fake_cifar, monkeypatch, tiny_nets):
    # --tta 0 ran a final evaluation anyway, the same as the last epoch's, and counted it as speedrun time
    # (issue 27: 85 s of an airbench94 run on a CPU).
    levels = []
    original = fastloop.evaluate_tta
    monkeypatch.setattr(fastloop, "evaluate_tta", lambda *a, **k: levels.append(k["level"]) or original(*a, **k))
    recipe = get_recipe("airbench94")
    config = recipe.configure(device="cpu", amp=False, seed=0, batch_size=16, epochs=2, tta=0,
                              data_dir=str(fake_cifar)).resolve()
    recorder, lines = MemoryRecorder(), []
    reporter = Reporter(progress=False)
    reporter.line = lines.append
    result = recipe.train(config, recorder, reporter=reporter)
    assert recorder.status == "completed" and levels == [0, 0]  # the two epochs' evaluations, nothing after
    last = recorder.epochs[-1]
    assert recorder.finish_args["train_time_s"] == last.elapsed_s  # whitening init + training only
    assert result.final_val_acc == last.val_acc and recorder.finish_args["final_val_acc"] is None
    extra = recorder.finish_args["extra"]
    assert extra["tta_level"] == 0 and "tta_time_s" not in extra and "tta_val_acc" not in extra
    assert not any("test-time augmentation" in line for line in lines)
    assert any(line.startswith("Speedrun time (whitening init") and "TTA" not in line for line in lines)


# --- the command line ----------------------------------------------------------------------------

def rows(output):
    """The `--dry-run` rows as {name: value}, without the unit shown after a value: `1024  (images)`."""
    return {k: re.sub(r"\s+\(.*\)$", "", v) for k, v in re.findall(r"^\s+(\w+)\s+(.+?)\s*$", output, re.MULTILINE)}


def test_recipe_options_override_the_recipe_and_nothing_else():
    result = runner.invoke(app, ["train", "--recipe", "airbench94", "--dry-run", "--device", "cpu", "--seed", "1",
                                 "--bs", "512", "--lr-per-1024", "5", "--no-lookahead", "--tta", "1"])
    assert result.exit_code == 0, result.output
    got = rows(result.output)
    assert (got["recipe"], got["batch_size"], got["lr_per_1024"], got["lookahead"], got["tta"]) == \
        ("airbench94", "512", "5.0", "False", "1")
    assert (got["momentum"], got["label_smoothing"], got["epochs"], got["model"]) == ("0.85", "0.2", "9.9", "airbench94")


def test_default_recipe_is_unchanged_and_records_no_recipe_fields():
    result = runner.invoke(app, ["train", "--dry-run", "--device", "cpu", "--seed", "1"])
    assert result.exit_code == 0, result.output
    got = rows(result.output)
    assert (got["model"], got["batch_size"], got["lr"], got["epochs"]) == ("resnet18", "64", "0.04", "10")
    assert "recipe" not in got and "tta" not in got  # default runs keep grouping with earlier ones


@pytest.mark.parametrize("args, message", [
    (["--recipe", "nope"], "--recipe must be one of resnet18, airbench94, airbench94-muon"),
    (["--recipe", "airbench94", "--model", "resnet9"], "--model resnet9 is not available in recipe airbench94"),
    (["--recipe", "airbench94", "--aug", "crop"], "--aug crop is not available in recipe airbench94"),
    (["--recipe", "airbench94", "--tta", "3"], "--tta must be one of 0, 1, 2"),
    # A fast recipe drops the last partial batch: fewer images than one batch was a ZeroDivisionError (issue 27).
    (["--recipe", "airbench94", "--subset", "500"], "--batch-size 1024 is larger than the 500 images of --subset"),
    (["--seeds", "1,1"], "--seeds must list distinct integers"),
    (["--repeat", "3", "--seeds", "1,2"], "--repeat 3 disagrees"),
])
def test_bad_recipe_options_give_one_clear_error(args, message):
    result = runner.invoke(app, ["train", "--dry-run", "--device", "cpu", *args])
    assert result.exit_code == 1
    assert message in re.sub(r"\s+", " ", result.output)


def test_recipes_command_lists_each_recipe_with_its_defaults():
    result = runner.invoke(app, ["recipes"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for name in all_recipes():
        header = next(i for i, line in enumerate(lines) if line.startswith(f"{name}:") or line.startswith(f"{name} ("))
        assert len(lines[header].split(": ", 1)[1]) > 20  # a description
        assert lines[header + 1].startswith("    model=")
    assert lines[0].startswith("resnet18 (default): ")
    assert "batch_size=1024" in result.output and "tta=2" in result.output and "optimizer=muon" in result.output


def test_recipes_json():
    import json

    result = runner.invoke(app, ["recipes", "--json"])
    recipes = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(recipes) == set(all_recipes())
    assert recipes["resnet18"]["default"] is True and recipes["airbench94"]["default"] is False
    assert recipes["airbench94"]["defaults"]["batch_size"] == 1024 and recipes["airbench94"]["defaults"]["lr_per_1024"] == 11.5


@pytest.fixture
def recorders(monkeypatch):
    """The runs `speedrun train` records (into memory), in order."""
    recorder = MemoryRecorder(label="test.db")
    monkeypatch.setattr(train_cli, "make_recorder", lambda **options: recorder)
    return recorder.runs


def tiny_fast(fake_cifar, *more):
    return ["train", "--recipe", "airbench94", "--bs", "16", "--epochs", "1", "--device", "cpu", "--no-amp",
            "--data-dir", str(fake_cifar), *more]


def test_repeat_records_runs_with_distinct_seeds_in_one_group(recorders, fake_cifar, tiny_nets):
    result = runner.invoke(app, tiny_fast(fake_cifar, "--repeat", "2", "--group", "g1"))
    assert result.exit_code == 0, result.output
    assert len(recorders) == 2 and all(r.status == "completed" for r in recorders)
    seeds = [r.record.params["seed"] for r in recorders]
    assert len(set(seeds)) == 2
    assert [r.record.group for r in recorders] == ["g1", "g1"]
    finals = [r.finish_args["extra"]["tta_val_acc"] for r in recorders]
    assert re.search(r"Group g1: final accuracy over 2 repeats: \d+\.\d\d ± \d+\.\d\d \(n=2\)", result.output)
    assert min(finals) >= 0


def test_seeds_and_auto_group_name(recorders, fake_cifar, tiny_nets):
    result = runner.invoke(app, tiny_fast(fake_cifar, "--seeds", "7,9"))
    assert result.exit_code == 0, result.output
    assert [r.record.params["seed"] for r in recorders] == [7, 9]
    group = recorders[0].record.group
    assert re.fullmatch(r"airbench94-\d{8}-\d{6}", group) and recorders[1].record.group == group


def test_ctrl_c_keeps_finished_repeats_and_records_the_interrupted_one(recorders, fake_cifar, monkeypatch, tiny_nets):
    original, calls = fastloop.evaluate_tta, []

    def interrupt_in_second_run(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # run 1: epoch eval + TTA; run 2: its first evaluation
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(fastloop, "evaluate_tta", interrupt_in_second_run)
    result = runner.invoke(app, tiny_fast(fake_cifar, "--repeat", "3", "--seed", "1"))
    assert result.exit_code == 130
    assert [r.status for r in recorders] == ["completed", "interrupted"]
    assert "final accuracy over 1 of 3 repeats" in result.output


def test_configure_rejects_unknown_fields():
    with pytest.raises(TypeError):
        get_recipe("airbench94").configure(learning_rate=1.0)
    with pytest.raises(SpeedrunError, match="--optimizer adam is not available"):
        get_recipe("airbench94").configure(optimizer="adam", nesterov=False)


# --- the reference's budget and initialisation -----------------------------------------------------

def test_airbench94_trains_the_references_9_9_epochs():
    assert get_recipe("airbench94").config.epochs == 9.9
    steps = Steps.of(50_000, 1024, 9.9)
    assert (steps.per_epoch, steps.total, steps.epochs) == (48, 476, 10)  # ceil(9.9 × 48), as the reference
    assert [steps.in_epoch(e) for e in range(10)] == [48] * 9 + [44]
    whole = Steps.of(50_000, 2000, 8)
    assert (whole.total, whole.epochs, whole.in_epoch(7)) == (200, 8, 25)


def test_whitening_bias_starts_at_zero_in_airbench94_and_at_the_default_in_muon():
    config = get_recipe("airbench94").configure(device="cpu", amp=False, seed=0)
    assert torch.count_nonzero(fast_parts("airbench94").build_model(config).whiten.bias) == 0
    muon = get_recipe("airbench94-muon").configure(device="cpu", amp=False, seed=0)
    assert torch.count_nonzero(fast_parts("airbench94-muon").build_model(muon).whiten.bias) > 0


def test_muon_allocates_its_momentum_buffers_once(monkeypatch):
    torch.manual_seed(0)
    weights = [torch.nn.Parameter(torch.randn(8, 4, 3, 3)), torch.nn.Parameter(torch.randn(16, 8, 3, 3))]
    muon = Muon(weights, lr=0.1)
    allocations = []
    original = torch.zeros_like
    monkeypatch.setattr(torch, "zeros_like", lambda *a, **k: allocations.append(1) or original(*a, **k))
    buffers = []
    for _ in range(3):
        for w in weights:
            w.grad = torch.randn_like(w)
        muon.step()
        buffers.append([muon.state[w]["momentum_buffer"] for w in weights])
    assert len(allocations) == 2  # one per filter bank, on the first step
    assert all(a is b for a, b in zip(buffers[0], buffers[2]))


def test_muon_can_use_a_compiled_newton_schulz(monkeypatch):
    calls = []
    muon = Muon([torch.nn.Parameter(torch.randn(8, 4, 3, 3))], lr=0.1,
                orthogonalize=lambda g: calls.append(g.shape) or orthogonalize(g))
    muon.param_groups[0]["params"][0].grad = torch.randn(8, 4, 3, 3)
    muon.step()
    assert calls == [torch.Size([8, 36])]


def test_device_constants_are_built_once_per_device(monkeypatch):
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    normalize(images)
    color_jitter(images.float() / 255)  # both build what they need once
    built = []
    original = torch.tensor
    monkeypatch.setattr(torch, "tensor", lambda *a, **k: built.append(1) or original(*a, **k))
    for _ in range(3):
        normalize(images)
        color_jitter(images.float() / 255)
    assert built == []
    cpu = torch.device("cpu")
    assert channel_constant((0.1, 0.2, 0.3), cpu) is channel_constant((0.1, 0.2, 0.3), cpu)


def test_alternating_flip_looks_up_only_the_batchs_flips():
    images = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    aug = AlternatingFlipTranslate(images, pad=0)
    idx = torch.tensor([3, 9, 27])
    assert aug.flips(idx, 0).shape == (3,)
    assert torch.equal(aug.flips(idx, 1), ~aug.flips(idx, 0))


# --- the fast loop on the host and the compiler ------------------------------------------------------


@pytest.mark.parametrize("name", ["airbench94", "airbench94-muon"])
def test_a_fast_epoch_reads_from_the_device_only_once_at_its_end(fake_cifar, host_reads, name, tiny_nets):
    config = get_recipe(name).configure(device="cpu", amp=False, seed=0, batch_size=8, data_dir=str(fake_cifar))
    config = config.resolve()
    cpu = torch.device("cpu")
    data = load_cifar10(fake_cifar, cpu)
    parts = fast_parts(name)
    model = parts.build_model(config).to(memory_format=torch.channels_last)
    model.init_whitening(fastloop.normalize(data.train_images))
    images = fastloop.prepare_images(data.train_images, config)
    reads = []
    for steps in (Steps(per_epoch=2, total=10), Steps(per_epoch=6, total=10)):  # 2 and 6 batches
        optimizers = parts.make_optimizers(model, config, steps)
        lookahead = Lookahead(model) if config.lookahead else None
        host_reads.clear()
        fastloop.train_epoch(model, optimizers, lookahead, images, data.train_labels, config, 0, 0, steps,
                             contextlib.nullcontext, lambda n: None)
        reads.append(len(host_reads))
    assert reads == [2, 2]


@pytest.mark.parametrize("name", ["airbench94", "airbench94-muon"])
def test_compiled_fast_recipes_compile_nothing_while_the_clock_runs(fake_cifar, compilations, name, tiny_nets):
    recipe = get_recipe(name)
    # 48 images in batches of 16: 3 steps per epoch; 4 epochs, so the whitening bias trains, then freezes.
    config = recipe.configure(device="cpu", amp=False, seed=0, batch_size=16, epochs=4, whiten_bias_epochs=2,
                              compile=True, data_dir=str(fake_cifar)).resolve()
    recorder = MemoryRecorder()
    recipe.train(config, recorder, reporter=Reporter(progress=False))
    assert recorder.status == "completed"
    assert "timed" not in compilations
    # training and evaluation, with the whitening bias trainable and frozen (+ Newton–Schulz per shape)
    assert len(compilations) >= 4
    assert recorder.finish_args["extra"]["warmup_s"] > 0


def test_a_warmed_up_run_is_the_same_run(fake_cifar, monkeypatch, tiny_nets):
    recipe = get_recipe("airbench94")
    config = recipe.configure(device="cpu", amp=False, seed=3, batch_size=16, epochs=1,
                              data_dir=str(fake_cifar)).resolve()
    plain, warmed = MemoryRecorder(), MemoryRecorder()
    recipe.train(config, plain, reporter=Reporter(progress=False))
    monkeypatch.setattr(fastloop, "needs_warm_up", lambda config, device: True)
    recipe.train(config, warmed, reporter=Reporter(progress=False))
    assert plain.finish_args["extra"]["warmup_s"] == 0 < warmed.finish_args["extra"]["warmup_s"]
    assert warmed.epochs[0].train_loss == plain.epochs[0].train_loss
    assert warmed.finish_args["final_val_acc"] == plain.finish_args["final_val_acc"]


def test_a_fractional_budget_stops_inside_the_last_epoch(fake_cifar, tiny_nets):
    recipe = get_recipe("airbench94")
    # 48 images, batches of 16: 3 steps an epoch; 1.5 epochs = 5 steps, the second epoch stops after 2.
    config = recipe.configure(device="cpu", amp=False, seed=0, batch_size=16, epochs=1.5,
                              data_dir=str(fake_cifar)).resolve()
    recorder, lines = MemoryRecorder(), []
    reporter = Reporter(progress=False)
    reporter.line = lines.append
    recipe.train(config, recorder, reporter=reporter)
    assert [e.epoch for e in recorder.epochs] == [1, 2]
    first, second = recorder.epochs
    assert first.images_per_s == pytest.approx(48 / first.duration_s)
    assert second.images_per_s == pytest.approx(32 / second.duration_s)
    assert recorder.run.params["epochs"] == 1.5
    assert any(line.startswith("Config: ") and "EPOCHS=2," in line for line in lines)  # the epoch lines' total
    assert "Epoch budget: 1.5 epochs = 5 steps of 16 images; epoch 2 stops after 2 of 3" in lines
